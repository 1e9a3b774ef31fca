//! Release truth against the fakes: rollback after a failed release, repeated rollbacks,
//! rollback --to, concurrent rollbacks, push order in queued mode, and pruning with two
//! pipelines on one repository. After every scenario: what `status` says runs is what the
//! (fake) ECS runs, and nothing that runs was deleted.

use super::approvals::{self, LinkError};
use super::control;
use super::events::on_deployment_state;
use super::sweeper::{sweep, SweepLimits};
use super::test_support::*;
use super::AppError;
use crate::domain::aws_events::DeploymentEventName;
use crate::domain::{
    Channel, DeployKind, Environment, EnvironmentRevisions, ExecutionId, ExecutionMode,
    PipelineDefinition, Status, Trigger, Verdict,
};
use crate::fake_world::FakeWorld;
use crate::ports::{Clock, Deployer, ExecutionStore};

async fn revisions(w: &FakeWorld, pipeline: &str, env: Environment) -> EnvironmentRevisions {
    w.store
        .get_revisions(pipeline, env)
        .await
        .unwrap()
        .map(|v| v.value)
        .unwrap_or_default()
}

/// The invariant: for every environment shipgate deployed, `status` names the image ECS runs.
async fn assert_status_matches_ecs(w: &FakeWorld, p: &PipelineDefinition) {
    let st = control::status(&w.services, Some(&p.name)).await.unwrap();
    for (env, revs) in [
        (Environment::Test, &st[0].test),
        (Environment::Prod, &st[0].prod),
    ] {
        if let Some(revs) = revs {
            let current = revs
                .current()
                .expect("a recorded environment has a current");
            assert_eq!(
                w.deployer.image_of(p.target(env)).unwrap(),
                current.image.pinned(),
                "status of {env} names what ECS runs"
            );
            assert_eq!(
                w.deployer
                    .service_state(p.target(env))
                    .await
                    .unwrap()
                    .task_definition,
                current.task_definition
            );
        }
    }
}

fn digest(n: u8) -> String {
    format!("sha256:{n:064x}")
}

async fn complete(w: &FakeWorld, deployment_id: &str) {
    on_deployment_state(
        &w.services,
        &deploy_event(deployment_id, DeploymentEventName::Completed),
    )
    .await
    .unwrap();
}

/// Fail a deployment as the circuit breaker does (the service goes back to what it ran).
async fn circuit_breaker_fails(w: &FakeWorld, prod: &crate::domain::DeploymentRecord) {
    let p = FakeWorld::pipeline();
    w.deployer
        .deploy_task_definition(&p.prod, prod.previous_task_definition.as_deref().unwrap())
        .await
        .unwrap();
    on_deployment_state(
        &w.services,
        &deploy_event(&prod.deployment_id, DeploymentEventName::Failed),
    )
    .await
    .unwrap();
}

/// Approve `id` and fail its prod deployment as the ECS circuit breaker does.
async fn fail_in_prod(w: &FakeWorld, id: &ExecutionId) {
    let e = approvals::decide(&w.services, id, Verdict::Approve, "ops", Channel::Cli, None)
        .await
        .unwrap();
    circuit_breaker_fails(w, e.prod.as_ref().unwrap()).await;
    assert_eq!(exec(w, id).await.status, Status::ProdFailed);
}

/// Push and build `n`, and fail its test deployment (TEST_FAILED, for a later retry).
async fn test_failed(w: &FakeWorld, n: u8) -> ExecutionId {
    let id = built(w, n).await;
    let e = exec(w, &id).await;
    on_deployment_state(
        &w.services,
        &deploy_event(&e.test.unwrap().deployment_id, DeploymentEventName::Failed),
    )
    .await
    .unwrap();
    assert_eq!(exec(w, &id).await.status, Status::TestFailed);
    id
}

fn restores(e: &crate::domain::Execution) -> ExecutionId {
    match &e.trigger {
        Trigger::Rollback { restores, .. } => restores.clone(),
        other => panic!("not a rollback: {other:?}"),
    }
}

