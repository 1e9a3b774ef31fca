//! `shipgate`: the operator CLI (talks to `shipgate-control` through the Lambda Invoke API) and
//! the local sandbox (`shipgate dev`).

mod client;
mod dev;
mod doctor;
mod output;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, Parser, Subcommand};
use shared::domain::ExecutionId;
use shared::protocol::{
    Answer, ApplyPipeline, ControlRequest, Decide, ExecutionRef, ListExecutions, PipelineFilter,
    Release, Rollback, ShowPipeline,
};

use client::{ClientError, ControlClient};

/// shipgate — push → build → test → approve → production, serverless on AWS.
#[derive(Parser, Debug)]
#[command(name = "shipgate", version, about, long_about = None, propagate_version = true)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

/// Options of every command that talks to shipgate-control.
#[derive(Args, Debug, Clone)]
struct Remote {
    /// Print the raw JSON answer instead of a table.
    #[arg(long, global = true)]
    json: bool,
    /// The control function to invoke.
    #[arg(
        long,
        env = "SHIPGATE_CONTROL_FUNCTION",
        default_value = "shipgate-control",
        global = true
    )]
    function: String,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Manage pipeline definitions.
    Pipeline {
        #[command(subcommand)]
        command: PipelineCommand,
        #[command(flatten)]
        remote: Remote,
    },
    /// What runs in test and prod (commit, digest, since when) and what is in flight.
    Status {
        /// Only this pipeline.
        pipeline: Option<String>,
        /// Also list every revision kept per environment (what `rollback` can restore).
        #[arg(long)]
        history: bool,
        #[command(flatten)]
        remote: Remote,
    },
    /// Recent executions of a pipeline, newest first.
    Executions {
        pipeline: String,
        /// How many to list.
        #[arg(long, default_value_t = 20)]
        limit: usize,
        #[command(flatten)]
        remote: Remote,
    },
    /// One execution with the timeline of its history.
    Show {
        execution_id: String,
        #[command(flatten)]
        remote: Remote,
    },
    /// Approve an execution awaiting approval: production gets the digest that ran in test.
    Approve {
        execution_id: String,
        /// A comment recorded with the decision.
        #[arg(long)]
        comment: Option<String>,
        #[command(flatten)]
        remote: Remote,
    },
    /// Reject an execution awaiting approval.
    Reject {
        execution_id: String,
        /// A comment recorded with the decision.
        #[arg(long)]
        comment: Option<String>,
        #[command(flatten)]
        remote: Remote,
    },
    /// Restart a failed execution from its failed stage (same commit; same digest for deploys).
    Retry {
        execution_id: String,
        #[command(flatten)]
        remote: Remote,
    },
    /// Point an environment back at an earlier release: the newest release older than the one it
    /// was last asked to run (after a failed deployment: the last good one; again: one further
    /// back), or the one `--to` names.
    Rollback {
        pipeline: String,
        /// The environment: prod or test.
        #[arg(long = "env", default_value = "prod")]
        environment: String,
        /// An execution id or commit SHA that once ran there successfully
        /// (see `shipgate status PIPELINE --history`).
        #[arg(long)]
        to: Option<String>,
        #[command(flatten)]
        remote: Remote,
    },
    /// Start an execution without a push (a commit, or the branch head).
    Release {
        pipeline: String,
        /// The commit SHA to build (default: the head of the pipeline's branch).
        #[arg(long)]
        commit: Option<String>,
        #[command(flatten)]
        remote: Remote,
    },
    /// Run the whole control plane locally (moto stands in for AWS).
    Dev(dev::DevArgs),
    /// Check that the account is wired for shipgate: identity, the stack and its outputs,
    /// control, rules, dead letters, and per pipeline what it names and whether the stack's
    /// allow-lists cover it. ✓/✗ with the fix for every ✗; exit 0 only when all pass.
    Doctor(doctor::DoctorArgs),
}

