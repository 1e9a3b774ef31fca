//! Human output: tables and timelines of the typed answers (`--json` prints the raw answer
//! instead).

use chrono::{DateTime, Utc};
use shared::domain::{
    Channel, DeployedRevision, Environment, EnvironmentRevisions, Execution, Verdict,
};
use shared::protocol::{
    ControlError, ControlResponse, FieldChange, PipelineApplied, PipelineList, PipelineShown,
    StatusReport,
};

fn short(text: &str, n: usize) -> String {
    let t: String = text.chars().take(n).collect();
    if text.chars().count() > n {
        format!("{t}…")
    } else {
        t
    }
}

/// `2026-11-21 10:00:01 UTC`: every time shipgate prints is in UTC, and says so.
pub fn when(t: &DateTime<Utc>) -> String {
    t.format("%Y-%m-%d %H:%M:%S UTC").to_string()
}

/// A plain-text table with aligned columns.
pub fn table(headers: &[&str], rows: &[Vec<String>]) -> String {
    let mut widths: Vec<usize> = headers.iter().map(|h| h.chars().count()).collect();
    for row in rows {
        for (i, cell) in row.iter().enumerate() {
            if i < widths.len() {
                widths[i] = widths[i].max(cell.chars().count());
            }
        }
    }
    let line = |cells: Vec<String>| {
        cells
            .iter()
            .enumerate()
            .map(|(i, c)| {
                if i + 1 == cells.len() {
                    c.clone()
                } else {
                    format!("{c:<w$}", w = widths[i])
                }
            })
            .collect::<Vec<_>>()
            .join("  ")
            .trim_end()
            .to_string()
    };
    let mut out = vec![line(headers.iter().map(|h| h.to_string()).collect())];
    out.extend(rows.iter().map(|r| line(r.clone())));
    out.join("\n")
}

pub fn print_error(err: &ControlError) {
    eprintln!("error ({}): {}", err.code, err.message);
    for d in err.details.iter().flatten() {
        eprintln!("  {}: {}", d.path, d.message);
    }
}

/// Exit code when the reader of stdout went away (what a shell reports for a process SIGPIPE
/// ended: 128 + 13).
pub const EXIT_CLOSED_STDOUT: u8 = 141;

/// Print a line on stdout.
pub fn say(text: &str) {
    write_out(format!("{text}\n").as_bytes());
}

/// Write to stdout. A reader that closed the pipe (`shipgate watch ID | head -1`) is not an
/// error worth a panic, and nobody reads what follows: the command ends quietly with
/// [`EXIT_CLOSED_STDOUT`] (a `watch` or `logs --follow` would otherwise poll on for as long as
/// the execution runs, days if it waits for approval).
pub fn write_out(bytes: &[u8]) {
    use std::io::Write;
    let mut out = std::io::stdout().lock();
    if let Err(e) = out.write_all(bytes).and_then(|()| out.flush()) {
        if e.kind() == std::io::ErrorKind::BrokenPipe {
            std::process::exit(i32::from(EXIT_CLOSED_STDOUT));
        }
    }
}

/// Print an answer; `history`: a status shows every kept revision instead of what runs.
pub fn render(answer: &ControlResponse, history: bool) {
    let text = match answer {
        ControlResponse::Applied(a) => applied(a),
        ControlResponse::Pipelines(a) => pipelines(a),
        ControlResponse::PipelineShown(a) => pipeline_shown(a),
        ControlResponse::Status(a) if history => status_history(a),
        ControlResponse::Status(a) => status(a),
        ControlResponse::Executions(a) if a.executions.is_empty() => "no executions".into(),
        ControlResponse::Executions(a) => executions_table(&a.executions),
        ControlResponse::Execution(a) => execution(&a.execution),
        ControlResponse::Released(a) => execution(&a.execution),
    };
    say(&inert(&text));
}

/// Text for a terminal: what a pusher wrote (commit message, author, branch) reaches these
/// tables, so every control character but the line break becomes U+FFFD; an escape sequence
/// in a commit message can neither restyle, hide, retitle nor write to the clipboard of the
/// operator's terminal.
pub fn inert(text: &str) -> String {
    text.chars()
        .map(|c| {
            if c.is_control() && c != '\n' {
                '\u{FFFD}'
            } else {
                c
            }
        })
        .collect()
}

