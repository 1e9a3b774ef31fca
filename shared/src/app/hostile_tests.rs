//! Hostile and oversized input through the use cases (issue 14), against the fakes.

use super::test_support::*;
use crate::domain::Status;
use crate::fake_world::FakeWorld;
use crate::ports::{Clock, ExecutionStore};

/// A definition stored before targets were compared by identity (test = prod's cluster as an
/// ARN) deploys nothing: the test deployment is refused with the cause, prod is never touched.
#[tokio::test]
async fn a_stored_pipeline_with_test_equal_to_prod_never_deploys() {
    let w = FakeWorld::with_pipeline().await;
    let mut p = FakeWorld::pipeline();
    p.test.cluster = format!(
        "arn:aws:ecs:us-east-1:123456789012:cluster/{}",
        p.prod.cluster
    );
    p.test.service = p.prod.service.clone();
    assert!(p.validate().is_err(), "apply refuses it");
    w.store.put_pipeline(&p, w.clock.now()).await.unwrap();

    let id = built(&w, 1).await;
    let e = exec(&w, &id).await;
    assert_eq!(e.status, Status::TestFailed, "{:?}", e.history);
    let cause = e.failure.as_ref().unwrap().reason.clone();
    assert!(cause.contains("same ECS service as test"), "{cause}");
    assert_eq!(w.deployer.deployments().len(), 0, "nothing deployed");
    assert!(e.test.is_none());
}

/// The same holds for a rollback: refused before any ECS call.
#[tokio::test]
async fn a_rollback_with_test_equal_to_prod_is_refused() {
    let w = FakeWorld::with_pipeline().await;
    succeed(&w, 1).await;
    succeed(&w, 2).await;
    let deployments = w.deployer.deployments().len();
    let mut p = FakeWorld::pipeline();
    p.test.service = p.prod.service.clone();
    w.store.put_pipeline(&p, w.clock.now()).await.unwrap();
    let err = super::control::rollback(
        &w.services,
        "hello",
        crate::domain::Environment::Test,
        None,
        "ops",
    )
    .await
    .unwrap_err();
    assert!(err.to_string().contains("same ECS service"), "{err}");
    assert_eq!(w.deployer.deployments().len(), deployments);
}
