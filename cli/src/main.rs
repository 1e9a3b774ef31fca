//! `shipgate`: the operator CLI (talks to `shipgate-control` through the Lambda Invoke API) and
//! the local sandbox (`shipgate dev`).

mod approvers;
mod aws;
mod client;
mod dev;
mod doctor;
mod links;
mod logs;
mod metrics;
mod output;
mod watch;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, Parser, Subcommand};
use shared::domain::ExecutionId;
use shared::protocol::{
    Answer, ApplyPipeline, ControlRequest, ControlResponse, Decide, ExecutionRef, ListExecutions,
    PipelineFilter, Release, Rollback, ShowPipeline,
};

use client::{ClientError, ControlClient};

/// shipgate — push → build → test → approve → production, serverless on AWS.
#[derive(Parser, Debug)]
#[command(name = "shipgate", version, about, long_about = None, propagate_version = true,
    after_help = "Examples:\n  shipgate status demo\n  shipgate release demo --wait\n  shipgate watch 01JD3V5X8Q2M4N6P7R9S0T1V2W\n  shipgate logs 01JD3V5X8Q2M4N6P7R9S0T1V2W --follow\n  shipgate status --profile ops --region eu-west-1 --output json\n\nOptions like --profile, --region, --output come after the command. Times are printed in UTC. NO_COLOR=1 turns colours off.")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

/// Options of every command that talks to shipgate-control.
#[derive(Args, Debug, Clone)]
struct Remote {
    /// Print the raw JSON answer instead of a table (same as `--output json`).
    #[arg(long, global = true)]
    json: bool,
    /// Output format: table (default) or json (the raw answer).
    #[arg(long, global = true, value_enum)]
    output: Option<aws::OutputFormat>,
    #[command(flatten)]
    aws: aws::AwsOptions,
    /// The control function to invoke.
    #[arg(
        long,
        env = "SHIPGATE_CONTROL_FUNCTION",
        default_value = "shipgate-control",
        global = true
    )]
    function: String,
}

impl Remote {
    fn json(&self) -> bool {
        self.json || self.output == Some(aws::OutputFormat::Json)
    }
}

