//! Parsing a pipeline definition from TOML, YAML or JSON and validating it: every problem is
//! reported with its field path, up to [`MAX_REPORTED_PROBLEMS`].

use serde_json::{Map, Value};

use super::identity::{distinct_targets, service_identity, valid_ecs_name};
use super::*;
use crate::domain::limits::check_definition_text;

#[path = "verify_validation.rs"]
mod verify_validation;

impl PipelineDefinition {
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
                "github",
                "verify",
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
            .table(
                root,
                "",
                "approval",
                &[
                    "topic_arn",
                    "timeout_hours",
                    "approvers",
                    "required",
                    "allow_self_approval",
                ],
            )
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
                let (approvers, required, allow_self_approval) =
                    crate::domain::approval_policy::parse_policy(t, &p, &mut v.errors);
                // a CodeCommit push is known only by its IAM caller ARN (no pusher e-mail an
                // approver could be matched by), so no self-approval needs every approver's arn
                if matches!(source, Some(Source::Codecommit(_))) && !allow_self_approval {
                    for (i, a) in approvers.iter().enumerate() {
                        if a.arn.is_none() {
                            v.push(
                                &format!("{p}.approvers[{i}].arn"),
                                "is required with a CodeCommit source (a push is known by its IAM caller ARN, and the pusher may not approve), unless allow_self_approval = true",
                            );
                        }
                    }
                }
                ApprovalSpec {
                    topic_arn,
                    timeout_hours,
                    approvers,
                    required,
                    allow_self_approval,
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

        let github = if root.get("github").is_some_and(|g| !g.is_null()) {
            v.github(root, source.as_ref())
        } else {
            None
        };
        let verify = v.verify(root);

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
                    github,
                    verify,
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

    /// `[github]`: feedback settings, for a GitHub source only.
    fn github(
        &mut self,
        root: &Map<String, Value>,
        source: Option<&Source>,
    ) -> Option<crate::domain::feedback::GitHubFeedbackSpec> {
        use crate::domain::feedback::{
            secret_name, GitHubFeedbackSpec, DEFAULT_GITHUB_API_URL, GITHUB_TOKEN_SECRET_PREFIX,
        };
        let (t, p) = self.table(
            root,
            "",
            "github",
            &["token_secret", "api_url", "test_url", "prod_url"],
        )?;
        if matches!(source, Some(Source::Codecommit(_))) {
            self.push(&p, "GitHub feedback needs a GitHub source");
        }
        let token_secret = self.required_str(t, &p, "token_secret").unwrap_or_default();
        let name = secret_name(&token_secret);
        if !token_secret.is_empty()
            && (!name.starts_with(GITHUB_TOKEN_SECRET_PREFIX)
                || name.len() == GITHUB_TOKEN_SECRET_PREFIX.len()
                || !name
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || "/_+=.@-".contains(c))
                || (token_secret.starts_with("arn:") && !token_secret.contains(":secretsmanager:")))
        {
            self.push(
                &join(&p, "token_secret"),
                &format!("must be a Secrets Manager secret name or ARN whose name starts with {GITHUB_TOKEN_SECRET_PREFIX} (the functions may read only those), e.g. {GITHUB_TOKEN_SECRET_PREFIX}my-service"),
            );
        }
        let mut url = |field: &str, api: bool| -> Option<String> {
            let value = match t.get(field) {
                None | Some(Value::Null) => return None,
                Some(_) => self.required_str(t, &p, field)?,
            };
            let loopback = ["http://127.0.0.1:", "http://localhost:", "http://[::1]:"]
                .iter()
                .any(|l| value.starts_with(l));
            let ok = (value.starts_with("https://") || (api && loopback))
                && !value.chars().any(|c| c.is_whitespace() || c.is_control())
                && value.len() > "https://".len();
            if !ok {
                self.push(
                    &join(&p, field),
                    if api {
                        "must be an https:// URL (GitHub Enterprise Server: https://HOST/api/v3; a local fake may use http://127.0.0.1:PORT)"
                    } else {
                        "must be an https:// URL"
                    },
                );
            }
            Some(value.trim_end_matches('/').to_string())
        };
        let api_url = url("api_url", true).unwrap_or_else(|| DEFAULT_GITHUB_API_URL.to_string());
        let test_url = url("test_url", false);
        let prod_url = url("prod_url", false);
        Some(GitHubFeedbackSpec {
            token_secret,
            api_url,
            test_url,
            prod_url,
        })
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
