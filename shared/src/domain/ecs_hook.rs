//! ECS native blue/green deployments (`deploymentConfiguration.strategy = BLUE_GREEN`), the
//! pure part: the payload ECS sends a Lambda lifecycle hook, the answer it expects, and which
//! of shipgate's executions a hook invocation is about.
//!
//! Documented payload (Amazon ECS Developer Guide, "Lambda hooks for Amazon ECS service
//! deployments"; sample in `events/ecs/lifecycle-hook-post-test-traffic-shift.json`):
//!
//! ```json
//! {"executionId": "…", "lifecycleStage": "POST_TEST_TRAFFIC_SHIFT",
//!  "resourceArn": "arn:aws:ecs:…:service-deployment/<cluster>/<service>/<id>",
//!  "executionDetails": {"serviceArn": "arn:aws:ecs:…:service/<cluster>/<service>",
//!    "targetServiceRevisionArn": "arn:aws:ecs:…:service-revision/<cluster>/<service>/<n>",
//!    "testTrafficWeights": {}, "productionTrafficWeights": {}},
//!  "hookDetails": {…}}
//! ```
//!
//! The answer is `{"hookStatus": "SUCCEEDED" | "FAILED" | "IN_PROGRESS", "callBackDelay": N}`:
//! `IN_PROGRESS` makes ECS invoke the hook again after `callBackDelay` seconds (30 by default),
//! `FAILED` (or a function error) makes ECS roll the deployment back to the blue revision.

use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::aws_events::EventDecodeError;

/// Longest ARN accepted in a payload (ECS ARNs are far shorter).
pub const MAX_ARN_LEN: usize = 1600;
/// Most entries read from a traffic-weight map (a deployment has two revisions).
pub const MAX_WEIGHTS: usize = 16;
/// Longest `callBackDelay` shipgate answers, seconds.
pub const MAX_CALLBACK_DELAY: u32 = 300;
/// `callBackDelay` after a transient failure (throttling, a lost race): ask again soon.
pub const RETRY_CALLBACK_DELAY: u32 = 10;

/// The lifecycle stages ECS invokes hooks at.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LifecycleStage {
    ReconcileService,
    PreScaleUp,
    PostScaleUp,
    TestTrafficShift,
    PostTestTrafficShift,
    PreProductionTrafficShift,
    ProductionTrafficShift,
    PostProductionTrafficShift,
}

impl LifecycleStage {
    pub fn parse(s: &str) -> Option<LifecycleStage> {
        Some(match s {
            "RECONCILE_SERVICE" => LifecycleStage::ReconcileService,
            "PRE_SCALE_UP" => LifecycleStage::PreScaleUp,
            "POST_SCALE_UP" => LifecycleStage::PostScaleUp,
            "TEST_TRAFFIC_SHIFT" => LifecycleStage::TestTrafficShift,
            "POST_TEST_TRAFFIC_SHIFT" => LifecycleStage::PostTestTrafficShift,
            "PRE_PRODUCTION_TRAFFIC_SHIFT" => LifecycleStage::PreProductionTrafficShift,
            "PRODUCTION_TRAFFIC_SHIFT" => LifecycleStage::ProductionTrafficShift,
            "POST_PRODUCTION_TRAFFIC_SHIFT" => LifecycleStage::PostProductionTrafficShift,
            _ => return None,
        })
    }

    pub fn as_str(self) -> &'static str {
        match self {
            LifecycleStage::ReconcileService => "RECONCILE_SERVICE",
            LifecycleStage::PreScaleUp => "PRE_SCALE_UP",
            LifecycleStage::PostScaleUp => "POST_SCALE_UP",
            LifecycleStage::TestTrafficShift => "TEST_TRAFFIC_SHIFT",
            LifecycleStage::PostTestTrafficShift => "POST_TEST_TRAFFIC_SHIFT",
            LifecycleStage::PreProductionTrafficShift => "PRE_PRODUCTION_TRAFFIC_SHIFT",
            LifecycleStage::ProductionTrafficShift => "PRODUCTION_TRAFFIC_SHIFT",
            LifecycleStage::PostProductionTrafficShift => "POST_PRODUCTION_TRAFFIC_SHIFT",
        }
    }
}

/// One lifecycle hook invocation, reduced to what shipgate needs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LifecycleHook {
    /// ECS's id of this hook execution (the same on every `IN_PROGRESS` re-invocation).
    pub execution_id: String,
    pub stage: LifecycleStage,
    /// The service deployment (`…:service-deployment/<cluster>/<service>/<id>`).
    pub resource_arn: String,
    pub service_arn: String,
    /// Cluster and service names from `serviceArn`.
    pub cluster: String,
    pub service: String,
    /// The green service revision being deployed.
    pub target_revision: String,
    /// The payload shows production traffic moving back to another revision (ECS rolls
    /// back; it re-invokes traffic-shift hooks while doing so).
    pub rolling_back: bool,
}

