//! Messages for people: approval requests and status notices (plain text, readable in a mail
//! client). Pure text builders: the engine sends them. Never contains a secret; the approval link carries a signed, single-use token only.

use chrono::{DateTime, Utc};

use crate::domain::{Execution, ExecutionMode, PipelineDefinition, Status, Trigger};
use crate::ports::Notice;

/// SNS subjects: ASCII, no line breaks, under 100 characters.
pub fn subject(text: &str) -> String {
    let clean: String = text
        .chars()
        .map(|c| {
            if c.is_ascii() && !c.is_ascii_control() {
                c
            } else {
                ' '
            }
        })
        .collect();
    if clean.len() <= 99 {
        clean
    } else {
        format!("{}...", &clean[..96])
    }
}

/// Longest excerpt of one untrusted field (commit title, author, branch) in a notice.
pub const MAX_QUOTED_CHARS: usize = 200;

/// Characters that could make text look like something else: line and paragraph separators,
/// bidirectional embeddings, overrides and isolates, marks, zero-width and BOM characters.
fn is_deceptive(c: char) -> bool {
    c.is_control()
        || matches!(
            c,
            '\u{2028}' | '\u{2029}' // line / paragraph separator
                | '\u{202A}'..='\u{202E}' // LRE RLE PDF LRO RLO
                | '\u{2066}'..='\u{2069}' // LRI RLI FSI PDI
                | '\u{200E}' | '\u{200F}' | '\u{061C}' // LRM RLM ALM
                | '\u{200B}' | '\u{FEFF}' // zero width space, BOM
        )
}

/// Untrusted text (from a commit) as one inert line: control, separator and bidi characters
/// become spaces, URL schemes are defanged (`https://x` → `https[:]//x`, `www.` → `www[.]`) so
/// no mail client or script takes one for a link, and at most `max` characters remain.
pub fn quote_untrusted(text: &str, max: usize) -> String {
    let clean: String = text
        .chars()
        .map(|c| if is_deceptive(c) { ' ' } else { c })
        .collect();
    let defanged = clean.replace("://", "[:]//").replace("www.", "www[.]");
    let mut out: String = defanged.chars().take(max).collect();
    if out.len() < defanged.len() {
        out.push('…');
    }
    out
}

fn short_digest(digest: &str) -> &str {
    let end = digest.len().min(19);
    &digest[..end]
}