fn applied(a: &PipelineApplied) -> String {
    let mut out = format!(
        "pipeline {}: {} (version {})",
        a.pipeline, a.result, a.version
    );
    for c in &a.changes {
        out.push_str(&format!("\n  {}", change_line(c)));
    }
    out
}

/// `{path}: {before} → {after}` of one field change.
fn change_line(c: &FieldChange) -> String {
    let side = |v: &Option<serde_json::Value>| {
        v.as_ref()
            .map(|v| v.to_string())
            .unwrap_or_else(|| "(none)".into())
    };
    format!("{}: {} → {}", c.path, side(&c.before), side(&c.after))
}

fn pipeline_shown(a: &PipelineShown) -> String {
    let p = &a.pipeline;
    let by = |v: &Option<String>| match v {
        Some(actor) => actor.clone(),
        None => "(not recorded)".to_string(),
    };
    let mut out = format!(
        "{} version {}, applied {} by {}",
        p.definition.name,
        p.version,
        when(&p.applied_at),
        by(&p.applied_by)
    );
    match &a.history {
        None => {
            let text = serde_json::to_string_pretty(&p.definition).unwrap_or_default();
            out.push('\n');
            out.push_str(&text);
        }
        Some(versions) => {
            for v in versions {
                out.push_str(&format!(
                    "\n\nversion {}  {}  {}",
                    v.version,
                    when(&v.applied_at),
                    by(&v.applied_by)
                ));
                if v.changes.is_empty() {
                    out.push_str(if v.version == 1 {
                        "\n  created"
                    } else {
                        "\n  (the version before it is not kept)"
                    });
                }
                for c in &v.changes {
                    out.push_str(&format!("\n  {}", change_line(c)));
                }
            }
        }
    }
    out
}

fn pipelines(a: &PipelineList) -> String {
    let rows: Vec<Vec<String>> = a
        .pipelines
        .iter()
        .map(|p| {
            let d = &p.definition;
            vec![
                p.name.clone(),
                p.source.clone(),
                d.branches.join(","),
                format!("{}/{}", d.prod.cluster, d.prod.service),
                p.version.to_string(),
                when(&p.updated_at),
            ]
        })
        .collect();
    if rows.is_empty() {
        return "no pipelines (create one with: shipgate pipeline apply FILE)".into();
    }
    table(
        &[
            "NAME",
            "SOURCE",
            "BRANCHES",
            "PROD SERVICE",
            "VERSION",
            "UPDATED",
        ],
        &rows,
    )
}

fn revision_row(env: Environment, r: Option<&EnvironmentRevisions>) -> Vec<String> {
    let Some(current) = r.and_then(EnvironmentRevisions::current) else {
        return vec![
            env.to_string(),
            "-".into(),
            "-".into(),
            "-".into(),
            "-".into(),
            "nothing deployed by shipgate yet".into(),
        ];
    };
    let mut row = history_row(current);
    row.insert(0, env.to_string());
    row
}

/// One kept revision: when, how, commit, digest, execution (and what a rollback restored).
fn history_row(r: &DeployedRevision) -> Vec<String> {
    let execution = match &r.restores {
        Some(restored) => format!("{} (restores {restored})", r.execution_id),
        None => r.execution_id.to_string(),
    };
    vec![
        short(&r.commit.sha, 12),
        short(&r.image.digest, 19),
        when(&r.deployed_at),
        r.how.as_str().to_string(),
        execution,
    ]
}

/// Every kept revision of each environment, newest first.
fn status_history(a: &StatusReport) -> String {
    let mut out = Vec::new();
    for p in &a.pipelines {
        for env in [Environment::Prod, Environment::Test] {
            out.push(format!("{} {env}:", p.pipeline));
            let revisions = p.environment(env);
            let rows: Vec<Vec<String>> = revisions
                .map(|r| r.history.iter().map(history_row).collect())
                .unwrap_or_default();
            if rows.is_empty() {
                out.push("  nothing deployed by shipgate yet".into());
            }
            for line in table(&["COMMIT", "DIGEST", "SINCE", "HOW", "EXECUTION"], &rows).lines() {
                out.push(format!("  {line}"));
            }
            if let Some(claim) = revisions.and_then(|r| r.rollback.as_ref()) {
                out.push(format!("  rollback under way: {}", claim.execution_id));
            }
        }
        out.push(String::new());
    }
    out.join("\n").trim_end().to_string()
}

