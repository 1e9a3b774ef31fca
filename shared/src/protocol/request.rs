//! Requests: [`ControlRequest`], its arguments and the decoder the control function uses.

use std::fmt::Display;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize};
use serde_json::{Map, Value};

use crate::domain::limits::excerpt;
use crate::domain::{Channel, Environment, ExecutionId, Format};

/// Longest string argument of a command (except `definition`, bounded as a pipeline file).
pub const MAX_ARGUMENT_BYTES: usize = 1024;
/// Executions `list_executions` answers without a `limit`.
pub const DEFAULT_EXECUTION_LIMIT: usize = 20;
/// Most executions `list_executions` answers, whatever the `limit`.
pub const MAX_EXECUTION_LIMIT: usize = 200;
/// Bytes of an unknown command echoed in logs and answers.
const COMMAND_EXCERPT_BYTES: usize = 100;

/// Declares [`ControlRequest`] once: its variants, their wire names, [`ControlRequest::COMMANDS`],
/// [`ControlRequest::command`] and the decoder that names the field a problem is in.
macro_rules! control_requests {
    ($( $(#[doc = $doc:literal])* $command:literal => $variant:ident($arguments:ty), )+) => {
        /// One control command with its arguments: `{"command": "show", "execution_id": "…"}`.
        ///
        /// Deserializing checks what [`ControlRequest::decode`] checks (bounds, unknown
        /// arguments, the field a problem is in).
        #[derive(Debug, Clone, PartialEq, Serialize)]
        #[serde(tag = "command")]
        pub enum ControlRequest {
            $( $(#[doc = $doc])* #[serde(rename = $command)] $variant($arguments), )+
        }

        impl ControlRequest {
            /// Every command, as `--help` texts and the unknown-command error list them.
            pub const COMMANDS: &'static [&'static str] = &[$($command),+];

            /// The command's name on the wire.
            pub fn command(&self) -> &'static str {
                match self {
                    $( ControlRequest::$variant(_) => $command, )+
                }
            }

            /// The arguments of `command` (`None`: no such command), with the path of a problem.
            fn decode_arguments(
                command: &str,
                arguments: Value,
            ) -> Option<Result<ControlRequest, serde_path_to_error::Error<serde_json::Error>>> {
                Some(match command {
                    $( $command => serde_path_to_error::deserialize::<_, $arguments>(arguments)
                        .map(ControlRequest::$variant), )+
                    _ => return None,
                })
            }
        }
    };
}

control_requests! {
    /// Create or update a pipeline.
    "apply_pipeline" => ApplyPipeline(ApplyPipeline),
    /// Every pipeline, newest first.
    "list_pipelines" => ListPipelines(PipelineFilter),
    /// A pipeline's current definition and, with `history`, its kept versions.
    "show_pipeline" => ShowPipeline(ShowPipeline),
    /// Recent executions of a pipeline, newest first.
    "list_executions" => ListExecutions(ListExecutions),
    /// One execution.
    "show" => Show(ExecutionRef),
    /// What runs in test and prod, and what is in flight.
    "status" => Status(PipelineFilter),
    /// Approve an execution awaiting approval.
    "approve" => Approve(Decide),
    /// Reject an execution awaiting approval.
    "reject" => Reject(Decide),
    /// Restart a failed execution from its failed stage.
    "retry" => Retry(ExecutionRef),
    /// Point an environment back at an earlier release.
    "rollback" => Rollback(Rollback),
    /// Start an execution without a push.
    "release" => Release(Release),
}

/// `apply_pipeline`: the definition as an object (`pipeline`) or as text (`definition` in
/// `format`).
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ApplyPipeline {
    /// The definition as an object (validated field by field, bounded like a file)…
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pipeline: Option<Value>,
    /// …or as text in `format`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub definition: Option<String>,
    /// The format of `definition` (default toml).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub format: Option<DefinitionFormat>,
    /// Who applies it (recorded with the version).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub actor: Option<String>,
}

/// The text format of a pipeline definition on the wire.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum DefinitionFormat {
    #[default]
    Toml,
    #[serde(alias = "yml")]
    Yaml,
    Json,
}

impl From<DefinitionFormat> for Format {
    fn from(f: DefinitionFormat) -> Format {
        match f {
            DefinitionFormat::Toml => Format::Toml,
            DefinitionFormat::Yaml => Format::Yaml,
            DefinitionFormat::Json => Format::Json,
        }
    }
}

impl From<Format> for DefinitionFormat {
    fn from(f: Format) -> DefinitionFormat {
        match f {
            Format::Toml => DefinitionFormat::Toml,
            Format::Yaml => DefinitionFormat::Yaml,
            Format::Json => DefinitionFormat::Json,
        }
    }
}

/// `list_pipelines` (which accepts and ignores a `pipeline`) and `status`: one pipeline or all.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PipelineFilter {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pipeline: Option<String>,
    /// Paging of all pipelines by name: the `next` of the previous answer.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub after: Option<String>,
    /// Most pipelines in one answer (bounded by the command's maximum).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub limit: Option<usize>,
    /// `status`: also sign a read-only status page link per pipeline, valid this many days
    /// (at most 90).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub link_days: Option<u32>,
}

