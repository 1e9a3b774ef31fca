//! The "CloudWatch Alarm State Change" EventBridge event (`source` `aws.cloudwatch`), reduced
//! to what a production bake needs: which alarm, its new state, why. Sample:
//! `events/cloudwatch/alarm.json`.

use serde::Deserialize;
use serde_json::Value;

use super::aws_events::{decode_detail, decode_envelope, expect_type, EventDecodeError};
use super::limits::{excerpt, MAX_REASON_BYTES};
use super::verify::{valid_alarm_name, AlarmState};

pub const ALARM_DETAIL_TYPE: &str = "CloudWatch Alarm State Change";

/// An alarm changed state.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AlarmStateChange {
    pub event_id: String,
    pub alarm_name: String,
    pub state: AlarmState,
    pub previous: Option<AlarmState>,
    /// CloudWatch's reason for the new state (bounded).
    pub reason: Option<String>,
    /// When the alarm entered the new state, as CloudWatch wrote it.
    pub timestamp: Option<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct RawDetail {
    alarm_name: String,
    state: RawState,
    #[serde(default)]
    previous_state: Option<RawState>,
}

#[derive(Deserialize)]
struct RawState {
    value: String,
    #[serde(default)]
    reason: Option<String>,
    #[serde(default)]
    timestamp: Option<String>,
}

/// Is this an EventBridge event of the alarm detail type?
pub fn is_alarm_event(value: &Value) -> bool {
    value.get("detail-type").and_then(Value::as_str) == Some(ALARM_DETAIL_TYPE)
}

pub fn decode_alarm_state(value: &Value) -> Result<AlarmStateChange, EventDecodeError> {
    let env = decode_envelope(value)?;
    expect_type(&env, ALARM_DETAIL_TYPE)?;
    let raw: RawDetail = decode_detail(&env)?;
    if !valid_alarm_name(&raw.alarm_name) {
        return Err(EventDecodeError::Detail {
            path: "alarmName".into(),
            message: "must be a CloudWatch alarm name (1-255 characters)".into(),
        });
    }
    let state = AlarmState::parse(&raw.state.value).ok_or_else(|| EventDecodeError::Detail {
        path: "state.value".into(),
        message: format!("unknown alarm state {:?}", excerpt(&raw.state.value, 64)),
    })?;
    Ok(AlarmStateChange {
        event_id: env.id,
        alarm_name: raw.alarm_name,
        state,
        previous: raw
            .previous_state
            .as_ref()
            .and_then(|p| AlarmState::parse(&p.value)),
        reason: raw
            .state
            .reason
            .filter(|r| !r.is_empty())
            .map(|r| excerpt(&r, MAX_REASON_BYTES)),
        timestamp: raw.state.timestamp.map(|t| excerpt(&t, 64)),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Value {
        serde_json::from_str(include_str!("../../../events/cloudwatch/alarm.json")).unwrap()
    }

    #[test]
    fn the_sample_decodes() {
        let v = sample();
        assert!(is_alarm_event(&v));
        let a = decode_alarm_state(&v).unwrap();
        assert_eq!(a.alarm_name, "shipgate-hello-5xx");
        assert_eq!(a.state, AlarmState::Alarm);
        assert_eq!(a.previous, Some(AlarmState::Ok));
        assert!(a.reason.unwrap().starts_with("Threshold Crossed"));
        let ok = decode_alarm_state(
            &serde_json::from_str(include_str!("../../../events/cloudwatch/alarm-ok.json"))
                .unwrap(),
        )
        .unwrap();
        assert_eq!(ok.state, AlarmState::Ok);
    }

    #[test]
    fn hostile_events_are_clear_errors() {
        let mut v = sample();
        v["detail"]["state"]["value"] = "ON_FIRE".repeat(100_000).into();
        let e = decode_alarm_state(&v).unwrap_err();
        assert!(matches!(&e, EventDecodeError::Detail { path, .. } if path == "state.value"));
        assert!(e.to_string().len() < 300);
        let mut v = sample();
        v["detail"]["alarmName"] = "".into();
        assert!(
            matches!(decode_alarm_state(&v), Err(EventDecodeError::Detail { path, .. }) if path == "alarmName")
        );
        let mut v = sample();
        v["detail"]["alarmName"] = "a".repeat(256).into();
        assert!(decode_alarm_state(&v).is_err());
        let mut v = sample();
        v["detail"]["state"]["reason"] = "r".repeat(300_000).into();
        assert!(decode_alarm_state(&v).unwrap().reason.unwrap().len() < MAX_REASON_BYTES + 40);
        let mut v = sample();
        v["detail-type"] = "ECS Deployment State Change".into();
        assert!(matches!(
            decode_alarm_state(&v),
            Err(EventDecodeError::WrongType { .. })
        ));
        let mut v = sample();
        v["detail"].as_object_mut().unwrap().remove("state");
        assert!(decode_alarm_state(&v).is_err());
    }
}