fn status(a: &StatusReport) -> String {
    let mut out = Vec::new();
    for p in &a.pipelines {
        out.push(format!("{} ({})", p.pipeline, p.source));
        let rows = vec![
            revision_row(Environment::Test, p.test.as_ref()),
            revision_row(Environment::Prod, p.prod.as_ref()),
        ];
        for line in table(
            &["ENV", "COMMIT", "DIGEST", "SINCE", "HOW", "EXECUTION"],
            &rows,
        )
        .lines()
        {
            out.push(format!("  {line}"));
        }
        if p.in_flight.is_empty() {
            out.push("  in flight: none".into());
        } else {
            out.push("  in flight:".into());
            for line in executions_table(&p.in_flight).lines() {
                out.push(format!("    {line}"));
            }
            for e in &p.in_flight {
                if let Some(a) = e.approval.as_ref().filter(|a| !a.approvals.is_empty()) {
                    out.push(format!(
                        "    {}: {}",
                        e.id,
                        shared::domain::approval_policy::recorded_progress(a)
                    ));
                }
            }
        }
        if let Some(link) = &p.status_page {
            out.push(format!(
                "  status page: {} (read-only, expires {})",
                link.url,
                when(&link.expires_at)
            ));
        }
        if let Some(latest) = &p.latest {
            out.push(format!(
                "  latest: {} {} ({})",
                latest.id,
                latest.status,
                short(&latest.commit.sha, 12)
            ));
        }
        out.push(String::new());
    }
    if out.is_empty() {
        return "no pipelines".into();
    }
    out.join("\n").trim_end().to_string()
}

fn executions_table(list: &[Execution]) -> String {
    let rows: Vec<Vec<String>> = list
        .iter()
        .map(|e| {
            vec![
                e.id.to_string(),
                e.status.to_string(),
                short(&e.commit.sha, 12),
                e.commit.reference.clone(),
                when(&e.created_at),
                short(e.commit.title(), 50),
            ]
        })
        .collect();
    table(
        &["ID", "STATUS", "COMMIT", "BRANCH", "CREATED", "MESSAGE"],
        &rows,
    )
}

fn verdict(v: Verdict) -> &'static str {
    match v {
        Verdict::Approve => "approve",
        Verdict::Reject => "reject",
    }
}

fn channel(c: Channel) -> &'static str {
    match c {
        Channel::EmailLink => "email-link",
        Channel::Cli => "cli",
        Channel::Console => "console",
    }
}