/// The approval request.
pub fn approval_request(
    pipeline: &PipelineDefinition,
    exec: &Execution,
    link: &str,
    expires_at: DateTime<Utc>,
) -> Notice {
    let c = &exec.commit;
    let digest = exec
        .image
        .as_ref()
        .map(|i| i.digest.as_str())
        .unwrap_or("-");
    let mut body = String::new();
    body.push_str(&format!(
        "{} is running in test and waits for your approval to go to production.\n\n",
        pipeline.name
    ));
    // the real link comes first, before anything a pusher wrote
    body.push_str("Review and approve or reject (the page asks you to confirm; opening it changes nothing):\n");
    body.push_str(&format!("{link}\n\n"));
    body.push_str(&format!("Pipeline:   {}\n", pipeline.name));
    body.push_str(&format!("Execution:  {}\n", exec.id));
    body.push_str(&format!("Commit:     {}\n", c.sha));
    // GitHub's compare link (from the signed push), only as a plain https URL
    if let Some(u) = c.url.as_deref().filter(|u| is_plain_https(u)) {
        body.push_str(&format!("Changes:    {u}\n"));
    }
    body.push_str(&format!("Image:      {digest}\n"));
    body.push_str(&format!(
        "Test:       {} (cluster {})\n",
        pipeline.test.service, pipeline.test.cluster
    ));
    body.push_str(&format!(
        "Production: {} (cluster {})\n",
        pipeline.prod.service, pipeline.prod.cluster
    ));
    // verified promotion: what the test service answered
    for (label, value) in super::verification::verified_lines(exec) {
        body.push_str(&format!("{:<12}{value}\n", format!("{label}:")));
    }
    body.push_str(&format!(
        "Expires:    {}\n\n",
        expires_at.format("%Y-%m-%d %H:%M UTC")
    ));
    body.push_str(&untrusted_commit_block(c));
    body.push_str("Or from a terminal with AWS credentials:\n");
    body.push_str(&format!("  shipgate approve {}\n", exec.id));
    body.push_str(&format!("  shipgate reject {}\n\n", exec.id));
    body.push_str(
        "Production will run exactly the image digest above, the one that ran in test.\n",
    );
    body.push_str(match pipeline.mode {
        ExecutionMode::Superseded => "A newer push that reaches test replaces this request.\n",
        ExecutionMode::Queued => {
            "Releases reach production in push order: if a newer execution is approved first, this request is withdrawn.\n"
        }
    });
    let subject = subject(&format!(
        "[shipgate] Approve {} {} to production: {}",
        pipeline.name,
        c.short_sha(),
        quote_untrusted(c.title(), MAX_QUOTED_CHARS)
    ));
    // the chat channel never gets the approval link: everyone in a channel could follow it
    let chat = chat(
        pipeline,
        exec,
        &format!(":hourglass: {} waits for approval", pipeline.name),
        &format!(
            "{} is running in test and waits for approval to go to production (expires {}).",
            pipeline.name,
            expires_at.format("%Y-%m-%d %H:%M UTC")
        ),
        vec![
            "Approvers: open the link in the approval e-mail".to_string(),
            format!(
                "`shipgate approve {}` or `shipgate reject {}`",
                exec.id, exec.id
            ),
        ],
        &subject,
    );
    Notice::for_everyone(subject, body, Some(chat))
}

/// The approval request for one approver of a pipeline that lists them: it holds only their
/// personal link (audience: their address, see [`crate::domain::audience`]). An approver who
/// pushed or wrote the change (and self-approval is off) is told they cannot approve it; their
/// link opens a page that can only reject.
pub fn personal_approval_request(
    pipeline: &PipelineDefinition,
    exec: &Execution,
    link: &str,
    expires_at: DateTime<Utc>,
    approver: &crate::domain::approval_policy::Approver,
) -> Notice {
    let mut notice = approval_request(pipeline, exec, link, expires_at);
    let own = !pipeline.approval.allow_self_approval
        && crate::domain::approval_policy::is_own_change(approver, exec);
    let policy = &pipeline.approval;
    let mut intro = format!(
        "For {}: this message holds your personal approval link. It acts as you (whoever opens it), so do not forward it. {} of {} approver{} must approve.\n\n",
        approver.email,
        policy.required,
        policy.approvers.len(),
        if policy.approvers.len() == 1 { "" } else { "s" }
    );
    if own {
        intro.push_str("You pushed or wrote this change, and the pipeline does not allow self-approval: you cannot approve it. Your link lets you review it and reject it.\n\n");
        notice.body = notice.body.replacen(
            "Review and approve or reject (the page asks you to confirm; opening it changes nothing):",
            "Review or reject (you cannot approve your own change; opening the page changes nothing):",
            1,
        );
    }
    // after the first paragraph (what waits), before the link
    match notice.body.find("\n\n") {
        Some(at) => notice.body.insert_str(at + 2, &intro),
        None => notice.body.insert_str(0, &intro),
    }
    notice.audience = crate::domain::audience::approver(&approver.email);
    notice
}

