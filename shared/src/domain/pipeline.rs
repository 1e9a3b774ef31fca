//! Pipeline definitions: parsing from TOML/YAML, validation that reports every problem with its
//! field path, and matching of pushes against branch/tag/path filters.

use std::fmt;

use super::glob::{Glob, GlobError};
use super::limits::check_definition_text;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

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
}

fn default_keep_images() -> u32 {
    DEFAULT_KEEP_IMAGES
}

/// What kind of git reference a push updated.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RefKind {
    Branch,
    Tag,
}

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

    /// Parse and validate a definition written as TOML, YAML or JSON text.
    pub fn parse(text: &str, format: Format) -> Result<PipelineDefinition, ValidationErrors> {
        check_definition_text(text, format == Format::Yaml)
            .map_err(|e| syntax_error(e.to_string()))?;
        let value: Value = match format {
            Format::Toml => toml::from_str::<toml::Value>(text)
                .map_err(|e| syntax_error(e.message().to_string()))
                .and_then(|v| serde_json::to_value(v).map_err(|e| syntax_error(e.to_string())))?,
            Format::Yaml => {
                serde_yaml::from_str::<Value>(text).map_err(|e| syntax_error(e.to_string()))?
            }
            Format::Json => {
                serde_json::from_str::<Value>(text).map_err(|e| syntax_error(e.to_string()))?
            }
        };
        Self::from_value(&value)
    }

    /// Validate a loosely typed document and build the definition; all problems are reported.
    pub fn from_value(value: &Value) -> Result<PipelineDefinition, ValidationErrors> {
        let mut v = Validator::default();
        let Some(root) = v.object(value, "") else {
            return Err(v.finish());
        };
        v.unknown_fields(
            root,
            "",
            &[
                "name",
                "source",
                "branches",
                "tags",
                "paths",
                "build",
                "image",
                "test",
                "prod",
                "approval",
                "notifications",
                "mode",
                "keep_images",
            ],
        );

        let name = v.required_str(root, "", "name").unwrap_or_default();
        if !name.is_empty() && !valid_pipeline_name(&name) {
            v.push(
                "name",
                "must be 1-64 characters of letters, digits, '-' or '_', starting with a letter or digit",
            );
        }

        let source = v.source(root);
        let branches = v
            .glob_list(root, "branches")
            .unwrap_or_else(|| vec!["main".to_string()]);
        if root.contains_key("branches") && branches.is_empty() {
            v.push("branches", "must list at least one branch glob");
        }
        let tags = v.glob_list(root, "tags").unwrap_or_default();
        let paths = v.glob_list(root, "paths").unwrap_or_default();

        let build = v.table(root, "", "build", &["project"]).map(|(t, p)| {
            let project = v.required_str(t, &p, "project").unwrap_or_default();
            if !project.is_empty() && !valid_codebuild_project(&project) {
                v.push(
                    &join(&p, "project"),
                    "must be a CodeBuild project name (2-255 letters, digits, '-' or '_')",
                );
            }
            BuildSpec { project }
        });

        let image = v.table(root, "", "image", &["repository"]).map(|(t, p)| {
            let repository = v.required_str(t, &p, "repository").unwrap_or_default();
            if !repository.is_empty() && !valid_ecr_uri(&repository) {
                v.push(
                    &join(&p, "repository"),
                    "must be an ECR repository URI like 123456789012.dkr.ecr.eu-west-1.amazonaws.com/my-service",
                );
            }
            ImageSpec { repository }
        });

        let test = v.target(root, "test");
        let prod = v.target(root, "prod");
        if let (Some(t), Some(p)) = (&test, &prod) {
            if let Err(message) = distinct_targets(t, p) {
                v.push("prod.service", &message);
            }
        }

        let approval = v
            .table(root, "", "approval", &["topic_arn", "timeout_hours"])
            .map(|(t, p)| {
                let topic_arn = v.required_str(t, &p, "topic_arn").unwrap_or_default();
                if !topic_arn.is_empty() && !valid_sns_arn(&topic_arn) {
                    v.push(
                        &join(&p, "topic_arn"),
                        "must be an SNS topic ARN (arn:aws:sns:<region>:<account>:<name>)",
                    );
                }
                let timeout_hours = v
                    .optional_u32(t, &p, "timeout_hours")
                    .unwrap_or(DEFAULT_APPROVAL_TIMEOUT_HOURS);
                if !(1..=MAX_APPROVAL_TIMEOUT_HOURS).contains(&timeout_hours) {
                    v.push(
                        &join(&p, "timeout_hours"),
                        &format!("must be between 1 and {MAX_APPROVAL_TIMEOUT_HOURS} hours"),
                    );
                }
                ApprovalSpec {
                    topic_arn,
                    timeout_hours,
                }
            });

        let notifications = if root.get("notifications").is_some_and(|n| !n.is_null()) {
            v.table(root, "", "notifications", &["topic_arn"])
                .map(|(t, p)| {
                    let topic_arn = v.required_str(t, &p, "topic_arn").unwrap_or_default();
                    if !topic_arn.is_empty() && !valid_sns_arn(&topic_arn) {
                        v.push(
                            &join(&p, "topic_arn"),
                            "must be an SNS topic ARN (arn:aws:sns:<region>:<account>:<name>)",
                        );
                    }
                    NotificationSpec { topic_arn }
                })
        } else {
            None
        };

        let mode = match root.get("mode") {
            None => ExecutionMode::default(),
            Some(Value::String(s)) if s == "superseded" => ExecutionMode::Superseded,
            Some(Value::String(s)) if s == "queued" => ExecutionMode::Queued,
            Some(_) => {
                v.push("mode", "must be \"superseded\" or \"queued\"");
                ExecutionMode::default()
            }
        };
        let keep_images = v
            .optional_u32(root, "", "keep_images")
            .unwrap_or(DEFAULT_KEEP_IMAGES);
        if !(1..=1000).contains(&keep_images) {
            v.push("keep_images", "must be between 1 and 1000");
        }

        match (source, build, image, test, prod, approval) {
            (Some(source), Some(build), Some(image), Some(test), Some(prod), Some(approval))
                if v.errors.is_empty() =>
            {
                Ok(PipelineDefinition {
                    name,
                    source,
                    branches,
                    tags,
                    paths,
                    build,
                    image,
                    test,
                    prod,
                    approval,
                    notifications,
                    mode,
                    keep_images,
                })
            }
            _ => Err(v.finish()),
        }
    }

    /// Re-check a definition built in code (e.g. read back from the store).
    pub fn validate(&self) -> Result<(), ValidationErrors> {
        let value = serde_json::to_value(self).map_err(|e| syntax_error(e.to_string()))?;
        Self::from_value(&value).map(|_| ())
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

/// The canonical identity of an ECS service: what AWS resolves a cluster and service, each
/// written as a name or an ARN, to. `account` and `region` are `None` for a name (the
/// deploying function's own account and region).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServiceIdentity {
    pub account: Option<String>,
    pub region: Option<String>,
    pub cluster: String,
    pub service: String,
}

