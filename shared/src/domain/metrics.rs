//! Delivery metrics (the four DORA keys) from execution histories: deployment frequency, lead
//! time push → production split by stage, change failure rate, time to restore. Pure: the CLI
//! computes a report from the executions `list_executions` answers, and every function emits an
//! execution's numbers as an embedded-metric-format line when it ends ([`emf_line`]).

use chrono::{DateTime, Duration, Utc};
use serde::Serialize;
use serde_json::json;

use super::{Execution, Status, Trigger};

/// The part of the way to production a state belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Phase {
    Build,
    Test,
    Approval,
    Prod,
}

/// The phase time spent in `status` counts towards; `None` for a final state. A failed state
/// counts towards its stage until a retry leaves it (time to fix is lead time too).
/// Exhaustive on purpose: a new state must say where its time goes.
pub fn phase_of(status: Status) -> Option<Phase> {
    match status {
        Status::Received | Status::Building | Status::BuildFailed => Some(Phase::Build),
        Status::Built | Status::DeployingTest | Status::VerifyingTest | Status::TestFailed => {
            Some(Phase::Test)
        }
        Status::AwaitingApproval => Some(Phase::Approval),
        Status::DeployingProd | Status::VerifyingProd | Status::BakingProd | Status::ProdFailed => {
            Some(Phase::Prod)
        }
        Status::Succeeded
        | Status::Rejected
        | Status::Expired
        | Status::Superseded
        | Status::RolledBack => None,
    }
}

/// Seconds an execution spent in each phase (up to `until` for one still running).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct PhaseSeconds {
    pub build: i64,
    pub test: i64,
    pub approval: i64,
    pub prod: i64,
}

impl PhaseSeconds {
    pub fn total(&self) -> i64 {
        self.build + self.test + self.approval + self.prod
    }
    fn add(&mut self, phase: Phase, secs: i64) {
        let slot = match phase {
            Phase::Build => &mut self.build,
            Phase::Test => &mut self.test,
            Phase::Approval => &mut self.approval,
            Phase::Prod => &mut self.prod,
        };
        *slot += secs.max(0);
    }
}

/// Time per phase from the history: each interval between two entries counts towards the
/// phase of the state it started in; the last state counts until `until` if it is active.
pub fn phase_seconds(exec: &Execution, until: DateTime<Utc>) -> PhaseSeconds {
    let mut out = PhaseSeconds::default();
    for pair in exec.history.windows(2) {
        if let Some(phase) = phase_of(pair[0].to) {
            out.add(phase, (pair[1].at - pair[0].at).num_seconds());
        }
    }
    if let Some(last) = exec.history.last() {
        if last.to.is_active() {
            if let Some(phase) = phase_of(last.to) {
                out.add(phase, (until - last.at).num_seconds());
            }
        }
    }
    out
}

/// When a release (not a rollback) reached production, if it did: its SUCCEEDED entry after a
/// production deployment.
pub fn reached_prod_at(exec: &Execution) -> Option<DateTime<Utc>> {
    if exec.trigger.is_rollback() || exec.prod.is_none() {
        return None;
    }
    exec.history
        .iter()
        .find(|h| h.to == Status::Succeeded && h.from == Some(Status::DeployingProd))
        .map(|h| h.at)
}

/// When production failed with this execution (a failed production deployment, or a release
/// rolled back later), if it did.
pub fn prod_failed_at(exec: &Execution) -> Option<DateTime<Utc>> {
    exec.history
        .iter()
        .find(|h| h.to == Status::ProdFailed || h.to == Status::RolledBack)
        .map(|h| h.at)
}

/// When an execution ended (its first entry into a final state), if it has.
fn ended_at(exec: &Execution) -> Option<DateTime<Utc>> {
    if exec.status.is_active() {
        return None;
    }
    exec.history.last().map(|h| h.at)
}

/// Production restored: a release or rollback that completed in production.
fn restored_prod_at(exec: &Execution) -> Option<DateTime<Utc>> {
    exec.prod.as_ref()?;
    exec.history
        .iter()
        .find(|h| h.to == Status::Succeeded && h.from == Some(Status::DeployingProd))
        .map(|h| h.at)
}

/// Averages and medians of a list of seconds.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize)]
pub struct Spread {
    pub count: usize,
    pub median_seconds: Option<i64>,
    pub mean_seconds: Option<i64>,
    pub max_seconds: Option<i64>,
}