/// `--wait` of release, retry and approve.
#[derive(Args, Debug, Clone)]
struct Wait {
    /// Then follow the execution like `shipgate watch` and exit with its outcome (0 SUCCEEDED;
    /// see `shipgate watch --help` for the other codes).
    #[arg(long)]
    wait: bool,
    #[command(flatten)]
    watch: watch::WatchOptions,
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
    #[command(
        after_help = "Examples:\n  shipgate status\n  shipgate status demo --history\n  shipgate status demo --link            # a read-only status page link to share (14 days)\n  shipgate status demo --link --link-days 90"
    )]
    Status {
        /// Only this pipeline.
        pipeline: Option<String>,
        /// Also list every revision kept per environment (what `rollback` can restore).
        #[arg(long)]
        history: bool,
        /// Print a signed read-only status page link per pipeline (it can never approve;
        /// rotating the signing key revokes it).
        #[arg(long)]
        link: bool,
        /// How many days the `--link` stays valid (1-90).
        #[arg(long, default_value_t = 14, value_parser = clap::value_parser!(u32).range(1..=90))]
        link_days: u32,
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
    /// One execution with the timeline of its history, its build and console links.
    #[command(after_help = "Example:\n  shipgate show 01JD3V5X8Q2M4N6P7R9S0T1V2W")]
    Show {
        execution_id: String,
        #[command(flatten)]
        remote: Remote,
    },
    /// Approve an execution awaiting approval: production gets the digest that ran in test.
    #[command(
        after_help = "Examples:\n  shipgate approve 01JD3V5X8Q2M4N6P7R9S0T1V2W --comment \"checked on test\"\n  shipgate approve 01JD3V5X8Q2M4N6P7R9S0T1V2W --wait   # exit 0 once prod runs it"
    )]
    Approve {
        execution_id: String,
        /// A comment recorded with the decision.
        #[arg(long)]
        comment: Option<String>,
        #[command(flatten)]
        wait: Wait,
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
    #[command(after_help = "Example:\n  shipgate retry 01JD3V5X8Q2M4N6P7R9S0T1V2W --wait")]
    Retry {
        execution_id: String,
        #[command(flatten)]
        wait: Wait,
        #[command(flatten)]
        remote: Remote,
    },
    /// Point an environment back at an earlier release: the newest release older than the one it
    /// was last asked to run (after a failed deployment: the last good one; again: one further
    /// back), or the one `--to` names.
    #[command(
        after_help = "Examples:\n  shipgate rollback demo                 # asks before it acts\n  shipgate rollback demo --env prod --to 9f2c7a1e --yes\n\nWithout a terminal (scripts, CI) --yes is required."
    )]
    Rollback {
        pipeline: String,
        /// The environment: prod or test.
        #[arg(long = "env", default_value = "prod")]
        environment: String,
        /// An execution id or commit SHA that once ran there successfully
        /// (see `shipgate status PIPELINE --history`).
        #[arg(long)]
        to: Option<String>,
        /// Do not ask for confirmation.
        #[arg(long, short = 'y')]
        yes: bool,
        #[command(flatten)]
        remote: Remote,
    },
    /// Start an execution without a push (a commit, or the branch head).
    #[command(
        after_help = "Examples:\n  shipgate release demo\n  shipgate release demo --commit 9f2c7a1e4b6d8f0a2c4e6b8d0f1a3c5e7b9d1f3a --wait"
    )]
    Release {
        pipeline: String,
        /// The commit SHA to build (default: the head of the pipeline's branch).
        #[arg(long)]
        commit: Option<String>,
        #[command(flatten)]
        wait: Wait,
        #[command(flatten)]
        remote: Remote,
    },
    /// Delivery metrics of a pipeline: deployment frequency, lead time push → production by
    /// stage, change failure rate, time to restore.
    ///
    /// Example: shipgate metrics hello --since 30d
    Metrics {
        pipeline: String,
        /// The window: a number and m, h, d or w (30d, 12h, 2w).
        #[arg(long, default_value = "30d")]
        since: String,
        #[command(flatten)]
        remote: Remote,
    },
    /// Follow an execution: each transition as it happens, links as they become known.
    #[command(
        after_help = "Exit codes: 0 SUCCEEDED, 1 refused (unknown id), 3 AWS unreachable, 4 --timeout passed,\n  10 failed (BUILD_FAILED, TEST_FAILED, PROD_FAILED), 11 REJECTED, 12 EXPIRED, 13 SUPERSEDED, 14 ROLLED_BACK.\n\nExample:\n  shipgate watch 01JD3V5X8Q2M4N6P7R9S0T1V2W --timeout 1800"
    )]
    Watch {
        execution_id: String,
        #[command(flatten)]
        watch: watch::WatchOptions,
        #[command(flatten)]
        remote: Remote,
    },
    /// The execution's build log (CodeBuild, from CloudWatch Logs).
    #[command(
        after_help = "Examples:\n  shipgate logs 01JD3V5X8Q2M4N6P7R9S0T1V2W\n  shipgate logs 01JD3V5X8Q2M4N6P7R9S0T1V2W --follow   # until the build ends"
    )]
    Logs {
        execution_id: String,
        /// Keep printing new lines until the build has ended.
        #[arg(long, short = 'f')]
        follow: bool,
        #[command(flatten)]
        remote: Remote,
    },
    /// The approvers' e-mail subscriptions of a pipeline's approval topic and their filter
    /// policies (each approver receives only their own personal link): list, add, remove.
    #[command(
        after_help = "Examples:\n  shipgate approvers list --pipeline hello\n  shipgate approvers add alice@example.com --pipeline hello\n  shipgate approvers remove alice@example.com --pipeline hello\n\nSee docs/approvals.md, \"Managing approvers\"."
    )]
    Approvers {
        #[command(subcommand)]
        command: approvers::ApproversCommand,
        #[command(flatten)]
        remote: Remote,
    },
    /// Print a shell completion script.
    #[command(
        after_help = "Examples:\n  shipgate completions bash > ~/.local/share/bash-completion/completions/shipgate\n  shipgate completions zsh > \"${fpath[1]}/_shipgate\"\n  shipgate completions fish > ~/.config/fish/completions/shipgate.fish"
    )]
    Completions { shell: clap_complete::Shell },
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
        Command::Metrics {
            pipeline,
            since,
            remote,
        } => metrics::run(pipeline, since, remote).await,
        Command::Doctor(args) => doctor::run(args).await,
        Command::Approvers { command, remote } => approvers::run(command, remote).await,
        Command::Completions { shell } => {
            use clap::CommandFactory;
            // into memory first: clap_complete panics when stdout is closed
            let mut script = Vec::new();
            clap_complete::generate(shell, &mut Cli::command(), "shipgate", &mut script);
            output::write_out(&script);
            ExitCode::SUCCESS
        }
        Command::Watch {
            execution_id,
            watch,
            remote,
        } => {
            follow_command(&execution_id, &remote, |c, id, json| async move {
                watch::follow(&c, &id, &watch, json).await
            })
            .await
        }
        Command::Logs {
            execution_id,
            follow,
            remote,
        } => {
            follow_command(&execution_id, &remote, |c, id, json| async move {
                logs::run(&c, &id, follow, json).await
            })
            .await
        }
        other => remote(other).await,
    }
}

