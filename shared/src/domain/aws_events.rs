//! Decoders for the EventBridge events shipgate consumes: CodeBuild "Build State Change",
//! ECS "Deployment State Change", CodeCommit "Repository State Change". Errors name the field.

use super::limits::{excerpt, MAX_AUTHOR_BYTES, MAX_COMMIT_URL_BYTES, MAX_REASON_BYTES};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use serde_json::Value;

/// Why an event could not be decoded.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EventDecodeError {
    #[error("not an EventBridge event: field `{path}`: {message}")]
    Envelope { path: String, message: String },
    #[error("expected detail-type {expected:?}, got {got:?}")]
    WrongType { expected: &'static str, got: String },
    #[error("field `detail.{path}`: {message}")]
    Detail { path: String, message: String },
    /// A payload that is not an EventBridge event (an ECS lifecycle hook invocation).
    #[error("{kind}: field `{path}`: {message}")]
    Payload {
        kind: &'static str,
        path: String,
        message: String,
    },
}

/// The EventBridge envelope.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Envelope {
    pub id: String,
    #[serde(rename = "detail-type")]
    pub detail_type: String,
    pub source: String,
    #[serde(default)]
    pub account: String,
    #[serde(default)]
    pub time: String,
    #[serde(default)]
    pub region: String,
    #[serde(default)]
    pub resources: Vec<String>,
    #[serde(default)]
    pub detail: Value,
}

pub(crate) fn decode_envelope(value: &Value) -> Result<Envelope, EventDecodeError> {
    serde_path_to_error::deserialize::<_, Envelope>(value).map_err(|e| EventDecodeError::Envelope {
        path: e.path().to_string(),
        message: e.into_inner().to_string(),
    })
}

pub(crate) fn decode_detail<T: DeserializeOwned>(env: &Envelope) -> Result<T, EventDecodeError> {
    serde_path_to_error::deserialize::<_, T>(&env.detail).map_err(|e| EventDecodeError::Detail {
        path: e.path().to_string(),
        message: e.into_inner().to_string(),
    })
}

pub(crate) fn expect_type(env: &Envelope, expected: &'static str) -> Result<(), EventDecodeError> {
    if env.detail_type == expected {
        Ok(())
    } else {
        Err(EventDecodeError::WrongType {
            expected,
            got: env.detail_type.clone(),
        })
    }
}

// ---------------------------------------------------------------------------------------------
// CodeBuild

pub const CODEBUILD_DETAIL_TYPE: &str = "CodeBuild Build State Change";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BuildStatus {
    InProgress,
    Succeeded,
    Failed,
    Stopped,
    Fault,
    TimedOut,
}

impl BuildStatus {
    pub fn parse(s: &str) -> Option<BuildStatus> {
        Some(match s {
            "IN_PROGRESS" => BuildStatus::InProgress,
            "SUCCEEDED" => BuildStatus::Succeeded,
            "FAILED" => BuildStatus::Failed,
            "STOPPED" => BuildStatus::Stopped,
            "FAULT" => BuildStatus::Fault,
            "TIMED_OUT" => BuildStatus::TimedOut,
            _ => return None,
        })
    }
    pub fn as_str(self) -> &'static str {
        match self {
            BuildStatus::InProgress => "IN_PROGRESS",
            BuildStatus::Succeeded => "SUCCEEDED",
            BuildStatus::Failed => "FAILED",
            BuildStatus::Stopped => "STOPPED",
            BuildStatus::Fault => "FAULT",
            BuildStatus::TimedOut => "TIMED_OUT",
        }
    }
}

/// A CodeBuild state change, reduced to what shipgate needs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BuildStateChange {
    pub event_id: String,
    /// Build id as `project:uuid` (the ARN's last part), the same as StartBuild returns.
    pub build_id: String,
    pub project: String,
    pub status: BuildStatus,
    pub current_phase: Option<String>,
    /// Failure reason from the failing phase's context, if any.
    pub reason: Option<String>,
    pub logs_link: Option<String>,
    /// The commit SHA the build checked out, when the event names one (`resolved-source-version`,
    /// else `source-version` if that is a full SHA); lowercase, 40 hex digits.
    pub resolved_commit: Option<String>,
    /// `additional-information.exported-environment-variables` (`env: exported-variables:` of
    /// the buildspec), in order.
    pub exported_variables: Vec<(String, String)>,
}

