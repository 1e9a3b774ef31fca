//! The read-only status page (`GET /status/{token}`): what runs in test and prod, and the recent
//! executions as strips of stages. Self-contained (no external assets, no script), readable on
//! a phone, under the same CSP as the approval page.
//!
//! Written with maud: every interpolated value is HTML-escaped unless wrapped in
//! `PreEscaped`, so text a pusher wrote (commit title, author, branch) cannot become markup.
//! Measured cost (`cargo build --release -p approvals`, 2026-12-01, x86_64, stripped): the
//! approvals binary grew from 6,517,320 to 6,565,832 bytes (+48,512, +0.7%) with maud and this page (see
//! docs/visibility.md); maud itself is a compile-time macro with a small runtime (escaping,
//! `Markup`). The approval page keeps its `format!` pages (already tested for escaping).

use chrono::{DateTime, Utc};
use maud::{html, Markup, PreEscaped, DOCTYPE};
use shared::app::notices::{quote_untrusted, MAX_QUOTED_CHARS};
use shared::app::status_page::{ExecutionRow, StatusView};
use shared::domain::links::{region_of_repository, ExecutionLinks};
use shared::domain::strip::StageState;
use shared::domain::{
    DeployKind, DeployedRevision, Environment, EnvironmentRevisions, Execution, Trigger, Verdict,
};

const STYLE: &str = "body{font:16px/1.5 system-ui,-apple-system,Segoe UI,Roboto,sans-serif;margin:0;background:#f6f7f9;color:#1c1e21}\
main{max-width:60rem;margin:0 auto;padding:1.25rem}\
h1{font-size:1.4rem;margin:.5rem 0 1rem}h2{font-size:1.1rem;margin:1.5rem 0 .5rem}\
.card{background:#fff;border:1px solid #d8dde3;border-radius:8px;padding:1rem 1.25rem;margin-bottom:1rem}\
.envs{display:grid;grid-template-columns:1fr 1fr;gap:1rem}\
dl{display:grid;grid-template-columns:max-content 1fr;gap:.25rem 1rem;margin:0}\
dt{color:#555;font-weight:600}dd{margin:0;overflow-wrap:anywhere}\
code{font:0.9em ui-monospace,SFMono-Regular,Menlo,monospace}\
a{color:#0b57d0}.note{color:#555;font-size:.9rem}\
.head{display:flex;flex-wrap:wrap;gap:.25rem .75rem;align-items:baseline;margin-bottom:.5rem}\
.title{font-weight:600;overflow-wrap:anywhere}\
.badge{font:600 .75rem ui-monospace,monospace;padding:.1rem .45rem;border-radius:4px;background:#eef1f4}\
ol.strip{list-style:none;display:grid;grid-template-columns:repeat(5,1fr);gap:4px;padding:0;margin:.5rem 0}\
ol.strip li{border-radius:4px;padding:.3rem .4rem;font-size:.8rem;line-height:1.3;border:1px solid transparent}\
ol.strip b{display:block;font-weight:600}\
.pending{background:#eef1f4;color:#555}.running{background:#d3e3fd;color:#0b3d91;border-color:#0b57d0}\
.waiting{background:#fff4ce;color:#6b4e00;border-color:#c79400}.succeeded{background:#d7f0dd;color:#0f5323}\
.failed{background:#fbd9d6;color:#8c1d13;border-color:#b42318}.stopped{background:#e3e5e8;color:#3c4043}\
.rolled_back{background:#ece1fb;color:#4a2a85}.skipped{background:#fff;color:#888;border:1px dashed #c4c9d0}\
.links{display:flex;flex-wrap:wrap;gap:.25rem 1rem;font-size:.9rem}\
@media (max-width:40rem){main{padding:.75rem}.envs{grid-template-columns:1fr}\
dl{grid-template-columns:1fr;gap:0}dt{margin-top:.4rem}\
ol.strip{grid-template-columns:1fr;gap:2px}ol.strip li{display:flex;justify-content:space-between}ol.strip b{display:inline}}";

