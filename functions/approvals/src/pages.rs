//! Small, self-contained HTML pages (no external assets), readable on a phone.

use shared::app::approvals::ApprovalView;
use shared::app::notices::{quote_untrusted, MAX_QUOTED_CHARS};
use shared::domain::{Execution, Status, Verdict};
use shared::http::escape;

const STYLE: &str = "body{font:16px/1.5 system-ui,-apple-system,Segoe UI,Roboto,sans-serif;margin:0;background:#f6f7f9;color:#1c1e21}\
main{max-width:40rem;margin:0 auto;padding:1.25rem}\
h1{font-size:1.4rem;margin:.5rem 0 1rem}\
.card{background:#fff;border:1px solid #d8dde3;border-radius:8px;padding:1rem 1.25rem;margin-bottom:1rem}\
dl{display:grid;grid-template-columns:max-content 1fr;gap:.35rem 1rem;margin:0}\
dt{color:#555;font-weight:600}dd{margin:0;overflow-wrap:anywhere}\
code{font:0.9em ui-monospace,SFMono-Regular,Menlo,monospace}\
label{display:block;font-weight:600;margin:.75rem 0 .25rem}\
input,textarea{width:100%;box-sizing:border-box;font:inherit;padding:.5rem;border:1px solid #aab2bd;border-radius:6px}\
.actions{display:flex;gap:.75rem;flex-wrap:wrap;margin-top:1rem}\
button{font:inherit;font-weight:600;padding:.7rem 1.4rem;border-radius:6px;border:0;cursor:pointer}\
.approve{background:#1a7f37;color:#fff}.reject{background:#fff;color:#b42318;border:2px solid #b42318}\
.note{color:#555;font-size:.9rem}.ok{color:#1a7f37}.bad{color:#b42318}\
@media (max-width:32rem){main{padding:.75rem}dl{grid-template-columns:1fr;gap:0}dt{margin-top:.5rem}dd code{font-size:.8em}}";

fn page(title: &str, body: &str) -> String {
    format!(
        "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\">\
<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\
<meta name=\"robots\" content=\"noindex\"><title>{} · shipgate</title><style>{STYLE}</style></head>\
<body><main>{body}</main></body></html>",
        escape(title)
    )
}

fn row(label: &str, value: &str) -> String {
    format!("<dt>{}</dt><dd>{}</dd>", escape(label), value)
}

/// What a pusher wrote, as inert text: escaped, without control or bidi characters, URLs
/// defanged (as in the approval e-mail).
fn untrusted(text: &str) -> String {
    escape(&quote_untrusted(text, MAX_QUOTED_CHARS))
}

fn commit_rows(e: &Execution) -> String {
    let c = &e.commit;
    let sha = if c.sha.is_empty() {
        "(branch head)".to_string()
    } else {
        c.sha.clone()
    };
    let sha_html = match &c.url {
        Some(u) if u.starts_with("https://") => format!(
            "<a href=\"{}\"><code>{}</code></a>",
            escape(u),
            escape(&sha)
        ),
        _ => format!("<code>{}</code>", escape(&sha)),
    };
    let mut out = row(
        "Commit",
        &format!("{sha_html} on <code>{}</code>", untrusted(&c.reference)),
    );
    if let Some(m) = &c.message {
        let first = m.split(['\n', '\r', '\u{2028}', '\u{2029}']).next();
        out.push_str(&row("Message", &untrusted(first.unwrap_or(""))));
    }
    if let Some(a) = &c.author {
        out.push_str(&row("Pushed by", &untrusted(a)));
    }
    out
}

