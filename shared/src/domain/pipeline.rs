//! Pipeline definitions: the types, which environment deploys where, and matching of pushes
//! against branch/tag/path filters. Parsing and validation (every problem with its field path)
//! are in `pipeline/validation.rs`; the canonical identity of an ECS service in
//! `pipeline/identity.rs`.

use std::fmt;

use super::glob::{Glob, GlobError};
use serde::{Deserialize, Serialize};

mod identity;
mod validation;

pub use identity::{distinct_targets, same_service, service_identity, ServiceIdentity};
pub use validation::valid_ecr_uri;

#[cfg(test)]
mod tests;

/// Default approval timeout in hours (72 h, as in CodePipeline's manual approval default of 7 d is
/// too long for a small team; three days covers a weekend).
pub const DEFAULT_APPROVAL_TIMEOUT_HOURS: u32 = 72;
/// Maximum approval timeout: 30 days.
pub const MAX_APPROVAL_TIMEOUT_HOURS: u32 = 720;
/// Default number of images kept per repository by the sweeper's ECR pruning.
pub const DEFAULT_KEEP_IMAGES: u32 = 10;
/// Most globs in one of `branches`, `tags`, `paths`.
pub const MAX_GLOBS: usize = 32;
/// Upper bound on the summed matching cost ([`Glob::cost`]) of one glob list: the work per
/// character of a branch name or file path.
pub const MAX_GLOB_LIST_COST: usize = 8192;
/// Longest branch or tag name matched; a push of a longer one matches no pipeline.
pub const MAX_REF_LEN: usize = 1024;
/// Upper bound on the matching steps a push's file list may cost one pipeline (about 50 ms);
/// past it (or past [`MAX_CHANGED_FILES`] files) the path filter does not exclude the push, as
/// when the push does not list its files.
pub const MAX_PATH_MATCH_STEPS: usize = 20_000_000;
/// Most changed files a path filter looks at.
pub const MAX_CHANGED_FILES: usize = 5000;
/// Longest string field of a pipeline definition (ARNs, names, URIs).
pub const MAX_FIELD_LEN: usize = 1024;
/// Most problems listed for one definition (a document of a million unknown fields must not
/// become a million error messages); the rest are counted.
pub const MAX_REPORTED_PROBLEMS: usize = 50;

/// How a newer execution treats older ones still awaiting approval.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum ExecutionMode {
    /// Older executions still awaiting approval become `SUPERSEDED` (default).
    #[default]
    Superseded,
    /// Every execution waits for its own decision.
    Queued,
}

/// Where pushes come from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Source {
    /// GitHub repository `owner/repo`.
    Github(String),
    /// CodeCommit repository name.
    Codecommit(String),
}

impl Source {
    pub fn describe(&self) -> String {
        match self {
            Source::Github(r) => format!("github:{r}"),
            Source::Codecommit(r) => format!("codecommit:{r}"),
        }
    }

    /// The key pushes look pipelines up by: `github:owner/repo` lowercased (GitHub compares
    /// repository names ignoring ASCII case), `codecommit:name` as it is (CodeCommit compares
    /// exactly). Two sources with the same key are the ones [`PipelineDefinition::matches`]
    /// treats as the same repository.
    pub fn index_key(&self) -> String {
        match self {
            Source::Github(r) => format!("github:{}", r.to_ascii_lowercase()),
            Source::Codecommit(r) => format!("codecommit:{r}"),
        }
    }
}

/// An ECS service the pipeline deploys to.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ServiceTarget {
    pub cluster: String,
    pub service: String,
    /// The container (in the task definition) whose image is replaced.
    pub container: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BuildSpec {
    /// CodeBuild project name.
    pub project: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ImageSpec {
    /// ECR repository URI: `<account>.dkr.ecr.<region>.amazonaws.com/<name>`.
    pub repository: String,
}

impl ImageSpec {
    /// The repository name (the part after the registry host).
    pub fn repository_name(&self) -> &str {
        self.repository
            .split_once('/')
            .map(|(_, name)| name)
            .unwrap_or(&self.repository)
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ApprovalSpec {
    pub topic_arn: String,
    pub timeout_hours: u32,
    /// Who may approve (empty: anyone with the link or control access; see docs/approvals.md).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub approvers: Vec<crate::domain::approval_policy::Approver>,
    /// Distinct approvers needed (N-of-M; default 1).
    #[serde(
        default = "crate::domain::approval_policy::one",
        skip_serializing_if = "crate::domain::approval_policy::is_one"
    )]
    pub required: u32,
    /// Whether the pusher / commit author may approve their own change (default false).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub allow_self_approval: bool,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NotificationSpec {
    pub topic_arn: String,
}

/// A validated pipeline definition.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PipelineDefinition {
    pub name: String,
    pub source: Source,
    /// Branch globs (`main`, `release/*`, `**`).
    pub branches: Vec<String>,
    /// Tag globs; empty means tag pushes are ignored.
    #[serde(default)]
    pub tags: Vec<String>,
    /// Optional path globs: a push runs only if one changed file matches one of them.
    #[serde(default)]
    pub paths: Vec<String>,
    pub build: BuildSpec,
    pub image: ImageSpec,
    pub test: ServiceTarget,
    pub prod: ServiceTarget,
    pub approval: ApprovalSpec,
    /// Failure notices; default: the approval topic.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub notifications: Option<NotificationSpec>,
    #[serde(default)]
    pub mode: ExecutionMode,
    /// Images the sweeper keeps per repository.
    #[serde(default = "default_keep_images")]
    pub keep_images: u32,
    /// Commit statuses and deployments reported to GitHub (optional; GitHub sources only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub github: Option<super::feedback::GitHubFeedbackSpec>,
    /// Verification after each deployment (`[verify.test]`, `[verify.prod]`); `None`: a
    /// completed deployment is taken as is.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub verify: Option<super::verify::VerifySettings>,
}

