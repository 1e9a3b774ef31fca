use super::*;
use chrono::{Duration, TimeZone};

fn t(min: i64) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 1, 1, 0, 0, 0).unwrap() + Duration::minutes(min)
}

fn id(n: i64) -> ExecutionId {
    // ULIDs made at increasing times sort in that order
    ExecutionId::generate(t(n))
}

fn rev(
    exec: &ExecutionId,
    restores: Option<&ExecutionId>,
    n: i64,
    digest: &str,
) -> DeployedRevision {
    DeployedRevision {
        execution_id: exec.clone(),
        restores: restores.cloned(),
        how: if restores.is_some() {
            DeployKind::Rollback
        } else {
            DeployKind::Push
        },
        deployment_id: Some(format!("ecs-svc/{n}")),
        commit: Commit {
            sha: format!("{digest:0<40}"),
            reference: "main".into(),
            ..Default::default()
        },
        image: ImageRef {
            repository_uri: "r".into(),
            tag: "t".into(),
            digest: format!("sha256:{digest}"),
        },
        task_definition: format!("td:{n}"),
        started_at: Some(t(n)),
        deployed_at: t(n) + Duration::seconds(30),
        withdrawn: false,
    }
}

#[test]
fn rollback_after_a_failed_release_restores_the_last_good_one_and_walks_back() {
    let (a, b, c) = (id(1), id(2), id(3));
    let mut env = EnvironmentRevisions::default();
    assert!(env.record(rev(&a, None, 10, "a")));
    assert!(env.record(rev(&b, None, 20, "b")));
    // C failed in prod: never recorded; it is what prod was last asked to run
    let target = env.rollback_target(&c).unwrap();
    assert_eq!(
        target.origin(),
        &b,
        "after a failed deploy: the last good one"
    );
    // the rollback to B completes
    let r1 = id(4);
    assert!(env.record(rev(&r1, Some(&b), 40, "b")));
    assert_eq!(env.current().unwrap().origin(), &b);
    // rolling back again walks further back, not to and fro
    let target = env
        .rollback_target(env.current().unwrap().origin())
        .unwrap();
    assert_eq!(target.origin(), &a);
    let r2 = id(5);
    env.record(rev(&r2, Some(&a), 50, "a"));
    assert!(env.rollback_target(&a).is_none(), "nothing older than A");
    assert_eq!(env.previous(), None);
}

#[test]
fn rollback_after_success_restores_the_one_before() {
    let (a, b) = (id(1), id(2));
    let mut env = EnvironmentRevisions::default();
    env.record(rev(&a, None, 10, "a"));
    env.record(rev(&b, None, 20, "b"));
    assert_eq!(env.rollback_target(&b).unwrap().origin(), &a);
    assert_eq!(env.previous().unwrap().origin(), &a);
}

#[test]
fn records_are_idempotent_and_ordered_by_deployment_start() {
    let (a, b) = (id(1), id(2));
    let mut env = EnvironmentRevisions::default();
    env.record(rev(&b, None, 20, "b"));
    // a late record of an earlier deployment does not become current
    assert!(env.record(rev(&a, None, 10, "a")));
    assert_eq!(env.current().unwrap().execution_id, b);
    assert!(!env.record(rev(&a, None, 10, "a")), "repeated");
    assert!(!env.record(rev(&b, None, 20, "b")), "repeated");
    assert_eq!(env.history.len(), 2);
    // a retry of the same execution is a new deployment
    assert!(env.record(rev(&a, None, 30, "a")));
    assert_eq!(env.current().unwrap().execution_id, a);
}

#[test]
fn keeps_a_bounded_history() {
    let mut env = EnvironmentRevisions::default();
    for n in 0..(KEPT_REVISIONS as i64 + 10) {
        env.record(rev(&id(n), None, n, &format!("{n:x}")));
    }
    assert_eq!(env.history.len(), KEPT_REVISIONS);
    assert_eq!(
        env.current().unwrap().started_at,
        Some(t(KEPT_REVISIONS as i64 + 9))
    );
    const { assert!(KEPT_REVISIONS >= 20) };
}

