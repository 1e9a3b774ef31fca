//! Delivery metrics over synthetic histories.

use chrono::{TimeZone, Utc};

use super::*;
use crate::domain::{
    Commit, DeploymentRecord, Environment, ExecutionId, HistoryEntry, Status as S,
};

fn t(min: i64) -> DateTime<Utc> {
    Utc.timestamp_opt(1_800_000_000 + min * 60, 0).unwrap()
}

/// An execution created at minute `start` that went through `steps` (status, minute).
fn exec(n: u8, start: i64, steps: &[(Status, i64)]) -> Execution {
    let id = ExecutionId::generate(t(start));
    let mut e = Execution::received(
        id,
        "hello",
        Commit {
            sha: format!("{n:040x}"),
            reference: "main".into(),
            ..Default::default()
        },
        Trigger::Release {
            actor: "ops".into(),
        },
        t(start),
        "ops",
    );
    let mut from = S::Received;
    for (to, at) in steps {
        e.history.push(HistoryEntry {
            at: t(*at),
            from: Some(from),
            to: *to,
            cause: String::new(),
            actor: "x".into(),
        });
        if matches!(
            to,
            S::DeployingProd | S::Succeeded | S::ProdFailed | S::RolledBack
        ) {
            e.prod.get_or_insert(DeploymentRecord {
                environment: Environment::Prod,
                cluster: "apps".into(),
                service: "hello-prod".into(),
                task_definition: "td:1".into(),
                previous_task_definition: None,
                deployment_id: format!("d{n}"),
                started_at: t(*at),
                verify: false,
            });
        }
        from = *to;
        e.status = *to;
    }
    e.updated_at = e.history.last().unwrap().at;
    e
}

/// Push at 0, build 10 min, test 5, approval wait 30, prod 5: SUCCEEDED at 50.
fn released(n: u8, start: i64) -> Execution {
    exec(
        n,
        start,
        &[
            (S::Building, start),
            (S::Built, start + 10),
            (S::DeployingTest, start + 10),
            (S::AwaitingApproval, start + 15),
            (S::DeployingProd, start + 45),
            (S::Succeeded, start + 50),
        ],
    )
}

#[test]
fn lead_time_is_split_by_stage() {
    let e = released(1, 0);
    let p = phase_seconds(&e, t(100));
    assert_eq!((p.build, p.test, p.approval, p.prod), (600, 300, 1800, 300));
    assert_eq!(reached_prod_at(&e), Some(t(50)));
    let r = report("hello", &[e], t(-60), t(24 * 60));
    assert_eq!(r.deployments, 1);
    assert_eq!(r.lead_time.total.median_seconds, Some(3000));
    assert_eq!(r.lead_time.approval_wait.median_seconds, Some(1800));
    assert_eq!(r.lead_time.build.median_seconds, Some(600));
    assert_eq!(r.change_failure_rate, Some(0.0));
}

#[test]
fn a_retried_build_counts_its_failed_time_towards_the_build() {
    let e = exec(
        2,
        0,
        &[
            (S::Building, 0),
            (S::BuildFailed, 5),
            (S::Received, 20),
            (S::Building, 20),
            (S::Built, 30),
            (S::DeployingTest, 30),
            (S::AwaitingApproval, 35),
            (S::DeployingProd, 40),
            (S::Succeeded, 45),
        ],
    );
    let p = phase_seconds(&e, t(100));
    assert_eq!(p.build, 30 * 60);
    assert_eq!(p.total(), 45 * 60);
    let r = report("hello", &[e], t(0), t(60));
    assert_eq!(r.deployments, 1);
    // the build failure was fixed by a retry: it did not end the execution
    assert_eq!(r.build_failures, 0);
}

#[test]
fn failures_rollbacks_and_time_to_restore() {
    let good = released(1, 0); // prod at 50
    let bad = exec(
        2,
        100,
        &[
            (S::Building, 100),
            (S::Built, 110),
            (S::DeployingTest, 110),
            (S::AwaitingApproval, 115),
            (S::DeployingProd, 120),
            (S::ProdFailed, 130),
        ],
    );
    // a rollback restores production at 150: 20 minutes after the failure
    let mut rollback = exec(3, 140, &[(S::DeployingProd, 140), (S::Succeeded, 150)]);
    rollback.trigger = Trigger::Rollback {
        actor: "ops".into(),
        environment: Environment::Prod,
        restores: good.id.clone(),
        task_definition: None,
        replaces: Some(bad.id.clone()),
    };
    // a release that reached production and was rolled back later (at 300), never restored
    let mut later = released(4, 200); // prod at 250
    later.history.push(HistoryEntry {
        at: t(300),
        from: Some(S::Succeeded),
        to: S::RolledBack,
        cause: String::new(),
        actor: "x".into(),
    });
    later.status = S::RolledBack;
    let r = report("hello", &[good, bad, rollback, later], t(-10), t(24 * 60));
    // releases in production: good and later (the rollback is not a release)
    assert_eq!(r.deployments, 2);
    assert_eq!(r.prod_attempts, 3);
    assert_eq!(r.prod_failures, 2);
    assert_eq!(r.change_failure_rate, Some(2.0 / 3.0));
    assert_eq!(r.time_to_restore.median_seconds, Some(20 * 60));
    assert_eq!(r.unrestored, 1);
}