fn when(t: &DateTime<Utc>) -> String {
    t.format("%Y-%m-%d %H:%M UTC").to_string()
}

fn short_time(t: &DateTime<Utc>) -> String {
    t.format("%m-%d %H:%M").to_string()
}

/// What a pusher wrote, as one inert line (escaped by maud when rendered).
fn untrusted(text: &str) -> String {
    let first = text
        .split(['\n', '\r', '\u{2028}', '\u{2029}'])
        .next()
        .unwrap_or("");
    quote_untrusted(first, MAX_QUOTED_CHARS)
}

fn state_label(s: StageState) -> &'static str {
    match s {
        StageState::Pending => "not reached",
        StageState::Running => "running",
        StageState::Waiting => "waiting",
        StageState::Succeeded => "done",
        StageState::Failed => "failed",
        StageState::Stopped => "stopped",
        StageState::RolledBack => "rolled back",
        StageState::Skipped => "skipped",
    }
}

fn page(title: &str, body: Markup) -> String {
    html! {
        (DOCTYPE)
        html lang="en" {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                meta name="robots" content="noindex";
                title { (title) " · shipgate" }
                style { (PreEscaped(STYLE)) }
            }
            body { main { (body) } }
        }
    }
    .into_string()
}

/// Who brought a revision to the environment, as far as the recent executions tell.
fn deployed_by(view: &StatusView, env: Environment, r: &DeployedRevision) -> String {
    let exec = view
        .recent
        .iter()
        .map(|row| &row.execution)
        .find(|e| e.id == r.execution_id);
    let Some(e) = exec else {
        return r.how.as_str().to_string();
    };
    let approved = e
        .approval
        .as_ref()
        .and_then(|a| a.decision.as_ref())
        .filter(|d| d.verdict == Verdict::Approve);
    match (&e.trigger, env, approved) {
        (Trigger::Rollback { actor, .. }, _, _) => format!("rollback by {actor}"),
        (_, Environment::Prod, Some(d)) => format!("approved by {}", d.actor),
        (Trigger::Release { actor }, _, _) => format!("release by {actor}"),
        (Trigger::GithubPush { pusher, .. }, _, _) => {
            match pusher.as_deref().or(e.commit.author.as_deref()) {
                Some(p) => format!("push by {}", untrusted(p)),
                None => "push".into(),
            }
        }
        (Trigger::CodecommitPush { .. }, _, _) => match &e.commit.author {
            Some(a) => format!("push by {}", untrusted(a)),
            None => "push".into(),
        },
    }
}

fn environment(
    view: &StatusView,
    env: Environment,
    revisions: Option<&EnvironmentRevisions>,
) -> Markup {
    let target = match env {
        Environment::Test => &view.pipeline.test,
        Environment::Prod => &view.pipeline.prod,
    };
    let region = region_of_repository(&view.pipeline.image.repository);
    let current = revisions.and_then(EnvironmentRevisions::current);
    html! {
        section.card aria-label=(format!("{env} environment")) {
            h2 style="margin-top:0" { (env) " " span.note { (target.service) " · cluster " (target.cluster) } }
            @match current {
                None => p.note { "Nothing deployed by shipgate yet." },
                Some(r) => dl {
                    dt { "Commit" }
                    dd {
                        @match shared::domain::links::commit_page(&view.pipeline.source, region, &r.commit) {
                            Some(u) => a href=(u) { code { (r.commit.short_sha()) } },
                            None => code { (r.commit.short_sha()) },
                        }
                        @if r.commit.message.is_some() { " " (untrusted(r.commit.title())) }
                    }
                    dt { "Digest" }
                    dd { code { (r.image.digest.get(..19).unwrap_or(&r.image.digest)) } }
                    dt { "Since" }
                    dd { (when(&r.deployed_at)) }
                    dt { "By" }
                    dd { (deployed_by(view, env, r)) @if r.how == DeployKind::Rollback { " (rollback)" } }
                    dt { "Execution" }
                    dd { code { (r.execution_id) } }
                }
            }
            @if let Some(claim) = revisions.and_then(|r| r.rollback.as_ref()) {
                p.note { "Rollback under way: " code { (claim.execution_id) } }
            }
            @if let Some(r) = region {
                p.links { a href=(shared::domain::links::ecs_console(r, &target.cluster, &target.service)) { "ECS console" } }
            }
        }
    }
}

