//! Personal approval links against moto, through the real handlers (issue 15): one SNS message
//! per approver, delivered through SQS subscriptions with each approver's filter policy; 2-of-3
//! needs two distinct approvers; the pusher's own link is refused; a forwarded link records its
//! owner; one rejection ends the round; 50 concurrent POSTs across two approvers' links and
//! duplicate events give exactly one production deployment of the tested digest.

use std::sync::Arc;

use shared::http::{self, HttpRequest};
use shipgate_sandbox::{drain_outbox, DemoApprover, OutboxMessage, Sandbox};
use shipgate_tests::{build_event, deploy_event, World};

/// alice, bob and ada (who pushes the sample: `pusher.email` ada@example.com); `required` of
/// them.
async fn world(required: u32) -> Option<World> {
    let approver = |name: &str| DemoApprover {
        email: format!("{name}@example.com"),
        arn: format!("arn:aws:iam::{}:user/{name}", shipgate_sandbox::ACCOUNT),
    };
    World::start_with(Sandbox {
        demo_approvers: vec![approver("alice"), approver("bob"), approver("ada")],
        demo_required: required,
        ..Sandbox::default()
    })
    .await
}

/// The sample push through the webhook, its build and test deployment: AWAITING_APPROVAL.
async fn to_approval(w: &World, delivery: &str) -> shared::domain::ExecutionId {
    let id = shipgate_tests::start(w, delivery).await;
    let e = w.services.execution(&id).await.unwrap();
    w.push_image(&e.image_tag(), delivery).await;
    build_events::handler::handle(
        &w.services,
        build_event(e.build_id.as_deref().unwrap(), "SUCCEEDED"),
    )
    .await
    .unwrap();
    let dep = w
        .services
        .execution(&id)
        .await
        .unwrap()
        .test
        .unwrap()
        .deployment_id;
    let out = deploy_events::handler::handle(
        &w.services,
        deploy_event(&dep, "SERVICE_DEPLOYMENT_COMPLETED"),
    )
    .await
    .unwrap();
    assert_eq!(out["execution_status"], "AWAITING_APPROVAL", "{out}");
    id
}

/// What each approver's mailbox (their filtered subscription) received.
async fn mailboxes(w: &World) -> Vec<(String, Vec<OutboxMessage>)> {
    let mut out = Vec::new();
    for m in &w.provisioned.mailboxes {
        out.push((
            m.approver.clone(),
            drain_outbox(&w.sqs(), &m.queue_url).await.unwrap(),
        ));
    }
    out
}

fn approval_path(m: &OutboxMessage) -> String {
    let links: Vec<&String> = m
        .links
        .iter()
        .filter(|l| l.contains("/approvals/"))
        .collect();
    assert_eq!(links.len(), 1, "one approval link: {}", m.message);
    links[0]
        .trim_start_matches(&"http://127.0.0.1:9".to_string())
        .to_string()
}

fn req(method: &str, path: &str, body: Option<&str>, ip: &str) -> HttpRequest {
    shipgate_sandbox::apigw::request(
        method,
        path,
        "/approvals/{token}",
        &[
            ("Content-Type", "application/x-www-form-urlencoded"),
            ("User-Agent", "Mozilla/5.0 test"),
        ],
        body,
        ip,
    )
}

async fn page(w: &World, r: HttpRequest) -> (i64, String) {
    let resp = approvals::handler::handle(&w.services, r).await;
    (resp.status_code, http::body_text(&resp))
}

/// Every approver's personal link, read from their mailbox (each holds exactly one message: the
/// filter policy let through their own and nothing of the others').
async fn links(w: &World) -> Vec<(String, String)> {
    let mut out = Vec::new();
    for (approver, messages) in mailboxes(w).await {
        assert_eq!(messages.len(), 1, "{approver}: {messages:#?}");
        assert_eq!(messages[0].audience, approver);
        assert!(messages[0].message.contains(&format!("For {approver}")));
        out.push((approver, approval_path(&messages[0])));
    }
    out
}

fn link<'a>(links: &'a [(String, String)], who: &str) -> &'a str {
    &links
        .iter()
        .find(|(a, _)| a.starts_with(who))
        .unwrap_or_else(|| panic!("no link for {who}"))
        .1
}