#[test]
fn a_completed_rollback_releases_its_claim() {
    let (a, b, r) = (id(1), id(2), id(3));
    let mut env = EnvironmentRevisions::default();
    env.record(rev(&a, None, 10, "a"));
    env.record(rev(&b, None, 20, "b"));
    env.rollback = Some(RollbackClaim {
        execution_id: r.clone(),
        at: t(30),
    });
    env.record(rev(&b, None, 20, "b"));
    assert!(
        env.rollback.is_some(),
        "another execution's record keeps the claim"
    );
    env.record(rev(&r, Some(&a), 30, "a"));
    assert!(env.rollback.is_none());
}

#[test]
fn find_by_execution_or_commit() {
    let (a, b, r) = (id(1), id(2), id(3));
    let mut env = EnvironmentRevisions::default();
    env.record(rev(&a, None, 10, "aaaa"));
    env.record(rev(&b, None, 20, "bbbb"));
    env.record(rev(&r, Some(&a), 30, "aaaa"));
    assert_eq!(
        env.find(a.as_str()).unwrap().execution_id,
        r,
        "newest of that release"
    );
    assert_eq!(env.find(b.as_str()).unwrap().execution_id, b);
    assert_eq!(
        env.find(&"1".repeat(36)).unwrap_err(),
        RevisionLookupError::NotFound(format!("commit {}", "1".repeat(36)))
    );
    assert_eq!(env.find("BBBB000").unwrap().origin(), &b);
    assert_eq!(env.find("aaaa0000").unwrap().execution_id, r);
    assert!(matches!(
        env.find("000000"),
        Err(RevisionLookupError::BadSelector)
    ));
    assert!(matches!(
        env.find("not a sha"),
        Err(RevisionLookupError::BadSelector)
    ));
    env.record(rev(&id(4), None, 40, "aaaa0001"));
    assert!(matches!(
        env.find("aaaa"),
        Err(RevisionLookupError::BadSelector)
    ));
    assert!(matches!(
        env.find("aaaa000"),
        Err(RevisionLookupError::Ambiguous { .. })
    ));
    assert!(matches!(
        env.find(id(9).as_str()),
        Err(RevisionLookupError::NotFound(_))
    ));
}

#[test]
fn a_sha_prefix_that_looks_like_an_execution_id_is_a_sha() {
    let a = id(1);
    let mut env = EnvironmentRevisions::default();
    env.record(rev(&a, None, 10, "0123456789abcdef0123456789ab"));
    let prefix = "0123456789abcdef0123456789";
    assert!(prefix.parse::<ExecutionId>().is_ok(), "it parses as a ULID");
    assert_eq!(env.find(prefix).unwrap().execution_id, a);
}

#[test]
fn withdrawn_releases_are_skipped_until_they_run_again() {
    let (a, b, c) = (id(1), id(2), id(3));
    let mut env = EnvironmentRevisions::default();
    env.record(rev(&a, None, 10, "a"));
    env.record(rev(&b, None, 20, "b"));
    // rolled back from B to A, then C shipped
    let r = id(4);
    env.record(rev(&r, Some(&a), 30, "a"));
    assert!(env.withdraw(&b));
    env.record(rev(&c, None, 40, "c"));
    assert_eq!(
        env.rollback_target(&c).unwrap().origin(),
        &a,
        "B is skipped"
    );
    assert_eq!(
        env.find(b.as_str()).unwrap().origin(),
        &b,
        "--to may still name it"
    );
    // B deployed again (rollback --to B): no longer withdrawn
    env.record(rev(&id(5), Some(&b), 50, "b"));
    assert!(env.history.iter().all(|r| !r.withdrawn));
}

