//! "CloudWatch Alarm State Change": an alarm a production bake watches going to `ALARM` fails
//! that bake at once (and so starts the automatic rollback), instead of at the bake's next
//! `DescribeAlarms` read.
//!
//! Which executions: those in `BAKING_PROD` (the index of active executions, at most
//! [`BAKING_SCAN_LIMIT`]) whose bake watches the alarm. Each is failed with the same
//! conditional write as a bake step that read the alarm: a repeated or late event (the
//! execution already `PROD_FAILED`, `ROLLED_BACK` or `SUCCEEDED`), or a bake step racing it,
//! changes nothing twice — one rollback, one notice.

use tracing::{info, instrument, warn};

use super::{AppError, Applied, Services, SYSTEM_ACTOR};
use crate::domain::alarm_events::AlarmStateChange;
use crate::domain::verify::AlarmState;
use crate::domain::{Environment, Event, ExecutionId, Status};

/// The most baking executions one alarm event looks at (oldest first); a bake beyond it still
/// reads its alarms on each step.
pub const BAKING_SCAN_LIMIT: usize = 100;

/// What an alarm event did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AlarmOutcome {
    /// Bakes failed by this event (their automatic rollback started).
    pub failed: Vec<ExecutionId>,
    /// Why nothing was done, when nothing was.
    pub ignored: Option<String>,
}

impl AlarmOutcome {
    pub fn to_json(&self) -> serde_json::Value {
        match &self.ignored {
            Some(reason) => serde_json::json!({"status": "ignored", "reason": reason}),
            None => serde_json::json!({"status": "applied", "failed": self.failed}),
        }
    }
}

#[instrument(skip_all, fields(alarm = %change.alarm_name, state = ?change.state))]
pub async fn on_alarm_state(
    svc: &Services,
    change: &AlarmStateChange,
) -> Result<AlarmOutcome, AppError> {
    let ignored = |why: String| {
        info!(reason = %why, "alarm event ignored");
        Ok(AlarmOutcome {
            failed: Vec::new(),
            ignored: Some(why),
        })
    };
    if change.state != AlarmState::Alarm {
        return ignored(format!("alarm {} is not in ALARM", change.alarm_name));
    }
    let baking = svc
        .store
        .list_by_status(Status::BakingProd, BAKING_SCAN_LIMIT)
        .await?;
    if baking.len() >= BAKING_SCAN_LIMIT {
        warn!(
            limit = BAKING_SCAN_LIMIT,
            "many bakes under way; those beyond the limit see the alarm on their next step"
        );
    }
    let reason = match &change.reason {
        Some(r) => format!(
            "during the bake: alarm {} went to ALARM ({r})",
            change.alarm_name
        ),
        None => format!("during the bake: alarm {} went to ALARM", change.alarm_name),
    };
    let watching: Vec<_> = baking
        .into_iter()
        .filter(|e| {
            e.verify_prod
                .as_ref()
                .is_some_and(|v| v.alarms.contains(&change.alarm_name))
        })
        .collect();
    if watching.is_empty() {
        return ignored(format!(
            "no production bake watches alarm {}",
            change.alarm_name
        ));
    }
    // EventBridge retries an event for up to an hour (and a dead-letter queue can be redriven):
    // an ALARM that is already over must not fail a bake that started after it. The alarm's
    // state now decides; a failed read fails nothing (the bake's own steps read the alarms).
    match svc
        .alarms
        .alarm_states(std::slice::from_ref(&change.alarm_name))
        .await
    {
        Ok(states)
            if states
                .iter()
                .any(|(n, s)| *n == change.alarm_name && *s == AlarmState::Alarm) => {}
        Ok(_) => {
            return ignored(format!(
                "alarm {} is no longer in ALARM (a late or repeated event)",
                change.alarm_name
            ))
        }
        Err(e) => {
            warn!(error = %e, "alarm state could not be read; the bake's next step reads it");
            return ignored(format!(
                "alarm {} could not be read to confirm the event",
                change.alarm_name
            ));
        }
    }
    let mut failed = Vec::new();
    for exec in watching {
        let id = exec.id.clone();
        let event = Event::VerifyFailed {
            environment: Environment::Prod,
            reason: reason.clone(),
            result: None,
        };
        match svc.apply_to(exec, SYSTEM_ACTOR, event).await? {
            Applied::Done(e) => {
                warn!(execution_id = %id, status = %e.status, "bake failed by an alarm event; automatic rollback");
                failed.push(id);
            }
            Applied::Ignored { reason, current } => {
                info!(execution_id = %id, status = %current.status, %reason, "bake already over");
            }
        }
    }
    if failed.is_empty() {
        return ignored(format!(
            "no production bake watching alarm {} is under way",
            change.alarm_name
        ));
    }
    Ok(AlarmOutcome {
        failed,
        ignored: None,
    })
}
