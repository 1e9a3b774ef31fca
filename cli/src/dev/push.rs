//! `shipgate dev push`: a push with a fresh commit SHA, sent to a running sandbox: a correctly
//! signed GitHub webhook for the demo repository (or `--repo`), or, for a pipeline whose source
//! is CodeCommit (`--pipeline`), the CodeCommit event EventBridge would deliver.

use std::process::ExitCode;

use clap::Args;
use serde_json::{json, Value};
use shared::domain::github::sign_body;
use shared::protocol::{Answer, ControlRequest, ControlResponse, PipelineFilter, PipelineList};
use shipgate_sandbox::DEV_WEBHOOK_SECRET;

#[derive(Args, Debug)]
pub struct PushArgs {
    /// Commit message (`[fail-build]`, `[fail-deploy]` or `[fail-prod]` makes the sandbox fail
    /// the build, the test or the production deployment; `[smoke-fail]` the test smoke test,
    /// `[prod-smoke-fail]` the production one; `[bad-health]` the test service's version;
    /// `[alarm]` the bake).
    #[arg(long, short, default_value = "Update the demo service")]
    message: String,
    /// GitHub repository (`owner/name`) the push is for.
    #[arg(long, default_value = DEMO_REPO, conflicts_with = "pipeline")]
    repo: String,
    /// Push to this pipeline's source repository (GitHub or CodeCommit), as the sandbox's
    /// control function describes it.
    #[arg(long)]
    pipeline: Option<String>,
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

const DEMO_REPO: &str = "shipgate-demo/hello";

/// Where a push goes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Target {
    Github(String),
    Codecommit(String),
}

/// `github:owner/name` / `codecommit:name` (what `list_pipelines` answers as `source`).
pub fn parse_source(source: &str) -> Option<Target> {
    match source.split_once(':')? {
        ("github", repo)
            if repo
                .split_once('/')
                .is_some_and(|(o, n)| !o.is_empty() && !n.is_empty()) =>
        {
            Some(Target::Github(repo.to_string()))
        }
        ("codecommit", repo) if !repo.is_empty() => Some(Target::Codecommit(repo.to_string())),
        _ => None,
    }
}

fn valid_repo(repo: &str) -> bool {
    let ok = |s: &str| {
        !s.is_empty()
            && s.chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
    };
    repo.split_once('/').is_some_and(|(o, n)| ok(o) && ok(n))
}

fn random_sha() -> String {
    let u1 = ulid::Ulid::new().0;
    let u2 = ulid::Ulid::new().0;
    format!("{:032x}{:08x}", u1 ^ (u2 << 7), (u2 as u32))
}

/// The push payload GitHub would send.
pub fn payload(repo: &str, sha: &str, branch: &str, message: &str) -> Value {
    let name = repo.rsplit('/').next().unwrap_or(repo);
    let before = "1e3c5a7b9d2f4e6a8c0b1d3f5a7c9e2b4d6f8a0c";
    let commit = json!({
        "id": sha,
        "tree_id": "4b825dc642cb6eb9a060e54bf8d69288fbee4904",
        "distinct": true,
        "message": message,
        "timestamp": chrono::Utc::now().to_rfc3339(),
        "url": format!("https://github.com/{repo}/commit/{sha}"),
        "author": {"name": "Dev Sandbox", "email": "dev@example.com", "username": "dev"},
        "committer": {"name": "Dev Sandbox", "email": "dev@example.com", "username": "dev"},
        "added": [], "removed": [], "modified": ["src/main.py"]
    });
    json!({
        "ref": format!("refs/heads/{branch}"),
        "before": before,
        "after": sha,
        "created": false, "deleted": false, "forced": false,
        "compare": format!("https://github.com/{repo}/compare/{}...{}", &before[..12], &sha[..12]),
        "repository": {"name": name, "full_name": repo, "html_url": format!("https://github.com/{repo}")},
        "pusher": {"name": "dev", "email": "dev@example.com"},
        "sender": {"login": "dev"},
        "commits": [commit.clone()],
        "head_commit": commit,
    })
}

/// The CodeCommit "Repository State Change" EventBridge would deliver for a branch update.
pub fn codecommit_event(repo: &str, sha: &str, branch: &str, message: &str) -> Value {
    use shipgate_sandbox::{ACCOUNT, REGION};
    json!({
        "version": "0",
        "id": ulid::Ulid::new().to_string(),
        "detail-type": "CodeCommit Repository State Change",
        "source": "aws.codecommit",
        "account": ACCOUNT,
        "time": chrono::Utc::now().to_rfc3339(),
        "region": REGION,
        "resources": [format!("arn:aws:codecommit:{REGION}:{ACCOUNT}:{repo}")],
        "detail": {
            "callerUserArn": format!("arn:aws:iam::{ACCOUNT}:user/dev"),
            "event": "referenceUpdated",
            "referenceFullName": format!("refs/heads/{branch}"),
            "referenceName": branch,
            "referenceType": "branch",
            "repositoryName": repo,
            "commitId": sha,
            "commitMessage": message,
        }
    })
}

fn unreachable_sandbox(url: &str, e: &reqwest::Error) -> ExitCode {
    eprintln!("error: cannot reach the sandbox at {url}: {e}\n  (is `shipgate dev` running? start it with `make dev`)");
    ExitCode::from(3)
}