/// What the pusher wrote, quoted and labelled as such; never a link.
fn untrusted_commit_block(c: &crate::domain::Commit) -> String {
    let mut block = String::from(
        "From the commit (written by the pusher, not by shipgate; links in it are not shipgate's and are shown defanged):\n",
    );
    block.push_str(&format!(
        "  Branch:   \"{}\"\n",
        quote_untrusted(&c.reference, MAX_QUOTED_CHARS)
    ));
    if let Some(a) = &c.author {
        block.push_str(&format!(
            "  Author:   \"{}\"\n",
            quote_untrusted(a, MAX_QUOTED_CHARS)
        ));
    }
    if c.message.is_some() {
        block.push_str(&format!(
            "  Message:  \"{}\"\n",
            quote_untrusted(first_line(c), MAX_QUOTED_CHARS)
        ));
    }
    block.push('\n');
    block
}

/// The first line of the message, also cut at a lone CR or a Unicode line separator.
fn first_line(c: &crate::domain::Commit) -> &str {
    c.message
        .as_deref()
        .unwrap_or("")
        .split(['\n', '\r', '\u{2028}', '\u{2029}'])
        .next()
        .unwrap_or("")
}

/// The compare link GitHub put in the push: shown only as a plain https URL without spaces,
/// control or bidi characters, and never one that looks like an approval link.
fn is_plain_https(url: &str) -> bool {
    url.starts_with("https://")
        && !url.contains("/approvals/")
        && url.len() <= 2048
        && !url.chars().any(|c| c.is_whitespace() || is_deceptive(c))
}

/// The status page URL for a signed status token (`${public_url}/status/{token}`); the token
/// comes from [`super::status_page::status_page_link`], which also signs it. Reusable wherever a
/// link to "how this pipeline stands" is wanted (notices, GitHub `target_url`).
pub fn status_page_url(public_url: &str, token: &str) -> String {
    format!("{}/status/{token}", public_url.trim_end_matches('/'))
}

/// Add the pipeline's read-only status page link to a notice (before the pusher's text).
pub fn with_status_link(mut notice: Notice, url: &str) -> Notice {
    let line = format!("Status page (read-only, valid 14 days): {url}\n\n");
    match notice.body.find("From the commit (") {
        Some(at) => notice.body.insert_str(at, &line),
        None => notice.body.push_str(&line),
    }
    notice
}

/// The region of an ECR repository URI (`<account>.dkr.ecr.<region>.amazonaws.com/<name>`).
fn region_of(repository_uri: &str) -> Option<&str> {
    repository_uri.split('.').nth(3).filter(|r| !r.is_empty())
}