impl BuildStateChange {
    /// The value of an exported variable, if the build exported it with a non-empty value.
    pub fn exported(&self, name: &str) -> Option<&str> {
        exported(&self.exported_variables, name)
    }
}

/// The value of `name` among exported variables, if present and not empty.
pub fn exported<'a>(variables: &'a [(String, String)], name: &str) -> Option<&'a str> {
    variables
        .iter()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.trim())
        .filter(|v| !v.is_empty())
}

/// `s` as a full commit SHA (40 hex digits, lowercased), if it is one.
pub fn full_commit_sha(s: &str) -> Option<String> {
    let s = s.trim();
    (s.len() == 40 && s.chars().all(|c| c.is_ascii_hexdigit())).then(|| s.to_ascii_lowercase())
}

#[derive(Deserialize)]
struct RawBuildDetail {
    #[serde(rename = "build-status")]
    build_status: String,
    #[serde(rename = "project-name")]
    project_name: String,
    #[serde(rename = "build-id")]
    build_id: String,
    #[serde(rename = "current-phase", default)]
    current_phase: Option<String>,
    #[serde(rename = "current-phase-context", default)]
    current_phase_context: Option<String>,
    #[serde(rename = "additional-information", default)]
    additional_information: Option<RawBuildInfo>,
}

#[derive(Deserialize)]
struct RawBuildInfo {
    #[serde(default)]
    logs: Option<RawLogs>,
    #[serde(default)]
    phases: Vec<RawPhase>,
    #[serde(rename = "source-version", default)]
    source_version: Option<String>,
    #[serde(rename = "resolved-source-version", default)]
    resolved_source_version: Option<String>,
    #[serde(rename = "exported-environment-variables", default)]
    exported_environment_variables: Vec<RawVariable>,
}

#[derive(Deserialize)]
struct RawVariable {
    name: String,
    #[serde(default)]
    value: Option<String>,
}

#[derive(Deserialize)]
struct RawLogs {
    #[serde(rename = "deep-link", default)]
    deep_link: Option<String>,
}

#[derive(Deserialize)]
struct RawPhase {
    #[serde(rename = "phase-type", default)]
    phase_type: Option<String>,
    #[serde(rename = "phase-status", default)]
    phase_status: Option<String>,
    #[serde(rename = "phase-context", default)]
    phase_context: Vec<String>,
}

/// `arn:aws:codebuild:region:acct:build/project:uuid` → `project:uuid`.
pub fn build_id_from_arn(arn_or_id: &str) -> &str {
    match arn_or_id.rsplit_once(":build/") {
        Some((_, id)) => id,
        None => arn_or_id,
    }
}

pub fn decode_build_state(value: &Value) -> Result<BuildStateChange, EventDecodeError> {
    let env = decode_envelope(value)?;
    expect_type(&env, CODEBUILD_DETAIL_TYPE)?;
    let raw: RawBuildDetail = decode_detail(&env)?;
    let status = BuildStatus::parse(&raw.build_status).ok_or_else(|| EventDecodeError::Detail {
        path: "build-status".into(),
        message: format!("unknown build status {:?}", raw.build_status),
    })?;
    let info = raw.additional_information;
    let failing_phase = info.as_ref().and_then(|i| {
        i.phases.iter().find(|p| {
            p.phase_status
                .as_deref()
                .is_some_and(|s| s != "SUCCEEDED" && s != "IN_PROGRESS")
        })
    });
    let reason = failing_phase
        .and_then(|p| {
            let ctx: Vec<&str> = p
                .phase_context
                .iter()
                .map(String::as_str)
                .filter(|c| !c.is_empty() && *c != ": ")
                .collect();
            (!ctx.is_empty()).then(|| ctx.join("; "))
        })
        .or(raw
            .current_phase_context
            .filter(|c| !c.is_empty() && c != "[: ]"));
    let current_phase = failing_phase
        .and_then(|p| p.phase_type.clone())
        .or(raw.current_phase);
    let resolved_commit = info.as_ref().and_then(|i| {
        i.resolved_source_version
            .as_deref()
            .and_then(full_commit_sha)
            .or_else(|| i.source_version.as_deref().and_then(full_commit_sha))
    });
    let exported_variables = info
        .as_ref()
        .map(|i| {
            i.exported_environment_variables
                .iter()
                .map(|v| (v.name.clone(), v.value.clone().unwrap_or_default()))
                .collect()
        })
        .unwrap_or_default();
    Ok(BuildStateChange {
        event_id: env.id,
        build_id: build_id_from_arn(&raw.build_id).to_string(),
        project: raw.project_name,
        status,
        current_phase,
        // stored as the failure cause and sent in notices: bounded like commit text
        reason: reason.map(|r| excerpt(&r, MAX_REASON_BYTES)),
        logs_link: info
            .and_then(|i| i.logs)
            .and_then(|l| l.deep_link)
            .filter(|l| l.len() <= MAX_COMMIT_URL_BYTES),
        resolved_commit,
        exported_variables,
    })
}