fn approver(e: &Execution) -> Option<String> {
    let d = e.approval.as_ref()?.decision.as_ref()?;
    let verb = match d.verdict {
        Verdict::Approve => "approved",
        Verdict::Reject => "rejected",
    };
    Some(format!(
        "{verb} by {} via {} at {}",
        d.actor,
        shared::domain::channel_name(d.channel),
        when(&d.at)
    ))
}

fn links(l: &ExecutionLinks) -> Markup {
    html! {
        p.links {
            @if let Some(u) = &l.commit { a href=(u) { "commit" } }
            @if let Some(u) = &l.compare { a href=(u) { "compare with prod" } }
            @if let Some(u) = &l.build_logs { a href=(u) { "build logs" } }
            @if let Some(u) = &l.service { a href=(u) { "ECS console" } }
        }
    }
}

fn execution(row: &ExecutionRow) -> Markup {
    let e = &row.execution;
    let sha = if e.commit.sha.is_empty() {
        "(branch head)"
    } else {
        e.commit.short_sha()
    };
    html! {
        article.card data-execution=(e.id) data-status=(e.status) {
            div.head {
                code { (sha) }
                span.title { (untrusted(e.commit.title())) }
                span.badge { (e.status) }
            }
            ol.strip aria-label="stages" {
                @for c in &row.strip {
                    li class=(c.state.as_str()) data-stage=(c.stage.as_str()) title=(format!("{}: {}", c.stage.as_str(), state_label(c.state))) {
                        b { (c.stage.as_str()) }
                        span {
                            (state_label(c.state))
                            @if let Some(at) = &c.at { @if c.state != StageState::Pending && c.state != StageState::Skipped { " · " (short_time(at)) } }
                        }
                    }
                }
            }
            p.note {
                "on " code { (untrusted(&e.commit.reference)) }
                " · started " (when(&e.created_at))
                @if let Some(a) = approver(e) { " · " (a) }
                @if let Some(f) = &e.failure { br; "failed in " (f.stage) ": " (f.reason) }
                br; "execution " code { (e.id) }
            }
            (links(&row.links))
        }
    }
}

/// The page.
pub fn status(view: &StatusView) -> String {
    let name = &view.pipeline.name;
    let body = html! {
        h1 { (name) " " span.note { "release status" } }
        div.envs {
            (environment(view, Environment::Test, view.test.as_ref()))
            (environment(view, Environment::Prod, view.prod.as_ref()))
        }
        h2 { "Recent executions" }
        @if view.recent.is_empty() {
            p.note { "No executions yet." }
        }
        @for row in &view.recent { (execution(row)) }
        p.note {
            "Read-only page, as of " (when(&view.generated_at)) ". This link expires " (when(&view.expires_at))
            ". From a terminal: " code { "shipgate status " (name) }
        }
    };
    page(&format!("{name} status"), body)
}

/// Any error: what happened; a status link never changes anything.
pub fn error(status: u16, message: &str) -> String {
    let title = match status {
        400 => "Malformed status link",
        403 => "Invalid status link",
        404 => "Unknown pipeline",
        405 => "Method not allowed",
        410 => "Status link expired",
        _ => "Something went wrong",
    };
    page(
        title,
        html! {
            h1 { (title) }
            div.card { p { (message) } p.note { "A status link only shows a page; it never changes anything." } }
        },
    )
}