#[tokio::test]
async fn two_of_three_through_filtered_subscriptions_and_the_pushers_link_refused() {
    let Some(w) = world(2).await else {
        return;
    };
    let id = to_approval(&w, "pl-1").await;
    // the unfiltered capture queue sees one message per approver, each saying who it is for
    let all = drain_outbox(&w.sqs(), &w.provisioned.outbox_queue_url)
        .await
        .unwrap();
    let mut audiences: Vec<&str> = all.iter().map(|m| m.audience.as_str()).collect();
    audiences.sort();
    assert_eq!(
        audiences,
        ["ada@example.com", "alice@example.com", "bob@example.com"]
    );
    let links = links(&w).await;
    assert_eq!(links.len(), 3);

    // the pusher's own link: the page says so, no approve button; a POST is refused
    let ada = link(&links, "ada");
    let (code, html) = page(&w, req("GET", ada, None, "198.51.100.1")).await;
    assert_eq!(code, 200);
    assert!(html.contains("ada@example.com cannot approve their own change"));
    assert!(!html.contains("value=\"approve\""));
    let before = w.peek(&id).await;
    let (code, html) = page(
        &w,
        req("POST", ada, Some("decision=approve"), "198.51.100.1"),
    )
    .await;
    assert_eq!(code, 403, "{html}");
    assert!(html.contains("cannot approve their own change"));
    assert_eq!(w.peek(&id).await, before, "nothing changed");

    // alice's link, forwarded to someone else: recorded as alice (the link's owner)
    let alice = link(&links, "alice");
    let (code, html) = page(
        &w,
        req(
            "POST",
            alice,
            Some("decision=approve&name=Eve+Forwarded"),
            "203.0.113.99",
        ),
    )
    .await;
    assert_eq!(code, 200, "{html}");
    assert!(
        html.contains("1 of 2 approvals: alice@example.com"),
        "{html}"
    );
    let e = w.peek(&id).await;
    assert_eq!(e.status, shared::domain::Status::AwaitingApproval);
    let a = &e.approval.as_ref().unwrap().approvals[0];
    assert_eq!(a.approver.as_deref(), Some("alice@example.com"));
    assert_eq!(a.actor, "alice@example.com — personal email link");
    assert_eq!(a.source_ip.as_deref(), Some("203.0.113.99"));
    // the same approver again counts once
    let (code, _) = page(
        &w,
        req("POST", alice, Some("decision=approve"), "198.51.100.2"),
    )
    .await;
    assert_eq!(code, 409);
    let test_digest = e.image.as_ref().unwrap().digest.clone();
    let prod_before = w.service_image("demo-prod", "hello-prod").await;
    assert!(!prod_before.ends_with(&test_digest));

    // bob: the second distinct approver → production runs the tested digest
    let (code, html) = page(
        &w,
        req(
            "POST",
            link(&links, "bob"),
            Some("decision=approve"),
            "198.51.100.3",
        ),
    )
    .await;
    assert_eq!(code, 200, "{html}");
    let e = w.peek(&id).await;
    assert_eq!(e.status, shared::domain::Status::DeployingProd);
    assert!(w
        .service_image("demo-prod", "hello-prod")
        .await
        .ends_with(&format!("@{test_digest}")));
    assert!(e.history.iter().any(|h| h
        .cause
        .contains("approved by bob@example.com via email link (2 of 2 approvals)")));
}

#[tokio::test]
async fn one_rejection_ends_it_and_duplicate_events_send_nothing_again() {
    let Some(w) = world(2).await else {
        return;
    };
    let id = to_approval(&w, "pl-2").await;
    let links = links(&w).await;
    // the test deployment's completion delivered again: no second message to anyone
    let dep = w.peek(&id).await.test.unwrap().deployment_id;
    deploy_events::handler::handle(
        &w.services,
        deploy_event(&dep, "SERVICE_DEPLOYMENT_COMPLETED"),
    )
    .await
    .unwrap();
    for (approver, messages) in mailboxes(&w).await {
        assert!(messages.is_empty(), "{approver} got {messages:#?}");
    }
    page(
        &w,
        req(
            "POST",
            link(&links, "alice"),
            Some("decision=approve"),
            "198.51.100.1",
        ),
    )
    .await;
    let (code, html) = page(
        &w,
        req(
            "POST",
            link(&links, "ada"),
            Some("decision=reject&comment=not+yet"),
            "198.51.100.2",
        ),
    )
    .await;
    assert_eq!(code, 200, "{html}");
    assert!(html.contains("Rejected"));
    assert_eq!(w.peek(&id).await.status, shared::domain::Status::Rejected);
    let (code, _) = page(
        &w,
        req(
            "POST",
            link(&links, "bob"),
            Some("decision=approve"),
            "198.51.100.3",
        ),
    )
    .await;
    assert_eq!(code, 409);
    assert_eq!(w.peek(&id).await.status, shared::domain::Status::Rejected);
    assert!(w.peek(&id).await.prod.is_none(), "production untouched");
}

#[tokio::test]
async fn fifty_concurrent_posts_across_two_approvers_give_one_prod_deployment() {
    let Some(w) = world(2).await else {
        return;
    };
    let id = to_approval(&w, "pl-3").await;
    let links = links(&w).await;
    let pair = [
        link(&links, "alice").to_string(),
        link(&links, "bob").to_string(),
    ];
    let revisions_before = task_definitions(&w).await;
    let w = Arc::new(w);
    let mut tasks = Vec::new();
    for i in 0..50 {
        let (w, path) = (w.clone(), pair[i % 2].clone());
        tasks.push(tokio::spawn(async move {
            let resp = approvals::handler::handle(
                &w.services,
                req("POST", &path, Some("decision=approve"), "198.51.100.9"),
            )
            .await;
            resp.status_code
        }));
    }
    let mut codes = Vec::new();
    for t in tasks {
        codes.push(t.await.unwrap());
    }
    let ok = codes.iter().filter(|c| **c == 200).count();
    assert_eq!(ok, 2, "one counted approval each: {codes:?}");
    assert!(codes.iter().all(|c| *c == 200 || *c == 409), "{codes:?}");
    let e = w.peek(&id).await;
    assert_eq!(e.status, shared::domain::Status::DeployingProd);
    let mut who: Vec<String> = e
        .approval
        .as_ref()
        .unwrap()
        .approvals
        .iter()
        .map(|d| d.approver.clone().unwrap())
        .collect();
    who.sort();
    assert_eq!(who, ["alice@example.com", "bob@example.com"]);
    assert_eq!(
        e.history
            .iter()
            .filter(|h| h.cause.starts_with("approved by"))
            .count(),
        1,
        "{:#?}",
        e.history
    );
    // one production deployment: one task-definition revision registered by the 50 POSTs
    assert_eq!(task_definitions(&w).await, revisions_before + 1);
    let digest = e.image.as_ref().unwrap().digest.clone();
    assert!(w
        .service_image("demo-prod", "hello-prod")
        .await
        .ends_with(&format!("@{digest}")));
}

async fn task_definitions(w: &World) -> usize {
    w.ecs()
        .list_task_definitions()
        .send()
        .await
        .unwrap()
        .task_definition_arns()
        .len()
}
