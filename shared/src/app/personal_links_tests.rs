//! Personal approval links (issue 15): one message per approver holding only their link, the
//! link acts as its owner only, no self-approval, N-of-M per approver, removal from the list,
//! and exactly the right outcome under concurrent POSTs and duplicate events.

use std::sync::Arc;

use super::approvals::{self, decide_by_link, LinkError};
use super::test_support::*;
use crate::domain::audience;
use crate::domain::{ExecutionId, PipelineDefinition, Status, Verdict};
use crate::fake_world::FakeWorld;
use crate::fakes::SAMPLE_PIPELINE;
use crate::ports::{Clock, ExecutionStore, Notice};

const ACCOUNT: &str = "arn:aws:iam::123456789012:user";

/// The sample pipeline needing `required` of alice, bob, carol and ada (ada pushes the sample:
/// `pusher.email`, `sender.login` and the head commit's author are hers).
fn definition(required: u32, approvers: &[&str]) -> PipelineDefinition {
    let list: Vec<String> = approvers
        .iter()
        .map(|n| {
            let github = if *n == "ada" {
                ", github = \"ada\""
            } else {
                ""
            };
            format!("  {{ email = \"{n}@example.com\", arn = \"{ACCOUNT}/{n}\"{github} }},")
        })
        .collect();
    let text = SAMPLE_PIPELINE.replace(
        "approval = { topic_arn = \"arn:aws:sns:us-east-1:123456789012:shipgate-approvals\", timeout_hours = 72 }",
        &format!(
            "[approval]\ntopic_arn = \"arn:aws:sns:us-east-1:123456789012:shipgate-approvals\"\ntimeout_hours = 72\nrequired = {required}\napprovers = [\n{}\n]\n",
            list.join("\n")
        ),
    );
    PipelineDefinition::parse(&text, crate::domain::Format::Toml).unwrap()
}

async fn world(required: u32) -> FakeWorld {
    let w = FakeWorld::with_pipeline().await;
    let def = definition(required, &["alice", "bob", "carol", "ada"]);
    w.store.put_pipeline(&def, w.clock.now()).await.unwrap();
    w
}

/// The approval messages published, newest last.
fn approval_messages(w: &FakeWorld) -> Vec<Notice> {
    w.notifier
        .sent()
        .into_iter()
        .map(|(_, n)| n)
        .filter(|n| n.subject.contains("Approve"))
        .collect()
}

/// The token of the newest approval message for `email`.
fn token_of(w: &FakeWorld, email: &str) -> String {
    let n = approval_messages(w)
        .into_iter()
        .rev()
        .find(|n| n.audience == email)
        .unwrap_or_else(|| panic!("no message for {email}"));
    n.body
        .lines()
        .find(|l| l.contains("/approvals/"))
        .expect("a link")
        .trim()
        .rsplit('/')
        .next()
        .unwrap()
        .to_string()
}

fn approve() -> super::approvals::FormDecision {
    let mut f = form(Verdict::Approve);
    // a personal link ignores any typed name
    f.name = Some("Mallory".into());
    f
}

#[tokio::test]
async fn each_approver_gets_one_message_with_only_their_own_link() {
    let w = world(2).await;
    let id = awaiting(&w, 1).await;
    let messages = approval_messages(&w);
    let audiences: Vec<&str> = messages.iter().map(|n| n.audience.as_str()).collect();
    assert_eq!(
        audiences,
        [
            "alice@example.com",
            "bob@example.com",
            "carol@example.com",
            "ada@example.com"
        ]
    );
    let mut links = std::collections::HashSet::new();
    for n in &messages {
        let found: Vec<&str> = n
            .body
            .lines()
            .filter(|l| l.contains("/approvals/"))
            .collect();
        assert_eq!(found.len(), 1, "one link: {}", n.body);
        assert!(links.insert(found[0].to_string()), "links differ");
        assert!(
            n.body.contains(&format!("For {}", n.audience)),
            "{}",
            n.body
        );
        assert!(!n.chat.as_deref().unwrap_or("").contains("/approvals/"));
    }
    // the pusher is told they cannot approve
    let ada = messages
        .iter()
        .find(|n| n.audience == "ada@example.com")
        .unwrap();
    assert!(ada.body.contains("you cannot approve it"), "{}", ada.body);
    // every other notice is for everyone
    let e = exec(&w, &id).await;
    assert!(e.approval.unwrap().message_id.unwrap().split(',').count() == 4);
    // a duplicate deployment event sends nothing again
    let dep = e.test.unwrap().deployment_id;
    super::events::on_deployment_state(
        &w.services,
        &deploy_event(
            &dep,
            crate::domain::aws_events::DeploymentEventName::Completed,
        ),
    )
    .await
    .unwrap();
    assert_eq!(approval_messages(&w).len(), 4);
    let _ = id;
}

