//! The EventBridge events the pump delivers, shaped as AWS sends them.

use serde_json::{json, Value};
use shipgate_sandbox::{ACCOUNT, REGION};

pub fn summary(out: Result<Value, String>) -> String {
    match out {
        Ok(v) => match v["status"].as_str() {
            Some("applied") => format!(
                "{} is now {}",
                v["execution_id"].as_str().unwrap_or("?"),
                v["execution_status"].as_str().unwrap_or("?")
            ),
            _ => v.to_string(),
        },
        Err(e) => format!("error: {e}"),
    }
}

/// The event EventBridge delivers for a CodeBuild build state change.
pub fn build_event(build_id: &str, status: &str, project: &str) -> Value {
    let arn = format!("arn:aws:codebuild:{REGION}:{ACCOUNT}:build/{build_id}");
    let failed = status == "FAILED";
    let mut phases = vec![
        json!({"phase-type": "SUBMITTED", "phase-status": "SUCCEEDED"}),
        json!({"phase-type": "PROVISIONING", "phase-status": "SUCCEEDED"}),
        json!({"phase-type": "PRE_BUILD", "phase-status": "SUCCEEDED"}),
    ];
    phases.push(if failed {
        json!({"phase-type": "BUILD", "phase-status": "FAILED", "phase-context": ["COMMAND_EXECUTION_ERROR: Error while executing command: make test. Reason: exit status 2 (simulated by [fail-build])"]})
    } else {
        json!({"phase-type": "BUILD", "phase-status": "SUCCEEDED"})
    });
    phases.push(json!({"phase-type": "COMPLETED"}));
    json!({
        "version": "0",
        "id": ulid::Ulid::new().to_string(),
        "detail-type": "CodeBuild Build State Change",
        "source": "aws.codebuild",
        "account": ACCOUNT,
        "time": chrono::Utc::now().to_rfc3339(),
        "region": REGION,
        "resources": [arn],
        "detail": {
            "build-status": status,
            "project-name": project,
            "build-id": arn,
            "current-phase": "COMPLETED",
            "current-phase-context": "[: ]",
            "version": "1",
            "additional-information": {
                "build-complete": true,
                "logs": {
                    "group-name": format!("/aws/codebuild/{project}"),
                    "stream-name": build_id.split(':').nth(1).unwrap_or_default(),
                    "deep-link": format!("https://console.aws.amazon.com/cloudwatch/home?region={REGION}#logEvent:group=/aws/codebuild/{project};stream={}", build_id.split(':').nth(1).unwrap_or_default())
                },
                "phases": phases
            }
        }
    })
}

/// The event EventBridge delivers for an ECS service deployment state change.
pub fn deployment_event(
    deployment_id: &str,
    name: &str,
    cluster: &str,
    service: &str,
    reason: &str,
) -> Value {
    let failed = name.ends_with("FAILED");
    json!({
        "version": "0",
        "id": ulid::Ulid::new().to_string(),
        "detail-type": "ECS Deployment State Change",
        "source": "aws.ecs",
        "account": ACCOUNT,
        "time": chrono::Utc::now().to_rfc3339(),
        "region": REGION,
        "resources": [format!("arn:aws:ecs:{REGION}:{ACCOUNT}:service/{cluster}/{service}")],
        "detail": {
            "eventType": if failed { "ERROR" } else { "INFO" },
            "eventName": name,
            "deploymentId": deployment_id,
            "updatedAt": chrono::Utc::now().to_rfc3339(),
            "reason": reason,
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pump_events_decode() {
        let b = shared::domain::aws_events::decode_build_state(&build_event(
            "hello-build:1",
            "FAILED",
            "hello-build",
        ))
        .unwrap();
        assert_eq!(b.build_id, "hello-build:1");
        assert!(b.reason.unwrap().contains("[fail-build]"));
        let d = shared::domain::aws_events::decode_deployment_state(&deployment_event(
            "ecs-svc/1",
            "SERVICE_DEPLOYMENT_FAILED",
            "c",
            "s",
            "circuit breaker",
        ))
        .unwrap();
        assert_eq!(d.deployment_id, "ecs-svc/1");
        assert_eq!(
            d.name,
            shared::domain::aws_events::DeploymentEventName::Failed
        );
        assert_eq!(
            d.service_arn.unwrap(),
            format!("arn:aws:ecs:{REGION}:{ACCOUNT}:service/c/s")
        );
    }
}
