//! Approval policy (issue 15): N-of-M distinct verified approvers, no self-approval, one
//! rejection rejects, and exactly the right outcome under concurrent and repeated decisions.

use std::sync::Arc;

use super::approvals::{decide_as, decide_by_link, LinkError};
use super::test_support::*;
use crate::domain::approval_policy::progress;
use crate::domain::identity::VerifiedCaller;
use crate::domain::{Channel, PipelineDefinition, Status, Verdict};
use crate::fake_world::FakeWorld;
use crate::fakes::SAMPLE_PIPELINE;
use crate::ports::{Clock, ExecutionStore};

const ACCOUNT: &str = "arn:aws:iam::123456789012:user";

fn caller(name: &str) -> VerifiedCaller {
    VerifiedCaller::new(&format!("{ACCOUNT}/{name}"))
}

/// The sample pipeline needing `required` of alice, bob, carol and ada (who pushes the sample).
async fn world(required: u32) -> FakeWorld {
    let w = FakeWorld::with_pipeline().await;
    let text = SAMPLE_PIPELINE.replace(
        "approval = { topic_arn = \"arn:aws:sns:us-east-1:123456789012:shipgate-approvals\", timeout_hours = 72 }",
        &format!(
            "[approval]\ntopic_arn = \"arn:aws:sns:us-east-1:123456789012:shipgate-approvals\"\ntimeout_hours = 72\nrequired = {required}\napprovers = [\n  {{ email = \"alice@example.com\", arn = \"{ACCOUNT}/alice\" }},\n  {{ email = \"bob@example.com\", arn = \"{ACCOUNT}/bob\" }},\n  {{ email = \"carol@example.com\", arn = \"{ACCOUNT}/carol\" }},\n  {{ email = \"ada@example.com\", github = \"ada\", arn = \"{ACCOUNT}/ada\" }},\n]\n"
        ),
    );
    let def = PipelineDefinition::parse(&text, crate::domain::Format::Toml).unwrap();
    assert_eq!(def.approval.required, required);
    w.store.put_pipeline(&def, w.clock.now()).await.unwrap();
    w
}

async fn vote(
    w: &FakeWorld,
    id: &crate::domain::ExecutionId,
    who: Option<&str>,
    verdict: Verdict,
) -> Result<crate::domain::Execution, LinkError> {
    let c = who.map(caller);
    let actor = c
        .as_ref()
        .map(|c| c.arn.clone())
        .unwrap_or("console (unverified)".into());
    decide_as(
        &w.services,
        id,
        verdict,
        c.as_ref(),
        &actor,
        Channel::Cli,
        None,
    )
    .await
}

