//! The pump's part in verified promotion: before a deployment of a local service is reported
//! complete, the service's process is restarted with the deployed commit as its version
//! (`[bad-health]`: a wrong one in test); before a production deployment is reported complete,
//! the demo alarm is set to ALARM for an `[alarm]` push (OK otherwise), as moto's CloudWatch
//! `SetAlarmState`; after deploy-events answered, each check it made is printed.

use shared::domain::{Environment, Execution};
use shipgate_sandbox::DEMO_ALARM;

use super::Pump;
use crate::dev::local_services::{ALARM, BAD_HEALTH};

impl Pump {
    /// Make the local service run what the deployment deployed; set the demo alarm.
    pub(super) async fn before_completion(
        &self,
        exec: &Execution,
        env: Environment,
        cluster: &str,
        service: &str,
    ) {
        let local = &self.state.local;
        if !local.knows(cluster, service).await {
            return;
        }
        let message = exec.commit.message.as_deref().unwrap_or("");
        let mut version = exec.image_tag();
        if env == Environment::Test && message.contains(BAD_HEALTH) {
            version = format!("not-{version}");
        }
        match local.restart(cluster, service, &version).await {
            Ok(()) => println!(
                "[pump] {service}: local hello-service restarted, answering version {version}"
            ),
            Err(e) => println!("[pump] {service}: {e}"),
        }
        if env == Environment::Prod {
            let alarm = message.contains(ALARM) && !exec.trigger.is_rollback();
            let state = if alarm {
                aws_sdk_cloudwatch::types::StateValue::Alarm
            } else {
                aws_sdk_cloudwatch::types::StateValue::Ok
            };
            let cw = aws_sdk_cloudwatch::Client::new(&self.state.sdk);
            match cw
                .set_alarm_state()
                .alarm_name(DEMO_ALARM)
                .state_value(state.clone())
                .state_reason(if alarm {
                    "shipgate dev: [alarm]"
                } else {
                    "shipgate dev: healthy"
                })
                .send()
                .await
            {
                Ok(_) if alarm => {
                    println!("[pump] {DEMO_ALARM} set to ALARM ([alarm] in the commit message)")
                }
                Ok(_) => {}
                Err(e) => println!(
                    "[pump] could not set {DEMO_ALARM}: {}",
                    aws_sdk_cloudwatch::error::DisplayErrorContext(e)
                ),
            }
        }
    }

    /// Print the verification lines deploy-events added to the execution's history.
    pub(super) async fn print_checks(&self, exec: &Execution) {
        let Ok(Some(now)) = self.state.services.store.get_execution(&exec.id).await else {
            return;
        };
        for h in now.history.iter().skip(exec.history.len()) {
            let c = &h.cause;
            if c.contains("check attempt")
                || c.contains("verif")
                || c.contains("bake")
                || c.contains("automatic rollback")
                || c.contains("smoke test")
            {
                println!(
                    "[verify] {} {} → {}: {c}",
                    exec.id,
                    h.from.map(|s| s.to_string()).unwrap_or_default(),
                    h.to
                );
            }
        }
    }
}