#[tokio::test]
async fn a_personal_link_approves_as_its_owner_and_two_of_four_need_two() {
    let w = world(2).await;
    let id = awaiting(&w, 1).await;
    let alice = token_of(&w, "alice@example.com");
    let bob = token_of(&w, "bob@example.com");
    // the page says whose link it is
    let view = approvals::view(&w.services, &alice).await.unwrap();
    let owner = view.owner.as_ref().unwrap();
    assert_eq!(owner.email, "alice@example.com");
    assert!(!owner.own_change && !owner.counted);
    // the first approval is counted; nothing deploys
    let e = decide_by_link(&w.services, &alice, approve())
        .await
        .unwrap();
    assert_eq!(e.status, Status::AwaitingApproval);
    let a = e.approval.as_ref().unwrap();
    assert_eq!(a.approvals.len(), 1);
    let d = &a.approvals[0];
    assert_eq!(d.approver.as_deref(), Some("alice@example.com"));
    assert_eq!(d.actor, "alice@example.com — personal email link");
    assert_eq!(d.channel, crate::domain::Channel::EmailLink);
    assert_eq!(d.source_ip.as_deref(), Some("203.0.113.7"));
    assert_eq!(w.deployer.deployments_to("hello-prod"), 0);
    assert!(
        approvals::view(&w.services, &alice)
            .await
            .unwrap()
            .owner
            .unwrap()
            .counted
    );
    // the same link again counts once
    let again = decide_by_link(&w.services, &alice, approve())
        .await
        .unwrap_err();
    assert!(
        matches!(again, LinkError::AlreadyDecided(ref m) if m.contains("1 of 2 approvals: alice@example.com")),
        "{again}"
    );
    assert_eq!(again.http_status(), 409);
    // bob's link: the second distinct approver → production
    let e = decide_by_link(&w.services, &bob, approve()).await.unwrap();
    assert_eq!(e.status, Status::DeployingProd);
    assert_eq!(
        e.approval
            .as_ref()
            .unwrap()
            .decision
            .as_ref()
            .unwrap()
            .actor,
        "bob@example.com — personal email link"
    );
    assert_eq!(w.deployer.deployments_to("hello-prod"), 1);
    // single use: any link of the round now answers decided
    let late = decide_by_link(&w.services, &token_of(&w, "carol@example.com"), approve())
        .await
        .unwrap_err();
    assert_eq!(late.http_status(), 409, "{late}");
    assert_eq!(exec(&w, &id).await.status, Status::DeployingProd);
}

#[tokio::test]
async fn the_pushers_own_link_cannot_approve_but_may_reject() {
    let w = world(1).await;
    let id = awaiting(&w, 1).await;
    let ada = token_of(&w, "ada@example.com");
    let view = approvals::view(&w.services, &ada).await.unwrap();
    assert!(view.owner.as_ref().unwrap().own_change);
    let before = exec(&w, &id).await;
    let own = decide_by_link(&w.services, &ada, approve())
        .await
        .unwrap_err();
    assert!(matches!(own, LinkError::OwnChange(_)), "{own}");
    assert_eq!(own.http_status(), 403);
    assert!(own
        .to_string()
        .contains("ada@example.com cannot approve their own change"));
    assert_eq!(exec(&w, &id).await, before, "nothing changed");
    // any one rejection rejects, also the pusher's own
    let e = decide_by_link(&w.services, &ada, form(Verdict::Reject))
        .await
        .unwrap();
    assert_eq!(e.status, Status::Rejected);
    assert_eq!(
        e.approval.unwrap().decision.unwrap().approver.as_deref(),
        Some("ada@example.com")
    );
    assert_eq!(w.deployer.deployments_to("hello-prod"), 0);
}

#[tokio::test]
async fn self_approval_allowed_lets_the_pusher_approve() {
    let w = FakeWorld::with_pipeline().await;
    let mut def = definition(1, &["bob", "ada"]);
    def.approval.allow_self_approval = true;
    w.store.put_pipeline(&def, w.clock.now()).await.unwrap();
    let _ = awaiting(&w, 1).await;
    let ada = token_of(&w, "ada@example.com");
    assert!(!approval_messages(&w)
        .iter()
        .any(|n| n.body.contains("you cannot approve it")));
    let e = decide_by_link(&w.services, &ada, approve()).await.unwrap();
    assert_eq!(e.status, Status::DeployingProd);
}