/// A notice about a status people should hear of (failures, expiry, rollback).
pub fn status_notice(pipeline: &PipelineDefinition, exec: &Execution) -> Notice {
    let c = &exec.commit;
    let mut body = String::new();
    let what = match exec.status {
        Status::BuildFailed => "The build failed.",
        Status::TestFailed => "The deployment to test failed.",
        Status::ProdFailed => "The deployment to production failed.",
        Status::Expired => "The approval expired without a decision; production was not changed.",
        Status::RolledBack => "This execution's revision was rolled back.",
        Status::Succeeded if exec.trigger.is_rollback() => {
            "The rollback completed: the environment runs this earlier release again."
        }
        Status::Succeeded => "Released: production runs this commit now.",
        _ => "The execution changed state.",
    };
    body.push_str(&format!("{what}\n\n"));
    body.push_str(&format!("Pipeline:   {}\n", pipeline.name));
    body.push_str(&format!("Execution:  {}\n", exec.id));
    body.push_str(&format!("Status:     {}\n", exec.status));
    body.push_str(&format!("Commit:     {}\n", c.sha));
    if let Some(i) = &exec.image {
        body.push_str(&format!("Image:      {}\n", short_digest(&i.digest)));
    }
    if let Some(f) = &exec.failure {
        body.push_str(&format!("Stage:      {}\n", f.stage));
        body.push_str(&format!("Cause:      {}\n", f.reason));
        if let Some(l) = &f.link {
            body.push_str(&format!("Logs:       {l}\n"));
        }
    }
    if let Some(d) = exec.prod.as_ref().or(exec.test.as_ref()) {
        body.push_str(&format!(
            "Service:    {} (cluster {}), deployment {}\n",
            d.service, d.cluster, d.deployment_id
        ));
        if let Some(region) = region_of(&pipeline.image.repository) {
            body.push_str(&format!(
                "Console:    https://{region}.console.aws.amazon.com/ecs/v2/clusters/{}/services/{}/deployments?region={region}\n",
                d.cluster, d.service
            ));
        }
    }
    body.push('\n');
    match exec.status {
        Status::ProdFailed if exec.trigger.is_rollback() => {
            if let Trigger::Rollback { restores, .. } = &exec.trigger {
                body.push_str(&format!(
                    "Try again:  shipgate rollback {} --env prod --to {restores}\n",
                    pipeline.name
                ));
            }
            body.push_str(&format!(
                "Go further back: shipgate rollback {} --env prod\n",
                pipeline.name
            ));
        }
        Status::BuildFailed | Status::TestFailed | Status::ProdFailed => {
            body.push_str(&format!("Retry:      shipgate retry {}\n", exec.id));
            if exec.status == Status::ProdFailed {
                body.push_str(&format!(
                    "Roll back:  shipgate rollback {} --env prod   (redeploys the last release that succeeded in production)\n",
                    pipeline.name
                ));
            }
        }
        Status::Expired => {
            body.push_str(&format!(
                "Release again: shipgate release {} --commit {}\n",
                pipeline.name, c.sha
            ));
        }
        _ => {}
    }
    body.push_str(&format!("History:    shipgate show {}\n\n", exec.id));
    body.push_str(&untrusted_commit_block(c));
    let subject = subject(&format!(
        "[shipgate] {} {}: {} {}",
        pipeline.name,
        exec.status,
        c.short_sha(),
        quote_untrusted(c.title(), MAX_QUOTED_CHARS)
    ));
    let icon = match exec.status {
        Status::Succeeded => ":white_check_mark:",
        s if s.is_failure() => ":x:",
        _ => ":information_source:",
    };
    let mut steps = Vec::new();
    if let Some(link) = exec.failure.as_ref().and_then(|f| f.link.as_deref()) {
        steps.push(format!("Logs: {link}"));
    }
    for line in body.lines() {
        for (label, key) in [
            ("Retry:", "Retry"),
            ("Roll back:", "Roll back"),
            ("Try again:", "Try again"),
            ("Release again:", "Release again"),
        ] {
            if let Some(cmd) = line.strip_prefix(label) {
                let cmd = cmd.trim();
                let cmd = cmd.split("   ").next().unwrap_or(cmd);
                steps.push(format!("{key}: `{cmd}`"));
            }
        }
    }
    steps.push(format!("History: `shipgate show {}`", exec.id));
    let chat = chat(
        pipeline,
        exec,
        &format!("{icon} {} {}", pipeline.name, exec.status),
        what,
        steps,
        &subject,
    );
    Notice::for_everyone(subject, body, Some(chat))
}

/// Longest chat title and description shipgate sends (chat clients show a few lines).
pub const MAX_CHAT_TITLE_CHARS: usize = 250;
pub const MAX_CHAT_DESCRIPTION_CHARS: usize = 4000;