#[test]
fn failures_newer_than_what_runs_are_what_was_last_asked() {
    let (a, b, c) = (id(1), id(2), id(3));
    let mut env = EnvironmentRevisions::default();
    env.record(rev(&a, None, 10, "a"));
    env.record(rev(&b, None, 20, "b"));
    let failed = |e: &ExecutionId, n: i64| FailedDeployment {
        execution_id: e.clone(),
        origin: e.clone(),
        started_at: t(n),
        failed_at: t(n + 1),
    };
    assert_eq!(env.last_requested().unwrap().0, b);
    assert!(!env.record_failure(failed(&a, 5)), "older than what runs");
    assert!(env.record_failure(failed(&c, 30)));
    assert_eq!(env.last_requested().unwrap().0, c);
    // a later success clears it
    env.record(rev(&id(4), None, 40, "d"));
    assert!(env.failed.is_none());
    // a failing rollback releases its claim
    let r = id(5);
    env.rollback = Some(RollbackClaim {
        execution_id: r.clone(),
        at: t(50),
    });
    assert!(env.record_failure(FailedDeployment {
        execution_id: r,
        origin: a.clone(),
        started_at: t(50),
        failed_at: t(51),
    }));
    assert!(env.rollback.is_none());
    assert_eq!(env.last_requested().unwrap().0, a);
}

#[test]
fn json_keeps_current_and_previous_and_reads_old_records() {
    let (a, b) = (id(1), id(2));
    let mut env = EnvironmentRevisions::default();
    env.record(rev(&a, None, 10, "a"));
    env.record(rev(&b, None, 20, "b"));
    let v = serde_json::to_value(&env).unwrap();
    assert_eq!(v["current"]["execution_id"], b.as_str());
    assert_eq!(v["previous"]["execution_id"], a.as_str());
    assert_eq!(v["history"].as_array().unwrap().len(), 2);
    let back: EnvironmentRevisions = serde_json::from_value(v).unwrap();
    assert_eq!(back, env);
    // the record as written before the history existed
    let old = serde_json::json!({
        "current": serde_json::to_value(rev(&b, None, 20, "b")).unwrap(),
        "previous": serde_json::to_value(rev(&a, None, 10, "a")).unwrap(),
    });
    let old: EnvironmentRevisions = serde_json::from_value(old).unwrap();
    assert_eq!(old.history.len(), 2);
    assert_eq!(old.current().unwrap().execution_id, b);
}

#[test]
fn revision_records_bound_commit_text() {
    let now = t(0);
    let mut exec = Execution::received(
        id(1),
        "p",
        Commit {
            sha: "a".repeat(40),
            reference: "main".into(),
            author: Some("x".repeat(10_000)),
            message: Some(format!(
                "{}\n\n{}",
                "t".repeat(5_000),
                "body ".repeat(80_000)
            )),
            url: Some(format!("https://{}", "u".repeat(5_000))),
        },
        Trigger::Release {
            actor: "ops".into(),
        },
        now,
        "ops",
    );
    exec.image = Some(ImageRef {
        repository_uri: "r".into(),
        tag: "t".into(),
        digest: "sha256:x".into(),
    });
    exec.prod = Some(crate::domain::DeploymentRecord {
        environment: Environment::Prod,
        cluster: "c".into(),
        service: "s".into(),
        task_definition: "td:1".into(),
        previous_task_definition: None,
        deployment_id: "d".into(),
        verify: false,
        started_at: now,
    });
    let r = DeployedRevision::completed(&exec, Environment::Prod, now).unwrap();
    assert_eq!(r.how, DeployKind::Release);
    assert!(serde_json::to_string(&r).unwrap().len() < 2_000);
    assert!(r.commit.message.unwrap().ends_with('…'));
    assert_eq!(r.commit.url, None);
    assert!(DeployedRevision::completed(&exec, Environment::Test, now).is_none());
}