#[derive(Subcommand, Debug)]
enum PipelineCommand {
    /// Create or update a pipeline from a TOML, YAML or JSON file (validated; every problem is
    /// listed with its field path).
    Apply {
        /// The pipeline file.
        file: PathBuf,
        /// Refuse (store nothing) when the stack does not cover the pipeline (its allow-lists
        /// and rules; see `shipgate doctor`) or cannot be read. Without it, a warning.
        #[arg(long)]
        strict: bool,
        /// The control-plane stack whose allow-lists are checked.
        #[arg(long, env = "SHIPGATE_STACK", default_value = "shipgate")]
        stack: String,
    },
    /// List pipelines.
    List,
    /// A pipeline's current definition (version, when and by whom it was applied); with
    /// `--history`, every kept version with what it changed.
    Show {
        /// The pipeline's name.
        name: String,
        /// List the versions (newest first): version, when, by whom, the field changes.
        #[arg(long)]
        history: bool,
    },
}

#[tokio::main]
async fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
        Command::Dev(args) => dev::run(args).await,
        Command::Doctor(args) => doctor::run(args).await,
        other => remote(other).await,
    }
}

/// Exit codes: 0 done, 1 shipgate refused (bad input, wrong state), 3 could not reach AWS.
async fn remote(command: Command) -> ExitCode {
    // `status --history` shows every kept revision instead of what runs
    let mut history_view = false;
    let (remote, request): (Remote, Result<ControlRequest, String>) = match command {
        Command::Pipeline {
            command:
                PipelineCommand::Apply {
                    file,
                    strict,
                    stack,
                },
            remote,
        } => {
            let request = apply_request(&file);
            if request.is_ok() {
                // the stack's allow-lists and rules cover it? (warns; refuses with --strict)
                if let Err(message) = doctor::before_apply(&file, &stack, strict).await {
                    eprintln!("error: {message}");
                    return ExitCode::from(1);
                }
            }
            (remote, request)
        }
        Command::Pipeline {
            command: PipelineCommand::List,
            remote,
        } => (
            remote,
            Ok(ControlRequest::ListPipelines(PipelineFilter::default())),
        ),
        Command::Pipeline {
            command: PipelineCommand::Show { name, history },
            remote,
        } => (
            remote,
            Ok(ControlRequest::ShowPipeline(ShowPipeline {
                pipeline: name,
                history,
            })),
        ),
        Command::Status {
            pipeline,
            history,
            remote,
        } => {
            history_view = history;
            (
                remote,
                Ok(ControlRequest::Status(PipelineFilter {
                    pipeline,
                    ..PipelineFilter::default()
                })),
            )
        }
        Command::Executions {
            pipeline,
            limit,
            remote,
        } => (
            remote,
            Ok(ControlRequest::ListExecutions(ListExecutions {
                pipeline,
                limit: Some(limit),
            })),
        ),
        Command::Show {
            execution_id,
            remote,
        } => (
            remote,
            execution_id_arg(&execution_id).map(|execution_id| {
                ControlRequest::Show(ExecutionRef {
                    execution_id,
                    actor: None,
                })
            }),
        ),
        Command::Approve {
            execution_id,
            comment,
            remote,
        } => (
            remote,
            execution_id_arg(&execution_id)
                .map(|execution_id| ControlRequest::Approve(decision(execution_id, comment))),
        ),
        Command::Reject {
            execution_id,
            comment,
            remote,
        } => (
            remote,
            execution_id_arg(&execution_id)
                .map(|execution_id| ControlRequest::Reject(decision(execution_id, comment))),
        ),
        Command::Retry {
            execution_id,
            remote,
        } => (
            remote,
            execution_id_arg(&execution_id).map(|execution_id| {
                ControlRequest::Retry(ExecutionRef {
                    execution_id,
                    actor: None,
                })
            }),
        ),
        Command::Rollback {
            pipeline,
            environment,
            to,
            remote,
        } => (
            remote,
            environment
                .parse()
                .map(|environment| {
                    ControlRequest::Rollback(Rollback {
                        pipeline,
                        environment,
                        to,
                        actor: None,
                    })
                })
                .map_err(|e: shared::domain::UnknownEnvironment| e.to_string()),
        ),
        Command::Release {
            pipeline,
            commit,
            remote,
        } => (
            remote,
            Ok(ControlRequest::Release(Release {
                pipeline,
                commit,
                actor: None,
                request_id: Some(ulid::Ulid::new().to_string()),
            })),
        ),
        Command::Dev(_) | Command::Doctor(_) => unreachable!("handled in main"),
    };
    let mut request = match request {
        Ok(r) => r,
        Err(message) => {
            eprintln!("error: {message}");
            return ExitCode::from(1);
        }
    };
    let client = ControlClient::new(&remote.function).await;
    if let Err(e) = act_as_caller(&client, &mut request).await {
        return client_error(e);
    }
    let raw = match invoke_all_pages(&client, &request).await {
        Ok(raw) => raw,
        Err(e) => return client_error(e),
    };
    let answer = Answer::decode(&request, raw.clone());
    if remote.json {
        output::say(&serde_json::to_string_pretty(&raw).unwrap_or_default());
        return match answer {
            Ok(Answer::Refused(_)) => ExitCode::from(1),
            _ => ExitCode::SUCCESS,
        };
    }
    match answer {
        Ok(Answer::Done(response)) => {
            output::render(&response, history_view);
            ExitCode::SUCCESS
        }
        Ok(Answer::Refused(err)) => {
            output::print_error(&err);
            ExitCode::from(1)
        }
        Err(e) => client_error(client.bad_answer(&e)),
    }
}

