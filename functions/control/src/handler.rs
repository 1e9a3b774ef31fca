//! Direct-invoke commands (`{"command": "...", ...}`) for the CLI and the console.
//! Always answers JSON: a result, or `{"error": {"code", "message"}}` with nothing changed.

use serde::de::DeserializeOwned;
use serde::Deserialize;
use serde_json::{json, Map, Value};
use shared::app::approvals::{self, LinkError};
use shared::app::{control, AppError, Services};
use shared::domain::limits::{excerpt, MAX_DEFINITION_BYTES};
use shared::domain::{
    Channel, Environment, ExecutionId, Format, PipelineDefinition, ValidationError,
    ValidationErrors, Verdict,
};
use tracing::{error, info};

/// Every command, for `--help` texts and the unknown-command error.
pub const COMMANDS: &[&str] = &[
    "apply_pipeline",
    "list_pipelines",
    "show_pipeline",
    "list_executions",
    "show",
    "status",
    "approve",
    "reject",
    "retry",
    "rollback",
    "release",
];

/// A command failed; rendered as `{"error": {...}}`.
#[derive(Debug)]
pub struct CommandError {
    pub code: &'static str,
    pub message: String,
    pub details: Option<Value>,
}

impl CommandError {
    fn invalid(message: impl Into<String>) -> CommandError {
        CommandError {
            code: "invalid_argument",
            message: message.into(),
            details: None,
        }
    }
}

impl From<AppError> for CommandError {
    fn from(e: AppError) -> Self {
        let details = match &e {
            AppError::Validation(v) => Some(validation_details(v)),
            _ => None,
        };
        if matches!(
            e,
            AppError::Store(_) | AppError::Service(_) | AppError::Config(_)
        ) {
            error!(error = %e, "control command failed");
        }
        CommandError {
            code: e.code(),
            message: e.to_string(),
            details,
        }
    }
}

impl From<LinkError> for CommandError {
    fn from(e: LinkError) -> Self {
        match e {
            LinkError::App(a) => a.into(),
            LinkError::Expired(_) | LinkError::Superseded(_) => CommandError {
                code: "gone",
                message: e.to_string(),
                details: None,
            },
            LinkError::AlreadyDecided(_) | LinkError::NotAwaiting(_) | LinkError::OutOfOrder(_) => {
                CommandError {
                    code: "conflict",
                    message: e.to_string(),
                    details: None,
                }
            }
            other => CommandError {
                code: "invalid_argument",
                message: other.to_string(),
                details: None,
            },
        }
    }
}

fn validation_details(v: &ValidationErrors) -> Value {
    Value::Array(
        v.0.iter()
            .map(|e| json!({ "path": e.path, "message": e.message }))
            .collect(),
    )
}

/// A page of a list: `next` (the `after` of the next page) only when there is one.
fn paged(mut answer: Value, next: Option<String>) -> Value {
    if let Some(next) = next {
        answer["next"] = next.into();
    }
    answer
}

/// Handle one command.
pub async fn handle(svc: &Services, input: Value) -> Value {
    match run(svc, input).await {
        Ok(v) => v,
        Err(e) => {
            let mut err = json!({ "code": e.code, "message": e.message });
            if let Some(d) = e.details {
                err["details"] = d;
            }
            json!({ "error": err })
        }
    }
}

fn args<T: DeserializeOwned>(command: &str, rest: Map<String, Value>) -> Result<T, CommandError> {
    serde_path_to_error::deserialize(Value::Object(rest)).map_err(|e| {
        let path = e.path().to_string();
        let inner = e.into_inner().to_string();
        let inner = inner
            .split(" at line ")
            .next()
            .unwrap_or(&inner)
            .to_string();
        CommandError::invalid(if path == "." {
            format!("{command}: {inner}")
        } else {
            format!("{command}: field `{path}`: {inner}")
        })
    })
}