/// GET: the confirmation page. Opening it changes nothing.
pub fn confirm(view: &ApprovalView) -> String {
    let e = &view.execution;
    let p = &view.pipeline;
    let digest = e.image.as_ref().map(|i| i.digest.as_str()).unwrap_or("-");
    let production = match &view.production {
        Some(r) => format!(
            "<code>{}</code> ({}) since {}",
            escape(r.commit.short_sha()),
            escape(&r.image.digest[..r.image.digest.len().min(19)]),
            r.deployed_at.format("%Y-%m-%d %H:%M UTC")
        ),
        None => "nothing deployed by shipgate yet".into(),
    };
    let mut details = String::new();
    details.push_str(&row("Pipeline", &escape(&p.name)));
    details.push_str(&commit_rows(e));
    details.push_str(&row("Image", &format!("<code>{}</code>", escape(digest))));
    details.push_str(&row(
        "Tested on",
        &format!(
            "{} <span class=\"note\">(cluster {})</span>",
            escape(&p.test.service),
            escape(&p.test.cluster)
        ),
    ));
    // verified promotion: what the test service answered
    for (label, value) in shared::app::verification::verified_lines(e) {
        details.push_str(&row(&label, &format!("<code>{}</code>", escape(&value))));
    }
    details.push_str(&row("Production now", &production));
    if let Some(owner) = &view.owner {
        details.push_str(&row(
            "Approving as",
            &format!(
                "<strong>{}</strong> <span class=\"note\">(this personal link was signed by shipgate for this address: whoever opens it acts as you)</span>",
                escape(&owner.email)
            ),
        ));
    }
    if !p.approval.approvers.is_empty() {
        let emails: Vec<&str> = p
            .approval
            .approvers
            .iter()
            .map(|a| a.email.as_str())
            .collect();
        let how = if view.owner.is_some() {
            String::new()
        } else {
            format!(
                " <span class=\"note\">(with their personal link or <code>shipgate approve {}</code>: this shared link cannot tell who you are)</span>",
                escape(e.id.as_str())
            )
        };
        details.push_str(&row(
            "Who may approve",
            &format!(
                "{} of {}{how}",
                p.approval.required,
                escape(&emails.join(", ")),
            ),
        ));
    }
    let progress = e
        .approval
        .as_ref()
        .map(|a| shared::domain::approval_policy::progress(a, p.approval.required))
        .filter(|t| !t.is_empty());
    if let Some(progress) = progress {
        details.push_str(&row("Approvals", &escape(&progress)));
    }
    details.push_str(&row(
        "Link expires",
        &view.expires_at.format("%Y-%m-%d %H:%M UTC").to_string(),
    ));
    details.push_str(&row(
        "Execution",
        &format!("<code>{}</code>", escape(e.id.as_str())),
    ));
    let approve_button = "<button class=\"approve\" type=\"submit\" name=\"decision\" value=\"approve\">Approve</button>";
    let reject_button = "<button class=\"reject\" type=\"submit\" name=\"decision\" value=\"reject\">Reject</button>";
    let (fields, buttons, notice) = match &view.owner {
        // a personal link: who decides is the link's owner, no name to type
        Some(owner) if owner.own_change => (
            "",
            reject_button.to_string(),
            format!(
                "<p class=\"bad\" id=\"own-change\"><strong>{} cannot approve their own change</strong>: you pushed or wrote it, and pipeline {} does not allow self-approval. You may reject it.</p>",
                escape(&owner.email),
                escape(&p.name)
            ),
        ),
        Some(owner) if owner.counted => (
            "",
            reject_button.to_string(),
            "<p class=\"ok\" id=\"counted\">Your approval is already counted; production waits for the other approvals. You may still reject.</p>".to_string(),
        ),
        Some(_) => ("", format!("{approve_button}{reject_button}"), String::new()),
        None => (
            "<label for=\"name\">Your name</label><input id=\"name\" name=\"name\" autocomplete=\"name\" maxlength=\"200\">",
            format!("{approve_button}{reject_button}"),
            String::new(),
        ),
    };
    let body = format!(
        "<h1>Deploy {name} to production?</h1>\
<div class=\"card\"><dl>{details}</dl></div>\
<form method=\"post\" class=\"card\">{notice}\
<p class=\"note\">Production will run exactly the image above, the one that ran in test.</p>\
{fields}<label for=\"comment\">Comment <span class=\"note\">(optional)</span></label>\
<textarea id=\"comment\" name=\"comment\" rows=\"3\" maxlength=\"500\"></textarea>\
<div class=\"actions\">{buttons}</div></form>\
<p class=\"note\">Or from a terminal: <code>shipgate approve {id}</code></p>",
        name = escape(&p.name),
        id = escape(e.id.as_str()),
    );
    page(&format!("Approve {}", p.name), &body)
}

