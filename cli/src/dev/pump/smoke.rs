//! The pump's part in a verification's smoke test (test and production): the smoke project's
//! build (started by deploy-events in the local CodeBuild) finishes after `--build-seconds` like
//! an image build, without pushing an image, after a real GET of its `TARGET_URL`;
//! `[smoke-fail]` in the commit message fails the test smoke test, `[prod-smoke-fail]` the
//! production one. Its state change is delivered to deploy-events, as EventBridge's CodeBuild
//! rule of the smoke projects does.

use shared::domain::{smoke_of_build, Environment, Execution};

use super::events::build_event;
use super::rules::fails;
use super::{Function, Pump};

/// The commit-message marker that fails the simulated smoke test build of test.
pub const SMOKE_FAIL: &str = "[smoke-fail]";
/// ... and of production (after the test one passed: the automatic rollback).
pub const PROD_SMOKE_FAIL: &str = "[prod-smoke-fail]";

impl Pump {
    pub(super) async fn smoke_finished(&mut self, build_id: &str, exec: Option<&Execution>) {
        let run = exec.and_then(|e| smoke_of_build(e, build_id));
        let target = run.map(|(_, s)| s.target_url.clone()).unwrap_or_default();
        let marker = match run.map(|(env, _)| env) {
            Some(Environment::Prod) => PROD_SMOKE_FAIL,
            _ => SMOKE_FAIL,
        };
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
        let why = match (&curl, fails(exec, marker)) {
            (_, true) => Some(format!("exit status 22 (simulated by {marker})")),
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
        let said = self.deliver(Function::DeployEvents, event, 0).await;
        println!("[pump] smoke test build {build_id} {status} → deploy-events: {said}");
        if let Some(e) = exec {
            self.print_checks(e).await;
        }
    }
}