/// ECS cluster and service names: 1–255 letters, digits, `-`, `_`.
fn valid_ecs_name(name: &str) -> bool {
    (1..=255).contains(&name.len())
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
}

/// `arn:<partition>:ecs:<region>:<account>:<resource>` → (region, account, resource).
fn ecs_arn(arn: &str) -> Option<(&str, &str, &str)> {
    let mut parts = arn.splitn(6, ':');
    let (Some("arn"), Some(partition), Some("ecs"), Some(region), Some(account), Some(resource)) = (
        parts.next(),
        parts.next(),
        parts.next(),
        parts.next(),
        parts.next(),
        parts.next(),
    ) else {
        return None;
    };
    let region_ok = !region.is_empty()
        && region
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-');
    let account_ok = account.len() == 12 && account.chars().all(|c| c.is_ascii_digit());
    (partition.starts_with("aws") && region_ok && account_ok).then_some((region, account, resource))
}

/// Resolve a target's cluster (name or `arn:…:cluster/NAME`) and service (name,
/// `arn:…:service/NAME` or `arn:…:service/CLUSTER/NAME`) to one identity; an error says which
/// field is malformed or disagrees with the other.
pub fn service_identity(target: &ServiceTarget) -> Result<ServiceIdentity, (&'static str, String)> {
    let mut account: Option<String> = None;
    let mut region: Option<String> = None;
    let mut agree = |field: &'static str, r: &str, a: &str| -> Result<(), (&'static str, String)> {
        for (known, new, what) in [(&mut region, r, "region"), (&mut account, a, "account")] {
            match known {
                Some(k) if k != new => {
                    return Err((
                        field,
                        format!("names {what} {new}, but the cluster is in {k}"),
                    ))
                }
                _ => *known = Some(new.to_string()),
            }
        }
        Ok(())
    };
    let cluster = if target.cluster.starts_with("arn:") {
        let name = ecs_arn(&target.cluster)
            .and_then(|(r, a, res)| Some((r, a, res.strip_prefix("cluster/")?)))
            .filter(|(_, _, name)| valid_ecs_name(name));
        let Some((r, a, name)) = name else {
            return Err(("cluster", "must be an ECS cluster name or ARN (arn:aws:ecs:<region>:<account>:cluster/<name>)".into()));
        };
        agree("cluster", r, a)?;
        name.to_string()
    } else if valid_ecs_name(&target.cluster) {
        target.cluster.clone()
    } else {
        return Err((
            "cluster",
            "must be an ECS cluster name (1-255 letters, digits, '-', '_') or ARN".into(),
        ));
    };
    let service = if target.service.starts_with("arn:") {
        let parsed = ecs_arn(&target.service).and_then(|(r, a, res)| {
            let path = res.strip_prefix("service/")?;
            let (in_cluster, name) = match path.split_once('/') {
                Some((c, n)) => (Some(c), n),
                None => (None, path),
            };
            (valid_ecs_name(name) && in_cluster.is_none_or(valid_ecs_name))
                .then_some((r, a, in_cluster, name))
        });
        let Some((r, a, in_cluster, name)) = parsed else {
            return Err(("service", "must be an ECS service name or ARN (arn:aws:ecs:<region>:<account>:service/<cluster>/<name>)".into()));
        };
        if let Some(c) = in_cluster.filter(|c| !c.eq_ignore_ascii_case(&cluster)) {
            return Err((
                "service",
                format!("is a service of cluster {c}, not {cluster}"),
            ));
        }
        agree("service", r, a)?;
        name.to_string()
    } else if valid_ecs_name(&target.service) {
        target.service.clone()
    } else {
        return Err((
            "service",
            "must be an ECS service name (1-255 letters, digits, '-', '_') or ARN".into(),
        ));
    };
    Ok(ServiceIdentity {
        account,
        region,
        cluster,
        service,
    })
}