impl Spread {
    pub fn of(mut values: Vec<i64>) -> Spread {
        values.sort_unstable();
        let count = values.len();
        if count == 0 {
            return Spread::default();
        }
        let median = if count % 2 == 1 {
            values[count / 2]
        } else {
            (values[count / 2 - 1] + values[count / 2]) / 2
        };
        Spread {
            count,
            median_seconds: Some(median),
            mean_seconds: Some(values.iter().sum::<i64>() / count as i64),
            max_seconds: values.last().copied(),
        }
    }
}

/// The lead time push → production and its parts (releases that reached production).
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct LeadTime {
    pub total: Spread,
    pub build: Spread,
    pub test: Spread,
    pub approval_wait: Spread,
    pub prod: Spread,
}

/// Delivery metrics of one pipeline over a window.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct DeliveryReport {
    pub pipeline: String,
    pub since: DateTime<Utc>,
    pub until: DateTime<Utc>,
    /// Executions created in the window.
    pub executions: usize,
    /// Still running or waiting at `until`.
    pub in_progress: usize,
    /// Releases (not rollbacks) that reached production in the window.
    pub deployments: usize,
    pub deployments_per_day: f64,
    pub lead_time: LeadTime,
    /// Production deployments attempted in the window (reached or failed).
    pub prod_attempts: usize,
    /// Of those, failed in production or later rolled back.
    pub prod_failures: usize,
    /// `prod_failures / prod_attempts` (none without attempts).
    pub change_failure_rate: Option<f64>,
    /// From a production failure to the next completed production deployment (release or
    /// rollback); failures not restored yet are counted in `unrestored`.
    pub time_to_restore: Spread,
    pub unrestored: usize,
    /// Build, test and approval outcomes of executions that ended in the window.
    pub build_failures: usize,
    pub test_failures: usize,
    pub rejected: usize,
    pub expired: usize,
}

/// Compute the report over `executions` (any order; other pipelines' are ignored) for the
/// window `[since, until]`.
pub fn report(
    pipeline: &str,
    executions: &[Execution],
    since: DateTime<Utc>,
    until: DateTime<Utc>,
) -> DeliveryReport {
    let mine: Vec<&Execution> = executions
        .iter()
        .filter(|e| e.pipeline == pipeline)
        .collect();
    let in_window = |t: DateTime<Utc>| t >= since && t <= until;
    let created: Vec<&&Execution> = mine.iter().filter(|e| in_window(e.created_at)).collect();
    let in_progress = created.iter().filter(|e| e.status.is_active()).count();

    let mut lead = (vec![], vec![], vec![], vec![], vec![]);
    let mut deployments = 0;
    for e in &mine {
        let Some(at) = reached_prod_at(e).filter(|t| in_window(*t)) else {
            continue;
        };
        deployments += 1;
        let p = phase_seconds(e, at);
        // clock skew between functions never makes a lead time negative
        lead.0.push((at - e.created_at).num_seconds().max(0));
        lead.1.push(p.build);
        lead.2.push(p.test);
        lead.3.push(p.approval);
        lead.4.push(p.prod);
    }

    let failures: Vec<DateTime<Utc>> = mine
        .iter()
        .filter(|e| !e.trigger.is_rollback())
        .filter_map(|e| prod_failed_at(e))
        .filter(|t| in_window(*t))
        .collect();
    let failed_in_prod_deploy = mine
        .iter()
        .filter(|e| !e.trigger.is_rollback() && e.status == Status::ProdFailed)
        .filter(|e| ended_at(e).is_some_and(in_window))
        .count();
    // a rolled-back release reached production first: it is an attempt counted once
    let prod_attempts = deployments + failed_in_prod_deploy;
    let prod_failures = failures.len();
    let mut restores: Vec<DateTime<Utc>> =
        mine.iter().filter_map(|e| restored_prod_at(e)).collect();
    restores.sort_unstable();
    let mut ttr = Vec::new();
    let mut unrestored = 0;
    for f in &failures {
        match restores.iter().find(|r| *r > f) {
            Some(r) => ttr.push((*r - *f).num_seconds()),
            None => unrestored += 1,
        }
    }
    let ended = |s: Status| {
        mine.iter()
            .filter(|e| e.status == s && !matches!(e.trigger, Trigger::Rollback { .. }))
            .filter(|e| ended_at(e).is_some_and(in_window))
            .count()
    };
    let days = ((until - since).num_seconds() as f64 / 86_400.0).max(1.0 / 24.0);
    DeliveryReport {
        pipeline: pipeline.to_string(),
        since,
        until,
        executions: created.len(),
        in_progress,
        deployments,
        deployments_per_day: deployments as f64 / days,
        lead_time: LeadTime {
            total: Spread::of(lead.0),
            build: Spread::of(lead.1),
            test: Spread::of(lead.2),
            approval_wait: Spread::of(lead.3),
            prod: Spread::of(lead.4),
        },
        prod_attempts,
        prod_failures,
        change_failure_rate: (prod_attempts > 0)
            .then(|| (prod_failures as f64 / prod_attempts as f64).min(1.0)),
        time_to_restore: Spread::of(ttr),
        unrestored,
        build_failures: ended(Status::BuildFailed),
        test_failures: ended(Status::TestFailed),
        rejected: ended(Status::Rejected),
        expired: ended(Status::Expired),
    }
}