fn execution_id(raw: &str) -> Result<ExecutionId, CommandError> {
    raw.parse()
        .map_err(|e: shared::domain::InvalidExecutionId| {
            CommandError::invalid(format!("execution_id: {e}"))
        })
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ApplyArgs {
    /// The definition as an object...
    #[serde(default)]
    pipeline: Option<Value>,
    /// ...or as text in `format`.
    #[serde(default)]
    definition: Option<String>,
    #[serde(default)]
    format: Option<String>,
    /// Who applies it (recorded with the version).
    #[serde(default)]
    actor: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ShowPipelineArgs {
    pipeline: String,
    /// Also list the kept versions with who applied them and what each changed.
    #[serde(default)]
    history: bool,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct PipelineArg {
    pipeline: String,
    #[serde(default)]
    limit: Option<usize>,
}

/// `list_pipelines` / `status`: one pipeline (status only), or a page of all by name.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct PipelinePageArgs {
    #[serde(default)]
    pipeline: Option<String>,
    /// The `next` of the previous answer.
    #[serde(default)]
    after: Option<String>,
    #[serde(default)]
    limit: Option<usize>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ExecutionArg {
    execution_id: String,
    #[serde(default)]
    actor: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct DecideArgs {
    execution_id: String,
    actor: String,
    #[serde(default)]
    comment: Option<String>,
    /// `cli` (default) or `console`.
    #[serde(default)]
    channel: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RollbackArgs {
    pipeline: String,
    environment: String,
    /// An execution id or commit SHA that once ran there successfully.
    #[serde(default)]
    to: Option<String>,
    #[serde(default)]
    actor: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ReleaseArgs {
    pipeline: String,
    #[serde(default)]
    commit: Option<String>,
    #[serde(default)]
    actor: Option<String>,
    /// Makes a retried release start nothing new.
    #[serde(default)]
    request_id: Option<String>,
}

/// Longest string argument of a command (except `definition`, bounded as a pipeline file).
pub const MAX_ARGUMENT_BYTES: usize = 1024;

fn actor(a: Option<String>) -> String {
    a.filter(|s| !s.trim().is_empty())
        .unwrap_or_else(|| "control".into())
}

async fn run(svc: &Services, input: Value) -> Result<Value, CommandError> {
    let Value::Object(mut rest) = input else {
        return Err(CommandError::invalid(
            "expected a JSON object like {\"command\": \"list_pipelines\"}",
        ));
    };
    let command = match rest.remove("command") {
        Some(Value::String(c)) => c,
        Some(_) => return Err(CommandError::invalid("`command` must be a string")),
        None => {
            return Err(CommandError::invalid(format!(
                "missing `command` (one of: {})",
                COMMANDS.join(", ")
            )))
        }
    };
    info!(command = %excerpt(&command, 100), "control command");
    // every string argument (ids, names, actor, comment, …) is short; only a definition is long
    if let Some((name, len)) = rest.iter().find_map(|(k, v)| match v {
        Value::String(s) if k != "definition" && s.len() > MAX_ARGUMENT_BYTES => Some((k, s.len())),
        _ => None,
    }) {
        return Err(CommandError::invalid(format!(
            "{}: `{}` is {len} bytes; at most {MAX_ARGUMENT_BYTES} are allowed",
            excerpt(&command, 100),
            excerpt(name, 100)
        )));
    }
    match command.as_str() {
        "apply_pipeline" => {
            let a: ApplyArgs = args(&command, rest)?;
            let definition = match (a.pipeline, a.definition) {
                // the object is bounded like a file (the Lambda payload alone allows 6 MB)
                (Some(v), None) => match serde_json::to_vec(&v).map(|b| b.len()) {
                    Ok(n) if n > MAX_DEFINITION_BYTES => Err(ValidationErrors(vec![ValidationError {
                        path: "pipeline".into(),
                        message: format!("{n} bytes as JSON; at most {MAX_DEFINITION_BYTES} are allowed"),
                    }])),
                    _ => PipelineDefinition::from_value(&v),
                },
                (None, Some(text)) => {
                    let format = match a.format.as_deref().unwrap_or("toml") {
                        "toml" => Format::Toml,
                        "yaml" | "yml" => Format::Yaml,
                        "json" => Format::Json,
                        other => return Err(CommandError::invalid(format!("format {other:?} is not toml, yaml or json"))),
                    };
                    PipelineDefinition::parse(&text, format)
                }
                _ => return Err(CommandError::invalid("apply_pipeline: give either `pipeline` (an object) or `definition` (text with `format`)")),
            }
            .map_err(AppError::from)?;
            let applied = control::apply_pipeline(svc, definition, &actor(a.actor)).await?;
            Ok(serde_json::to_value(applied).unwrap_or(Value::Null))
        }
        "list_pipelines" => {
            let a: PipelinePageArgs = args(&command, rest)?;
            let page = control::list_pipelines(
                svc,
                a.after.as_deref(),
                a.limit.unwrap_or(control::MAX_PIPELINES_LISTED),
            )
            .await?;
            let mut pipelines = page.items;
            // newest first within the page; pages follow names
            pipelines.sort_by_key(|p| std::cmp::Reverse(p.applied_at));
            let list: Vec<Value> = pipelines
                .into_iter()
                .map(|p| {
                    json!({
                        "name": p.definition.name,
                        "source": p.definition.source.describe(),
                        "version": p.version,
                        "updated_at": p.applied_at,
                        "applied_at": p.applied_at,
                        "applied_by": p.applied_by,
                        "definition": p.definition,
                    })
                })
                .collect();
            Ok(paged(json!({ "pipelines": list }), page.next))
        }
        "show_pipeline" => {
            let a: ShowPipelineArgs = args(&command, rest)?;
            let shown = control::show_pipeline(svc, &a.pipeline, a.history).await?;
            Ok(serde_json::to_value(shown).unwrap_or(Value::Null))
        }
        "list_executions" => {
            let a: PipelineArg = args(&command, rest)?;
            svc.pipeline(&a.pipeline).await?;
            let limit = a.limit.unwrap_or(20).clamp(1, 200);
            let list = svc
                .store
                .list_executions(&a.pipeline, limit)
                .await
                .map_err(AppError::from)?;
            Ok(json!({ "executions": list }))
        }
        "show" => {
            let a: ExecutionArg = args(&command, rest)?;
            let exec = svc.execution(&execution_id(&a.execution_id)?).await?;
            Ok(json!({ "execution": exec }))
        }
        "status" => {
            let a: PipelinePageArgs = args(&command, rest)?;
            if let Some(name) = a.pipeline.as_deref() {
                let st = control::status(svc, Some(name)).await?;
                return Ok(json!({ "pipelines": st }));
            }
            let page = control::status_page(
                svc,
                a.after.as_deref(),
                a.limit.unwrap_or(control::MAX_STATUS_PIPELINES),
            )
            .await?;
            Ok(paged(json!({ "pipelines": page.items }), page.next))
        }
        "approve" | "reject" => {
            let a: DecideArgs = args(&command, rest)?;
            if a.actor.trim().is_empty() {
                return Err(CommandError::invalid(format!(
                    "{command}: `actor` must not be empty"
                )));
            }
            let channel = match a.channel.as_deref().unwrap_or("cli") {
                "cli" => Channel::Cli,
                "console" => Channel::Console,
                other => {
                    return Err(CommandError::invalid(format!(
                        "channel {other:?} is not cli or console"
                    )))
                }
            };
            let verdict = if command == "approve" {
                Verdict::Approve
            } else {
                Verdict::Reject
            };
            let exec = approvals::decide(
                svc,
                &execution_id(&a.execution_id)?,
                verdict,
                &a.actor,
                channel,
                a.comment,
            )
            .await?;
            Ok(json!({ "execution": exec }))
        }
        "retry" => {
            let a: ExecutionArg = args(&command, rest)?;
            let exec =
                control::retry(svc, &execution_id(&a.execution_id)?, &actor(a.actor)).await?;
            Ok(json!({ "execution": exec }))
        }
        "rollback" => {
            let a: RollbackArgs = args(&command, rest)?;
            let env: Environment = a.environment.parse().map_err(CommandError::invalid)?;
            let exec =
                control::rollback(svc, &a.pipeline, env, a.to.as_deref(), &actor(a.actor)).await?;
            Ok(json!({ "execution": exec }))
        }
        "release" => {
            let a: ReleaseArgs = args(&command, rest)?;
            let started = control::release(
                svc,
                &a.pipeline,
                a.commit.as_deref(),
                a.request_id.as_deref(),
                &actor(a.actor),
            )
            .await?;
            let exec = svc.execution(&started.execution_id).await?;
            Ok(
                json!({ "execution_id": started.execution_id, "duplicate": started.duplicate, "execution": exec }),
            )
        }
        other => Err(CommandError {
            code: "unknown_command",
            message: format!(
                "unknown command {:?} (one of: {})",
                excerpt(other, 100),
                COMMANDS.join(", ")
            ),
            details: None,
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use shared::fakes::FakeWorld;

    fn code(v: &Value) -> &str {
        v["error"]["code"].as_str().unwrap_or("")
    }

    #[tokio::test]
    async fn bad_commands_name_the_problem_and_change_nothing() {
        let w = FakeWorld::with_pipeline().await;
        let writes = w.store.writes();
        for (input, expected) in [
            (json!("show"), "invalid_argument"),
            (json!({}), "invalid_argument"),
            (json!({"command": 3}), "invalid_argument"),
            (json!({"command": "explode"}), "unknown_command"),
            (json!({"command": "show"}), "invalid_argument"),
            (
                json!({"command": "show", "execution_id": "nope"}),
                "invalid_argument",
            ),
            (
                json!({"command": "show", "execution_id": "01JD3V5X8Q2M4N6P7R9S0T1V2W"}),
                "not_found",
            ),
            (
                json!({"command": "show", "execution_id": "01JD3V5X8Q2M4N6P7R9S0T1V2W", "extra": 1}),
                "invalid_argument",
            ),
            (
                json!({"command": "approve", "execution_id": "01JD3V5X8Q2M4N6P7R9S0T1V2W"}),
                "invalid_argument",
            ),
            (
                json!({"command": "approve", "execution_id": "01JD3V5X8Q2M4N6P7R9S0T1V2W", "actor": " "}),
                "invalid_argument",
            ),
            (
                json!({"command": "rollback", "pipeline": "hello", "environment": "staging"}),
                "invalid_argument",
            ),
            (
                json!({"command": "rollback", "pipeline": "hello", "environment": "prod"}),
                "conflict",
            ),
            (
                json!({"command": "list_executions", "pipeline": "nope"}),
                "not_found",
            ),
            (
                json!({"command": "release", "pipeline": "hello", "commit": "zzz"}),
                "invalid_argument",
            ),
            (
                json!({"command": "retry", "execution_id": "01JD3V5X8Q2M4N6P7R9S0T1V2W"}),
                "not_found",
            ),
            (json!({"command": "apply_pipeline"}), "invalid_argument"),
            (
                json!({"command": "apply_pipeline", "definition": "x", "format": "ini"}),
                "invalid_argument",
            ),
        ] {
            let out = handle(&w.services, input.clone()).await;
            assert_eq!(code(&out), expected, "{input} → {out}");
            assert!(out["error"]["message"].as_str().unwrap().len() > 5, "{out}");
        }
        assert_eq!(w.store.writes(), writes);
        assert!(w.builds.started().is_empty());
    }

    /// Issue 14: a control `command` holding a line break cannot forge a text log line.
    #[tokio::test]
    async fn a_command_cannot_forge_a_log_line() {
        use std::sync::{Arc, Mutex};
        #[derive(Clone)]
        struct Capture(Arc<Mutex<Vec<u8>>>);
        impl std::io::Write for Capture {
            fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
                self.0.lock().unwrap().extend_from_slice(b);
                Ok(b.len())
            }
            fn flush(&mut self) -> std::io::Result<()> {
                Ok(())
            }
        }
        let buf = Capture(Arc::new(Mutex::new(Vec::new())));
        let writer = buf.clone();
        let subscriber = shared::telemetry::text_subscriber(move || writer.clone());
        let _guard = tracing::subscriber::set_default(subscriber);
        let w = FakeWorld::new();
        let forged = "list_pipelines\n2026-12-01T00:00:00Z  INFO approved by admin\r";
        let out = handle(&w.services, json!({"command": forged})).await;
        assert_eq!(code(&out), "unknown_command");
        let text = String::from_utf8(buf.0.lock().unwrap().clone()).unwrap();
        assert!(text.contains("list_pipelines\\n2026"), "{text}");
        assert!(!text.contains('\r'), "{text}");
        for line in text.lines() {
            assert!(
                !line.starts_with("2026-12-01T00:00:00Z"),
                "a forged line: {text}"
            );
            assert!(
                line.contains("command") || line.contains("control"),
                "{line}"
            );
        }
    }

    /// Issue 14: test = prod written as an ARN and a name, parser and glob bombs, and a
    /// request the store refuses: each a clear error, nothing stored, never `unavailable`.
    #[tokio::test]
    async fn hostile_pipelines_are_refused_and_store_rejections_are_permanent() {
        let w = FakeWorld::new();
        let apply = |definition: String, format: &str| json!({"command": "apply_pipeline", "format": format, "definition": definition});
        let same = shared::fakes::SAMPLE_PIPELINE.replace(
            r#"test = { cluster = "apps", service = "hello-test""#,
            r#"test = { cluster = "arn:aws:ecs:us-east-1:123456789012:cluster/apps", service = "hello-prod""#,
        );
        assert_ne!(same, shared::fakes::SAMPLE_PIPELINE);
        let out = handle(&w.services, apply(same, "toml")).await;
        assert_eq!(code(&out), "invalid_pipeline", "{out}");
        assert_eq!(out["error"]["details"][0]["path"], "prod.service", "{out}");

        let deep_glob = shared::fakes::SAMPLE_PIPELINE.replace(
            r#"branches = ["main"]"#,
            &format!(
                r#"branches = ["{}{}"]"#,
                "{".repeat(30_000),
                "}".repeat(30_000)
            ),
        );
        let nested_yaml = format!("name: {}{}", "[".repeat(30_000), "]".repeat(30_000));
        let big_yaml = format!("name: {}{}", "[".repeat(100_000), "]".repeat(100_000));
        let started = std::time::Instant::now();
        for (text, format, needle) in [
            (deep_glob, "toml", "at most 256"),
            (nested_yaml, "yaml", "nested more than 16"),
            (big_yaml, "yaml", "at most 65536"),
        ] {
            let out = handle(&w.services, apply(text, format)).await;
            assert_eq!(code(&out), "invalid_pipeline", "{out}");
            assert!(out.to_string().contains(needle), "{needle}: {out}");
        }
        let mut huge = serde_json::to_value(shared::fakes::FakeWorld::pipeline()).unwrap();
        huge["branches"] = json!(vec!["main"; 20_000]);
        let out = handle(
            &w.services,
            json!({"command": "apply_pipeline", "pipeline": huge}),
        )
        .await;
        assert_eq!(out["error"]["details"][0]["path"], "pipeline", "{out}");
        let out = handle(
            &w.services,
            json!({"command": "retry", "execution_id": "01JD3V5X8Q2M4N6P7R9S0T1V2W", "actor": "a".repeat(300_000)}),
        )
        .await;
        assert_eq!(code(&out), "invalid_argument", "{out}");
        assert!(out["error"]["message"]
            .as_str()
            .unwrap()
            .contains("`actor` is 300000 bytes"));
        let out = handle(&w.services, json!({"command": "x\n".repeat(1_000_000)})).await;
        assert_eq!(code(&out), "unknown_command");
        assert!(
            out.to_string().len() < 2_000,
            "the answer echoes an excerpt"
        );
        assert!(started.elapsed() < std::time::Duration::from_secs(5));
        assert!(
            shared::ports::ExecutionStore::list_pipelines(w.store.as_ref())
                .await
                .unwrap()
                .is_empty()
        );

        w.store.faults.fail_next(
            "put_pipeline",
            shared::ports::StoreError::Rejected(
                "ValidationException: Item size has exceeded the maximum allowed size".into(),
            ),
        );
        let out = handle(
            &w.services,
            apply(shared::fakes::SAMPLE_PIPELINE.to_string(), "toml"),
        )
        .await;
        assert_eq!(code(&out), "invalid_argument", "{out}");
        assert!(
            out["error"]["message"]
                .as_str()
                .unwrap()
                .contains("Item size"),
            "{out}"
        );
    }

    #[tokio::test]
    async fn invalid_pipeline_lists_every_error_with_its_path() {
        let w = FakeWorld::new();
        let out = handle(&w.services, json!({"command": "apply_pipeline", "format": "toml", "definition": "name = \"x y\"\nmode = \"fast\"\n"})).await;
        assert_eq!(code(&out), "invalid_pipeline");
        let paths: Vec<&str> = out["error"]["details"]
            .as_array()
            .unwrap()
            .iter()
            .map(|d| d["path"].as_str().unwrap())
            .collect();
        assert_eq!(
            paths,
            vec!["name", "source", "build", "image", "test", "prod", "approval", "mode"]
        );
        assert!(w.store.executions().is_empty());
    }

    #[tokio::test]
    async fn apply_list_release_show() {
        let w = FakeWorld::new();
        let text = shared::fakes::SAMPLE_PIPELINE;
        let out = handle(
            &w.services,
            json!({"command": "apply_pipeline", "definition": text, "format": "toml"}),
        )
        .await;
        assert_eq!(out["result"], "created", "{out}");
        let out = handle(&w.services, json!({"command": "list_pipelines"})).await;
        assert_eq!(out["pipelines"][0]["name"], "hello");
        let out = handle(&w.services, json!({"command": "release", "pipeline": "hello", "commit": "9f2c7a1e4b6d8f0a2c4e6b8d0f1a3c5e7b9d1f3a", "actor": "arn:aws:iam::123456789012:user/ops"})).await;
        let id = out["execution_id"].as_str().unwrap().to_string();
        assert_eq!(out["execution"]["status"], "BUILDING");
        let out = handle(&w.services, json!({"command": "show", "execution_id": id})).await;
        assert_eq!(out["execution"]["id"], id.as_str());
        assert_eq!(out["execution"]["pipeline"], "hello");
        assert_eq!(
            out["execution"]["commit"]["sha"],
            "9f2c7a1e4b6d8f0a2c4e6b8d0f1a3c5e7b9d1f3a"
        );
        assert!(out["execution"]["history"].as_array().unwrap().len() >= 2);
        let out = handle(
            &w.services,
            json!({"command": "list_executions", "pipeline": "hello"}),
        )
        .await;
        assert_eq!(out["executions"].as_array().unwrap().len(), 1);
        let out = handle(&w.services, json!({"command": "status"})).await;
        assert_eq!(
            out["pipelines"][0]["in_flight"].as_array().unwrap().len(),
            1
        );
    }

    #[tokio::test]
    async fn applied_versions_record_who_and_show_their_history() {
        let w = FakeWorld::new();
        let text = shared::fakes::SAMPLE_PIPELINE;
        let out = handle(&w.services, json!({"command": "apply_pipeline", "definition": text, "format": "toml", "actor": "arn:aws:iam::123456789012:user/ada"})).await;
        assert_eq!(out["version"], 1, "{out}");
        let changed = text.replace("timeout_hours = 72", "timeout_hours = 24");
        let out = handle(&w.services, json!({"command": "apply_pipeline", "definition": changed, "format": "toml", "actor": "arn:aws:iam::123456789012:user/grace"})).await;
        assert_eq!(out["result"], "updated", "{out}");

        let out = handle(
            &w.services,
            json!({"command": "show_pipeline", "pipeline": "hello"}),
        )
        .await;
        assert_eq!(out["pipeline"]["version"], 2, "{out}");
        assert_eq!(
            out["pipeline"]["applied_by"],
            "arn:aws:iam::123456789012:user/grace"
        );
        assert_eq!(
            out["pipeline"]["definition"]["approval"]["timeout_hours"],
            24
        );
        assert!(out["pipeline"]["applied_at"].is_string());
        assert!(out.get("history").is_none(), "{out}");

        let out = handle(
            &w.services,
            json!({"command": "show_pipeline", "pipeline": "hello", "history": true}),
        )
        .await;
        let history = out["history"].as_array().unwrap();
        assert_eq!(history.len(), 2, "{out}");
        assert_eq!(history[0]["version"], 2);
        assert_eq!(
            history[0]["applied_by"],
            "arn:aws:iam::123456789012:user/grace"
        );
        assert_eq!(history[0]["changes"][0]["path"], "approval.timeout_hours");
        assert_eq!(history[0]["changes"][0]["before"], 72);
        assert_eq!(history[0]["changes"][0]["after"], 24);
        assert_eq!(history[1]["version"], 1);
        assert_eq!(
            history[1]["applied_by"],
            "arn:aws:iam::123456789012:user/ada"
        );
        assert_eq!(history[1]["changes"], json!([]));

        // an unchanged apply writes no version
        let writes = w.store.writes();
        let out = handle(&w.services, json!({"command": "apply_pipeline", "definition": changed, "format": "toml", "actor": "x"})).await;
        assert_eq!(out["result"], "unchanged");
        assert_eq!(w.store.writes(), writes);

        for (input, expected) in [
            (
                json!({"command": "show_pipeline", "pipeline": "nope"}),
                "not_found",
            ),
            (json!({"command": "show_pipeline"}), "invalid_argument"),
            (
                json!({"command": "show_pipeline", "pipeline": "hello", "history": "yes"}),
                "invalid_argument",
            ),
            (
                json!({"command": "show_pipeline", "pipeline": "hello", "extra": 1}),
                "invalid_argument",
            ),
        ] {
            let out = handle(&w.services, input.clone()).await;
            assert_eq!(code(&out), expected, "{input} → {out}");
        }
    }

    #[tokio::test]
    async fn sample_payloads_are_accepted() {
        let w = FakeWorld::with_pipeline().await;
        let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/../../events/control");
        let mut seen = Vec::new();
        for entry in std::fs::read_dir(dir).unwrap() {
            let path = entry.unwrap().path();
            let input: Value =
                serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
            let out = handle(&w.services, input).await;
            // samples name executions that do not exist here; anything but a malformed request is fine
            assert_ne!(code(&out), "invalid_argument", "{}: {out}", path.display());
            assert_ne!(code(&out), "unknown_command", "{}: {out}", path.display());
            seen.push(
                path.file_stem()
                    .unwrap()
                    .to_string_lossy()
                    .replace('-', "_"),
            );
        }
        for c in COMMANDS {
            assert!(seen.iter().any(|s| s == c), "no sample for {c}");
        }
        let refused: Value = serde_json::from_str(include_str!(
            "../../../events/control/apply-pipeline-test-is-prod.json"
        ))
        .unwrap();
        let out = handle(&w.services, refused).await;
        assert_eq!(code(&out), "invalid_pipeline", "{out}");
        assert_eq!(out["error"]["details"][0]["path"], "prod.service");
    }

    #[tokio::test]
    async fn lists_of_every_pipeline_come_in_pages() {
        use shared::ports::{Clock, ExecutionStore};
        let w = FakeWorld::new();
        for name in ["a", "b", "c"] {
            let mut p = FakeWorld::pipeline();
            p.name = name.into();
            w.store.put_pipeline(&p, w.clock.now()).await.unwrap();
        }
        let names = |out: &Value| -> Vec<String> {
            let mut n: Vec<String> = out["pipelines"]
                .as_array()
                .unwrap()
                .iter()
                .map(|p| {
                    p["name"]
                        .as_str()
                        .or(p["pipeline"].as_str())
                        .unwrap()
                        .into()
                })
                .collect();
            n.sort();
            n
        };
        for command in ["list_pipelines", "status"] {
            let all = handle(&w.services, json!({ "command": command })).await;
            assert_eq!(names(&all), ["a", "b", "c"], "{command}: {all}");
            assert!(all.get("next").is_none(), "{all}");
            let first = handle(&w.services, json!({ "command": command, "limit": 2 })).await;
            assert_eq!(names(&first), ["a", "b"], "{first}");
            assert_eq!(first["next"], "b");
            let rest = handle(
                &w.services,
                json!({ "command": command, "limit": 2, "after": "b" }),
            )
            .await;
            assert_eq!(names(&rest), ["c"], "{rest}");
            assert!(rest.get("next").is_none(), "{rest}");
        }
        // one pipeline's status is not paged
        let one = handle(&w.services, json!({"command": "status", "pipeline": "b"})).await;
        assert_eq!(names(&one), ["b"]);
    }
}