/// `show_pipeline`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ShowPipeline {
    pub pipeline: String,
    /// Also list the kept versions with who applied them and what each changed.
    #[serde(default)]
    pub history: bool,
}

/// `list_executions`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ListExecutions {
    pub pipeline: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub limit: Option<usize>,
}

impl ListExecutions {
    /// How many to list: `limit` (default [`DEFAULT_EXECUTION_LIMIT`]) within
    /// 1..=[`MAX_EXECUTION_LIMIT`].
    pub fn limit(&self) -> usize {
        self.limit
            .unwrap_or(DEFAULT_EXECUTION_LIMIT)
            .clamp(1, MAX_EXECUTION_LIMIT)
    }
}

/// `show` (which accepts and ignores an `actor`) and `retry`: one execution.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ExecutionRef {
    #[serde(deserialize_with = "parsed")]
    pub execution_id: ExecutionId,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub actor: Option<String>,
}

/// `approve` and `reject`. `actor` is required (see the handler's `acting`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Decide {
    #[serde(deserialize_with = "parsed")]
    pub execution_id: ExecutionId,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub actor: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub comment: Option<String>,
    /// Where the decision comes from (default cli).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub channel: Option<OperatorChannel>,
}

impl Decide {
    /// The channel recorded with the decision.
    pub fn channel(&self) -> Channel {
        match self.channel.unwrap_or_default() {
            OperatorChannel::Cli => Channel::Cli,
            OperatorChannel::Console => Channel::Console,
        }
    }
}

/// The channels a control decision may come from (e-mail links go through `approvals`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum OperatorChannel {
    #[default]
    Cli,
    Console,
}

/// `rollback`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Rollback {
    pub pipeline: String,
    /// `prod` or `test` (`production` and any case are accepted).
    #[serde(deserialize_with = "parsed")]
    pub environment: Environment,
    /// An execution id or commit SHA that once ran there successfully.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub to: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub actor: Option<String>,
}

/// `release`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Release {
    pub pipeline: String,
    /// The commit SHA to build (default: the head of the pipeline's branch).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub commit: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub actor: Option<String>,
    /// Makes a retried release start nothing new.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub request_id: Option<String>,
}

/// A string argument parsed with the type's `FromStr` (its error names what is wrong).
fn parsed<'de, D, T>(d: D) -> Result<T, D::Error>
where
    D: Deserializer<'de>,
    T: FromStr,
    T::Err: Display,
{
    let text = String::deserialize(d)?;
    text.parse().map_err(serde::de::Error::custom)
}

/// Why a request was refused before any command ran.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RequestError {
    /// Not an object, or no string `command`.
    #[error("{0}")]
    Malformed(String),
    /// `command` names no command.
    #[error(
        "unknown command {:?} (one of: {})",
        excerpt(command, COMMAND_EXCERPT_BYTES),
        ControlRequest::COMMANDS.join(", ")
    )]
    UnknownCommand { command: String },
    /// A known command with a bad argument; the message names the command and the field.
    #[error("{message}")]
    InvalidArgument { command: String, message: String },
}

impl RequestError {
    /// The error code of the answer.
    pub fn code(&self) -> &'static str {
        match self {
            RequestError::UnknownCommand { .. } => "unknown_command",
            RequestError::Malformed(_) | RequestError::InvalidArgument { .. } => "invalid_argument",
        }
    }

    /// The `command` the request named, if it named one.
    pub fn command(&self) -> Option<&str> {
        match self {
            RequestError::Malformed(_) => None,
            RequestError::UnknownCommand { command }
            | RequestError::InvalidArgument { command, .. } => Some(command),
        }
    }
}

