//! An execution as a strip of stages (push → build → test → approval → prod), each in a state,
//! for the status page and `shipgate watch` (pure).
//!
//! Where an execution is and how it stands there is one exhaustive `match` on [`Status`]
//! ([`position`]): a new state does not compile until it is placed on the strip.

use chrono::{DateTime, Utc};
use serde::Serialize;

use super::execution::{Environment, Execution, Status, Trigger};

/// The stages a release goes through, in order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum StripStage {
    Push,
    Build,
    Test,
    Approval,
    Prod,
}

impl StripStage {
    pub const ALL: [StripStage; 5] = [
        StripStage::Push,
        StripStage::Build,
        StripStage::Test,
        StripStage::Approval,
        StripStage::Prod,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            StripStage::Push => "push",
            StripStage::Build => "build",
            StripStage::Test => "test",
            StripStage::Approval => "approval",
            StripStage::Prod => "prod",
        }
    }
}

/// How one stage of one execution stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum StageState {
    /// Not reached (yet, or ever: an earlier stage stopped the execution).
    Pending,
    /// Work under way.
    Running,
    /// Waiting for a person (an approval).
    Waiting,
    Succeeded,
    Failed,
    /// Ended without failing: rejected, expired, or superseded by a newer execution.
    Stopped,
    /// It ran, and a later rollback moved the environment away from it.
    RolledBack,
    /// Not part of this execution (a rollback deploys one environment only).
    Skipped,
}

impl StageState {
    pub fn as_str(self) -> &'static str {
        match self {
            StageState::Pending => "pending",
            StageState::Running => "running",
            StageState::Waiting => "waiting",
            StageState::Succeeded => "succeeded",
            StageState::Failed => "failed",
            StageState::Stopped => "stopped",
            StageState::RolledBack => "rolled_back",
            StageState::Skipped => "skipped",
        }
    }
}

/// The stage an execution in `status` is at, and how that stage stands (the stages before it
/// succeeded, the ones after it are pending). The one place a status is placed on the strip.
pub fn position(status: Status) -> (StripStage, StageState) {
    use StageState::*;
    use StripStage::*;
    match status {
        Status::Received => (Build, Pending),
        Status::Building => (Build, Running),
        Status::Built => (Test, Pending),
        Status::DeployingTest => (Test, Running),
        Status::VerifyingTest => (Test, Running),
        Status::AwaitingApproval => (Approval, Waiting),
        Status::DeployingProd => (Prod, Running),
        Status::VerifyingProd => (Prod, Running),
        Status::BakingProd => (Prod, Running),
        Status::Succeeded => (Prod, Succeeded),
        Status::BuildFailed => (Build, Failed),
        Status::TestFailed => (Test, Failed),
        Status::Rejected => (Approval, Stopped),
        Status::Expired => (Approval, Stopped),
        Status::Superseded => (Approval, Stopped),
        Status::ProdFailed => (Prod, Failed),
        Status::RolledBack => (Prod, RolledBack),
    }
}

/// One stage of the strip: its state and when it was entered (from the history).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct StripCell {
    pub stage: StripStage,
    pub state: StageState,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub at: Option<DateTime<Utc>>,
}

/// The strip of an execution.
pub fn strip(exec: &Execution) -> Vec<StripCell> {
    let (at_stage, at_state) = position(exec.status);
    // a rollback deploys one environment: everything else is not part of it
    let only = match &exec.trigger {
        Trigger::Rollback { environment, .. } => Some(match environment {
            Environment::Test => StripStage::Test,
            Environment::Prod => StripStage::Prod,
        }),
        Trigger::GithubPush { .. } | Trigger::CodecommitPush { .. } | Trigger::Release { .. } => {
            None
        }
    };
    StripStage::ALL
        .into_iter()
        .map(|stage| {
            let state = if only.is_some_and(|o| o != stage) {
                StageState::Skipped
            } else if stage < at_stage {
                StageState::Succeeded
            } else if stage == at_stage {
                at_state
            } else {
                StageState::Pending
            };
            let at = entered(exec, stage);
            StripCell { stage, state, at }
        })
        .collect()
}

