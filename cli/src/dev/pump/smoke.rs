//! The pump's part in a test verification's smoke test: the smoke project's build (started by
//! deploy-events in the local CodeBuild) finishes after `--build-seconds` like an image build,
//! without pushing an image; `[smoke-fail]` in the commit message fails it. Its state change is
//! delivered to build-events, as EventBridge's second CodeBuild rule (smoke projects) would.

use shared::domain::Execution;

use super::events::build_event;
use super::rules::fails;
use super::{Function, Pump};

/// The commit-message marker that fails the simulated smoke test build.
pub const SMOKE_FAIL: &str = "[smoke-fail]";

impl Pump {
    pub(super) async fn smoke_finished(&mut self, build_id: &str, exec: Option<&Execution>) {
        let target = exec
            .and_then(|e| e.verify_test.as_ref())
            .and_then(|v| v.smoke.as_ref())
            .map(|s| s.target_url.clone())
            .unwrap_or_default();
        // what the example buildspec does: curl -fsS "$TARGET_URL"
        let curl = if target.is_empty() {
            Ok("no TARGET_URL".to_string())
        } else {
            match self
                .http
                .get(&target)
                .timeout(std::time::Duration::from_secs(5))
                .send()
                .await
            {
                Ok(r) if r.status().is_success() => Ok(format!("{}", r.status())),
                Ok(r) => Err(format!("{}", r.status())),
                Err(e) => Err(e.to_string()),
            }
        };
        let why = match (&curl, fails(exec, SMOKE_FAIL)) {
            (_, true) => Some("exit status 22 (simulated by [smoke-fail])".to_string()),
            (Err(e), false) => Some(format!("exit status 22 ({e})")),
            (Ok(_), false) => None,
        };
        let status = if why.is_some() { "FAILED" } else { "SUCCEEDED" };
        let project = build_id.split(':').next().unwrap_or(build_id).to_string();
        let mut event = build_event(build_id, status, &project);
        if let Some(why) = &why {
            event["detail"]["additional-information"]["phases"][3]["phase-context"] = serde_json::json!([
                format!("COMMAND_EXECUTION_ERROR: Error while executing command: curl -fsS \"$TARGET_URL\". Reason: {why}")
            ]);
        }
        let answered = match &curl {
            Ok(s) | Err(s) => s,
        };
        println!("[smoke] {build_id}: curl -fsS {target} → {answered}; build {status}");
        let said = self.deliver(Function::BuildEvents, event, 0).await;
        println!("[pump] smoke test build {build_id} {status} → build-events: {said}");
        if let Some(e) = exec {
            self.print_checks(e).await;
        }
    }
}
