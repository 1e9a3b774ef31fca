//! `shipgate dev push`: a correctly signed GitHub push for the demo repository, with a fresh
//! commit SHA, sent to a running sandbox.

use std::process::ExitCode;

use clap::Args;
use serde_json::{json, Value};
use shared::domain::github::sign_body;
use shared::local::DEV_WEBHOOK_SECRET;

#[derive(Args, Debug)]
pub struct PushArgs {
    /// Commit message (`[fail-build]` or `[fail-deploy]` makes the sandbox fail that stage).
    #[arg(long, short, default_value = "Update the demo service")]
    message: String,
    /// Branch pushed to.
    #[arg(long, short, default_value = "main")]
    branch: String,
    /// The sandbox's base URL.
    #[arg(
        long,
        env = "SHIPGATE_DEV_URL",
        default_value = "http://127.0.0.1:9000"
    )]
    url: String,
    /// The sandbox's webhook secret.
    #[arg(long, env = "SHIPGATE_DEV_WEBHOOK_SECRET", default_value = DEV_WEBHOOK_SECRET, hide_default_value = true)]
    secret: String,
    /// Print the raw JSON answer.
    #[arg(long)]
    json: bool,
}

fn random_sha() -> String {
    let u1 = ulid::Ulid::new().0;
    let u2 = ulid::Ulid::new().0;
    format!("{:032x}{:08x}", u1 ^ (u2 << 7), (u2 as u32))
}

/// The push payload GitHub would send.
pub fn payload(sha: &str, branch: &str, message: &str) -> Value {
    let before = "1e3c5a7b9d2f4e6a8c0b1d3f5a7c9e2b4d6f8a0c";
    let commit = json!({
        "id": sha,
        "tree_id": "4b825dc642cb6eb9a060e54bf8d69288fbee4904",
        "distinct": true,
        "message": message,
        "timestamp": chrono::Utc::now().to_rfc3339(),
        "url": format!("https://github.com/shipgate-demo/hello/commit/{sha}"),
        "author": {"name": "Dev Sandbox", "email": "dev@example.com", "username": "dev"},
        "committer": {"name": "Dev Sandbox", "email": "dev@example.com", "username": "dev"},
        "added": [], "removed": [], "modified": ["src/main.py"]
    });
    json!({
        "ref": format!("refs/heads/{branch}"),
        "before": before,
        "after": sha,
        "created": false, "deleted": false, "forced": false,
        "compare": format!("https://github.com/shipgate-demo/hello/compare/{}...{}", &before[..12], &sha[..12]),
        "repository": {"name": "hello", "full_name": "shipgate-demo/hello", "html_url": "https://github.com/shipgate-demo/hello"},
        "pusher": {"name": "dev", "email": "dev@example.com"},
        "sender": {"login": "dev"},
        "commits": [commit.clone()],
        "head_commit": commit,
    })
}

pub async fn run(args: PushArgs) -> ExitCode {
    let sha = random_sha();
    let body = payload(&sha, &args.branch, &args.message).to_string();
    let signature = sign_body(args.secret.as_bytes(), body.as_bytes());
    let url = format!("{}/webhooks/github", args.url.trim_end_matches('/'));
    let delivery = ulid::Ulid::new().to_string();
    let result = reqwest::Client::new()
        .post(&url)
        .header("content-type", "application/json")
        .header("user-agent", "GitHub-Hookshot/shipgate-dev")
        .header("x-github-event", "push")
        .header("x-github-delivery", &delivery)
        .header("x-github-hook-id", "1")
        .header("x-hub-signature-256", signature)
        .body(body)
        .send()
        .await;
    let resp = match result {
        Ok(r) => r,
        Err(e) => {
            eprintln!("error: cannot reach the sandbox at {url}: {e}\n  (is `shipgate dev` running? start it with `make dev`)");
            return ExitCode::from(3);
        }
    };
    let status = resp.status();
    let answer: Value = resp.json().await.unwrap_or(Value::Null);
    if args.json {
        println!(
            "{}",
            serde_json::to_string_pretty(&answer).unwrap_or_default()
        );
    }
    if status.as_u16() == 202 && answer["execution_id"].is_string() {
        if !args.json {
            println!(
                "pushed {} to {} ({})",
                &sha[..12],
                args.branch,
                args.message
            );
            println!(
                "execution {}",
                answer["execution_id"].as_str().unwrap_or("")
            );
        }
        ExitCode::SUCCESS
    } else {
        if !args.json {
            eprintln!("error: the sandbox answered {status}: {answer}");
        }
        ExitCode::from(1)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn payload_decodes_as_a_push() {
        let sha = random_sha();
        assert_eq!(sha.len(), 40);
        assert!(sha.chars().all(|c| c.is_ascii_hexdigit()));
        let p = payload(&sha, "main", "hi [fail-deploy]");
        let push = shared::domain::github::decode_push(p.to_string().as_bytes()).unwrap();
        assert_eq!(push.after, sha);
        assert_eq!(push.repository, "shipgate-demo/hello");
        assert_eq!(push.head_commit.unwrap().message, "hi [fail-deploy]");
    }
}