#[tokio::test]
async fn fail_then_rollback_then_rollback_again_walks_back_one_release_at_a_time() {
    let w = FakeWorld::with_pipeline().await;
    let p = FakeWorld::pipeline();
    let a = succeed(&w, 1).await;
    let b = succeed(&w, 2).await;
    let c = awaiting(&w, 3).await;
    fail_in_prod(&w, &c).await;
    // ECS rolled back to B by itself; status says B, not the failed C
    assert_status_matches_ecs(&w, &p).await;
    assert!(w.deployer.image_of(&p.prod).unwrap().ends_with(&digest(2)));
    let notice = w.notifier.sent().last().unwrap().1.clone();
    assert!(notice.body.contains("shipgate rollback hello --env prod"));

    // the first rollback restores the last good release (B), and only C is rolled back
    let rb1 = control::rollback(&w.services, "hello", Environment::Prod, None, "ops")
        .await
        .unwrap();
    assert_eq!(restores(&rb1), b);
    assert_eq!(rb1.image.as_ref().unwrap().digest, digest(2));
    assert_eq!(rb1.status, Status::DeployingProd);
    assert_eq!(
        exec(&w, &c).await.status,
        Status::ProdFailed,
        "marked once it completed"
    );
    complete(&w, &rb1.prod.as_ref().unwrap().deployment_id).await;
    assert_eq!(exec(&w, &c).await.status, Status::RolledBack);
    assert_eq!(exec(&w, &b).await.status, Status::Succeeded, "B stays good");
    assert_eq!(exec(&w, &a).await.status, Status::Succeeded);
    assert_eq!(exec(&w, &rb1.id).await.status, Status::Succeeded);
    assert_status_matches_ecs(&w, &p).await;
    let h = revisions(&w, "hello", Environment::Prod).await;
    assert_eq!(h.current().unwrap().how, DeployKind::Rollback);
    assert_eq!(h.current().unwrap().origin(), &b);
    assert!(
        h.rollback.is_none(),
        "the completed rollback released its claim"
    );

    // the second walks further back to A (not back and forth between two)
    let rb2 = control::rollback(&w.services, "hello", Environment::Prod, None, "ops")
        .await
        .unwrap();
    assert_eq!(restores(&rb2), a);
    complete(&w, &rb2.prod.as_ref().unwrap().deployment_id).await;
    assert_eq!(exec(&w, &b).await.status, Status::RolledBack);
    assert!(w.deployer.image_of(&p.prod).unwrap().ends_with(&digest(1)));
    assert_status_matches_ecs(&w, &p).await;

    // nothing older than A
    let err = control::rollback(&w.services, "hello", Environment::Prod, None, "ops")
        .await
        .unwrap_err();
    assert!(
        matches!(&err, AppError::Conflict(m) if m.contains("no earlier release")),
        "{err}"
    );
    assert_status_matches_ecs(&w, &p).await;
}

#[tokio::test]
async fn rollback_after_success_restores_the_one_before_and_marks_only_it() {
    let w = FakeWorld::with_pipeline().await;
    let p = FakeWorld::pipeline();
    let a = succeed(&w, 1).await;
    let b = succeed(&w, 2).await;
    let rb = control::rollback(&w.services, "hello", Environment::Prod, None, "ops")
        .await
        .unwrap();
    assert_eq!(restores(&rb), a);
    complete(&w, &rb.prod.as_ref().unwrap().deployment_id).await;
    assert_eq!(exec(&w, &b).await.status, Status::RolledBack);
    assert_eq!(exec(&w, &a).await.status, Status::Succeeded);
    assert_status_matches_ecs(&w, &p).await;
    // a new push after the rollback goes forward as usual
    let d = succeed(&w, 4).await;
    assert_eq!(
        revisions(&w, "hello", Environment::Prod)
            .await
            .current()
            .unwrap()
            .execution_id,
        d
    );
    assert_status_matches_ecs(&w, &p).await;
    // rolling back again does not bring back B, the release rolled back as bad: it goes to
    // what ran before D (A), and B stays withdrawn
    let rb2 = control::rollback(&w.services, "hello", Environment::Prod, None, "ops")
        .await
        .unwrap();
    assert_eq!(restores(&rb2), a);
    complete(&w, &rb2.prod.as_ref().unwrap().deployment_id).await;
    assert_status_matches_ecs(&w, &p).await;
}

