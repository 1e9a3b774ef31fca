//! Where to look at an execution's work: the build's log location and console links for the
//! build logs, the ECS service, the commit and its changes against production (pure).
//!
//! The build log location is derived from the build id: CodeBuild writes a build's log to the
//! group `/aws/codebuild/<project>`, stream `<build uuid>` (its default; a project configured to
//! log elsewhere keeps the console link, which CodeBuild resolves itself).

use super::execution::{Commit, Execution};
use super::pipeline::{PipelineDefinition, Source};

/// A CloudWatch Logs location.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogLocation {
    pub group: String,
    pub stream: String,
}

/// The log of build `build_id` (`project:uuid`), or None for an id of another shape.
pub fn build_log(build_id: &str) -> Option<LogLocation> {
    let (project, uuid) = build_id.split_once(':')?;
    let ok = |s: &str| {
        !s.is_empty()
            && s.len() <= 255
            && s.chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
    };
    (ok(project) && ok(uuid)).then(|| LogLocation {
        group: format!("/aws/codebuild/{project}"),
        stream: uuid.to_string(),
    })
}

/// The region of an ECR repository URI (`<account>.dkr.ecr.<region>.amazonaws.com/<name>`).
pub fn region_of_repository(repository_uri: &str) -> Option<&str> {
    let host = repository_uri.split('/').next()?;
    let mut parts = host.split('.');
    let (_, Some("dkr"), Some("ecr"), Some(region)) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return None;
    };
    (!region.is_empty()
        && region
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-'))
    .then_some(region)
}

/// Percent-encode everything but unreserved characters (for a console URL's path segment).
fn encode(text: &str) -> String {
    let mut out = String::new();
    for b in text.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// The CodeBuild console page of a build's log.
pub fn build_console(region: &str, build_id: &str) -> Option<String> {
    let (project, _) = build_id.split_once(':')?;
    Some(format!(
        "https://{region}.console.aws.amazon.com/codesuite/codebuild/projects/{}/build/{}/log?region={region}",
        encode(project),
        encode(build_id)
    ))
}

/// The CloudWatch Logs console page of a log stream.
pub fn logs_console(region: &str, log: &LogLocation) -> String {
    // the console's fragment encodes `%` itself as `$25`
    let group = encode(&log.group).replace('%', "$25");
    let stream = encode(&log.stream).replace('%', "$25");
    format!(
        "https://{region}.console.aws.amazon.com/cloudwatch/home?region={region}#logsV2:log-groups/log-group/{group}/log-events/{stream}"
    )
}

/// The ECS console page of a service's deployments.
pub fn ecs_console(region: &str, cluster: &str, service: &str) -> String {
    format!(
        "https://{region}.console.aws.amazon.com/ecs/v2/clusters/{}/services/{}/deployments?region={region}",
        encode(cluster),
        encode(service)
    )
}

fn is_sha(s: &str) -> bool {
    (7..=64).contains(&s.len()) && s.chars().all(|c| c.is_ascii_hexdigit())
}

/// The commit's page (GitHub, or the CodeCommit console in `region`).
pub fn commit_page(source: &Source, region: Option<&str>, commit: &Commit) -> Option<String> {
    if !is_sha(&commit.sha) {
        return None;
    }
    match source {
        Source::Github(repo) => Some(format!("https://github.com/{repo}/commit/{}", commit.sha)),
        Source::Codecommit(repo) => region.map(|r| {
            format!(
                "https://{r}.console.aws.amazon.com/codesuite/codecommit/repositories/{}/commit/{}?region={r}",
                encode(repo),
                commit.sha
            )
        }),
    }
}

/// The changes from what production runs (`base`) to `head`.
pub fn compare_page(
    source: &Source,
    region: Option<&str>,
    base: &str,
    head: &str,
) -> Option<String> {
    if !is_sha(base) || !is_sha(head) || base == head {
        return None;
    }
    match source {
        Source::Github(repo) => Some(format!("https://github.com/{repo}/compare/{base}...{head}")),
        Source::Codecommit(repo) => region.map(|r| {
            format!(
                "https://{r}.console.aws.amazon.com/codesuite/codecommit/repositories/{}/compare/{base}/.../{head}?region={r}",
                encode(repo)
            )
        }),
    }
}

/// Every link of one execution, as far as they are known.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct ExecutionLinks {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub commit: Option<String>,
    /// Its changes against what production runs.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub compare: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub build_logs: Option<String>,
    /// The ECS console page of the service it deploys (prod once started, else test).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub service: Option<String>,
}