/// Parse a window length: `30d`, `12h`, `90m`, `2w` (1 minute to 366 days).
pub fn parse_window(text: &str) -> Result<Duration, String> {
    let t = text.trim();
    let (num, unit) = t.split_at(t.find(|c: char| !c.is_ascii_digit()).unwrap_or(t.len()));
    let n: i64 = num
        .parse()
        .map_err(|_| format!("{text:?}: expected a number and a unit, like 30d, 12h, 2w"))?;
    if !(1..=366 * 24 * 60).contains(&n) {
        return Err(format!("{text:?}: between 1 minute and 366 days"));
    }
    let d = match unit {
        "m" => Duration::minutes(n),
        "h" => Duration::hours(n),
        "d" | "" => Duration::days(n),
        "w" => Duration::weeks(n),
        other => return Err(format!("{text:?}: unknown unit {other:?} (m, h, d or w)")),
    };
    if d < Duration::minutes(1) || d > Duration::days(366) {
        return Err(format!("{text:?}: between 1 minute and 366 days"));
    }
    Ok(d)
}

/// CloudWatch namespace of the emitted metrics.
pub const NAMESPACE: &str = "shipgate";

/// The embedded-metric-format line of an execution that ended: `Executions`, `Failures`,
/// `Succeeded`, and for a release that reached production `LeadTime` and its parts
/// (`BuildTime`, `TestTime`, `ApprovalWait`, `ProdTime`), in seconds, by `Pipeline`.
pub fn emf_line(exec: &Execution) -> String {
    let end = exec.history.last().map(|h| h.at).unwrap_or(exec.updated_at);
    let failed = exec.status.is_failure();
    let succeeded = exec.status == Status::Succeeded;
    let mut names = vec![
        json!({"Name": "Executions", "Unit": "Count"}),
        json!({"Name": "Failures", "Unit": "Count"}),
        json!({"Name": "Succeeded", "Unit": "Count"}),
    ];
    let mut doc = json!({
        "Pipeline": exec.pipeline,
        "Status": exec.status.as_str(),
        "execution_id": exec.id.as_str(),
        "Executions": 1,
        "Failures": u8::from(failed),
        "Succeeded": u8::from(succeeded),
    });
    let phases = phase_seconds(exec, end);
    if exec.status == Status::AwaitingApproval || phases.approval > 0 {
        names.push(json!({"Name": "ApprovalWait", "Unit": "Seconds"}));
        doc["ApprovalWait"] = json!(phases.approval);
    }
    if let Some(at) = reached_prod_at(exec) {
        for (name, v) in [
            ("LeadTime", (at - exec.created_at).num_seconds().max(0)),
            ("BuildTime", phases.build),
            ("TestTime", phases.test),
            ("ProdTime", phases.prod),
        ] {
            names.push(json!({"Name": name, "Unit": "Seconds"}));
            doc[name] = json!(v);
        }
    }
    doc["_aws"] = json!({
        "Timestamp": end.timestamp_millis(),
        "CloudWatchMetrics": [{
            "Namespace": NAMESPACE,
            "Dimensions": [["Pipeline"]],
            "Metrics": names,
        }],
    });
    doc.to_string()
}

#[cfg(test)]
#[path = "metrics_tests.rs"]
mod tests;