#[tokio::test]
async fn rollback_to_names_a_release_that_ran_there() {
    let w = FakeWorld::with_pipeline().await;
    let p = FakeWorld::pipeline();
    let a = succeed(&w, 1).await;
    let _b = succeed(&w, 2).await;
    let c = succeed(&w, 3).await;
    // by commit SHA prefix
    let sha_a = exec(&w, &a).await.commit.sha;
    let rb = control::rollback(&w.services, "hello", Environment::Prod, Some(&sha_a), "ops")
        .await
        .unwrap();
    assert_eq!(restores(&rb), a);
    complete(&w, &rb.prod.as_ref().unwrap().deployment_id).await;
    assert_eq!(exec(&w, &c).await.status, Status::RolledBack);
    assert_status_matches_ecs(&w, &p).await;
    // by execution id, forward again to C
    let rb2 = control::rollback(
        &w.services,
        "hello",
        Environment::Prod,
        Some(c.as_str()),
        "ops",
    )
    .await
    .unwrap();
    assert_eq!(restores(&rb2), c);
    complete(&w, &rb2.prod.as_ref().unwrap().deployment_id).await;
    assert!(w.deployer.image_of(&p.prod).unwrap().ends_with(&digest(3)));
    assert_status_matches_ecs(&w, &p).await;

    let deployments = w.deployer.deployments_to("hello-prod");
    // what never ran there, what it already runs, and nonsense are refused, changing nothing
    for (to, want) in [
        (sha(9), "invalid_argument"),
        (c.to_string(), "conflict"),
        ("latest".to_string(), "invalid_argument"),
    ] {
        let err = control::rollback(&w.services, "hello", Environment::Prod, Some(&to), "ops")
            .await
            .unwrap_err();
        assert_eq!(err.code(), want, "--to {to}: {err}");
    }
    assert_eq!(w.deployer.deployments_to("hello-prod"), deployments);
    assert_status_matches_ecs(&w, &p).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_second_rollback_while_one_is_under_way_is_refused() {
    let w = std::sync::Arc::new(FakeWorld::with_pipeline().await);
    let p = FakeWorld::pipeline();
    succeed(&w, 1).await;
    succeed(&w, 2).await;
    succeed(&w, 3).await;
    let before = w.deployer.deployments_to("hello-prod");
    let tasks: Vec<_> = (0..10)
        .map(|_| {
            let w = w.clone();
            tokio::spawn(async move {
                control::rollback(&w.services, "hello", Environment::Prod, None, "ops").await
            })
        })
        .collect();
    let mut results = Vec::new();
    for t in tasks {
        results.push(t.await.unwrap());
    }
    let won: Vec<_> = results.iter().filter_map(|r| r.as_ref().ok()).collect();
    assert_eq!(won.len(), 1, "one rollback acts");
    for r in results.iter().filter_map(|r| r.as_ref().err()) {
        assert!(
            matches!(r, AppError::Conflict(m) if m.contains("already under way")),
            "{r}"
        );
    }
    assert_eq!(w.deployer.deployments_to("hello-prod"), before + 1);
    let rollbacks = w
        .store
        .executions()
        .into_iter()
        .filter(|e| e.trigger.is_rollback())
        .count();
    assert_eq!(rollbacks, 1);
    // once it finished, the next rollback may go
    let id = won[0].prod.as_ref().unwrap().deployment_id.clone();
    complete(&w, &id).await;
    assert_status_matches_ecs(&w, &p).await;
    control::rollback(&w.services, "hello", Environment::Prod, None, "ops")
        .await
        .unwrap();
}

#[tokio::test]
async fn a_rollback_that_died_before_deploying_does_not_block_the_next() {
    let w = FakeWorld::with_pipeline().await;
    succeed(&w, 1).await;
    succeed(&w, 2).await;
    w.deployer.faults.fail_next(
        "deploy_task_definition",
        crate::ports::ServiceError::Rejected("access denied".into()),
    );
    let failed = control::rollback(&w.services, "hello", Environment::Prod, None, "ops")
        .await
        .unwrap();
    assert_eq!(failed.status, Status::ProdFailed);
    // nothing moved: B is not marked rolled back, and the next rollback may go
    let b = w
        .store
        .executions()
        .into_iter()
        .filter(|e| !e.trigger.is_rollback())
        .max_by_key(|e| e.id.clone())
        .unwrap();
    assert_eq!(b.status, Status::Succeeded);
    let rb = control::rollback(&w.services, "hello", Environment::Prod, None, "ops")
        .await
        .unwrap();
    assert_eq!(rb.status, Status::DeployingProd);
    complete(&w, &rb.prod.as_ref().unwrap().deployment_id).await;
    assert_eq!(exec(&w, &b.id).await.status, Status::RolledBack);
}

async fn queued_world() -> FakeWorld {
    let w = FakeWorld::with_pipeline().await;
    let mut p = FakeWorld::pipeline();
    p.mode = ExecutionMode::Queued;
    w.store.put_pipeline(&p, w.clock.now()).await.unwrap();
    w
}

#[tokio::test]
async fn queued_mode_reaches_production_in_push_order() {
    let w = queued_world().await;
    let p = FakeWorld::pipeline();
    let x = awaiting(&w, 1).await;
    let y = awaiting(&w, 2).await;
    assert_eq!(
        exec(&w, &x).await.status,
        Status::AwaitingApproval,
        "queued: both wait"
    );
    let mail = w.notifier.sent().last().unwrap().1.body.clone();
    assert!(
        !mail.contains("A newer push that reaches test replaces"),
        "{mail}"
    );
    assert!(mail.contains("push order"));

    // approving the newer one first: the older can never go to production after it
    let e = approvals::decide(&w.services, &y, Verdict::Approve, "ops", Channel::Cli, None)
        .await
        .unwrap();
    assert_eq!(exec(&w, &x).await.status, Status::Superseded);
    complete(&w, &e.prod.unwrap().deployment_id).await;
    let err = approvals::decide(&w.services, &x, Verdict::Approve, "ops", Channel::Cli, None)
        .await
        .unwrap_err();
    assert!(matches!(err, LinkError::Superseded(_)), "{err}");
    assert!(w.deployer.image_of(&p.prod).unwrap().ends_with(&digest(2)));
    assert_status_matches_ecs(&w, &p).await;
}

#[tokio::test]
async fn an_older_release_after_a_newer_one_went_to_production_gives_way_or_is_refused() {
    let w = queued_world().await;
    let p = FakeWorld::pipeline();
    // X is older but reaches approval only after Y went to production (its test deploy failed
    // and was retried)
    let x = test_failed(&w, 1).await;
    let y = succeed(&w, 2).await;
    let emails = w.notifier.count("Approve");
    let retried = control::retry(&w.services, &x, "ops").await.unwrap();
    complete(&w, &retried.test.unwrap().deployment_id).await;
    // it can never go to production after Y: it gives way instead of asking anyone
    assert_eq!(exec(&w, &x).await.status, Status::Superseded);
    assert_eq!(
        w.notifier.count("Approve"),
        emails,
        "no approval request for it"
    );
    // the race that remains: X reached approval just before Y's approval was visible
    let mut racing = exec(&w, &x).await;
    racing.status = Status::AwaitingApproval;
    w.store.insert(racing.clone());
    let link = approvals::approval_link(&w.services, &racing)
        .await
        .unwrap();
    let token = link.rsplit('/').next().unwrap().to_string();
    let before = exec(&w, &x).await;

    for err in [
        approvals::decide(&w.services, &x, Verdict::Approve, "ops", Channel::Cli, None)
            .await
            .unwrap_err(),
        approvals::decide_by_link(&w.services, &token, form(Verdict::Approve))
            .await
            .unwrap_err(),
    ] {
        assert_eq!(err.http_status(), 409);
        let LinkError::OutOfOrder(why) = &err else {
            panic!("{err}")
        };
        assert!(
            why.contains(y.as_str()) && why.contains("push order"),
            "{why}"
        );
        assert!(
            why.contains(&format!("shipgate release hello --commit {}", sha(1))),
            "it never ran in production, so the advice is a new release: {why}"
        );
    }
    assert_eq!(exec(&w, &x).await, before, "nothing changed");
    assert!(w.deployer.image_of(&p.prod).unwrap().ends_with(&digest(2)));
    // rejecting it is still possible
    approvals::decide(&w.services, &x, Verdict::Reject, "ops", Channel::Cli, None)
        .await
        .unwrap();
    assert_status_matches_ecs(&w, &p).await;
}

#[tokio::test]
async fn a_retry_that_would_move_production_back_is_refused() {
    let w = FakeWorld::with_pipeline().await;
    let p = FakeWorld::pipeline();
    succeed(&w, 1).await;
    let c = awaiting(&w, 3).await;
    fail_in_prod(&w, &c).await;
    let d = succeed(&w, 4).await;
    let err = control::retry(&w.services, &c, "ops").await.unwrap_err();
    assert!(
        matches!(&err, AppError::Conflict(m) if m.contains(d.as_str())),
        "{err}"
    );
    assert_eq!(exec(&w, &c).await.status, Status::ProdFailed);
    assert_status_matches_ecs(&w, &p).await;
}

#[tokio::test]
async fn test_status_follows_the_last_deployment_even_for_an_older_execution() {
    // a retried test deployment of an older execution is what test runs afterwards
    let w = queued_world().await;
    let p = FakeWorld::pipeline();
    let x = test_failed(&w, 1).await;
    awaiting(&w, 2).await;
    let retried = control::retry(&w.services, &x, "ops").await.unwrap();
    complete(&w, &retried.test.unwrap().deployment_id).await;
    let h = revisions(&w, "hello", Environment::Test).await;
    assert_eq!(h.current().unwrap().execution_id, x);
    assert_eq!(h.current().unwrap().how, DeployKind::Retry);
    assert_status_matches_ecs(&w, &p).await;
}

#[tokio::test]
async fn pruning_protects_every_pipeline_on_a_shared_repository() {
    let w = FakeWorld::with_pipeline().await;
    let hello = FakeWorld::pipeline();
    // a second pipeline on the same repository that keeps few images and lists first
    let mut other = hello.clone();
    other.name = "another".into();
    other.source = crate::domain::Source::Github("shipgate-demo/another".into());
    other.keep_images = 1;
    other.test.service = "another-test".into();
    other.prod.service = "another-prod".into();
    w.store.put_pipeline(&other, w.clock.now()).await.unwrap();
    let repo = hello.image.repository_name().to_string();
    let old = w.clock.now() - chrono::Duration::days(30);
    // twelve images; hello releases three of them, "another" runs three others
    for n in 1..=12u8 {
        w.registry.push(
            &repo,
            &format!("t{n}"),
            &digest(100 + n),
            old + chrono::Duration::hours(i64::from(n)),
        );
    }
    w.deployer.add_service(
        &other.test,
        &format!("{}@{}", other.image.repository, digest(101)),
    );
    w.deployer.add_service(
        &other.prod,
        &format!("{}@{}", other.image.repository, digest(102)),
    );
    let mut history = EnvironmentRevisions::default();
    for (n, d) in [(1u8, 103u8), (2, 102)] {
        let mut e = crate::domain::Execution::received(
            ExecutionId::generate(old + chrono::Duration::minutes(i64::from(n))),
            "another",
            crate::domain::Commit {
                sha: sha(n),
                reference: "main".into(),
                ..Default::default()
            },
            Trigger::Release {
                actor: "ops".into(),
            },
            old,
            "ops",
        );
        e.image = Some(crate::domain::ImageRef {
            repository_uri: other.image.repository.clone(),
            tag: format!("t{n}"),
            digest: digest(d),
        });
        e.prod = Some(crate::domain::DeploymentRecord {
            environment: Environment::Prod,
            cluster: "apps".into(),
            service: "another-prod".into(),
            task_definition: format!("another:{n}"),
            previous_task_definition: None,
            deployment_id: format!("d{n}"),
            verify: false,
            started_at: old + chrono::Duration::minutes(i64::from(n)),
        });
        history.record(
            crate::domain::DeployedRevision::completed(&e, Environment::Prod, old).unwrap(),
        );
    }
    w.store
        .put_revisions("another", Environment::Prod, &history, None)
        .await
        .unwrap();
    // hello itself ships two releases (their images are the newest in the repository)
    succeed(&w, 1).await;
    succeed(&w, 2).await;
    let protected = [digest(101), digest(102), digest(103), digest(1), digest(2)];

    let r = sweep(&w.services, &SweepLimits::default()).await.unwrap();
    assert!(r.errors.is_empty(), "{:?}", r.errors);
    let left: Vec<String> = w
        .registry
        .list_images_now(&repo)
        .into_iter()
        .map(|i| i.digest)
        .collect();
    for d in &protected {
        assert!(left.contains(d), "{d} is protected but was deleted");
    }
    // the repository keeps the most any pipeline on it asks for (hello's default 10)
    assert_eq!(
        left.len(),
        10 + 3,
        "10 newest + the protected older ones: {left:?}"
    );
    assert_status_matches_ecs(&w, &hello).await;
}

#[tokio::test]
async fn pruning_deletes_nothing_when_it_cannot_see_what_runs() {
    let w = FakeWorld::with_pipeline().await;
    let p = FakeWorld::pipeline();
    let mut small = p.clone();
    small.keep_images = 1;
    w.store.put_pipeline(&small, w.clock.now()).await.unwrap();
    let repo = p.image.repository_name().to_string();
    let old = w.clock.now() - chrono::Duration::days(30);
    for n in 1..=5u8 {
        w.registry
            .push(&repo, &format!("t{n}"), &digest(100 + n), old);
    }
    w.deployer.faults.fail_always(
        "service_state",
        crate::ports::ServiceError::Unavailable("ECS is down".into()),
    );
    let r = sweep(&w.services, &SweepLimits::default()).await.unwrap();
    assert_eq!(r.images_deleted, 0);
    assert!(
        r.errors.iter().any(|e| e.contains("pruning skipped")),
        "{:?}",
        r.errors
    );
    assert_eq!(w.registry.list_images_now(&repo).len(), 5);
}

// --- sequences from the adversarial review ------------------------------------------------

async fn failed_rollback(w: &FakeWorld) -> crate::domain::Execution {
    let rb = control::rollback(&w.services, "hello", Environment::Prod, None, "ops")
        .await
        .unwrap();
    circuit_breaker_fails(w, rb.prod.as_ref().unwrap()).await;
    let rb = exec(w, &rb.id).await;
    assert_eq!(rb.status, Status::ProdFailed);
    rb
}

#[tokio::test]
async fn a_failed_rollback_changes_no_status_and_its_advice_works() {
    let w = FakeWorld::with_pipeline().await;
    let p = FakeWorld::pipeline();
    let a = succeed(&w, 1).await;
    let b = succeed(&w, 2).await;
    let rb = failed_rollback(&w).await;
    assert_eq!(restores(&rb), a);
    // ECS still runs B: B is not rolled back, no rollback shows as under way
    assert_eq!(exec(&w, &b).await.status, Status::Succeeded);
    assert_status_matches_ecs(&w, &p).await;
    let st = control::status(&w.services, Some("hello")).await.unwrap();
    assert!(st[0].prod.as_ref().unwrap().rollback.is_none());
    // the notice's "try again" command is accepted and restores A
    let body = w.notifier.sent().last().unwrap().1.body.clone();
    assert!(
        body.contains(&format!("shipgate rollback hello --env prod --to {a}")),
        "{body}"
    );
    let again = control::rollback(
        &w.services,
        "hello",
        Environment::Prod,
        Some(a.as_str()),
        "ops",
    )
    .await
    .unwrap();
    assert_eq!(restores(&again), a);
    complete(&w, &again.prod.as_ref().unwrap().deployment_id).await;
    assert_eq!(exec(&w, &b).await.status, Status::RolledBack);
    assert_status_matches_ecs(&w, &p).await;
}

#[tokio::test]
async fn rollback_after_a_failure_and_many_later_pushes_still_restores_the_last_good() {
    let w = FakeWorld::with_pipeline().await;
    let p = FakeWorld::pipeline();
    succeed(&w, 1).await;
    let b = succeed(&w, 2).await;
    let c = awaiting(&w, 3).await;
    let e = approvals::decide(&w.services, &c, Verdict::Approve, "ops", Channel::Cli, None)
        .await
        .unwrap();
    circuit_breaker_fails(&w, e.prod.as_ref().unwrap()).await;
    // more executions than any listing of recent ones looks at
    for n in 0..110u8 {
        push(&w, &sha(10 + n), &format!("later-{n}")).await;
    }
    let rb = control::rollback(&w.services, "hello", Environment::Prod, None, "ops")
        .await
        .unwrap();
    assert_eq!(restores(&rb), b);
    complete(&w, &rb.prod.as_ref().unwrap().deployment_id).await;
    assert_eq!(exec(&w, &c).await.status, Status::RolledBack);
    assert_eq!(exec(&w, &b).await.status, Status::Succeeded);
    assert_status_matches_ecs(&w, &p).await;
}

#[tokio::test]
async fn an_approval_whose_deployment_starts_after_a_newer_ones_gives_way() {
    let w = queued_world().await;
    let p = FakeWorld::pipeline();
    let x = awaiting(&w, 1).await;
    let y = awaiting(&w, 2).await;
    // X is approved, but its function stops before deploying (as if slow or killed)
    let slow = w.services.clone().with_capabilities(super::Capabilities {
        deploy_prod: false,
        ..super::Capabilities::ALL
    });
    approvals::decide(&slow, &x, Verdict::Approve, "ops", Channel::Cli, None)
        .await
        .unwrap();
    // Y is approved and deploys
    let ye = approvals::decide(&w.services, &y, Verdict::Approve, "ops", Channel::Cli, None)
        .await
        .unwrap();
    // X's deployment is resumed later: it gives way instead of putting the older release on
    let xe = exec(&w, &x).await;
    assert_eq!(
        (xe.status, xe.prod.is_none()),
        (Status::DeployingProd, true)
    );
    let effects = crate::domain::pending_effects(&xe);
    w.services
        .perform(crate::domain::Transition {
            execution: xe,
            effects,
        })
        .await
        .unwrap();
    assert_eq!(exec(&w, &x).await.status, Status::Superseded);
    complete(&w, &ye.prod.unwrap().deployment_id).await;
    assert!(w.deployer.image_of(&p.prod).unwrap().ends_with(&digest(2)));
    assert_status_matches_ecs(&w, &p).await;
}

#[tokio::test]
async fn a_deployment_owed_during_a_rollback_does_not_override_it() {
    let w = FakeWorld::with_pipeline().await;
    let p = FakeWorld::pipeline();
    succeed(&w, 1).await;
    succeed(&w, 2).await;
    let c = awaiting(&w, 3).await;
    let slow = w.services.clone().with_capabilities(super::Capabilities {
        deploy_prod: false,
        ..super::Capabilities::ALL
    });
    approvals::decide(&slow, &c, Verdict::Approve, "ops", Channel::Cli, None)
        .await
        .unwrap();
    let rb = control::rollback(&w.services, "hello", Environment::Prod, None, "ops")
        .await
        .unwrap();
    let ce = exec(&w, &c).await;
    let effects = crate::domain::pending_effects(&ce);
    w.services
        .perform(crate::domain::Transition {
            execution: ce,
            effects,
        })
        .await
        .unwrap();
    assert_eq!(exec(&w, &c).await.status, Status::Superseded);
    complete(&w, &rb.prod.as_ref().unwrap().deployment_id).await;
    assert_status_matches_ecs(&w, &p).await;
}

#[tokio::test]
async fn superseded_mode_an_older_release_reaching_approval_after_a_newer_was_approved_gives_way() {
    let w = FakeWorld::with_pipeline().await;
    let p = FakeWorld::pipeline();
    let x = test_failed(&w, 1).await;
    let y = awaiting(&w, 2).await;
    let ye = approvals::decide(&w.services, &y, Verdict::Approve, "ops", Channel::Cli, None)
        .await
        .unwrap();
    let emails = w.notifier.count("Approve");
    let retried = control::retry(&w.services, &x, "ops").await.unwrap();
    complete(&w, &retried.test.unwrap().deployment_id).await;
    let xe = exec(&w, &x).await;
    assert_eq!(xe.status, Status::Superseded, "{:?}", xe.history.last());
    assert!(xe.history.last().unwrap().cause.contains(y.as_str()));
    assert_eq!(
        w.notifier.count("Approve"),
        emails,
        "no approval request for it"
    );
    complete(&w, &ye.prod.unwrap().deployment_id).await;
    assert_status_matches_ecs(&w, &p).await;
}