fn default_keep_images() -> u32 {
    DEFAULT_KEEP_IMAGES
}

/// What kind of git reference a push updated (defined next to the push decoding it comes from).
pub use shipgate_hotpath::RefKind;

/// One problem in a pipeline definition.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ValidationError {
    /// Field path, e.g. `test.cluster` or `branches[1]`.
    pub path: String,
    pub message: String,
}

/// Every problem found in a pipeline definition.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub struct ValidationErrors(pub Vec<ValidationError>);

impl fmt::Display for ValidationErrors {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "invalid pipeline definition ({} problem", self.0.len())?;
        if self.0.len() != 1 {
            write!(f, "s")?;
        }
        write!(f, ")")?;
        for e in &self.0 {
            write!(f, "\n  {}: {}", e.path, e.message)?;
        }
        Ok(())
    }
}

/// File formats a pipeline definition may be written in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Toml,
    Yaml,
    Json,
}

impl Format {
    /// Guess the format from a file name.
    pub fn from_path(path: &str) -> Option<Format> {
        let lower = path.to_ascii_lowercase();
        if lower.ends_with(".toml") {
            Some(Format::Toml)
        } else if lower.ends_with(".yaml") || lower.ends_with(".yml") {
            Some(Format::Yaml)
        } else if lower.ends_with(".json") {
            Some(Format::Json)
        } else {
            None
        }
    }
}

impl PipelineDefinition {
    /// The service an environment deploys to.
    pub fn target(&self, env: crate::domain::Environment) -> &ServiceTarget {
        match env {
            crate::domain::Environment::Test => &self.test,
            crate::domain::Environment::Prod => &self.prod,
        }
    }

    /// The verification of an environment, if the pipeline verifies it.
    pub fn verify_of(
        &self,
        env: crate::domain::Environment,
    ) -> Option<&super::verify::EnvironmentVerify> {
        self.verify.as_ref().and_then(|v| v.of(env))
    }

    /// The topic failure notices go to.
    pub fn notification_topic(&self) -> &str {
        self.notifications
            .as_ref()
            .map(|n| n.topic_arn.as_str())
            .unwrap_or(&self.approval.topic_arn)
    }

    /// Does a push of `ref_name` (branch or tag name, without `refs/heads/`) to this pipeline's
    /// source start an execution? `changed_files` is `None` when the push does not say which files
    /// changed (CodeCommit events, truncated GitHub payloads); then path filters do not exclude it.
    pub fn matches(
        &self,
        source: &Source,
        kind: RefKind,
        ref_name: &str,
        changed_files: Option<&[String]>,
    ) -> bool {
        if !self.source_matches(source) {
            return false;
        }
        if ref_name.len() > MAX_REF_LEN {
            return false;
        }
        let ref_ok = match kind {
            RefKind::Branch => any_glob_matches(&compile_globs(&self.branches), ref_name),
            RefKind::Tag => any_glob_matches(&compile_globs(&self.tags), ref_name),
        };
        if !ref_ok {
            return false;
        }
        match changed_files {
            Some(files) if !self.paths.is_empty() && files.len() <= MAX_CHANGED_FILES => {
                let globs = compile_globs(&self.paths);
                let cost: usize = globs.iter().map(Glob::cost).sum();
                let chars: usize = files.iter().map(|f| f.len() + 1).sum();
                if cost.saturating_mul(chars) > MAX_PATH_MATCH_STEPS {
                    return true; // too much to check: not excluded (as for an unlisted push)
                }
                files.iter().any(|file| any_glob_matches(&globs, file))
            }
            _ => true,
        }
    }

    /// Test and prod must be different ECS services (see [`distinct_targets`]); checked when a
    /// definition is applied and again before every deployment.
    pub fn check_distinct_targets(&self) -> Result<(), String> {
        distinct_targets(&self.test, &self.prod)
    }

    fn source_matches(&self, source: &Source) -> bool {
        match (&self.source, source) {
            (Source::Github(a), Source::Github(b)) => a.eq_ignore_ascii_case(b),
            (Source::Codecommit(a), Source::Codecommit(b)) => a == b,
            _ => false,
        }
    }
}

/// Compile a glob: `*` and `?` stay within one path segment, `**` crosses segments (see
/// [`super::glob`]).
pub fn compile_glob(pattern: &str) -> Result<Glob, GlobError> {
    Glob::new(pattern)
}

/// The globs that compile (stored definitions were validated; one that no longer compiles
/// matches nothing).
fn compile_globs(globs: &[String]) -> Vec<Glob> {
    globs.iter().filter_map(|g| compile_glob(g).ok()).collect()
}

fn any_glob_matches(globs: &[Glob], candidate: &str) -> bool {
    globs.iter().any(|g| g.is_match(candidate))
}