/// When the execution entered `stage`: the push when it was received, a later stage at the
/// first history entry where work on it started (or, if none did, the first placed on it).
fn entered(exec: &Execution, stage: StripStage) -> Option<DateTime<Utc>> {
    if stage == StripStage::Push {
        return exec.history.first().map(|h| h.at);
    }
    let on = |h: &&super::execution::HistoryEntry| position(h.to).0 == stage;
    exec.history
        .iter()
        .filter(on)
        .find(|h| position(h.to).1 != StageState::Pending)
        .or_else(|| exec.history.iter().find(on))
        .map(|h| h.at)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::execution::{Commit, ExecutionId, HistoryEntry};
    use chrono::TimeZone;

    fn exec(path: &[Status], trigger: Trigger) -> Execution {
        let t0 = Utc.timestamp_opt(1_800_000_000, 0).unwrap();
        let mut e = Execution::received(
            ExecutionId::generate(t0),
            "hello",
            Commit::default(),
            trigger,
            t0,
            "ops",
        );
        for (i, s) in path.iter().enumerate() {
            e.history.push(HistoryEntry {
                at: t0 + chrono::Duration::minutes(i as i64 + 1),
                from: Some(e.status),
                to: *s,
                cause: String::new(),
                actor: "shipgate".into(),
            });
            e.status = *s;
        }
        e
    }

    fn states(e: &Execution) -> Vec<StageState> {
        strip(e).into_iter().map(|c| c.state).collect()
    }

    fn release() -> Trigger {
        Trigger::Release {
            actor: "ops".into(),
        }
    }

    #[test]
    fn every_status_has_a_place() {
        for s in Status::ALL {
            let (stage, _) = position(s);
            assert_ne!(stage, StripStage::Push, "{s} is after the push");
        }
    }

    #[test]
    fn strips_follow_the_execution() {
        use StageState::{Failed, Pending, Running, Stopped, Waiting};
        use Status::*;
        const OK: StageState = StageState::Succeeded;
        let e = exec(&[Building], release());
        assert_eq!(states(&e), [OK, Running, Pending, Pending, Pending]);
        let e = exec(
            &[Building, Built, DeployingTest, AwaitingApproval],
            release(),
        );
        assert_eq!(states(&e), [OK, OK, OK, Waiting, Pending]);
        let e = exec(&[Building, BuildFailed], release());
        assert_eq!(states(&e), [OK, Failed, Pending, Pending, Pending]);
        let e = exec(
            &[Building, Built, DeployingTest, AwaitingApproval, Rejected],
            release(),
        );
        assert_eq!(states(&e), [OK, OK, OK, Stopped, Pending]);
        let path = [
            Building,
            Built,
            DeployingTest,
            AwaitingApproval,
            DeployingProd,
            Succeeded,
        ];
        let e = exec(&path, release());
        assert_eq!(states(&e), [OK; 5]);
        let cells = strip(&e);
        let t0 = e.history[0].at;
        let minutes: Vec<i64> = cells
            .iter()
            .map(|c| (c.at.unwrap() - t0).num_minutes())
            .collect();
        // entered: push 0, build 1 (BUILDING), test 3 (DEPLOYING_TEST), approval 4, prod 5
        assert_eq!(minutes, [0, 1, 3, 4, 5]);
    }

    #[test]
    fn a_rollback_is_one_stage() {
        use StageState::*;
        let trigger = Trigger::Rollback {
            actor: "ops".into(),
            environment: Environment::Prod,
            restores: ExecutionId::generate(Utc::now()),
            task_definition: None,
            replaces: None,
        };
        let mut e = exec(&[Status::Succeeded], trigger);
        e.history[0].to = Status::DeployingProd;
        e.history[1].from = Some(Status::DeployingProd);
        assert_eq!(states(&e), [Skipped, Skipped, Skipped, Skipped, Succeeded]);
    }
}