pub fn execution(e: &Execution) -> String {
    let mut out = Vec::new();
    out.push(format!("execution  {}", e.id));
    out.push(format!("pipeline   {}", e.pipeline));
    out.push(format!("status     {}", e.status));
    let c = &e.commit;
    out.push(format!(
        "commit     {} ({})",
        if c.sha.is_empty() {
            "(branch head)"
        } else {
            &c.sha
        },
        c.reference
    ));
    if c.message.is_some() {
        out.push(format!("message    {}", c.title()));
    }
    if let Some(a) = &c.author {
        out.push(format!("author     {a}"));
    }
    if let Some(image) = &e.image {
        out.push(format!(
            "image      {}@{}",
            image.repository_uri, image.digest
        ));
    }
    if let Some(f) = &e.failure {
        out.push(format!("failure    {}: {}", f.stage, f.reason));
    }
    if let Some(a) = &e.approval {
        match &a.decision {
            Some(d) => out.push(format!(
                "decision   {} by {} via {} at {}",
                verdict(d.verdict),
                d.actor,
                channel(d.channel),
                when(&d.at)
            )),
            None => out.push(format!("approval   waiting until {}", when(&a.expires_at))),
        }
        let counted = shared::domain::approval_policy::recorded_progress(a);
        if !counted.is_empty() {
            out.push(format!("approvals  {counted}"));
        }
    }
    let region = crate::links::region_of(e, crate::links::cli_region());
    for (label, value) in crate::links::lines(e, region.as_deref()) {
        out.push(format!("{label:<13} {value}"));
    }
    out.push(String::new());
    out.push("timeline".into());
    let rows: Vec<Vec<String>> = e
        .history
        .iter()
        .map(|h| {
            let from = h.from.map(|f| format!("{f} → ")).unwrap_or_default();
            vec![
                when(&h.at),
                format!("{from}{}", h.to),
                h.actor.clone(),
                h.cause.clone(),
            ]
        })
        .collect();
    for line in table(&["AT", "TRANSITION", "ACTOR", "CAUSE"], &rows).lines() {
        out.push(format!("  {line}"));
    }
    out.join("\n")
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn tables_align() {
        let t = table(
            &["A", "LONGER"],
            &[vec!["xxx".into(), "y".into()], vec!["z".into(), "w".into()]],
        );
        assert_eq!(t, "A    LONGER\nxxx  y\nz    w");
    }

    /// A definition named `name` (the example pipeline) in `mode`, as the wire carries it.
    fn definition(name: &str, mode: &str) -> serde_json::Value {
        let text = include_str!("../../examples/pipeline.toml")
            .replace("name = \"hello\"", &format!("name = {name:?}"))
            .replace("mode = \"superseded\"", &format!("mode = {mode:?}"));
        let parsed =
            shared::domain::PipelineDefinition::parse(&text, shared::domain::Format::Toml).unwrap();
        serde_json::to_value(parsed).unwrap()
    }

    #[test]
    fn execution_timeline() {
        let e = json!({"id": "01JD3V5X8Q2M4N6P7R9S0T1V2W", "pipeline": "demo", "status": "BUILDING", "commit": {"sha": "9f2c7a1e4b6d8f0a", "reference": "main", "message": "Add x\nmore"},
            "version": 2, "created_at": "2026-11-21T10:00:00.123Z", "updated_at": "2026-11-21T10:00:01Z", "trigger": {"kind": "release", "actor": "ops"},
            "history": [{"at": "2026-11-21T10:00:00.123Z", "from": null, "to": "RECEIVED", "actor": "github:ada", "cause": "GitHub push"},
                        {"at": "2026-11-21T10:00:01Z", "from": "RECEIVED", "to": "BUILDING", "actor": "shipgate", "cause": "build b started"}]});
        let text = execution(&serde_json::from_value(e).unwrap());
        assert!(text.contains("RECEIVED → BUILDING"));
        assert!(text.contains("2026-11-21 10:00:00 UTC"));
        assert!(text.contains("message    Add x"));
    }

    #[test]
    fn escape_sequences_from_a_commit_never_reach_the_terminal() {
        let text = inert("message    \u{1b}]52;c;ZXZpbA==\u{7}ok\u{1b}[2J\u{9b}31m\nnext\tline");
        assert!(
            !text.chars().any(|c| c.is_control() && c != '\n'),
            "{text:?}"
        );
        assert_eq!(text.lines().count(), 2);
        assert!(text.starts_with("message    \u{FFFD}]52;c;ZXZpbA==\u{FFFD}ok"));
    }

    #[test]
    fn pipeline_versions() {
        let a = json!({"pipeline": {"definition": definition("demo", "queued"), "version": 2, "applied_at": "2026-11-21T10:00:00Z", "applied_by": "arn:aws:iam::1:user/grace"},
            "history": [
                {"version": 2, "applied_at": "2026-11-21T10:00:00Z", "applied_by": "arn:aws:iam::1:user/grace", "changes": [{"path": "mode", "before": "superseded", "after": "queued"}]},
                {"version": 1, "applied_at": "2026-11-20T09:00:00Z", "changes": []}]});
        let text = pipeline_shown(&serde_json::from_value(a).unwrap());
        assert!(
            text.starts_with(
                "demo version 2, applied 2026-11-21 10:00:00 UTC by arn:aws:iam::1:user/grace"
            ),
            "{text}"
        );
        assert!(text.contains("version 2  2026-11-21 10:00:00 UTC  arn:aws:iam::1:user/grace\n  mode: \"superseded\" → \"queued\""), "{text}");
        assert!(
            text.contains("version 1  2026-11-20 09:00:00 UTC  (not recorded)\n  created"),
            "{text}"
        );
        let current = pipeline_shown(
            &serde_json::from_value(json!({"pipeline": {"definition": definition("demo", "queued"), "version": 2, "applied_at": "2026-11-21T10:00:00Z"}}))
                .unwrap(),
        );
        assert!(current.contains("\"mode\": \"queued\""), "{current}");
    }
}
