//! What CodeBuild would write to CloudWatch Logs for a build, written to the local CloudWatch
//! Logs (moto): group `/aws/codebuild/<project>`, stream `<build uuid>`, as CodeBuild does by
//! default (`shared::domain::links::build_log`). `shipgate logs` reads them back.

use aws_sdk_cloudwatchlogs::types::InputLogEvent;
use shared::domain::links::build_log;
use shared::domain::Execution;
use tracing::warn;

pub struct BuildLogs {
    client: aws_sdk_cloudwatchlogs::Client,
}

fn now_ms() -> i64 {
    chrono::Utc::now().timestamp_millis()
}

impl BuildLogs {
    pub fn new(sdk: &aws_config::SdkConfig) -> BuildLogs {
        BuildLogs {
            client: aws_sdk_cloudwatchlogs::Client::new(sdk),
        }
    }

    /// The first lines, when the build is seen (the group and stream are created then).
    pub async fn started(&self, build_id: &str, exec: Option<&Execution>) {
        let Some(log) = build_log(build_id) else {
            return;
        };
        // both may exist already (another build of the project; a restarted pump)
        let _ = self
            .client
            .create_log_group()
            .log_group_name(&log.group)
            .send()
            .await;
        let _ = self
            .client
            .create_log_stream()
            .log_group_name(&log.group)
            .log_stream_name(&log.stream)
            .send()
            .await;
        let source = exec
            .map(|e| e.commit.sha.as_str())
            .filter(|s| !s.is_empty())
            .unwrap_or("(branch head)");
        self.put(
            &log.group,
            &log.stream,
            &[
                "[Container] Waiting for agent ping".to_string(),
                "[Container] Phase is DOWNLOAD_SOURCE".to_string(),
                format!("[Container] Source version: {source}"),
                "[Container] Entering phase PRE_BUILD".to_string(),
                "[Container] Running command aws ecr get-login-password | docker login --username AWS --password-stdin".to_string(),
                "Login Succeeded".to_string(),
                "[Container] Entering phase BUILD".to_string(),
                "[Container] Running command make test".to_string(),
            ],
        )
        .await;
    }

    /// The last lines, when the build ends.
    pub async fn finished(&self, build_id: &str, exec: Option<&Execution>, failed: bool) {
        let Some(log) = build_log(build_id) else {
            return;
        };
        let lines: Vec<String> = if failed {
            vec![
                "test result: FAILED. 41 passed; 1 failed (simulated by [fail-build])".into(),
                "make: *** [Makefile:12: test] Error 2".into(),
                "[Container] Command did not exit successfully make test exit status 2".into(),
                "[Container] Phase complete: BUILD State: FAILED".into(),
                "[Container] Phase context status code: COMMAND_EXECUTION_ERROR Message: Error while executing command: make test. Reason: exit status 2".into(),
            ]
        } else {
            let tag = exec.map(Execution::image_tag).unwrap_or_default();
            vec![
                "test result: ok. 42 passed; 0 failed".into(),
                format!("[Container] Running command docker build -t $REPOSITORY_URI:{tag} ."),
                "Successfully built 3f1c2a9b7d10".into(),
                format!("[Container] Running command docker push $REPOSITORY_URI:{tag}"),
                format!("{tag}: digest: sha256:… size: 1470"),
                "[Container] Phase complete: BUILD State: SUCCEEDED".into(),
                "[Container] Phase complete: POST_BUILD State: SUCCEEDED".into(),
            ]
        };
        self.put(&log.group, &log.stream, &lines).await;
    }

    async fn put(&self, group: &str, stream: &str, lines: &[String]) {
        let at = now_ms();
        let events: Vec<InputLogEvent> = lines
            .iter()
            .filter_map(|l| {
                InputLogEvent::builder()
                    .timestamp(at)
                    .message(l)
                    .build()
                    .ok()
            })
            .collect();
        if let Err(e) = self
            .client
            .put_log_events()
            .log_group_name(group)
            .log_stream_name(stream)
            .set_log_events(Some(events))
            .send()
            .await
        {
            warn!(group, stream, error = %aws_sdk_cloudwatchlogs::error::DisplayErrorContext(e), "could not write the simulated build log");
        }
    }
}