#[tokio::test]
async fn one_rejection_by_link_rejects() {
    let w = world(2).await;
    let _ = awaiting(&w, 1).await;
    decide_by_link(&w.services, &token_of(&w, "alice@example.com"), approve())
        .await
        .unwrap();
    let e = decide_by_link(
        &w.services,
        &token_of(&w, "carol@example.com"),
        form(Verdict::Reject),
    )
    .await
    .unwrap();
    assert_eq!(e.status, Status::Rejected);
    let bob = decide_by_link(&w.services, &token_of(&w, "bob@example.com"), approve())
        .await
        .unwrap_err();
    assert_eq!(bob.http_status(), 409);
    assert_eq!(w.deployer.deployments_to("hello-prod"), 0);
}

#[tokio::test]
async fn an_approver_removed_from_the_list_is_refused() {
    let w = world(1).await;
    let id = awaiting(&w, 1).await;
    let carol = token_of(&w, "carol@example.com");
    let def = definition(1, &["alice", "bob", "ada"]);
    w.store.put_pipeline(&def, w.clock.now()).await.unwrap();
    // a fresh invocation reads the new definition
    let svc = w.services.for_invocation();
    let before = exec(&w, &id).await;
    for r in [
        approvals::view(&svc, &carol).await.map(|_| ()),
        decide_by_link(&svc, &carol, approve()).await.map(|_| ()),
    ] {
        let e = r.unwrap_err();
        assert_eq!(e.http_status(), 403, "{e}");
        assert!(e.to_string().contains("no longer an approver"), "{e}");
    }
    assert_eq!(exec(&w, &id).await, before);
}

#[tokio::test]
async fn an_approval_of_someone_removed_since_no_longer_counts() {
    let w = world(2).await;
    let id = awaiting(&w, 1).await;
    let alice = token_of(&w, "alice@example.com");
    let bob = token_of(&w, "bob@example.com");
    let carol = token_of(&w, "carol@example.com");
    decide_by_link(&w.services, &alice, approve())
        .await
        .unwrap();
    // alice is removed from the pipeline's approvers after approving
    let def = definition(2, &["bob", "carol", "ada"]);
    w.store.put_pipeline(&def, w.clock.now()).await.unwrap();
    let svc = w.services.for_invocation();
    // bob's approval is the first that counts now: production waits
    let e = decide_by_link(&svc, &bob, approve()).await.unwrap();
    assert_eq!(e.status, Status::AwaitingApproval);
    assert_eq!(w.deployer.deployments_to("hello-prod"), 0);
    // a second current approver decides
    let svc = w.services.for_invocation();
    let e = decide_by_link(&svc, &carol, approve()).await.unwrap();
    assert_eq!(e.status, Status::DeployingProd);
    assert_eq!(w.deployer.deployments_to("hello-prod"), 1);
    assert_eq!(exec(&w, &id).await.approval.unwrap().approvals.len(), 3);
}

#[tokio::test]
async fn links_do_not_cross_between_approvers_or_kinds() {
    let w = world(1).await;
    let id = awaiting(&w, 1).await;
    let alice = token_of(&w, "alice@example.com");
    let bob = token_of(&w, "bob@example.com");
    let (payload_a, mac_a) = alice.split_once('.').unwrap();
    let (payload_b, mac_b) = bob.split_once('.').unwrap();
    // bob's ref with alice's MAC and the reverse
    for forged in [
        format!("{payload_b}.{mac_a}"),
        format!("{payload_a}.{mac_b}"),
    ] {
        let e = decide_by_link(&w.services, &forged, approve())
            .await
            .unwrap_err();
        assert_eq!(e.http_status(), 403, "{e}");
    }
    // a shared link of a pipeline with approvers is refused (it proves no one)
    let e = exec(&w, &id).await;
    let shared = approvals::approval_link(&w.services, &e).await.unwrap();
    let shared = shared.rsplit('/').next().unwrap();
    let refused = decide_by_link(&w.services, shared, approve())
        .await
        .unwrap_err();
    assert!(
        matches!(refused, LinkError::NotAnApprover(ref m) if m.contains("personal link")),
        "{refused}"
    );
    assert_eq!(exec(&w, &id).await.status, Status::AwaitingApproval);
}

#[tokio::test]
async fn expired_and_superseded_personal_links_stop_working() {
    let w = world(1).await;
    let first = awaiting(&w, 1).await;
    let old = token_of(&w, "alice@example.com");
    let _second = awaiting(&w, 2).await;
    assert_eq!(exec(&w, &first).await.status, Status::Superseded);
    let e = decide_by_link(&w.services, &old, approve())
        .await
        .unwrap_err();
    assert_eq!(e.http_status(), 410, "{e}");
    let new = token_of(&w, "alice@example.com");
    w.clock.advance(chrono::Duration::hours(80));
    let e = decide_by_link(&w.services, &new, approve())
        .await
        .unwrap_err();
    assert_eq!(e.http_status(), 410, "{e}");
    assert_eq!(w.deployer.deployments_to("hello-prod"), 0);
}