/// The links of `exec` in `pipeline`; `prod_sha`: the commit production runs.
pub fn execution_links(
    pipeline: &PipelineDefinition,
    exec: &Execution,
    prod_sha: Option<&str>,
) -> ExecutionLinks {
    let region = region_of_repository(&pipeline.image.repository);
    let build_logs = exec
        .failure
        .as_ref()
        .and_then(|f| f.link.clone())
        .filter(|l| l.starts_with("https://"))
        .or_else(|| {
            let id = exec.build_id.as_deref()?;
            build_console(region?, id)
        });
    let service = region.and_then(|r| {
        exec.prod
            .as_ref()
            .or(exec.test.as_ref())
            .map(|d| ecs_console(r, &d.cluster, &d.service))
    });
    ExecutionLinks {
        commit: commit_page(&pipeline.source, region, &exec.commit),
        compare: prod_sha
            .and_then(|base| compare_page(&pipeline.source, region, base, &exec.commit.sha)),
        build_logs,
        service,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn build_logs_are_derived_from_the_build_id() {
        assert_eq!(
            build_log("hello-build:0b5e1c4d-7f3a-4c2e-9d1b-2a3c4d5e6f70"),
            Some(LogLocation {
                group: "/aws/codebuild/hello-build".into(),
                stream: "0b5e1c4d-7f3a-4c2e-9d1b-2a3c4d5e6f70".into()
            })
        );
        for bad in ["", "nocolon", ":x", "p:", "p:a/b", "p q:x"] {
            assert_eq!(build_log(bad), None, "{bad}");
        }
        let log = build_log("hello-build:abc").unwrap();
        assert_eq!(
            logs_console("eu-west-1", &log),
            "https://eu-west-1.console.aws.amazon.com/cloudwatch/home?region=eu-west-1#logsV2:log-groups/log-group/$252Faws$252Fcodebuild$252Fhello-build/log-events/abc"
        );
        assert_eq!(
            build_console("eu-west-1", "hello-build:abc").unwrap(),
            "https://eu-west-1.console.aws.amazon.com/codesuite/codebuild/projects/hello-build/build/hello-build%3Aabc/log?region=eu-west-1"
        );
    }

    #[test]
    fn regions_and_source_links() {
        assert_eq!(
            region_of_repository("123456789012.dkr.ecr.eu-west-1.amazonaws.com/hello"),
            Some("eu-west-1")
        );
        assert_eq!(region_of_repository("hello"), None);
        assert_eq!(region_of_repository("a.b.c.d/e"), None);
        let gh = Source::Github("octo/hello".into());
        let sha = "9f2c7a1e4b6d8f0a2c4e6b8d0f1a3c5e7b9d1f3a";
        let c = Commit {
            sha: sha.into(),
            ..Commit::default()
        };
        assert_eq!(
            commit_page(&gh, None, &c).unwrap(),
            format!("https://github.com/octo/hello/commit/{sha}")
        );
        assert_eq!(
            compare_page(&gh, None, "abcdef1", sha).unwrap(),
            format!("https://github.com/octo/hello/compare/abcdef1...{sha}")
        );
        assert_eq!(compare_page(&gh, None, sha, sha), None);
        assert_eq!(compare_page(&gh, None, "main", sha), None);
        let cc = Source::Codecommit("hello".into());
        assert_eq!(commit_page(&cc, None, &c), None);
        assert!(commit_page(&cc, Some("us-east-1"), &c)
            .unwrap()
            .contains("codecommit/repositories/hello/commit/"));
        assert_eq!(
            commit_page(&gh, None, &Commit::default()),
            None,
            "a branch head has no page yet"
        );
    }
}
