//! Human output: tables and timelines (`--json` prints the raw answer instead).

use serde_json::Value;

#[derive(Debug, Clone, Copy)]
pub enum Render {
    Applied,
    Pipelines,
    PipelineShown,
    Status,
    /// `status --history`: every kept revision per environment.
    StatusHistory,
    Executions,
    Execution,
}

fn s(v: &Value) -> &str {
    v.as_str().unwrap_or("")
}

fn short(text: &str, n: usize) -> String {
    let t: String = text.chars().take(n).collect();
    if text.chars().count() > n {
        format!("{t}…")
    } else {
        t
    }
}

/// RFC 3339 → `2026-11-21 10:00:01`.
fn when(v: &Value) -> String {
    let t = s(v);
    if t.len() >= 19 {
        t[..19].replace('T', " ")
    } else {
        t.to_string()
    }
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

pub fn print_error(err: &Value) {
    eprintln!("error ({}): {}", s(&err["code"]), s(&err["message"]));
    if let Some(details) = err["details"].as_array() {
        for d in details {
            eprintln!("  {}: {}", s(&d["path"]), s(&d["message"]));
        }
    }
}

/// Print a line on stdout. A reader that closed the pipe (`shipgate status | head`) is not an
/// error worth a panic: what it did not read is dropped.
pub fn say(text: &str) {
    use std::io::Write;
    let mut out = std::io::stdout().lock();
    let _ = writeln!(out, "{text}").and_then(|()| out.flush());
}

pub fn render(kind: Render, answer: &Value) {
    let text = match kind {
        Render::Applied => applied(answer),
        Render::Pipelines => pipelines(answer),
        Render::PipelineShown => pipeline_shown(answer),
        Render::Status => status(answer),
        Render::StatusHistory => status_history(answer),
        Render::Executions => executions(answer),
        Render::Execution => execution(answer.get("execution").unwrap_or(answer)),
    };
    say(&text);
}

fn applied(a: &Value) -> String {
    let mut out = format!(
        "pipeline {}: {} (version {})",
        s(&a["pipeline"]),
        s(&a["result"]),
        a["version"]
    );
    for c in a["changes"].as_array().into_iter().flatten() {
        out.push_str(&format!(
            "\n  {}: {} → {}",
            s(&c["path"]),
            c.get("before")
                .map(|v| v.to_string())
                .unwrap_or_else(|| "(none)".into()),
            c.get("after")
                .map(|v| v.to_string())
                .unwrap_or_else(|| "(none)".into())
        ));
    }
    out
}

/// `{before} → {after}` of one field change.
fn change_line(c: &Value) -> String {
    let side = |k: &str| {
        c.get(k)
            .map(|v| v.to_string())
            .unwrap_or_else(|| "(none)".into())
    };
    format!("{}: {} → {}", s(&c["path"]), side("before"), side("after"))
}

fn pipeline_shown(a: &Value) -> String {
    let p = &a["pipeline"];
    let by = |v: &Value| match v.as_str() {
        Some(actor) => actor.to_string(),
        None => "(not recorded)".to_string(),
    };
    let mut out = format!(
        "{} version {}, applied {} by {}",
        s(&p["definition"]["name"]),
        p["version"],
        when(&p["applied_at"]),
        by(&p["applied_by"])
    );
    match a["history"].as_array() {
        None => {
            let text = serde_json::to_string_pretty(&p["definition"]).unwrap_or_default();
            out.push('\n');
            out.push_str(&text);
        }
        Some(versions) => {
            for v in versions {
                out.push_str(&format!(
                    "\n\nversion {}  {}  {}",
                    v["version"],
                    when(&v["applied_at"]),
                    by(&v["applied_by"])
                ));
                let changes = v["changes"].as_array().cloned().unwrap_or_default();
                if changes.is_empty() {
                    out.push_str(if v["version"] == 1 {
                        "\n  created"
                    } else {
                        "\n  (the version before it is not kept)"
                    });
                }
                for c in &changes {
                    out.push_str(&format!("\n  {}", change_line(c)));
                }
            }
        }
    }
    out
}

fn pipelines(a: &Value) -> String {
    let rows: Vec<Vec<String>> = a["pipelines"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|p| {
            let d = &p["definition"];
            vec![
                s(&p["name"]).to_string(),
                s(&p["source"]).to_string(),
                d["branches"]
                    .as_array()
                    .map(|b| {
                        b.iter()
                            .map(|x| s(x).to_string())
                            .collect::<Vec<_>>()
                            .join(",")
                    })
                    .unwrap_or_default(),
                format!("{}/{}", s(&d["prod"]["cluster"]), s(&d["prod"]["service"])),
                p["version"].to_string(),
                when(&p["updated_at"]),
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

fn revision_row(env: &str, r: &Value) -> Vec<String> {
    let cur = &r["current"];
    if cur.is_null() {
        return vec![
            env.into(),
            "-".into(),
            "-".into(),
            "-".into(),
            "-".into(),
            "nothing deployed by shipgate yet".into(),
        ];
    }
    let mut row = history_row(cur);
    row.insert(0, env.into());
    row
}

/// One kept revision: when, how, commit, digest, execution (and what a rollback restored).
fn history_row(r: &Value) -> Vec<String> {
    let execution = match r["restores"].as_str() {
        Some(restored) => format!("{} (restores {restored})", s(&r["execution_id"])),
        None => s(&r["execution_id"]).to_string(),
    };
    vec![
        short(s(&r["commit"]["sha"]), 12),
        short(s(&r["image"]["digest"]), 19),
        when(&r["deployed_at"]),
        r["how"].as_str().unwrap_or("push").to_string(),
        execution,
    ]
}

/// Every kept revision of each environment, newest first.
fn status_history(a: &Value) -> String {
    let mut out = Vec::new();
    for p in a["pipelines"].as_array().into_iter().flatten() {
        for env in ["prod", "test"] {
            out.push(format!("{} {env}:", s(&p["pipeline"])));
            let rows: Vec<Vec<String>> = p[env]["history"]
                .as_array()
                .into_iter()
                .flatten()
                .map(history_row)
                .collect();
            if rows.is_empty() {
                out.push("  nothing deployed by shipgate yet".into());
            }
            for line in table(&["COMMIT", "DIGEST", "SINCE", "HOW", "EXECUTION"], &rows).lines() {
                out.push(format!("  {line}"));
            }
            if let Some(claim) = p[env]["rollback"].as_object() {
                out.push(format!(
                    "  rollback under way: {}",
                    claim.get("execution_id").map(s).unwrap_or("?")
                ));
            }
        }
        out.push(String::new());
    }
    out.join("\n").trim_end().to_string()
}

fn status(a: &Value) -> String {
    let mut out = Vec::new();
    for p in a["pipelines"].as_array().into_iter().flatten() {
        out.push(format!("{} ({})", s(&p["pipeline"]), s(&p["source"])));
        let rows = vec![
            revision_row("test", &p["test"]),
            revision_row("prod", &p["prod"]),
        ];
        for line in table(
            &["ENV", "COMMIT", "DIGEST", "SINCE", "HOW", "EXECUTION"],
            &rows,
        )
        .lines()
        {
            out.push(format!("  {line}"));
        }
        let flight = p["in_flight"].as_array().cloned().unwrap_or_default();
        if flight.is_empty() {
            out.push("  in flight: none".into());
        } else {
            out.push("  in flight:".into());
            for line in executions_table(&flight).lines() {
                out.push(format!("    {line}"));
            }
        }
        if let Some(latest) = p.get("latest").filter(|l| !l.is_null()) {
            out.push(format!(
                "  latest: {} {} ({})",
                s(&latest["id"]),
                s(&latest["status"]),
                short(s(&latest["commit"]["sha"]), 12)
            ));
        }
        out.push(String::new());
    }
    if out.is_empty() {
        return "no pipelines".into();
    }
    out.join("\n").trim_end().to_string()
}

fn executions_table(list: &[Value]) -> String {
    let rows: Vec<Vec<String>> = list
        .iter()
        .map(|e| {
            let title = s(&e["commit"]["message"])
                .lines()
                .next()
                .unwrap_or("")
                .to_string();
            vec![
                s(&e["id"]).to_string(),
                s(&e["status"]).to_string(),
                short(s(&e["commit"]["sha"]), 12),
                s(&e["commit"]["reference"]).to_string(),
                when(&e["created_at"]),
                short(&title, 50),
            ]
        })
        .collect();
    table(
        &["ID", "STATUS", "COMMIT", "BRANCH", "CREATED", "MESSAGE"],
        &rows,
    )
}

fn executions(a: &Value) -> String {
    let list = a["executions"].as_array().cloned().unwrap_or_default();
    if list.is_empty() {
        return "no executions".into();
    }
    executions_table(&list)
}

pub fn execution(e: &Value) -> String {
    let mut out = Vec::new();
    out.push(format!("execution  {}", s(&e["id"])));
    out.push(format!("pipeline   {}", s(&e["pipeline"])));
    out.push(format!("status     {}", s(&e["status"])));
    let c = &e["commit"];
    out.push(format!(
        "commit     {} ({})",
        if s(&c["sha"]).is_empty() {
            "(branch head)"
        } else {
            s(&c["sha"])
        },
        s(&c["reference"])
    ));
    if let Some(m) = c["message"].as_str() {
        out.push(format!("message    {}", m.lines().next().unwrap_or("")));
    }
    if let Some(a) = c["author"].as_str() {
        out.push(format!("author     {a}"));
    }
    if let Some(d) = e["image"]["digest"].as_str() {
        out.push(format!(
            "image      {}@{}",
            s(&e["image"]["repository_uri"]),
            d
        ));
    }
    if let Some(f) = e.get("failure").filter(|f| !f.is_null()) {
        out.push(format!(
            "failure    {}: {}",
            s(&f["stage"]),
            s(&f["reason"])
        ));
    }
    if let Some(a) = e.get("approval").filter(|a| !a.is_null()) {
        match a.get("decision").filter(|d| !d.is_null()) {
            Some(d) => out.push(format!(
                "decision   {} by {} via {} at {}",
                s(&d["verdict"]),
                s(&d["actor"]),
                s(&d["channel"]),
                when(&d["at"])
            )),
            None => out.push(format!(
                "approval   waiting until {}",
                when(&a["expires_at"])
            )),
        }
    }
    out.push(String::new());
    out.push("timeline".into());
    let rows: Vec<Vec<String>> = e["history"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|h| {
            let from = h["from"]
                .as_str()
                .map(|f| format!("{f} → "))
                .unwrap_or_default();
            vec![
                when(&h["at"]),
                format!("{from}{}", s(&h["to"])),
                s(&h["actor"]).to_string(),
                s(&h["cause"]).to_string(),
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

    #[test]
    fn execution_timeline() {
        let e = json!({"id": "01J", "pipeline": "demo", "status": "BUILDING", "commit": {"sha": "9f2c7a1e4b6d8f0a", "reference": "main", "message": "Add x\nmore"},
            "history": [{"at": "2026-11-21T10:00:00.123Z", "from": null, "to": "RECEIVED", "actor": "github:ada", "cause": "GitHub push"},
                        {"at": "2026-11-21T10:00:01Z", "from": "RECEIVED", "to": "BUILDING", "actor": "shipgate", "cause": "build b started"}]});
        let text = execution(&e);
        assert!(text.contains("RECEIVED → BUILDING"));
        assert!(text.contains("2026-11-21 10:00:00"));
        assert!(text.contains("message    Add x"));
    }

    #[test]
    fn pipeline_versions() {
        let a = json!({"pipeline": {"definition": {"name": "demo"}, "version": 2, "applied_at": "2026-11-21T10:00:00Z", "applied_by": "arn:aws:iam::1:user/grace"},
            "history": [
                {"version": 2, "applied_at": "2026-11-21T10:00:00Z", "applied_by": "arn:aws:iam::1:user/grace", "changes": [{"path": "mode", "before": "superseded", "after": "queued"}]},
                {"version": 1, "applied_at": "2026-11-20T09:00:00Z", "changes": []}]});
        let text = pipeline_shown(&a);
        assert!(
            text.starts_with(
                "demo version 2, applied 2026-11-21 10:00:00 by arn:aws:iam::1:user/grace"
            ),
            "{text}"
        );
        assert!(text.contains("version 2  2026-11-21 10:00:00  arn:aws:iam::1:user/grace\n  mode: \"superseded\" → \"queued\""), "{text}");
        assert!(
            text.contains("version 1  2026-11-20 09:00:00  (not recorded)\n  created"),
            "{text}"
        );
        let current = pipeline_shown(
            &json!({"pipeline": {"definition": {"name": "demo", "mode": "queued"}, "version": 2}}),
        );
        assert!(current.contains("\"mode\": \"queued\""), "{current}");
    }
}