/// Does this payload look like a lifecycle hook invocation (not an EventBridge event)?
pub fn is_lifecycle_hook(value: &Value) -> bool {
    value.get("lifecycleStage").is_some()
        && value.get("executionDetails").is_some()
        && value.get("detail-type").is_none()
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct RawHook {
    execution_id: String,
    lifecycle_stage: String,
    #[serde(default)]
    resource_arn: String,
    execution_details: RawDetails,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct RawDetails {
    service_arn: String,
    target_service_revision_arn: String,
    #[serde(default)]
    production_traffic_weights: Option<serde_json::Map<String, Value>>,
}

fn invalid(path: &str, message: impl Into<String>) -> EventDecodeError {
    EventDecodeError::Payload {
        kind: "ECS lifecycle hook payload",
        path: path.to_string(),
        message: message.into(),
    }
}

/// Decode a lifecycle hook payload; every error names the field. Bounded: ARNs at most
/// [`MAX_ARN_LEN`], weight maps at most [`MAX_WEIGHTS`] entries; `hookDetails` is not read.
pub fn decode_lifecycle_hook(value: &Value) -> Result<LifecycleHook, EventDecodeError> {
    let raw: RawHook = serde_path_to_error::deserialize(value)
        .map_err(|e| invalid(&e.path().to_string(), e.into_inner().to_string()))?;
    let stage = LifecycleStage::parse(&raw.lifecycle_stage).ok_or_else(|| {
        invalid(
            "lifecycleStage",
            format!(
                "unknown lifecycle stage {:?}",
                super::limits::excerpt(&raw.lifecycle_stage, 64)
            ),
        )
    })?;
    if raw.execution_id.is_empty() || raw.execution_id.len() > 128 {
        return Err(invalid("executionId", "must be 1-128 characters"));
    }
    let d = raw.execution_details;
    for (path, arn) in [
        ("resourceArn", &raw.resource_arn),
        ("executionDetails.serviceArn", &d.service_arn),
        (
            "executionDetails.targetServiceRevisionArn",
            &d.target_service_revision_arn,
        ),
    ] {
        if arn.len() > MAX_ARN_LEN || arn.chars().any(char::is_control) {
            return Err(invalid(path, "not an ARN (too long or control characters)"));
        }
    }
    let (cluster, service) = service_of_arn(&d.service_arn).ok_or_else(|| {
        invalid(
            "executionDetails.serviceArn",
            "expected arn:aws:ecs:<region>:<account>:service/<cluster>/<service>",
        )
    })?;
    if !d.target_service_revision_arn.starts_with("arn:")
        || !d.target_service_revision_arn.contains(":service-revision/")
    {
        return Err(invalid(
            "executionDetails.targetServiceRevisionArn",
            "expected an ECS service revision ARN",
        ));
    }
    let weights = d.production_traffic_weights.unwrap_or_default();
    if weights.len() > MAX_WEIGHTS {
        return Err(invalid(
            "executionDetails.productionTrafficWeights",
            format!("at most {MAX_WEIGHTS} revisions"),
        ));
    }
    let weight = |arn: &str| weights.get(arn).and_then(Value::as_f64);
    let green = weight(&d.target_service_revision_arn);
    let rolling_back = green == Some(0.0)
        && weights
            .iter()
            .any(|(k, v)| *k != d.target_service_revision_arn && v.as_f64() > Some(0.0));
    Ok(LifecycleHook {
        execution_id: raw.execution_id,
        stage,
        resource_arn: raw.resource_arn,
        cluster,
        service,
        service_arn: d.service_arn,
        target_revision: d.target_service_revision_arn,
        rolling_back,
    })
}

/// `arn:aws:ecs:<region>:<account>:service/<cluster>/<service>` → (cluster, service). The old
/// ARN format without the cluster (`service/<service>`) answers cluster `default`.
pub fn service_of_arn(arn: &str) -> Option<(String, String)> {
    let rest = arn.strip_prefix("arn:")?;
    let mut parts = rest.splitn(5, ':');
    let (_partition, svc, _region, _account, resource) = (
        parts.next()?,
        parts.next()?,
        parts.next()?,
        parts.next()?,
        parts.next()?,
    );
    if svc != "ecs" {
        return None;
    }
    let path = resource.strip_prefix("service/")?;
    let segments: Vec<&str> = path.split('/').collect();
    let ok = |s: &str| !s.is_empty() && s.len() <= 255;
    match segments.as_slice() {
        [cluster, service] if ok(cluster) && ok(service) => {
            Some((cluster.to_string(), service.to_string()))
        }
        [service] if ok(service) => Some(("default".into(), service.to_string())),
        _ => None,
    }
}

/// Does a pipeline's target (cluster as a name or an ARN, service as a name or an ARN) name
/// the hook's service?
pub fn names_service(cluster: &str, service: &str, hook: &LifecycleHook) -> bool {
    let last = |s: &str| s.rsplit('/').next().unwrap_or(s).to_string();
    let cluster = if cluster.is_empty() {
        "default".to_string()
    } else {
        last(cluster)
    };
    cluster == hook.cluster && last(service) == hook.service
}

/// What shipgate answers ECS.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum HookStatus {
    Succeeded,
    Failed,
    InProgress,
}

/// The hook's answer (`hookStatus`, `callBackDelay` with `IN_PROGRESS`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HookAnswer {
    #[serde(rename = "hookStatus")]
    pub status: HookStatus,
    #[serde(rename = "callBackDelay", skip_serializing_if = "Option::is_none")]
    pub callback_delay: Option<u32>,
}

impl HookAnswer {
    pub fn succeeded() -> HookAnswer {
        HookAnswer {
            status: HookStatus::Succeeded,
            callback_delay: None,
        }
    }
    pub fn failed() -> HookAnswer {
        HookAnswer {
            status: HookStatus::Failed,
            callback_delay: None,
        }
    }
    /// Ask again after `seconds` (bounded to 1..=[`MAX_CALLBACK_DELAY`]).
    pub fn in_progress(seconds: i64) -> HookAnswer {
        HookAnswer {
            status: HookStatus::InProgress,
            callback_delay: Some(seconds.clamp(1, i64::from(MAX_CALLBACK_DELAY)) as u32),
        }
    }
}

#[cfg(test)]
#[path = "ecs_hook_tests.rs"]
mod tests;