/// `watch` and `logs`: an execution id, a client, then the command.
async fn follow_command<F, Fut>(raw_id: &str, remote: &Remote, run: F) -> ExitCode
where
    F: FnOnce(ControlClient, ExecutionId, bool) -> Fut,
    Fut: std::future::Future<Output = ExitCode>,
{
    remote.aws.init_logging();
    let id = match execution_id_arg(raw_id) {
        Ok(id) => id,
        Err(message) => {
            eprintln!("error: {message}");
            return ExitCode::from(1);
        }
    };
    let client = ControlClient::new(&remote.function, &remote.aws).await;
    run(client, id, remote.json()).await
}

/// A rollback changes what runs: confirm it (`--yes`, or a `y` typed at a terminal).
fn confirm_rollback(pipeline: &str, environment: &str, to: Option<&str>) -> Result<(), String> {
    use std::io::{BufRead, IsTerminal, Write};
    let target = to.map_or("the previous good release".to_string(), |t| t.to_string());
    if !std::io::stdin().is_terminal() {
        return Err(format!(
            "rollback of {pipeline} {environment} to {target} needs confirmation: add --yes (no terminal to ask on)"
        ));
    }
    eprint!("Roll back {pipeline} {environment} to {target}? [y/N] ");
    let _ = std::io::stderr().flush();
    let mut answer = String::new();
    let _ = std::io::stdin().lock().read_line(&mut answer);
    if matches!(answer.trim(), "y" | "Y" | "yes" | "YES" | "Yes") {
        Ok(())
    } else {
        Err("rollback cancelled; nothing was changed".into())
    }
}