/// Untrusted text for client-markdown: inert (see [`quote_untrusted`]) and with markdown and
/// mention characters escaped, so a commit message cannot format, link or mention anything.
pub fn markdown_inert(text: &str, max: usize) -> String {
    let mut out = String::new();
    for c in quote_untrusted(text, max).chars() {
        if "\\`*_~[]()<>#|!@&:".contains(c) {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

fn cut(text: &str, max: usize) -> String {
    if text.chars().count() <= max {
        return text.to_string();
    }
    let mut t: String = text.chars().take(max - 1).collect();
    t.push('…');
    t
}

/// The Amazon Q Developer in chat applications custom notification of a notice (schema version
/// 1.0, `source` custom, client-markdown): one thread per execution (`metadata.threadId`), so
/// a release's notices stay together in the channel.
pub fn chat(
    pipeline: &PipelineDefinition,
    exec: &Execution,
    title: &str,
    what: &str,
    next_steps: Vec<String>,
    summary: &str,
) -> String {
    let c = &exec.commit;
    let mut description = format!(
        "{what}\n*Pipeline:* {}  *Execution:* `{}`\n*Commit:* `{}` {}",
        pipeline.name,
        exec.id,
        c.short_sha(),
        markdown_inert(c.title(), MAX_QUOTED_CHARS)
    );
    if let Some(a) = &c.author {
        description.push_str(&format!(" (by {})", markdown_inert(a, MAX_QUOTED_CHARS)));
    }
    if let Some(f) = &exec.failure {
        description.push_str(&format!(
            "\n*Stage:* {}  *Cause:* {}",
            f.stage,
            markdown_inert(&f.reason, 500)
        ));
    }
    serde_json::json!({
        "version": "1.0",
        "source": "custom",
        "id": format!("{}-{}", exec.id, exec.version),
        "content": {
            "textType": "client-markdown",
            "title": cut(title, MAX_CHAT_TITLE_CHARS),
            "description": cut(&description, MAX_CHAT_DESCRIPTION_CHARS),
            "nextSteps": next_steps.into_iter().take(5).map(|s| cut(&s, 500)).collect::<Vec<_>>(),
            "keywords": [pipeline.name.clone(), exec.status.as_str()],
        },
        "metadata": {
            "threadId": format!("shipgate-{}", exec.id),
            "summary": cut(summary, MAX_CHAT_TITLE_CHARS),
            "eventType": exec.status.as_str(),
            "additionalContext": {
                "pipeline": pipeline.name,
                "execution_id": exec.id.as_str(),
                "commit": c.sha,
                "status": exec.status.as_str(),
            },
        },
    })
    .to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn region_from_repository() {
        assert_eq!(
            region_of("123456789012.dkr.ecr.eu-west-1.amazonaws.com/hello"),
            Some("eu-west-1")
        );
        assert_eq!(region_of("hello"), None);
    }

    #[test]
    fn failure_notice_names_cause_links_and_commands() {
        let w = crate::fake_world::FakeWorld::pipeline();
        let mut e = crate::domain::Execution::received(
            crate::domain::ExecutionId::generate(chrono::Utc::now()),
            "hello",
            crate::domain::Commit {
                sha: "9f2c7a1e4b6d8f0a2c4e6b8d0f1a3c5e7b9d1f3a".into(),
                reference: "main".into(),
                message: Some("Fix it".into()),
                ..Default::default()
            },
            crate::domain::Trigger::Release {
                actor: "ops".into(),
            },
            chrono::Utc::now(),
            "ops",
        );
        e.status = Status::ProdFailed;
        e.failure = Some(crate::domain::Failure {
            stage: crate::domain::Stage::Prod,
            reason: "circuit breaker".into(),
            link: Some("https://logs".into()),
        });
        e.prod = Some(crate::domain::DeploymentRecord {
            environment: crate::domain::Environment::Prod,
            cluster: "apps".into(),
            service: "hello-prod".into(),
            task_definition: "td:3".into(),
            previous_task_definition: None,
            deployment_id: "ecs-svc/1".into(),
            verify: false,
            started_at: chrono::Utc::now(),
        });
        let n = status_notice(&w, &e);
        assert!(n
            .subject
            .starts_with("[shipgate] hello PROD_FAILED: 9f2c7a1e4b6d Fix it"));
        for needle in [
            "Cause:      circuit breaker",
            "Logs:       https://logs",
            "clusters/apps/services/hello-prod",
            "shipgate retry",
            "shipgate rollback hello --env prod",
        ] {
            assert!(n.body.contains(needle), "{needle} in {}", n.body);
        }
    }

    #[test]
    fn status_links_come_before_the_pushers_text() {
        assert_eq!(
            status_page_url("https://x.example/", "t.k"),
            "https://x.example/status/t.k"
        );
        let n = with_status_link(
            Notice::for_everyone(
                "s".into(),
                "What\n\nFrom the commit (written by the pusher…):\n  x\n".into(),
                None,
            ),
            "https://x.example/status/t.k",
        );
        assert_eq!(
            n.body,
            "What\n\nStatus page (read-only, valid 14 days): https://x.example/status/t.k\n\nFrom the commit (written by the pusher…):\n  x\n"
        );
    }

    #[test]
    fn untrusted_text_is_inert() {
        let q = quote_untrusted(
            "ok\r\nsee https://x.example/approvals/a \u{202E}gnp.exe\u{202C}\u{2028}\u{200F}www.y.example",
            MAX_QUOTED_CHARS,
        );
        assert_eq!(
            q,
            "ok  see https[:]//x.example/approvals/a  gnp.exe   www[.]y.example"
        );
        assert!(!q.contains("://"));
        let long = quote_untrusted(&"é".repeat(1000), 10);
        assert_eq!(long, format!("{}…", "é".repeat(10)));
    }

    #[test]
    fn notices_carry_the_chat_notification_in_one_thread_per_execution() {
        let w = crate::fake_world::FakeWorld::pipeline();
        let mut e = crate::domain::Execution::received(
            crate::domain::ExecutionId::generate(chrono::Utc::now()),
            "hello",
            crate::domain::Commit {
                sha: "9f2c7a1e4b6d8f0a2c4e6b8d0f1a3c5e7b9d1f3a".into(),
                reference: "main".into(),
                message: Some("Fix *it* <!channel> [x](https://evil.example) @here".into()),
                author: Some("Ada".into()),
                ..Default::default()
            },
            crate::domain::Trigger::Release {
                actor: "ops".into(),
            },
            chrono::Utc::now(),
            "ops",
        );
        e.status = Status::Succeeded;
        let n = status_notice(&w, &e);
        assert!(n
            .body
            .contains("Released: production runs this commit now."));
        let chat: serde_json::Value = serde_json::from_str(n.chat.as_deref().unwrap()).unwrap();
        assert_eq!(chat["version"], "1.0");
        assert_eq!(chat["source"], "custom");
        assert_eq!(chat["content"]["textType"], "client-markdown");
        assert_eq!(chat["metadata"]["threadId"], format!("shipgate-{}", e.id));
        assert!(chat["content"]["title"]
            .as_str()
            .unwrap()
            .contains("hello SUCCEEDED"));
        let d = chat["content"]["description"].as_str().unwrap();
        assert!(
            d.contains("\\*it\\*") && d.contains("\\<\\!channel\\>") && d.contains("\\@here"),
            "{d}"
        );
        assert!(!d.contains("https://"), "{d}");
        // the approval request in chat names the commands, never the signed link
        e.status = Status::AwaitingApproval;
        let link = "https://shipgate.example.com/approvals/SIGNED";
        let a = approval_request(&w, &e, link, chrono::Utc::now());
        assert!(a.body.contains(link));
        let chat = a.chat.unwrap();
        assert!(!chat.contains("/approvals/"), "{chat}");
        assert!(chat.contains(&format!("shipgate approve {}", e.id)));
        let v: serde_json::Value = serde_json::from_str(&chat).unwrap();
        assert_eq!(v["metadata"]["threadId"], format!("shipgate-{}", e.id));
    }

    #[test]
    fn subjects_are_sns_safe() {
        assert_eq!(subject("a\nb\u{e9}c"), "a b c");
        let long = subject(&"x".repeat(300));
        assert_eq!(long.len(), 99);
        assert!(long.ends_with("..."));
    }
}