/// Who the request says acts: the caller's IAM identity (sts:GetCallerIdentity), for the
/// commands control records an actor for. The one place the CLI names the actor.
async fn act_as_caller(
    client: &ControlClient,
    request: &mut ControlRequest,
) -> Result<(), ClientError> {
    if request.records_actor() {
        request.set_actor(client.caller_arn().await?);
    }
    Ok(())
}

fn execution_id_arg(raw: &str) -> Result<ExecutionId, String> {
    raw.parse()
        .map_err(|e: shared::domain::InvalidExecutionId| format!("{raw:?}: {e}"))
}

fn decision(execution_id: ExecutionId, comment: Option<String>) -> Decide {
    Decide {
        execution_id,
        actor: None,
        comment,
        channel: None,
    }
}

/// Invoke; a paged list (`list_pipelines`, `status`) is followed through its `next` pages and
/// answered as one list.
async fn invoke_all_pages(
    client: &ControlClient,
    request: &ControlRequest,
) -> Result<serde_json::Value, ClientError> {
    let mut answer = client.invoke(request).await?;
    let mut request = request.clone();
    while let Some(next) = answer
        .get("next")
        .and_then(serde_json::Value::as_str)
        .map(str::to_string)
    {
        let filter = match &mut request {
            ControlRequest::ListPipelines(f) | ControlRequest::Status(f) => f,
            _ => break,
        };
        if filter.after.as_deref() == Some(next.as_str()) {
            break; // names only grow from page to page; never ask for the same page twice
        }
        filter.after = Some(next);
        let mut page = client.invoke(&request).await?;
        if page.get("error").is_some() {
            return Ok(page);
        }
        let more = page["pipelines"].as_array_mut().map(std::mem::take);
        if let (Some(all), Some(more)) = (answer["pipelines"].as_array_mut(), more) {
            all.extend(more);
        }
        match page.get("next") {
            Some(n) => answer["next"] = n.clone(),
            None => {
                if let Some(o) = answer.as_object_mut() {
                    o.remove("next");
                }
            }
        }
    }
    Ok(answer)
}

fn client_error(e: ClientError) -> ExitCode {
    eprintln!("error: {e}");
    ExitCode::from(3)
}

/// Read a pipeline file and check it locally first, so every problem is shown before any call.
fn apply_request(file: &PathBuf) -> Result<ControlRequest, String> {
    let text = std::fs::read_to_string(file)
        .map_err(|e| format!("cannot read {}: {e}", file.display()))?;
    let name = file.to_string_lossy();
    let format = shared::domain::Format::from_path(&name)
        .ok_or_else(|| format!("{name}: unknown file type (use .toml, .yaml, .yml or .json)"))?;
    if let Err(errors) = shared::domain::PipelineDefinition::parse(&text, format) {
        let mut msg = format!("{name}: {} problem(s):", errors.0.len());
        for e in &errors.0 {
            msg.push_str(&format!("\n  {}: {}", e.path, e.message));
        }
        return Err(msg);
    }
    Ok(ControlRequest::ApplyPipeline(ApplyPipeline {
        definition: Some(text),
        format: Some(format.into()),
        ..ApplyPipeline::default()
    }))
}