#[tokio::test]
async fn two_of_four_needs_two_distinct_verified_approvers() {
    let w = world(2).await;
    let id = awaiting(&w, 1).await;
    let e = vote(&w, &id, Some("bob"), Verdict::Approve).await.unwrap();
    assert_eq!(e.status, Status::AwaitingApproval);
    assert_eq!(
        progress(e.approval.as_ref().unwrap(), 2),
        "1 of 2 approvals: bob@example.com"
    );
    assert_eq!(w.deployer.deployments_to("hello-prod"), 0);
    // bob again counts once
    let again = vote(&w, &id, Some("bob"), Verdict::Approve)
        .await
        .unwrap_err();
    assert!(
        matches!(again, LinkError::AlreadyDecided(ref m) if m.contains("1 of 2")),
        "{again}"
    );
    // not an approver, unverified, the pusher: refused, nothing counted
    assert!(matches!(
        vote(&w, &id, Some("mallory"), Verdict::Approve).await,
        Err(LinkError::NotAnApprover(_))
    ));
    assert!(matches!(
        vote(&w, &id, None, Verdict::Approve).await,
        Err(LinkError::NotAnApprover(_))
    ));
    let own = vote(&w, &id, Some("ada"), Verdict::Approve)
        .await
        .unwrap_err();
    assert!(matches!(own, LinkError::OwnChange(_)), "{own}");
    assert!(own
        .to_string()
        .contains("ada@example.com cannot approve their own change"));
    // a shared e-mail link proves no one: refused with a clear page (approvers get personal
    // links; personal_links_tests.rs)
    let shared = super::approvals::approval_link(&w.services, &exec(&w, &id).await)
        .await
        .unwrap();
    let shared = shared.rsplit('/').next().unwrap().to_string();
    let link = decide_by_link(&w.services, &shared, form(Verdict::Approve)).await;
    assert!(
        matches!(link, Err(LinkError::NotAnApprover(ref m)) if m.contains("shipgate approve")),
        "{link:?}"
    );
    assert_eq!(exec(&w, &id).await.approval.unwrap().approvals.len(), 1);
    // alice: the second distinct approver → production
    let e = vote(&w, &id, Some("alice"), Verdict::Approve)
        .await
        .unwrap();
    assert_eq!(e.status, Status::DeployingProd);
    let a = e.approval.as_ref().unwrap();
    assert_eq!(
        a.decision.as_ref().unwrap().approver.as_deref(),
        Some("alice@example.com")
    );
    assert_eq!(
        a.decision.as_ref().unwrap().actor,
        format!("{ACCOUNT}/alice")
    );
    assert_eq!(
        progress(a, 2),
        "2 of 2 approvals: bob@example.com, alice@example.com"
    );
    assert_eq!(w.deployer.deployments_to("hello-prod"), 1);
    assert!(e
        .history
        .iter()
        .any(|h| h.cause.contains("approval 1 of 2 by bob@example.com")));
}

#[tokio::test]
async fn one_rejection_rejects() {
    let w = world(2).await;
    let id = awaiting(&w, 1).await;
    vote(&w, &id, Some("bob"), Verdict::Approve).await.unwrap();
    let e = vote(&w, &id, Some("carol"), Verdict::Reject).await.unwrap();
    assert_eq!(e.status, Status::Rejected);
    assert!(vote(&w, &id, Some("alice"), Verdict::Approve)
        .await
        .is_err());
    assert_eq!(w.deployer.deployments_to("hello-prod"), 0);
    // the pusher may reject their own change
    let id = awaiting(&w, 2).await;
    assert_eq!(
        vote(&w, &id, Some("ada"), Verdict::Reject)
            .await
            .unwrap()
            .status,
        Status::Rejected
    );
}

#[tokio::test]
async fn fifty_concurrent_decisions_and_duplicates_give_exactly_one_prod_deploy() {
    let w = Arc::new(world(2).await);
    let id = awaiting(&w, 1).await;
    let mut tasks = Vec::new();
    for i in 0..50 {
        let (w, id) = (w.clone(), id.clone());
        let who = ["alice", "bob"][i % 2];
        tasks.push(tokio::spawn(async move {
            vote(&w, &id, Some(who), Verdict::Approve).await.is_ok()
        }));
    }
    let mut ok = 0;
    for t in tasks {
        ok += usize::from(t.await.unwrap());
    }
    let e = w.store.get_execution(&id).await.unwrap().unwrap();
    assert_eq!(e.status, Status::DeployingProd);
    assert_eq!(ok, 2, "one counted approval each for alice and bob");
    assert_eq!(e.approval.as_ref().unwrap().approvals.len(), 2);
    assert_eq!(w.deployer.deployments_to("hello-prod"), 1);
}

#[tokio::test]
async fn without_approvers_one_decision_decides_as_before() {
    let w = FakeWorld::with_pipeline().await;
    let id = awaiting(&w, 1).await;
    let e = decide_as(
        &w.services,
        &id,
        Verdict::Approve,
        None,
        "console (unverified)",
        Channel::Console,
        None,
    )
    .await
    .unwrap();
    assert_eq!(e.status, Status::DeployingProd);
    assert!(e.approval.unwrap().approvals.is_empty());
}