// ---------------------------------------------------------------------------------------------
// ECS

pub const ECS_DEPLOYMENT_DETAIL_TYPE: &str = "ECS Deployment State Change";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DeploymentEventName {
    InProgress,
    Completed,
    Failed,
}

/// An ECS deployment state change.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeploymentStateChange {
    pub event_id: String,
    pub deployment_id: String,
    pub name: DeploymentEventName,
    /// Service ARN from `resources`.
    pub service_arn: Option<String>,
    pub reason: Option<String>,
}

#[derive(Deserialize)]
struct RawDeploymentDetail {
    #[serde(rename = "eventName")]
    event_name: String,
    #[serde(rename = "deploymentId")]
    deployment_id: String,
    #[serde(default)]
    reason: Option<String>,
}

pub fn decode_deployment_state(value: &Value) -> Result<DeploymentStateChange, EventDecodeError> {
    let env = decode_envelope(value)?;
    expect_type(&env, ECS_DEPLOYMENT_DETAIL_TYPE)?;
    let raw: RawDeploymentDetail = decode_detail(&env)?;
    let name = match raw.event_name.as_str() {
        "SERVICE_DEPLOYMENT_IN_PROGRESS" => DeploymentEventName::InProgress,
        "SERVICE_DEPLOYMENT_COMPLETED" => DeploymentEventName::Completed,
        "SERVICE_DEPLOYMENT_FAILED" => DeploymentEventName::Failed,
        other => {
            return Err(EventDecodeError::Detail {
                path: "eventName".into(),
                message: format!("unknown deployment event {other:?}"),
            })
        }
    };
    if raw.deployment_id.is_empty() {
        return Err(EventDecodeError::Detail {
            path: "deploymentId".into(),
            message: "must not be empty".into(),
        });
    }
    Ok(DeploymentStateChange {
        event_id: env.id,
        deployment_id: raw.deployment_id,
        name,
        service_arn: env.resources.into_iter().next(),
        reason: raw
            .reason
            .filter(|r| !r.is_empty())
            .map(|r| excerpt(&r, MAX_REASON_BYTES)),
    })
}

// ---------------------------------------------------------------------------------------------
// CodeCommit

pub const CODECOMMIT_DETAIL_TYPE: &str = "CodeCommit Repository State Change";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReferenceEvent {
    Created,
    Updated,
    Deleted,
}

/// A CodeCommit reference change.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReferenceChange {
    pub event_id: String,
    pub event: ReferenceEvent,
    pub repository: String,
    /// `branch` or `tag`.
    pub reference_type: String,
    pub reference_name: String,
    pub commit_id: Option<String>,
    pub caller: Option<String>,
    pub author: Option<String>,
    pub message: Option<String>,
}

#[derive(Deserialize)]
struct RawCodeCommitDetail {
    event: String,
    #[serde(rename = "repositoryName")]
    repository_name: String,
    #[serde(rename = "referenceType")]
    reference_type: String,
    #[serde(rename = "referenceName")]
    reference_name: String,
    #[serde(rename = "commitId", default)]
    commit_id: Option<String>,
    #[serde(rename = "callerUserArn", default)]
    caller_user_arn: Option<String>,
    #[serde(default)]
    author: Option<String>,
    #[serde(rename = "commitMessage", default)]
    commit_message: Option<String>,
}