/// Could `a` and `b` be the same ECS service? Names compare without regard to ASCII case, and
/// a missing account or region (a plain name) is the deploying function's own, so it could be
/// any: only a difference both sides state tells two services apart.
pub fn same_service(a: &ServiceIdentity, b: &ServiceIdentity) -> bool {
    fn may_equal(x: &Option<String>, y: &Option<String>) -> bool {
        match (x, y) {
            (Some(x), Some(y)) => x == y,
            _ => true,
        }
    }
    a.cluster.eq_ignore_ascii_case(&b.cluster)
        && a.service.eq_ignore_ascii_case(&b.service)
        && may_equal(&a.account, &b.account)
        && may_equal(&a.region, &b.region)
}

/// Test and prod must be different services by canonical identity (a cluster ARN and its name
/// are the same cluster). A target that does not parse is refused too.
pub fn distinct_targets(test: &ServiceTarget, prod: &ServiceTarget) -> Result<(), String> {
    let t = service_identity(test).map_err(|(f, m)| format!("test.{f} {m}"))?;
    let p = service_identity(prod).map_err(|(f, m)| format!("prod.{f} {m}"))?;
    if same_service(&t, &p) {
        return Err(format!(
            "must not be the same ECS service as test (cluster {}, service {}; a name and an ARN of one service are the same service)",
            p.cluster, p.service
        ));
    }
    Ok(())
}

fn syntax_error(message: String) -> ValidationErrors {
    ValidationErrors(vec![ValidationError {
        path: "(document)".to_string(),
        message,
    }])
}

fn join(parent: &str, field: &str) -> String {
    if parent.is_empty() {
        field.to_string()
    } else {
        format!("{parent}.{field}")
    }
}

fn valid_pipeline_name(name: &str) -> bool {
    (1..=64).contains(&name.len())
        && name
            .chars()
            .next()
            .is_some_and(|c| c.is_ascii_alphanumeric())
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
}

fn valid_codebuild_project(name: &str) -> bool {
    (2..=255).contains(&name.len())
        && name
            .chars()
            .next()
            .is_some_and(|c| c.is_ascii_alphanumeric())
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
}

fn valid_repo_segment(s: &str) -> bool {
    !s.is_empty()
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_' || c == '.')
}

fn valid_github_repo(repo: &str) -> bool {
    match repo.split_once('/') {
        Some((owner, name)) => {
            valid_repo_segment(owner) && valid_repo_segment(name) && !name.contains('/')
        }
        None => false,
    }
}

fn valid_codecommit_repo(repo: &str) -> bool {
    (1..=100).contains(&repo.len()) && valid_repo_segment(repo)
}

/// `<12 digits>.dkr.ecr.<region>.amazonaws.com[.cn]/<name>` with an ECR repository name.
pub fn valid_ecr_uri(uri: &str) -> bool {
    let Some((host, name)) = uri.split_once('/') else {
        return false;
    };
    let mut parts = host.split('.');
    let account_ok = parts
        .next()
        .is_some_and(|a| a.len() == 12 && a.chars().all(|c| c.is_ascii_digit()));
    let rest: Vec<&str> = parts.collect();
    let host_ok = account_ok
        && rest.len() >= 5
        && rest[0] == "dkr"
        && rest[1] == "ecr"
        && !rest[2].is_empty()
        && rest[2]
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
        && rest[3] == "amazonaws"
        && (rest[4..] == ["com"] || rest[4..] == ["com", "cn"]);
    let name_ok = (2..=256).contains(&name.len())
        && name.split('/').all(|seg| {
            !seg.is_empty()
                && seg
                    .chars()
                    .next()
                    .is_some_and(|c| c.is_ascii_alphanumeric())
                && seg.chars().all(|c| {
                    c.is_ascii_lowercase() || c.is_ascii_digit() || matches!(c, '.' | '_' | '-')
                })
        });
    host_ok && name_ok
}

fn valid_sns_arn(arn: &str) -> bool {
    let parts: Vec<&str> = arn.split(':').collect();
    parts.len() == 6
        && parts[0] == "arn"
        && parts[1].starts_with("aws")
        && parts[2] == "sns"
        && !parts[3].is_empty()
        && parts[4].len() == 12
        && parts[4].chars().all(|c| c.is_ascii_digit())
        && !parts[5].is_empty()
}