#[tokio::test]
async fn fifty_concurrent_posts_across_two_approvers_links() {
    let w = Arc::new(world(2).await);
    let id = awaiting(&w, 1).await;
    let links = [
        token_of(&w, "alice@example.com"),
        token_of(&w, "bob@example.com"),
    ];
    let mut tasks = Vec::new();
    for i in 0..50 {
        let w = w.clone();
        let link = links[i % 2].clone();
        tasks.push(tokio::spawn(async move {
            decide_by_link(&w.services, &link, approve()).await.is_ok()
        }));
    }
    let mut ok = 0;
    for t in tasks {
        ok += usize::from(t.await.unwrap());
    }
    let e = w.store.get_execution(&id).await.unwrap().unwrap();
    assert_eq!(e.status, Status::DeployingProd);
    assert_eq!(ok, 2, "one counted approval each");
    let mut who: Vec<String> = e
        .approval
        .unwrap()
        .approvals
        .iter()
        .map(|d| d.approver.clone().unwrap())
        .collect();
    who.sort();
    assert_eq!(who, ["alice@example.com", "bob@example.com"]);
    assert_eq!(w.deployer.deployments_to("hello-prod"), 1);
}

#[tokio::test]
async fn a_publish_failing_midway_is_retried_whole_and_never_mixes_links() {
    let w = world(1).await;
    let id = built(&w, 1).await;
    let dep = exec(&w, &id).await.test.unwrap().deployment_id;
    let event = deploy_event(
        &dep,
        crate::domain::aws_events::DeploymentEventName::Completed,
    );
    // the third publish fails (a Lambda dying between two publishes looks the same)
    let mut dying = w.services.clone();
    dying.notifier = Arc::new(FailThird {
        inner: w.notifier.clone(),
        calls: std::sync::atomic::AtomicUsize::new(0),
    });
    let _ = super::events::on_deployment_state(&dying, &event).await;
    let e = exec(&w, &id).await;
    assert_eq!(e.status, Status::AwaitingApproval);
    assert!(
        e.approval.as_ref().unwrap().message_id.is_none(),
        "not sent yet"
    );
    // the sweeper resends the request owed (an event redelivered later does the same): every
    // approver once more — the first two get their own link twice, never anyone else's
    w.clock.advance(chrono::Duration::minutes(3));
    let r = super::sweeper::sweep(&w.services, &super::sweeper::SweepLimits::default())
        .await
        .unwrap();
    assert_eq!(r.resumed, 1);
    assert_eq!(approval_messages(&w).len(), 2 + 4);
    let e = exec(&w, &id).await;
    assert!(e.approval.as_ref().unwrap().message_id.is_some());
    let messages = approval_messages(&w);
    for email in [
        "alice@example.com",
        "bob@example.com",
        "carol@example.com",
        "ada@example.com",
    ] {
        let mine: Vec<&Notice> = messages.iter().filter(|n| n.audience == email).collect();
        assert!(!mine.is_empty(), "{email} got their link");
        let t = crate::domain::token::approver_ref(email);
        for n in mine {
            let link = n.body.lines().find(|l| l.contains("/approvals/")).unwrap();
            let token = link.trim().rsplit('/').next().unwrap();
            let (_, r) = crate::domain::token::decode_link(token).unwrap();
            assert_eq!(r.as_deref(), Some(t.as_str()), "only their own link");
        }
    }
    // every status notice is for everyone
    assert!(w
        .notifier
        .sent()
        .iter()
        .filter(|(_, n)| !n.subject.contains("Approve"))
        .all(|(_, n)| n.audience == audience::EVERYONE));
    let _: &ExecutionId = &id;
}

/// Forwards to the fake notifier, failing the third publish.
struct FailThird {
    inner: Arc<crate::fakes::FakeNotifier>,
    calls: std::sync::atomic::AtomicUsize,
}

#[async_trait::async_trait]
impl crate::ports::Notifier for FailThird {
    async fn publish(
        &self,
        topic_arn: &str,
        notice: &Notice,
    ) -> Result<String, crate::ports::ServiceError> {
        let n = self.calls.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        if n == 2 {
            return Err(crate::ports::ServiceError::Unavailable("sns down".into()));
        }
        self.inner.publish(topic_arn, notice).await
    }
}