#[test]
fn an_execution_still_waiting_counts_as_in_progress_only() {
    let waiting = exec(
        5,
        0,
        &[
            (S::Building, 0),
            (S::Built, 10),
            (S::DeployingTest, 10),
            (S::AwaitingApproval, 15),
        ],
    );
    let p = phase_seconds(&waiting, t(75));
    assert_eq!(p.approval, 60 * 60);
    let r = report("hello", std::slice::from_ref(&waiting), t(0), t(75));
    assert_eq!((r.executions, r.in_progress, r.deployments), (1, 1, 0));
    assert_eq!(r.change_failure_rate, None);
    assert_eq!(r.lead_time.total.count, 0);
    // an execution that is still running emits nothing (only an ended one does)
    let line: serde_json::Value = serde_json::from_str(&emf_line(&released(6, 0))).unwrap();
    assert_eq!(
        line["_aws"]["CloudWatchMetrics"][0]["Namespace"],
        "shipgate"
    );
    assert_eq!(line["LeadTime"], 3000);
    assert_eq!(line["ApprovalWait"], 1800);
    assert_eq!(line["Succeeded"], 1);
    let names: Vec<&str> = line["_aws"]["CloudWatchMetrics"][0]["Metrics"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["Name"].as_str().unwrap())
        .collect();
    for n in names {
        assert!(line.get(n).is_some(), "{n} has a value");
    }
}

#[test]
fn the_window_and_other_pipelines_are_respected() {
    let old = released(1, -10_000);
    let mut other = released(2, 0);
    other.pipeline = "other".into();
    let recent = released(3, 0);
    let r = report("hello", &[old, other, recent], t(-60), t(24 * 60));
    assert_eq!(r.deployments, 1);
    assert_eq!(r.executions, 1);
    assert!((r.deployments_per_day - 1.0 / (25.0 / 24.0)).abs() < 1e-9);
}

#[test]
fn rejected_expired_and_failures_are_counted() {
    let rejected = exec(
        1,
        0,
        &[
            (S::Building, 0),
            (S::Built, 1),
            (S::DeployingTest, 1),
            (S::AwaitingApproval, 2),
            (S::Rejected, 3),
        ],
    );
    let expired = exec(
        2,
        0,
        &[
            (S::Building, 0),
            (S::Built, 1),
            (S::DeployingTest, 1),
            (S::AwaitingApproval, 2),
            (S::Expired, 300),
        ],
    );
    let failed = exec(3, 0, &[(S::Building, 0), (S::BuildFailed, 4)]);
    let r = report("hello", &[rejected, expired, failed.clone()], t(0), t(400));
    assert_eq!((r.rejected, r.expired, r.build_failures), (1, 1, 1));
    let line: serde_json::Value = serde_json::from_str(&emf_line(&failed)).unwrap();
    assert_eq!(line["Failures"], 1);
    assert!(line.get("LeadTime").is_none());
}

#[test]
fn clock_skew_never_makes_a_duration_negative() {
    // the function that stored SUCCEEDED ran with a clock 2 minutes behind the one that created it
    let e = exec(
        1,
        10,
        &[
            (S::Building, 9),
            (S::Built, 9),
            (S::DeployingTest, 9),
            (S::AwaitingApproval, 8),
            (S::DeployingProd, 8),
            (S::Succeeded, 8),
        ],
    );
    let r = report("hello", std::slice::from_ref(&e), t(0), t(60));
    assert_eq!(r.deployments, 1);
    assert_eq!(r.lead_time.total.max_seconds, Some(0));
    let line: serde_json::Value = serde_json::from_str(&emf_line(&e)).unwrap();
    assert_eq!(line["LeadTime"], 0);
    for phase in ["BuildTime", "TestTime", "ProdTime"] {
        assert!(line[phase].as_i64().unwrap() >= 0, "{phase}");
    }
}

#[test]
fn windows_parse() {
    assert_eq!(parse_window("30d"), Ok(Duration::days(30)));
    assert_eq!(parse_window("12h"), Ok(Duration::hours(12)));
    assert_eq!(parse_window("2w"), Ok(Duration::weeks(2)));
    assert!(parse_window("0d").is_err());
    assert!(parse_window("400d").is_err());
    assert!(parse_window("abc").is_err());
    assert!(parse_window("5y").is_err());
    assert!(parse_window("99999999999999999999d").is_err());
}

#[test]
fn spreads() {
    assert_eq!(Spread::of(vec![]).median_seconds, None);
    let s = Spread::of(vec![30, 10, 20, 40]);
    assert_eq!(
        (s.count, s.median_seconds, s.mean_seconds, s.max_seconds),
        (4, Some(25), Some(25), Some(40))
    );
}