/// Collects validation errors while walking a JSON document.
#[derive(Default)]
struct Validator {
    errors: Vec<ValidationError>,
    /// Problems past [`MAX_REPORTED_PROBLEMS`], counted only.
    unlisted: usize,
}

impl Validator {
    fn finish(mut self) -> ValidationErrors {
        if self.unlisted > 0 {
            self.errors.push(ValidationError {
                path: "(document)".to_string(),
                message: format!("{} more problems not listed", self.unlisted),
            });
        }
        ValidationErrors(self.errors)
    }

    fn push(&mut self, path: &str, message: &str) {
        if self.errors.len() >= MAX_REPORTED_PROBLEMS {
            self.unlisted += 1;
            return;
        }
        self.errors.push(ValidationError {
            path: if path.is_empty() {
                "(document)".to_string()
            } else {
                path.to_string()
            },
            message: message.to_string(),
        });
    }

    fn object<'a>(&mut self, value: &'a Value, path: &str) -> Option<&'a Map<String, Value>> {
        match value {
            Value::Object(map) => Some(map),
            _ => {
                self.push(path, "must be a table/mapping");
                None
            }
        }
    }

    fn unknown_fields(&mut self, map: &Map<String, Value>, path: &str, known: &[&str]) {
        for key in map.keys() {
            if !known.contains(&key.as_str()) {
                self.push(
                    &join(path, key),
                    &format!("unknown field (expected one of: {})", known.join(", ")),
                );
            }
        }
    }

    fn required_str(
        &mut self,
        map: &Map<String, Value>,
        path: &str,
        field: &str,
    ) -> Option<String> {
        let p = join(path, field);
        match map.get(field) {
            None => {
                self.push(&p, "is required");
                None
            }
            Some(Value::String(s)) if s.trim().is_empty() => {
                self.push(&p, "must not be empty");
                None
            }
            Some(Value::String(s)) if s.len() > MAX_FIELD_LEN => {
                self.push(
                    &p,
                    &format!("{} bytes; at most {MAX_FIELD_LEN} are allowed", s.len()),
                );
                None
            }
            Some(Value::String(s)) => Some(s.clone()),
            Some(_) => {
                self.push(&p, "must be a string");
                None
            }
        }
    }

    fn optional_u32(&mut self, map: &Map<String, Value>, path: &str, field: &str) -> Option<u32> {
        let p = join(path, field);
        match map.get(field) {
            None => None,
            Some(Value::Number(n)) => match n.as_u64().and_then(|n| u32::try_from(n).ok()) {
                Some(n) => Some(n),
                None => {
                    self.push(&p, "must be a whole number");
                    None
                }
            },
            Some(_) => {
                self.push(&p, "must be a whole number");
                None
            }
        }
    }

    /// A nested table that must exist; returns it with its path.
    fn table<'a>(
        &mut self,
        map: &'a Map<String, Value>,
        path: &str,
        field: &str,
        known: &[&str],
    ) -> Option<(&'a Map<String, Value>, String)> {
        let p = join(path, field);
        match map.get(field) {
            None => {
                self.push(&p, "is required");
                None
            }
            Some(value) => {
                let t = self.object(value, &p)?;
                self.unknown_fields(t, &p, known);
                Some((t, p))
            }
        }
    }

    fn glob_list(&mut self, map: &Map<String, Value>, field: &str) -> Option<Vec<String>> {
        let value = map.get(field)?;
        let Value::Array(items) = value else {
            self.push(field, "must be a list of glob patterns");
            return Some(Vec::new());
        };
        if items.len() > MAX_GLOBS {
            self.push(
                field,
                &format!("{} globs; at most {MAX_GLOBS} are allowed", items.len()),
            );
            return Some(Vec::new());
        }
        let mut out = Vec::new();
        let mut cost = 0usize;
        for (i, item) in items.iter().enumerate() {
            let p = format!("{field}[{i}]");
            match item {
                Value::String(s) if s.trim().is_empty() => self.push(&p, "must not be empty"),
                Value::String(s) => match compile_glob(s) {
                    Ok(g) => {
                        cost += g.cost();
                        out.push(s.clone());
                    }
                    Err(e) => self.push(&p, &format!("invalid glob: {e}")),
                },
                _ => self.push(&p, "must be a string"),
            }
        }
        if cost > MAX_GLOB_LIST_COST {
            self.push(
                field,
                &format!("the globs together expand to {cost} tokens; at most {MAX_GLOB_LIST_COST} are allowed (fewer or simpler globs)"),
            );
        }
        Some(out)
    }

    fn source(&mut self, root: &Map<String, Value>) -> Option<Source> {
        let (t, p) = self.table(root, "", "source", &["github", "codecommit"])?;
        match (t.get("github"), t.get("codecommit")) {
            (Some(_), Some(_)) => {
                self.push(&p, "must name exactly one of github or codecommit");
                None
            }
            (Some(_), None) => {
                let repo = self.required_str(t, &p, "github")?;
                if valid_github_repo(&repo) {
                    Some(Source::Github(repo))
                } else {
                    self.push(&join(&p, "github"), "must be \"owner/repo\"");
                    None
                }
            }
            (None, Some(_)) => {
                let repo = self.required_str(t, &p, "codecommit")?;
                if valid_codecommit_repo(&repo) {
                    Some(Source::Codecommit(repo))
                } else {
                    self.push(
                        &join(&p, "codecommit"),
                        "must be a CodeCommit repository name (letters, digits, '.', '-', '_')",
                    );
                    None
                }
            }
            (None, None) => {
                self.push(
                    &p,
                    "must name github = \"owner/repo\" or codecommit = \"repo\"",
                );
                None
            }
        }
    }

    fn target(&mut self, root: &Map<String, Value>, field: &str) -> Option<ServiceTarget> {
        let (t, p) = self.table(root, "", field, &["cluster", "service", "container"])?;
        let cluster = self.required_str(t, &p, "cluster");
        let service = self.required_str(t, &p, "service");
        let container = self.required_str(t, &p, "container");
        let target = ServiceTarget {
            cluster: cluster?,
            service: service?,
            container: container?,
        };
        if let Err((f, message)) = service_identity(&target) {
            self.push(&join(&p, f), &message);
            return None;
        }
        if !valid_ecs_name(&target.container) {
            self.push(
                &join(&p, "container"),
                "must be a container name (1-255 letters, digits, '-', '_')",
            );
            return None;
        }
        Some(target)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    pub(crate) const EXAMPLE: &str = r#"
name = "hello"
source = { github = "acme/hello" }
branches = ["main", "release/*"]
paths = ["src/**", "Dockerfile"]
build = { project = "hello-build" }
image = { repository = "123456789012.dkr.ecr.eu-west-1.amazonaws.com/hello" }
test = { cluster = "apps", service = "hello-test", container = "app" }
prod = { cluster = "apps", service = "hello-prod", container = "app" }
approval = { topic_arn = "arn:aws:sns:eu-west-1:123456789012:approvals", timeout_hours = 48 }
mode = "queued"
"#;

    fn example() -> PipelineDefinition {
        PipelineDefinition::parse(EXAMPLE, Format::Toml).expect("valid example")
    }

    #[test]
    fn parses_toml_with_defaults() {
        let p = example();
        assert_eq!(p.name, "hello");
        assert_eq!(p.source, Source::Github("acme/hello".into()));
        assert_eq!(p.approval.timeout_hours, 48);
        assert_eq!(p.mode, ExecutionMode::Queued);
        assert_eq!(p.keep_images, DEFAULT_KEEP_IMAGES);
        assert!(p.tags.is_empty());
        assert_eq!(p.image.repository_name(), "hello");
        assert_eq!(p.notification_topic(), p.approval.topic_arn);
        p.validate().expect("round trip validates");
    }

    #[test]
    fn parses_yaml_and_json_the_same() {
        let yaml = r#"
name: hello
source: { github: acme/hello }
branches: [main, "release/*"]
paths: ["src/**", Dockerfile]
build: { project: hello-build }
image: { repository: 123456789012.dkr.ecr.eu-west-1.amazonaws.com/hello }
test: { cluster: apps, service: hello-test, container: app }
prod: { cluster: apps, service: hello-prod, container: app }
approval: { topic_arn: "arn:aws:sns:eu-west-1:123456789012:approvals", timeout_hours: 48 }
mode: queued
"#;
        let from_yaml = PipelineDefinition::parse(yaml, Format::Yaml).expect("yaml");
        assert_eq!(from_yaml, example());
        let json = serde_json::to_string(&example()).unwrap();
        assert_eq!(
            PipelineDefinition::parse(&json, Format::Json).unwrap(),
            example()
        );
    }

    #[test]
    fn default_branch_is_main_and_approval_timeout_is_72h() {
        let text = EXAMPLE
            .replace("branches = [\"main\", \"release/*\"]\n", "")
            .replace(", timeout_hours = 48", "");
        let p = PipelineDefinition::parse(&text, Format::Toml).unwrap();
        assert_eq!(p.branches, vec!["main"]);
        assert_eq!(p.approval.timeout_hours, 72);
    }

    #[test]
    fn reports_every_problem_with_its_path() {
        let text = r#"
name = "bad name!"
source = { github = "no-slash" }
branches = ["main", "[unclosed", 3]
build = { }
image = { repository = "hello" }
test = { cluster = "apps", service = "svc", container = "" }
prod = { cluster = "apps", service = "svc", container = "app", colour = "blue" }
approval = { topic_arn = "not-an-arn", timeout_hours = 0 }
mode = "sometimes"
keep_images = 0
extra = true
"#;
        let errors = PipelineDefinition::parse(text, Format::Toml).unwrap_err().0;
        let paths: Vec<&str> = errors.iter().map(|e| e.path.as_str()).collect();
        for expected in [
            "name",
            "source.github",
            "branches[1]",
            "branches[2]",
            "build.project",
            "image.repository",
            "test.container",
            "prod.colour",
            "approval.topic_arn",
            "approval.timeout_hours",
            "mode",
            "keep_images",
            "extra",
        ] {
            assert!(paths.contains(&expected), "missing {expected} in {paths:?}");
        }
        assert_eq!(errors.len(), 13, "{errors:?}");
    }

    #[test]
    fn missing_sections_are_required() {
        let errors = PipelineDefinition::parse("name = \"x\"", Format::Toml)
            .unwrap_err()
            .0;
        let paths: Vec<&str> = errors.iter().map(|e| e.path.as_str()).collect();
        assert_eq!(
            paths,
            vec!["source", "build", "image", "test", "prod", "approval"]
        );
        assert!(errors.iter().all(|e| e.message == "is required"));
    }

    #[test]
    fn same_test_and_prod_service_is_rejected() {
        let text = EXAMPLE.replace("hello-prod", "hello-test");
        let errors = PipelineDefinition::parse(&text, Format::Toml).unwrap_err();
        assert_eq!(errors.0[0].path, "prod.service");
    }

    #[test]
    fn test_and_prod_are_compared_by_canonical_identity() {
        let with = |test: &str, prod: &str| {
            let text = EXAMPLE
                .replace(
                    r#"test = { cluster = "apps", service = "hello-test", container = "app" }"#,
                    &format!("test = {test}"),
                )
                .replace(
                    r#"prod = { cluster = "apps", service = "hello-prod", container = "app" }"#,
                    &format!("prod = {prod}"),
                );
            PipelineDefinition::parse(&text, Format::Toml)
        };
        let arn = "arn:aws:ecs:eu-west-1:123456789012";
        let same = [
            // the reported case: test as a cluster ARN, prod as a name
            (
                format!(
                    r#"{{ cluster = "{arn}:cluster/apps", service = "hello-prod", container = "app" }}"#
                ),
                r#"{ cluster = "apps", service = "hello-prod", container = "app" }"#.to_string(),
            ),
            (
                r#"{ cluster = "apps", service = "hello-prod", container = "app" }"#.to_string(),
                format!(
                    r#"{{ cluster = "apps", service = "{arn}:service/apps/hello-prod", container = "app" }}"#
                ),
            ),
            (
                format!(
                    r#"{{ cluster = "apps", service = "{arn}:service/hello-prod", container = "app" }}"#
                ),
                format!(
                    r#"{{ cluster = "{arn}:cluster/apps", service = "{arn}:service/apps/hello-prod", container = "x" }}"#
                ),
            ),
            (
                r#"{ cluster = "Apps", service = "Hello-Prod", container = "app" }"#.to_string(),
                r#"{ cluster = "apps", service = "hello-prod", container = "app" }"#.to_string(),
            ),
        ];
        for (t, p) in &same {
            let errors = with(t, p).unwrap_err();
            assert_eq!(errors.0[0].path, "prod.service", "{t} / {p}: {errors}");
            assert!(errors.0[0].message.contains("same ECS service"), "{errors}");
        }
        // stated differences tell services apart
        let other = "arn:aws:ecs:eu-west-1:210987654321";
        with(
            &format!(
                r#"{{ cluster = "{arn}:cluster/apps", service = "hello", container = "app" }}"#
            ),
            &format!(
                r#"{{ cluster = "{other}:cluster/apps", service = "hello", container = "app" }}"#
            ),
        )
        .expect("another account");
        // malformed or contradicting ARNs are refused with their path
        let errors = with(
            r#"{ cluster = "arn:aws:ecs:eu-west-1:1:cluster/apps", service = "s", container = "app" }"#,
            r#"{ cluster = "apps", service = "p", container = "app" }"#,
        )
        .unwrap_err();
        assert_eq!(errors.0[0].path, "test.cluster", "{errors}");
        let errors = with(
            &format!(r#"{{ cluster = "apps", service = "{arn}:service/other/hello", container = "app" }}"#),
            r#"{ cluster = "apps", service = "p", container = "app" }"#,
        )
        .unwrap_err();
        assert_eq!(errors.0[0].path, "test.service", "{errors}");
        let errors = with(
            &format!(r#"{{ cluster = "{arn}:cluster/apps", service = "{other}:service/apps/x", container = "app" }}"#),
            r#"{ cluster = "apps", service = "p", container = "app" }"#,
        )
        .unwrap_err();
        assert!(errors.0[0].message.contains("account"), "{errors}");
        // the deploy-time check uses the same function
        let mut p = example();
        p.test.cluster = format!("{arn}:cluster/{}", p.prod.cluster);
        p.test.service = p.prod.service.clone();
        assert!(p.check_distinct_targets().is_err());
        assert!(example().check_distinct_targets().is_ok());
    }

    #[test]
    fn hostile_definitions_are_refused_with_their_path() {
        let with_branches = |list: &str| {
            let text = EXAMPLE.replace(
                r#"branches = ["main", "release/*"]"#,
                &format!("branches = {list}"),
            );
            assert_ne!(text, EXAMPLE);
            PipelineDefinition::parse(&text, Format::Toml)
        };
        // 100,000 nested groups (used to overflow the stack of the webhook on every push)
        let deep = "{".repeat(50_000) + &"}".repeat(50_000);
        let errors = with_branches(&format!("[\"{deep}\"]")).unwrap_err();
        assert_eq!(errors.0[0].path, "(document)", "{errors}");
        assert!(
            errors.0[0].message.contains("bytes; at most 65536"),
            "{errors}"
        );
        let deep = "{".repeat(10_000) + &"}".repeat(10_000);
        let errors = with_branches(&format!("[\"{deep}\"]")).unwrap_err();
        assert_eq!(errors.0[0].path, "branches[0]");
        assert!(errors.0[0].message.contains("at most 256"), "{errors}");
        let errors = with_branches(&format!("[{}]", vec!["\"a\""; 33].join(","))).unwrap_err();
        assert_eq!(errors.0[0].path, "branches");
        assert!(errors.0[0].message.contains("at most 32"), "{errors}");
        let heavy = "\"{a,b,c,d,e,f,g,h}{a,b,c,d,e,f,g,h}[abcdefghij]\"";
        let errors = with_branches(&format!("[{}]", vec![heavy; 32].join(","))).unwrap_err();
        assert_eq!(errors.0[0].path, "branches", "{errors}");
        assert!(errors.0[0].message.contains("at most 8192"), "{errors}");
        // deep YAML is refused by the pre-scan, in linear time
        let yaml = "name: ".to_string() + &"[".repeat(40_000) + &"]".repeat(40_000);
        let errors = PipelineDefinition::parse(&yaml, Format::Yaml).unwrap_err();
        assert!(errors.0[0].message.contains("at most 65536"), "{errors}");
        let yaml = "name: ".to_string() + &"[".repeat(30_000) + &"]".repeat(30_000);
        let errors = PipelineDefinition::parse(&yaml, Format::Yaml).unwrap_err();
        assert!(
            errors.0[0].message.contains("nested more than 16"),
            "{errors}"
        );
        let long = "x".repeat(MAX_FIELD_LEN + 1);
        let errors = PipelineDefinition::parse(&EXAMPLE.replace("hello-test", &long), Format::Toml)
            .unwrap_err();
        assert_eq!(errors.0[0].path, "test.service", "{errors}");
    }

    #[test]
    fn a_flood_of_problems_is_listed_up_to_a_bound() {
        let mut doc = serde_json::Map::new();
        for i in 0..100_000 {
            doc.insert(format!("k{i}"), Value::Null);
        }
        let errors = PipelineDefinition::from_value(&Value::Object(doc)).unwrap_err();
        assert_eq!(errors.0.len(), MAX_REPORTED_PROBLEMS + 1);
        let last = errors.0.last().unwrap();
        assert!(
            last.message.contains("more problems not listed"),
            "{last:?}"
        );
    }

    #[test]
    fn yaml_alias_bombs_are_refused() {
        let mut yaml = String::from("a0: &a0 [x, x, x, x, x, x, x, x, x]\n");
        for i in 1..10 {
            let refs = vec![format!("*a{}", i - 1); 9].join(", ");
            yaml.push_str(&format!("a{i}: &a{i} [{refs}]\n"));
        }
        let started = std::time::Instant::now();
        let errors = PipelineDefinition::parse(&yaml, Format::Yaml).unwrap_err();
        assert!(
            started.elapsed() < std::time::Duration::from_secs(5),
            "{errors}"
        );
        assert_eq!(errors.0[0].path, "(document)", "{errors}");
        assert!(errors.0[0].message.contains("repetition limit"), "{errors}");
    }

    #[test]
    fn serde_json_keeps_its_recursion_limit() {
        let deep = "[".repeat(129) + &"]".repeat(129);
        let e = serde_json::from_str::<Value>(&deep).unwrap_err();
        assert!(e.to_string().contains("recursion limit"), "{e}");
        assert!(serde_json::from_str::<Value>(&("[".repeat(127) + &"]".repeat(127))).is_ok());
    }

    #[test]
    fn matching_work_per_push_is_bounded() {
        let mut p = example();
        p.paths = vec!["src/**".into()];
        let refs = |n: usize| "a".repeat(n);
        assert!(!p.matches(
            &p.source.clone(),
            RefKind::Branch,
            &refs(MAX_REF_LEN + 1),
            None
        ));
        let many: Vec<String> = (0..MAX_CHANGED_FILES + 1)
            .map(|i| format!("docs/{i}"))
            .collect();
        assert!(
            p.matches(&p.source.clone(), RefKind::Branch, "main", Some(&many)),
            "too many files to check: not excluded"
        );
        assert!(!p.matches(
            &p.source.clone(),
            RefKind::Branch,
            "main",
            Some(&many[..10])
        ));
    }

    #[test]
    fn both_sources_is_rejected() {
        let text = EXAMPLE.replace(
            "{ github = \"acme/hello\" }",
            "{ github = \"acme/hello\", codecommit = \"hello\" }",
        );
        let errors = PipelineDefinition::parse(&text, Format::Toml).unwrap_err();
        assert_eq!(errors.0[0].path, "source");
    }

    #[test]
    fn syntax_errors_are_reported_not_panicked() {
        for (text, format) in [
            ("name = ", Format::Toml),
            ("name: [", Format::Yaml),
            ("{", Format::Json),
            ("[1, 2]", Format::Json),
            ("", Format::Json),
        ] {
            let errors = PipelineDefinition::parse(text, format).unwrap_err();
            assert!(!errors.0.is_empty());
            assert!(errors.to_string().contains("invalid pipeline definition"));
        }
    }

    #[test]
    fn format_from_path() {
        assert_eq!(Format::from_path("a/p.TOML"), Some(Format::Toml));
        assert_eq!(Format::from_path("p.yml"), Some(Format::Yaml));
        assert_eq!(Format::from_path("p.yaml"), Some(Format::Yaml));
        assert_eq!(Format::from_path("p.json"), Some(Format::Json));
        assert_eq!(Format::from_path("p.txt"), None);
    }

    #[test]
    fn index_key_is_equal_exactly_when_sources_match() {
        let gh = |r: &str| Source::Github(r.into());
        let cc = |r: &str| Source::Codecommit(r.into());
        assert_eq!(gh("Acme/Hello").index_key(), "github:acme/hello");
        assert_eq!(cc("Hello").index_key(), "codecommit:Hello");
        let sources = [
            gh("acme/hello"),
            gh("ACME/Hello"),
            gh("acme/other"),
            cc("hello"),
            cc("Hello"),
            cc("acme/hello"),
        ];
        for a in &sources {
            let mut p = example();
            p.source = a.clone();
            for b in &sources {
                assert_eq!(
                    a.index_key() == b.index_key(),
                    p.matches(b, RefKind::Branch, "main", None),
                    "{a:?} vs {b:?}"
                );
            }
        }
    }

    #[test]
    fn branch_and_path_matching() {
        let p = example();
        let gh = Source::Github("acme/hello".into());
        let files = |f: &[&str]| f.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        assert!(p.matches(&gh, RefKind::Branch, "main", None));
        assert!(p.matches(
            &Source::Github("ACME/Hello".into()),
            RefKind::Branch,
            "main",
            None
        ));
        assert!(p.matches(&gh, RefKind::Branch, "release/1.2", None));
        assert!(
            !p.matches(&gh, RefKind::Branch, "release/1/2", None),
            "* stays in one segment"
        );
        assert!(!p.matches(&gh, RefKind::Branch, "feature/x", None));
        assert!(
            !p.matches(&gh, RefKind::Tag, "v1.0.0", None),
            "tags need opting in"
        );
        assert!(!p.matches(
            &Source::Github("acme/other".into()),
            RefKind::Branch,
            "main",
            None
        ));
        assert!(!p.matches(
            &Source::Codecommit("hello".into()),
            RefKind::Branch,
            "main",
            None
        ));
        assert!(p.matches(&gh, RefKind::Branch, "main", Some(&files(&["src/a/b.rs"]))));
        assert!(p.matches(
            &gh,
            RefKind::Branch,
            "main",
            Some(&files(&["README.md", "Dockerfile"]))
        ));
        assert!(!p.matches(&gh, RefKind::Branch, "main", Some(&files(&["README.md"]))));
        assert!(!p.matches(&gh, RefKind::Branch, "main", Some(&[])));
    }

    #[test]
    fn tag_pushes_match_when_opted_in() {
        let mut p = example();
        p.tags = vec!["v*".into()];
        p.paths.clear();
        let gh = Source::Github("acme/hello".into());
        assert!(p.matches(&gh, RefKind::Tag, "v1.0.0", None));
        assert!(!p.matches(&gh, RefKind::Tag, "nightly", None));
    }

    #[test]
    fn example_pipeline_file_is_valid() {
        let text = include_str!("../../../examples/pipeline.toml");
        let p = PipelineDefinition::parse(text, Format::Toml).expect("examples/pipeline.toml");
        assert_eq!(p.name, "hello");
        assert_eq!(
            p.notification_topic(),
            "arn:aws:sns:eu-west-1:123456789012:shipgate-failures"
        );
    }

    #[test]
    fn ecr_uri_validation() {
        assert!(valid_ecr_uri(
            "123456789012.dkr.ecr.eu-west-1.amazonaws.com/hello"
        ));
        assert!(valid_ecr_uri(
            "123456789012.dkr.ecr.cn-north-1.amazonaws.com.cn/team/hello-svc"
        ));
        assert!(!valid_ecr_uri("hello"));
        assert!(!valid_ecr_uri(
            "12345.dkr.ecr.eu-west-1.amazonaws.com/hello"
        ));
        assert!(!valid_ecr_uri(
            "123456789012.dkr.ecr.eu-west-1.amazonaws.com/Hello"
        ));
        assert!(!valid_ecr_uri("docker.io/library/nginx"));
    }
}
