//! `shipgate logs ID [--follow]`: the execution's CodeBuild log, read from CloudWatch Logs
//! (group `/aws/codebuild/<project>`, stream `<build uuid>`: derived from the recorded build id).
//! `--follow` keeps printing new lines until the build has ended and its last lines are out.

use std::process::ExitCode;
use std::time::Duration;

use aws_sdk_cloudwatchlogs::error::{DisplayErrorContext, ProvideErrorMetadata};
use shared::domain::links::{build_log, LogLocation};
use shared::domain::strip::{position, StageState, StripStage};
use shared::domain::{Execution, ExecutionId, Status};
use shared::protocol::{Answer, ControlRequest, ControlResponse, ExecutionRef};

use crate::client::ControlClient;
use crate::output;

const POLL: Duration = Duration::from_secs(2);
/// Most pages read in one look (10,000 events each at most).
const MAX_PAGES: usize = 100;

async fn execution(client: &ControlClient, id: &ExecutionId) -> Result<Execution, ExitCode> {
    let request = ControlRequest::Show(ExecutionRef {
        execution_id: id.clone(),
        actor: None,
    });
    let raw = client.invoke(&request).await.map_err(|e| {
        eprintln!("error: {e}");
        ExitCode::from(3)
    })?;
    match Answer::decode(&request, raw) {
        Ok(Answer::Done(r)) => match *r {
            ControlResponse::Execution(shown) => Ok(shown.execution),
            _ => {
                eprintln!("error: control answered something else than an execution");
                Err(ExitCode::from(3))
            }
        },
        Ok(Answer::Refused(err)) => {
            output::print_error(&err);
            Err(ExitCode::from(1))
        }
        Err(e) => {
            eprintln!("error: {}", client.bad_answer(&e));
            Err(ExitCode::from(3))
        }
    }
}

/// The build is still to come or writing its log: the execution is on the build stage and not
/// done with it (placed by the one exhaustive match, `strip::position`).
fn building(status: Status) -> bool {
    matches!(
        position(status),
        (StripStage::Build, StageState::Pending | StageState::Running)
    )
}

enum Read {
    Read,
    NoStream,
}

/// Print the events after `token` and move `token` on.
async fn read(
    logs: &aws_sdk_cloudwatchlogs::Client,
    log: &LogLocation,
    token: &mut Option<String>,
    json: bool,
) -> Result<Read, String> {
    for _ in 0..MAX_PAGES {
        let out = logs
            .get_log_events()
            .log_group_name(&log.group)
            .log_stream_name(&log.stream)
            .start_from_head(true)
            .set_next_token(token.clone())
            .send()
            .await;
        let out = match out {
            Ok(o) => o,
            Err(e) if e.code() == Some("ResourceNotFoundException") => return Ok(Read::NoStream),
            Err(e) => return Err(DisplayErrorContext(e).to_string()),
        };
        for ev in out.events() {
            let message = ev.message().unwrap_or_default().trim_end_matches('\n');
            if json {
                output::say(
                    &serde_json::json!({"timestamp": ev.timestamp(), "message": message})
                        .to_string(),
                );
            } else {
                output::say(message);
            }
        }
        let next = out.next_forward_token().map(str::to_string);
        // the same token again: the end of the stream for now
        let end = next.is_none() || next == *token;
        *token = next;
        if end || out.events().is_empty() {
            break;
        }
    }
    Ok(Read::Read)
}

pub async fn run(client: &ControlClient, id: &ExecutionId, follow: bool, json: bool) -> ExitCode {
    let mut exec = match execution(client, id).await {
        Ok(e) => e,
        Err(code) => return code,
    };
    while exec.build_id.is_none() {
        if !follow || !building(exec.status) {
            eprintln!(
                "error: execution {id} has no build (status {})",
                exec.status
            );
            return ExitCode::from(1);
        }
        tokio::time::sleep(POLL).await;
        exec = match execution(client, id).await {
            Ok(e) => e,
            Err(code) => return code,
        };
    }
    let build_id = exec.build_id.clone().unwrap_or_default();
    let Some(log) = build_log(&build_id) else {
        eprintln!("error: build id {build_id:?} does not name a CodeBuild log");
        return ExitCode::from(1);
    };
    if !json {
        eprintln!(
            "build {build_id}: log group {} stream {}",
            log.group, log.stream
        );
    }
    let logs = aws_sdk_cloudwatchlogs::Client::new(client.sdk());
    let mut token = None;
    loop {
        let ended = !building(exec.status);
        match read(&logs, &log, &mut token, json).await {
            Err(e) => {
                eprintln!("error: could not read {} {}: {e}", log.group, log.stream);
                return ExitCode::from(3);
            }
            Ok(Read::NoStream) if !follow || ended => {
                eprintln!(
                    "error: no log in CloudWatch Logs at {} {} (the project may log elsewhere: see the build console link in `shipgate show {id}`)",
                    log.group, log.stream
                );
                return ExitCode::from(1);
            }
            Ok(_) if !follow || ended => return ExitCode::SUCCESS,
            Ok(_) => {}
        }
        tokio::time::sleep(POLL).await;
        exec = match execution(client, id).await {
            Ok(e) => e,
            Err(code) => return code,
        };
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_build_writes_while_the_execution_is_on_its_stage() {
        let writing: Vec<Status> = Status::ALL.into_iter().filter(|s| building(*s)).collect();
        assert_eq!(writing, [Status::Received, Status::Building]);
    }
}