impl ControlRequest {
    /// Decode a request as the control function receives it: every string argument (but a
    /// `definition`) is at most [`MAX_ARGUMENT_BYTES`], unknown arguments are refused, and a
    /// problem names its field (`show_pipeline: field `history`: invalid type: …`).
    pub fn decode(input: Value) -> Result<ControlRequest, RequestError> {
        let Value::Object(mut arguments) = input else {
            return Err(RequestError::Malformed(
                "expected a JSON object like {\"command\": \"list_pipelines\"}".into(),
            ));
        };
        let command = match arguments.remove("command") {
            Some(Value::String(c)) => c,
            Some(_) => return Err(RequestError::Malformed("`command` must be a string".into())),
            None => {
                return Err(RequestError::Malformed(format!(
                    "missing `command` (one of: {})",
                    ControlRequest::COMMANDS.join(", ")
                )))
            }
        };
        if let Some(message) = too_long(&command, &arguments) {
            return Err(RequestError::InvalidArgument { command, message });
        }
        match ControlRequest::decode_arguments(&command, Value::Object(arguments)) {
            None => Err(RequestError::UnknownCommand { command }),
            Some(Ok(request)) => Ok(request),
            Some(Err(e)) => {
                let message = argument_problem(&command, e);
                Err(RequestError::InvalidArgument { command, message })
            }
        }
    }

    /// The actor the request asserts, for the commands control records one for (`show`
    /// accepts one and ignores it).
    pub fn actor(&self) -> Option<&str> {
        match self {
            ControlRequest::ApplyPipeline(a) => a.actor.as_deref(),
            ControlRequest::Approve(d) | ControlRequest::Reject(d) => d.actor.as_deref(),
            ControlRequest::Retry(r) => r.actor.as_deref(),
            ControlRequest::Rollback(r) => r.actor.as_deref(),
            ControlRequest::Release(r) => r.actor.as_deref(),
            ControlRequest::ListPipelines(_)
            | ControlRequest::ShowPipeline(_)
            | ControlRequest::ListExecutions(_)
            | ControlRequest::Show(_)
            | ControlRequest::Status(_) => None,
        }
    }

    /// Whether control records who ran this command (it then needs an `actor`).
    pub fn records_actor(&self) -> bool {
        matches!(
            self,
            ControlRequest::ApplyPipeline(_)
                | ControlRequest::Approve(_)
                | ControlRequest::Reject(_)
                | ControlRequest::Retry(_)
                | ControlRequest::Rollback(_)
                | ControlRequest::Release(_)
        )
    }

    /// Set the actor of a command control records one for; other commands are unchanged.
    pub fn set_actor(&mut self, actor: impl Into<String>) {
        if let Some(slot) = self.actor_slot() {
            *slot = Some(actor.into());
        }
    }

    fn actor_slot(&mut self) -> Option<&mut Option<String>> {
        match self {
            ControlRequest::ApplyPipeline(a) => Some(&mut a.actor),
            ControlRequest::Approve(d) | ControlRequest::Reject(d) => Some(&mut d.actor),
            ControlRequest::Retry(r) => Some(&mut r.actor),
            ControlRequest::Rollback(r) => Some(&mut r.actor),
            ControlRequest::Release(r) => Some(&mut r.actor),
            ControlRequest::ListPipelines(_)
            | ControlRequest::ShowPipeline(_)
            | ControlRequest::ListExecutions(_)
            | ControlRequest::Show(_)
            | ControlRequest::Status(_) => None,
        }
    }
}

impl<'de> Deserialize<'de> for ControlRequest {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        ControlRequest::decode(Value::deserialize(d)?).map_err(serde::de::Error::custom)
    }
}

/// Every string argument (ids, names, actor, comment, …) is short; only a definition is long.
fn too_long(command: &str, arguments: &Map<String, Value>) -> Option<String> {
    let (name, len) = arguments.iter().find_map(|(k, v)| match v {
        Value::String(s) if k != "definition" && s.len() > MAX_ARGUMENT_BYTES => Some((k, s.len())),
        _ => None,
    })?;
    Some(format!(
        "{}: `{}` is {len} bytes; at most {MAX_ARGUMENT_BYTES} are allowed",
        excerpt(command, COMMAND_EXCERPT_BYTES),
        excerpt(name, COMMAND_EXCERPT_BYTES)
    ))
}

/// `command: field `path`: problem` (or `command: problem` for the request as a whole).
fn argument_problem(command: &str, e: serde_path_to_error::Error<serde_json::Error>) -> String {
    let path = e.path().to_string();
    let inner = e.into_inner().to_string();
    // serde_json's position is meaningless for a decoded value
    let inner = inner.split(" at line ").next().unwrap_or(&inner);
    if path == "." {
        format!("{command}: {inner}")
    } else {
        format!("{command}: field `{path}`: {inner}")
    }
}