/// How a link decision was recorded: a shared link's typed name as unverified, a personal
/// link as its owner.
fn recorded_note(decision: Option<&shared::domain::Decision>) -> String {
    match decision {
        Some(d) if d.channel == shared::domain::Channel::EmailLink => match &d.approver {
            Some(email) => format!(
                "<p class=\"note\">Recorded as <strong>{}</strong>: the approver this personal link was issued to.</p>",
                escape(email)
            ),
            None => "<p class=\"note\">Recorded as <strong>email link (unverified name)</strong>: this shared link cannot prove who you are, so the name typed is kept but marked unverified.</p>".to_string(),
        },
        _ => String::new(),
    }
}

/// POST: what the decision did.
pub fn decided(e: &Execution) -> String {
    let approval = e.approval.as_ref();
    let decision = approval.and_then(|a| a.decision.as_ref());
    // an approval counted towards N, production still waiting for the others
    let counted = match (e.status, approval) {
        (Status::AwaitingApproval, Some(a)) if decision.is_none() => a.approvals.last(),
        _ => None,
    };
    let (title, headline) = match (decision.map(|d| d.verdict), e.status) {
        _ if counted.is_some() => (
            "Approval counted",
            format!(
                "<h1 class=\"ok\">Approval counted — {}</h1><p>Production deploys once the remaining approvals are in.</p>",
                escape(&shared::domain::approval_policy::recorded_progress(
                    approval.expect("counted")
                ))
            ),
        ),
        (Some(Verdict::Approve), Status::ProdFailed) => (
            "Approved, but the deployment could not start",
            format!(
                "<h1 class=\"bad\">Approved, but production could not be updated</h1><p>{}</p>",
                escape(
                    &e.failure
                        .as_ref()
                        .map(|f| f.reason.clone())
                        .unwrap_or_default()
                )
            ),
        ),
        (Some(Verdict::Approve), _) => (
            "Approved",
            "<h1 class=\"ok\">Approved — production deployment started</h1>".to_string(),
        ),
        _ => (
            "Rejected",
            "<h1 class=\"bad\">Rejected — production was not changed</h1>".to_string(),
        ),
    };
    let shown = decision.or(counted);
    let who = shown
        .map(|d| {
            format!(
                "{} at {}",
                escape(&d.actor),
                d.at.format("%Y-%m-%d %H:%M UTC")
            )
        })
        .unwrap_or_default();
    let body = format!(
        "{headline}<div class=\"card\"><dl>{}{}{}{}</dl></div>\
{}<p class=\"note\">Follow it with <code>shipgate show {}</code>.</p>",
        row("Pipeline", &escape(&e.pipeline)),
        commit_rows(e),
        row("Decided by", &who),
        row("Status", &format!("<code>{}</code>", e.status)),
        recorded_note(shown),
        escape(e.id.as_str()),
    );
    page(title, &body)
}

/// Any error: what happened, and that nothing changed.
pub fn error(status: u16, message: &str) -> String {
    let title = match status {
        400 => "Malformed approval link",
        403 => "Invalid approval link",
        404 => "Unknown approval link",
        405 => "Method not allowed",
        409 => "Already decided",
        410 => "Approval link no longer valid",
        413 => "Request too large",
        _ => "Something went wrong",
    };
    page(
        title,
        &format!(
            "<h1>{}</h1><div class=\"card\"><p>{}</p><p class=\"note\">Nothing was changed.</p></div>",
            escape(title),
            escape(message)
        ),
    )
}