pub fn decode_reference_change(value: &Value) -> Result<ReferenceChange, EventDecodeError> {
    let env = decode_envelope(value)?;
    expect_type(&env, CODECOMMIT_DETAIL_TYPE)?;
    let raw: RawCodeCommitDetail = decode_detail(&env)?;
    let event = match raw.event.as_str() {
        "referenceCreated" => ReferenceEvent::Created,
        "referenceUpdated" => ReferenceEvent::Updated,
        "referenceDeleted" => ReferenceEvent::Deleted,
        other => {
            return Err(EventDecodeError::Detail {
                path: "event".into(),
                message: format!("unknown reference event {other:?}"),
            })
        }
    };
    if let Some(c) = &raw.commit_id {
        if event != ReferenceEvent::Deleted
            && (c.len() != 40 || !c.chars().all(|ch| ch.is_ascii_hexdigit()))
        {
            return Err(EventDecodeError::Detail {
                path: "commitId".into(),
                message: "expected a 40-character commit SHA".into(),
            });
        }
    }
    if event != ReferenceEvent::Deleted && raw.commit_id.is_none() {
        return Err(EventDecodeError::Detail {
            path: "commitId".into(),
            message: "missing".into(),
        });
    }
    Ok(ReferenceChange {
        event_id: env.id,
        event,
        repository: raw.repository_name,
        reference_type: raw.reference_type,
        reference_name: raw.reference_name,
        commit_id: raw.commit_id,
        caller: raw.caller_user_arn.map(|c| excerpt(&c, MAX_AUTHOR_BYTES)),
        author: raw.author,
        message: raw.commit_message,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn load(text: &str) -> Value {
        serde_json::from_str(text).unwrap()
    }

    #[test]
    fn codebuild_samples() {
        let ok = decode_build_state(&load(include_str!(
            "../../../events/codebuild/succeeded.json"
        )))
        .unwrap();
        assert_eq!(ok.status, BuildStatus::Succeeded);
        assert_eq!(
            ok.build_id,
            "hello-build:8745a7a9-c340-456a-9166-edf953571bEX"
        );
        assert_eq!(ok.project, "hello-build");
        assert!(ok.logs_link.is_some());
        // a build of a commit reports it as its source version
        assert_eq!(
            ok.resolved_commit.as_deref(),
            Some("9f2c7a1e4b6d8f0a2c4e6b8d0f1a3c5e7b9d1f3a")
        );
        assert_eq!(
            ok.exported("IMAGE_DIGEST"),
            Some("sha256:188a33d7e0ee4c4a7b1d6f1b2b7b0c2d7e8f9a0b1c2d3e4f5a6b7c8d9e0f1a2b")
        );
        assert_eq!(ok.exported("IMAGE_TAG"), None, "passed in, not exported");

        // a build of a branch head: the branch is no commit
        let head = decode_build_state(&load(include_str!(
            "../../../events/codebuild/succeeded-branch-head.json"
        )))
        .unwrap();
        assert_eq!(head.resolved_commit, None);
        assert!(head.exported("IMAGE_DIGEST").is_some());
        let mut v = load(include_str!(
            "../../../events/codebuild/succeeded-branch-head.json"
        ));
        v["detail"]["additional-information"]["resolved-source-version"] =
            "9F2C7A1E4B6D8F0A2C4E6B8D0F1A3C5E7B9D1F3A".into();
        assert_eq!(
            decode_build_state(&v).unwrap().resolved_commit.as_deref(),
            Some("9f2c7a1e4b6d8f0a2c4e6b8d0f1a3c5e7b9d1f3a")
        );
        v["detail"]["additional-information"]["exported-environment-variables"] = serde_json::json!([{"name": "IMAGE_DIGEST", "value": null}, {"name": "X", "value": " "}]);
        let blank = decode_build_state(&v).unwrap();
        assert_eq!(
            (blank.exported("IMAGE_DIGEST"), blank.exported("X")),
            (None, None)
        );
        v["detail"]["additional-information"]["exported-environment-variables"] =
            serde_json::json!([{"value": "x"}]);
        assert!(matches!(
            decode_build_state(&v),
            Err(EventDecodeError::Detail { path, .. }) if path.starts_with("additional-information.exported-environment-variables")
        ));

        let failed =
            decode_build_state(&load(include_str!("../../../events/codebuild/failed.json")))
                .unwrap();
        assert_eq!(failed.status, BuildStatus::Failed);
        assert_eq!(failed.current_phase.as_deref(), Some("BUILD"));
        assert!(failed.reason.unwrap().contains("COMMAND_EXECUTION_ERROR"));

        let progress = decode_build_state(&load(include_str!(
            "../../../events/codebuild/in-progress.json"
        )))
        .unwrap();
        assert_eq!(progress.status, BuildStatus::InProgress);
        assert_eq!(progress.reason, None);
    }

    #[test]
    fn codebuild_errors_name_fields() {
        let mut v = load(include_str!("../../../events/codebuild/succeeded.json"));
        v["detail"]["build-status"] = "EXPLODED".into();
        assert!(
            matches!(decode_build_state(&v), Err(EventDecodeError::Detail { path, .. }) if path == "build-status")
        );
        v["detail"].as_object_mut().unwrap().remove("build-id");
        assert!(matches!(
            decode_build_state(&v),
            Err(EventDecodeError::Detail { .. })
        ));
        v["detail-type"] = "Something Else".into();
        assert!(matches!(
            decode_build_state(&v),
            Err(EventDecodeError::WrongType { .. })
        ));
        assert!(matches!(
            decode_build_state(&Value::Null),
            Err(EventDecodeError::Envelope { .. })
        ));
        assert!(matches!(
            decode_build_state(&serde_json::json!({"id": 1})),
            Err(EventDecodeError::Envelope { .. })
        ));
    }

    #[test]
    fn build_id_from_arn_forms() {
        assert_eq!(
            build_id_from_arn("arn:aws:codebuild:eu-west-1:123456789012:build/p:u-1"),
            "p:u-1"
        );
        assert_eq!(build_id_from_arn("p:u-1"), "p:u-1");
    }

    #[test]
    fn oversized_reasons_are_excerpts() {
        let mut v = load(include_str!("../../../events/ecs/failed.json"));
        v["detail"]["reason"] = "r".repeat(300_000).into();
        let f = decode_deployment_state(&v).unwrap();
        let reason = f.reason.unwrap();
        assert!(reason.len() < MAX_REASON_BYTES + 40);
        assert!(reason.ends_with("(truncated, 300000 bytes)"));
    }

    #[test]
    fn ecs_samples() {
        let c = decode_deployment_state(&load(include_str!("../../../events/ecs/completed.json")))
            .unwrap();
        assert_eq!(c.name, DeploymentEventName::Completed);
        assert!(c.deployment_id.starts_with("ecs-svc/"));
        assert!(c.service_arn.unwrap().contains(":service/"));
        let f = decode_deployment_state(&load(include_str!("../../../events/ecs/failed.json")))
            .unwrap();
        assert_eq!(f.name, DeploymentEventName::Failed);
        assert!(f.reason.is_some());
        let p =
            decode_deployment_state(&load(include_str!("../../../events/ecs/in-progress.json")))
                .unwrap();
        assert_eq!(p.name, DeploymentEventName::InProgress);
        let mut v = load(include_str!("../../../events/ecs/completed.json"));
        v["detail"]["eventName"] = "SERVICE_STEADY_STATE".into();
        assert!(
            matches!(decode_deployment_state(&v), Err(EventDecodeError::Detail { path, .. }) if path == "eventName")
        );
        v["detail"]["deploymentId"] = "".into();
        v["detail"]["eventName"] = "SERVICE_DEPLOYMENT_COMPLETED".into();
        assert!(
            matches!(decode_deployment_state(&v), Err(EventDecodeError::Detail { path, .. }) if path == "deploymentId")
        );
    }

    #[test]
    fn codecommit_samples() {
        let c = decode_reference_change(&load(include_str!(
            "../../../events/codecommit/created.json"
        )))
        .unwrap();
        assert_eq!(c.event, ReferenceEvent::Created);
        assert_eq!(c.reference_type, "branch");
        let u = decode_reference_change(&load(include_str!(
            "../../../events/codecommit/updated.json"
        )))
        .unwrap();
        assert_eq!(u.event, ReferenceEvent::Updated);
        assert_eq!(u.commit_id.as_deref().map(str::len), Some(40));
        let d = decode_reference_change(&load(include_str!(
            "../../../events/codecommit/deleted.json"
        )))
        .unwrap();
        assert_eq!(d.event, ReferenceEvent::Deleted);
        let mut v = load(include_str!("../../../events/codecommit/updated.json"));
        v["detail"]["commitId"] = "xyz".into();
        assert!(
            matches!(decode_reference_change(&v), Err(EventDecodeError::Detail { path, .. }) if path == "commitId")
        );
    }
}