/// Exit codes: 0 done, 1 shipgate refused (bad input, wrong state), 3 could not reach AWS.
async fn remote(command: Command) -> ExitCode {
    // `status --history` shows every kept revision instead of what runs
    let mut history_view = false;
    // `--wait`: follow the execution the answer names
    let mut wait: Option<watch::WatchOptions> = None;
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
            link,
            link_days,
            remote,
        } => {
            history_view = history;
            (
                remote,
                Ok(ControlRequest::Status(PipelineFilter {
                    pipeline,
                    link_days: link.then_some(link_days),
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
            wait: w,
            remote,
        } => (
            {
                wait = w.wait.then_some(w.watch);
                remote
            },
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
            wait: w,
            remote,
        } => (
            {
                wait = w.wait.then_some(w.watch);
                remote
            },
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
            yes,
            remote,
        } => (
            remote,
            if yes {
                Ok(())
            } else {
                confirm_rollback(&pipeline, &environment, to.as_deref())
            }
            .and_then(|()| {
                environment
                    .parse()
                    .map_err(|e: shared::domain::UnknownEnvironment| e.to_string())
            })
            .map(|environment| {
                ControlRequest::Rollback(Rollback {
                    pipeline,
                    environment,
                    to,
                    actor: None,
                })
            }),
        ),
        Command::Release {
            pipeline,
            commit,
            wait: w,
            remote,
        } => (
            {
                wait = w.wait.then_some(w.watch);
                remote
            },
            Ok(ControlRequest::Release(Release {
                pipeline,
                commit,
                actor: None,
                request_id: Some(ulid::Ulid::new().to_string()),
            })),
        ),
        Command::Dev(_)
        | Command::Doctor(_)
        | Command::Approvers { .. }
        | Command::Metrics { .. }
        | Command::Completions { .. }
        | Command::Watch { .. }
        | Command::Logs { .. } => unreachable!("handled in main"),
    };
    let mut request = match request {
        Ok(r) => r,
        Err(message) => {
            eprintln!("error: {message}");
            return ExitCode::from(1);
        }
    };
    remote.aws.init_logging();
    let client = ControlClient::new(&remote.function, &remote.aws).await;
    links::set_cli_region(client.region());
    let proof = match act_as_caller(&client, &mut request).await {
        Ok(proof) => proof,
        Err(e) => return client_error(e),
    };
    let raw = match invoke_all_pages(&client, &request, proof).await {
        Ok(raw) => raw,
        Err(e) => return client_error(e),
    };
    let answer = Answer::decode(&request, raw.clone());
    let json = remote.json();
    let waited = |answer: &Result<Answer, serde_json::Error>| match answer {
        Ok(Answer::Done(r)) => match &**r {
            ControlResponse::Execution(e) => Some(e.execution.id.clone()),
            ControlResponse::Released(r) => Some(r.execution_id.clone()),
            _ => None,
        },
        _ => None,
    };
    let follow = wait.and_then(|w| waited(&answer).map(|id| (id, w)));
    if json {
        output::say(&serde_json::to_string_pretty(&raw).unwrap_or_default());
        return match (answer, follow) {
            (Ok(Answer::Refused(_)), _) => ExitCode::from(1),
            (_, Some((id, w))) => watch::follow(&client, &id, &w, true).await,
            _ => ExitCode::SUCCESS,
        };
    }
    match answer {
        Ok(Answer::Done(response)) => {
            output::render(&response, history_view);
            match follow {
                Some((id, w)) => {
                    output::say("");
                    watch::follow(&client, &id, &w, false).await
                }
                None => ExitCode::SUCCESS,
            }
        }
        Ok(Answer::Refused(err)) => {
            output::print_error(&err);
            ExitCode::from(1)
        }
        Err(e) => client_error(client.bad_answer(&e)),
    }
}

/// The proof of who acts (a signed sts:GetCallerIdentity bound to this request), for the
/// commands control records an actor for: control records the ARN AWS answers for it. The one
/// place the CLI names the actor; it asserts none itself.
async fn act_as_caller(
    client: &ControlClient,
    request: &mut ControlRequest,
) -> Result<Option<shared::domain::identity::IdentityProof>, ClientError> {
    if request.records_actor() {
        return client.identity_proof(request).await.map(Some);
    }
    Ok(None)
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
    proof: Option<shared::domain::identity::IdentityProof>,
) -> Result<serde_json::Value, ClientError> {
    let mut answer = client.invoke_proven(request, proof).await?;
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