/// The source of `pipeline`, from the sandbox's control function.
async fn pipeline_target(
    client: &reqwest::Client,
    base: &str,
    pipeline: &str,
) -> Result<Target, ExitCode> {
    let url = format!("{base}/2015-03-31/functions/shipgate-control/invocations");
    let request = ControlRequest::ListPipelines(PipelineFilter::default());
    let resp = client
        .post(&url)
        .json(&request)
        .send()
        .await
        .map_err(|e| unreachable_sandbox(&url, &e))?;
    let answer: Value = resp.json().await.unwrap_or(Value::Null);
    let list = match Answer::decode(&request, answer.clone()) {
        Ok(Answer::Done(listed)) => match *listed {
            ControlResponse::Pipelines(PipelineList { pipelines, .. }) => pipelines,
            _ => unreachable!("list_pipelines answers a pipeline list"),
        },
        _ => {
            eprintln!("error: the sandbox did not list its pipelines: {answer}");
            return Err(ExitCode::from(1));
        }
    };
    let Some(found) = list.iter().find(|p| p.name == pipeline) else {
        let names: Vec<&str> = list.iter().map(|p| p.name.as_str()).collect();
        eprintln!(
            "error: the sandbox has no pipeline {pipeline:?} (it has: {}); apply one with `shipgate pipeline apply FILE`",
            names.join(", ")
        );
        return Err(ExitCode::from(1));
    };
    let source = found.source.as_str();
    parse_source(source).ok_or_else(|| {
        eprintln!(
            "error: pipeline {pipeline} has a source shipgate dev push cannot send to: {source:?}"
        );
        ExitCode::from(1)
    })
}

pub async fn run(args: PushArgs) -> ExitCode {
    let client = reqwest::Client::new();
    let base = args.url.trim_end_matches('/').to_string();
    let target = match &args.pipeline {
        Some(p) => match pipeline_target(&client, &base, p).await {
            Ok(t) => t,
            Err(code) => return code,
        },
        None if valid_repo(&args.repo) => Target::Github(args.repo.clone()),
        None => {
            eprintln!(
                "error: --repo must be a GitHub repository `owner/name`, not {:?}",
                args.repo
            );
            return ExitCode::from(2);
        }
    };
    let sha = random_sha();
    let (url, result) = match &target {
        Target::Github(repo) => {
            let body = payload(repo, &sha, &args.branch, &args.message).to_string();
            let signature = sign_body(args.secret.as_bytes(), body.as_bytes());
            let url = format!("{base}/webhooks/github");
            let delivery = ulid::Ulid::new().to_string();
            let sent = client
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
            (url, sent)
        }
        Target::Codecommit(repo) => {
            let url = format!("{base}/2015-03-31/functions/shipgate-codecommit/invocations");
            let sent = client
                .post(&url)
                .json(&codecommit_event(repo, &sha, &args.branch, &args.message))
                .send()
                .await;
            (url, sent)
        }
    };
    let resp = match result {
        Ok(r) => r,
        Err(e) => return unreachable_sandbox(&url, &e),
    };
    let status = resp.status();
    let answer: Value = resp.json().await.unwrap_or(Value::Null);
    if args.json {
        crate::output::say(&serde_json::to_string_pretty(&answer).unwrap_or_default());
    }
    let accepted = match target {
        Target::Github(_) => status.as_u16() == 202,
        Target::Codecommit(_) => status.is_success() && answer["status"] == "started",
    };
    if accepted && answer["execution_id"].is_string() {
        if !args.json {
            let repo = match &target {
                Target::Github(r) => format!("github:{r}"),
                Target::Codecommit(r) => format!("codecommit:{r}"),
            };
            crate::output::say(&format!(
                "pushed {} to {repo} {} ({})",
                &sha[..12],
                args.branch,
                args.message
            ));
            crate::output::say(&format!(
                "execution {}",
                answer["execution_id"].as_str().unwrap_or("")
            ));
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
        let p = payload(DEMO_REPO, &sha, "main", "hi [fail-deploy]");
        let push = shared::domain::github::decode_push(p.to_string().as_bytes()).unwrap();
        assert_eq!(push.after, sha);
        assert_eq!(push.repository, "shipgate-demo/hello");
        assert_eq!(push.head_commit.unwrap().message, "hi [fail-deploy]");
        let p = payload("acme/shop", &sha, "main", "x");
        let push = shared::domain::github::decode_push(p.to_string().as_bytes()).unwrap();
        assert_eq!(push.repository, "acme/shop");
    }

    #[test]
    fn codecommit_event_decodes() {
        let sha = random_sha();
        let e = codecommit_event("shop", &sha, "main", "hi");
        let c = shared::domain::aws_events::decode_reference_change(&e).unwrap();
        assert_eq!(c.repository, "shop");
        assert_eq!(c.reference_name, "main");
        assert_eq!(c.commit_id.as_deref(), Some(sha.as_str()));
    }

    #[test]
    fn sources_and_repos() {
        assert_eq!(
            parse_source("github:acme/shop"),
            Some(Target::Github("acme/shop".into()))
        );
        assert_eq!(
            parse_source("codecommit:shop"),
            Some(Target::Codecommit("shop".into()))
        );
        assert_eq!(parse_source("github:noslash"), None);
        assert_eq!(parse_source("svn:x"), None);
        assert_eq!(parse_source(""), None);
        assert!(valid_repo("acme/shop.api"));
        assert!(!valid_repo("acme"));
        assert!(!valid_repo("acme/"));
        assert!(!valid_repo("a b/c"));
    }
}
