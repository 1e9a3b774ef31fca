//! `GET|HEAD|POST /approvals/{token}` (API Gateway HTTP API, payload 2.0).
//!
//! GET and HEAD only render: email scanners that prefetch links cannot approve anything.
//! POST records the decision (single winner) and, on approve, deploys the tested digest to prod.

use shared::app::approvals::{self, FormDecision, LinkError};
use shared::app::Services;
use shared::domain::Verdict;
use shared::http::{self, HttpRequest, HttpResponse};
use tracing::{error, info};

use crate::{pages, status_page};
use shared::app::status_page as status;

/// Largest form body accepted.
pub const MAX_FORM_BYTES: usize = 16 * 1024;

pub async fn handle(svc: &Services, req: HttpRequest) -> HttpResponse {
    // one invocation: each pipeline definition is read at most once
    let svc = &svc.for_invocation();
    if is_status_route(&req) {
        return status_route(svc, &req).await;
    }
    let method = http::method(&req);
    let Some(token) = http::path_param(&req, "token", "/approvals/") else {
        return page_error(404, "No approval token in the link.");
    };
    match method.as_str() {
        "GET" => match approvals::view(svc, &token).await {
            Ok(view) => http::html(200, pages::confirm(&view)),
            Err(e) => link_error(e),
        },
        "HEAD" => {
            let status = match approvals::view(svc, &token).await {
                Ok(_) => 200,
                Err(e) => e.http_status(),
            };
            let mut r = http::html(status, String::new());
            r.body = None;
            r
        }
        "POST" => {
            if http::body_len_hint(&req) > MAX_FORM_BYTES {
                return page_error(413, "The form is too large.");
            }
            let Ok(body) = http::body_bytes(&req) else {
                return page_error(400, "The form could not be read.");
            };
            let form = http::form(&body);
            let verdict = match form.get("decision").map(String::as_str) {
                Some("approve") => Verdict::Approve,
                Some("reject") => Verdict::Reject,
                _ => return page_error(400, "Choose Approve or Reject (decision=approve|reject)."),
            };
            let decision = FormDecision {
                verdict,
                name: form.get("name").cloned(),
                comment: form.get("comment").cloned(),
                source_ip: http::source_ip(&req),
                user_agent: http::user_agent(&req),
            };
            match approvals::decide_by_link(svc, &token, decision).await {
                Ok(exec) => {
                    info!(execution_id = %exec.id, status = %exec.status, "decision recorded");
                    http::html(200, pages::decided(&exec))
                }
                Err(e) => link_error(e),
            }
        }
        _ => {
            let mut r = page_error(
                405,
                "Open the link in a browser (GET) and use the buttons (POST).",
            );
            r.headers
                .insert("allow", "GET, HEAD, POST".parse().expect("valid header"));
            r
        }
    }
}

/// `GET|HEAD /status/{token}`: the read-only status page (the same function, so no new
/// endpoint, role or cold start; its token can never approve).
fn is_status_route(req: &HttpRequest) -> bool {
    req.route_key
        .as_deref()
        .is_some_and(|r| r.ends_with(" /status/{token}"))
        || req
            .raw_path
            .as_deref()
            .is_some_and(|p| p.starts_with("/status/"))
}

async fn status_route(svc: &Services, req: &HttpRequest) -> HttpResponse {
    let method = http::method(req);
    if method != "GET" && method != "HEAD" {
        let mut r = http::html(
            405,
            status_page::error(405, "A status page can only be read (GET)."),
        );
        r.headers
            .insert("allow", "GET, HEAD".parse().expect("valid header"));
        return r;
    }
    let token = http::path_param(req, "token", "/status/").unwrap_or_default();
    let mut r = match status::view(svc, &token).await {
        Ok(view) => http::html(200, status_page::status(&view)),
        Err(e) => {
            let code = e.http_status();
            if code >= 500 {
                error!(error = %e, "status page failed");
                http::html(
                    code,
                    status_page::error(
                        code,
                        "shipgate could not read the status right now. Try again in a minute.",
                    ),
                )
            } else {
                info!(status = code, reason = %e, "status link refused");
                http::html(code, status_page::error(code, &e.to_string()))
            }
        }
    };
    if method == "HEAD" {
        r.body = None;
    }
    r
}

fn page_error(status: u16, message: &str) -> HttpResponse {
    http::html(status, pages::error(status, message))
}

/// The one place link errors become pages and statuses.
fn link_error(e: LinkError) -> HttpResponse {
    let status = e.http_status();
    if status >= 500 {
        error!(error = %e, "approval request failed");
        return page_error(
            status,
            "shipgate could not process this right now. Try again in a minute.",
        );
    }
    info!(status, reason = %e, "approval link refused");
    page_error(status, &e.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;
    use shared::app::events::{on_build_state, on_deployment_state};
    use shared::domain::aws_events::{
        BuildStateChange, BuildStatus, DeploymentEventName, DeploymentStateChange,
    };
    use shared::domain::github::sign_body;
    use shared::domain::{ExecutionId, Status};
    use shared::fake_world::FakeWorld;
    use shared::fakes::WEBHOOK_SECRET;
    use shared::ports::Clock;

    /// Drive an execution to AWAITING_APPROVAL; answers its id and the approval link path.
    async fn awaiting(w: &FakeWorld) -> (ExecutionId, String) {
        let body = include_str!("../../../events/github/push.json");
        let sig = sign_body(WEBHOOK_SECRET.as_bytes(), body.as_bytes());
        let out = shared::app::sources::handle_github_delivery(
            &w.services,
            shared::app::sources::WebhookRequest {
                event: Some("push"),
                delivery: Some("d"),
                hook_id: None,
                signature: Some(&sig),
                body: body.as_bytes(),
            },
        )
        .await
        .unwrap();
        let shared::app::sources::WebhookOutcome::Started(s) = out else {
            panic!()
        };
        let id = s[0].execution_id.clone();
        let e = w.services.execution(&id).await.unwrap();
        w.registry
            .push("hello", &e.image_tag(), "sha256:abc123", w.clock.now());
        on_build_state(
            &w.services,
            &BuildStateChange {
                event_id: "1".into(),
                build_id: e.build_id.clone().unwrap(),
                project: "hello-build".into(),
                status: BuildStatus::Succeeded,
                current_phase: None,
                reason: None,
                logs_link: None,
                resolved_commit: None,
                exported_variables: Vec::new(),
            },
        )
        .await
        .unwrap();
        let e = w.services.execution(&id).await.unwrap();
        on_deployment_state(
            &w.services,
            &DeploymentStateChange {
                event_id: "2".into(),
                deployment_id: e.test.unwrap().deployment_id,
                name: DeploymentEventName::Completed,
                service_arn: None,
                reason: None,
            },
        )
        .await
        .unwrap();
        let (_, notice) = w.notifier.sent().pop().unwrap();
        let link = notice
            .body
            .lines()
            .find(|l| l.contains("/approvals/"))
            .unwrap()
            .trim()
            .to_string();
        let path = link
            .trim_start_matches("https://shipgate.example.com")
            .to_string();
        (id, path)
    }

    fn req(method: &str, path: &str, body: Option<&str>) -> HttpRequest {
        shipgate_sandbox::apigw::request(
            method,
            path,
            "/approvals/{token}",
            &[
                ("Content-Type", "application/x-www-form-urlencoded"),
                ("User-Agent", "Mozilla/5.0 test"),
            ],
            body,
            "198.51.100.23",
        )
    }

    #[tokio::test]
    async fn get_and_head_never_change_state() {
        let w = FakeWorld::with_pipeline().await;
        let (id, path) = awaiting(&w).await;
        let before = w.services.execution(&id).await.unwrap();
        for _ in 0..10 {
            let r = handle(&w.services, req("GET", &path, None)).await;
            assert_eq!(r.status_code, 200);
            let html = http::body_text(&r);
            assert!(html.contains("9f2c7a1e4b6d8f0a2c4e6b8d0f1a3c5e7b9d1f3a"));
            assert!(html.contains("sha256:abc123"));
            assert!(html.contains("hello-test"));
            assert!(html.contains("Ada Lovelace"));
            assert!(html.contains("value=\"approve\"") && html.contains("value=\"reject\""));
            assert!(
                !html.contains("http://") || !html.contains("<script"),
                "no external assets or scripts"
            );
            let h = handle(&w.services, req("HEAD", &path, None)).await;
            assert_eq!(h.status_code, 200);
            assert!(h.body.is_none());
        }
        assert_eq!(w.services.execution(&id).await.unwrap(), before);
        assert_eq!(w.deployer.deployments_to("hello-prod"), 0);
    }

    #[tokio::test]
    async fn post_approve_deploys_prod_and_records_who() {
        let w = FakeWorld::with_pipeline().await;
        let (id, path) = awaiting(&w).await;
        let r = handle(
            &w.services,
            req(
                "POST",
                &path,
                Some("decision=approve&name=Grace+Hopper&comment=ok"),
            ),
        )
        .await;
        assert_eq!(r.status_code, 200, "{}", http::body_text(&r));
        assert!(http::body_text(&r).contains("Approved"));
        // the shared link proves no one: the typed name is kept, marked unverified
        assert!(http::body_text(&r).contains("Grace Hopper — email link (unverified name)"));
        assert!(http::body_text(&r).contains("this shared link cannot prove who you are"));
        let e = w.services.execution(&id).await.unwrap();
        assert_eq!(e.status, Status::DeployingProd);
        assert!(
            e.history
                .iter()
                .any(|h| h.actor == "Grace Hopper — email link (unverified name)"),
            "{:?}",
            e.history
        );
        let d = e.approval.unwrap().decision.unwrap();
        assert_eq!(d.actor, "Grace Hopper — email link (unverified name)");
        assert_eq!(d.source_ip.as_deref(), Some("198.51.100.23"));
        assert_eq!(d.user_agent.as_deref(), Some("Mozilla/5.0 test"));
        assert_eq!(w.deployer.deployments_to("hello-prod"), 1);
        // replay
        let again = handle(&w.services, req("POST", &path, Some("decision=approve"))).await;
        assert_eq!(again.status_code, 409);
        assert!(http::body_text(&again).contains("Grace Hopper"));
        assert_eq!(w.deployer.deployments_to("hello-prod"), 1);
    }

    #[tokio::test]
    async fn bad_requests_are_clear_pages_and_change_nothing() {
        let w = FakeWorld::with_pipeline().await;
        let (id, path) = awaiting(&w).await;
        let before = w.services.execution(&id).await.unwrap();
        // change one character inside the MAC (not the last one, whose low bits are padding)
        let mut chars: Vec<char> = path.chars().collect();
        let i = chars.len() - 5;
        chars[i] = if chars[i] == 'A' { 'B' } else { 'A' };
        let tampered: String = chars.into_iter().collect();
        let cases = [
            (req("POST", &path, Some("decision=maybe")), 400),
            (
                req("POST", &path, Some(&"x".repeat(MAX_FORM_BYTES + 10))),
                413,
            ),
            (req("PUT", &path, None), 405),
            (req("GET", "/approvals/not-a-token", None), 400),
            (req("POST", &tampered, Some("decision=approve")), 403),
            (req("GET", "/approvals/", None), 400),
        ];
        for (r, expected) in cases {
            let resp = handle(&w.services, r).await;
            assert_eq!(
                resp.status_code,
                expected as i64,
                "{}",
                http::body_text(&resp)
            );
            let html = http::body_text(&resp);
            assert!(html.contains("Nothing was changed"), "{html}");
            assert_eq!(
                resp.headers.get("content-type").unwrap(),
                "text/html; charset=utf-8"
            );
        }
        assert_eq!(w.services.execution(&id).await.unwrap(), before);
    }

    #[tokio::test]
    async fn expired_links_are_410() {
        let w = FakeWorld::with_pipeline().await;
        let (_, path) = awaiting(&w).await;
        w.clock.advance(chrono::Duration::hours(80));
        assert_eq!(
            handle(&w.services, req("GET", &path, None))
                .await
                .status_code,
            410
        );
        assert_eq!(
            handle(&w.services, req("POST", &path, Some("decision=approve")))
                .await
                .status_code,
            410
        );
        assert_eq!(w.deployer.deployments_to("hello-prod"), 0);
    }

    #[tokio::test]
    async fn html_is_escaped() {
        let w = FakeWorld::with_pipeline().await;
        let (_, path) = awaiting(&w).await;
        let r = handle(
            &w.services,
            req(
                "POST",
                &path,
                Some("decision=reject&name=%3Cscript%3Ealert(1)%3C%2Fscript%3E"),
            ),
        )
        .await;
        let html = http::body_text(&r);
        assert!(!html.contains("<script>"));
        assert!(html.contains("&lt;script&gt;"));
    }

    /// The sample pipeline needing 2 of alice, bob and ada (who pushes the sample), driven to
    /// AWAITING_APPROVAL; answers the path of each approver's personal link.
    async fn awaiting_with_approvers(w: &FakeWorld) -> (ExecutionId, Vec<(String, String)>) {
        let text = shared::fakes::SAMPLE_PIPELINE.replace(
            "timeout_hours = 72 }",
            "timeout_hours = 72, required = 2, approvers = [{ email = \"alice@example.com\" }, { email = \"bob@example.com\" }, { email = \"ada@example.com\", github = \"ada\" }] }",
        );
        let def =
            shared::domain::PipelineDefinition::parse(&text, shared::domain::Format::Toml).unwrap();
        shared::ports::ExecutionStore::put_pipeline(&*w.store, &def, w.clock.now())
            .await
            .unwrap();
        let (id, _) = awaiting(w).await;
        let links = w
            .notifier
            .sent()
            .into_iter()
            .filter(|(_, n)| n.subject.contains("Approve"))
            .map(|(_, n)| {
                let link = n
                    .body
                    .lines()
                    .find(|l| l.contains("/approvals/"))
                    .unwrap()
                    .trim()
                    .trim_start_matches("https://shipgate.example.com")
                    .to_string();
                (n.audience, link)
            })
            .collect();
        (id, links)
    }

    fn link_of<'a>(links: &'a [(String, String)], email: &str) -> &'a str {
        &links.iter().find(|(a, _)| a == email).unwrap().1
    }

    #[tokio::test]
    async fn personal_links_approve_as_their_owner_one_of_two_then_two_of_two() {
        let w = FakeWorld::with_pipeline().await;
        let (id, links) = awaiting_with_approvers(&w).await;
        assert_eq!(links.len(), 3, "{links:?}");
        let alice = link_of(&links, "alice@example.com");
        let html = http::body_text(&handle(&w.services, req("GET", alice, None)).await);
        assert!(html.contains("Approving as"), "{html}");
        assert!(html.contains("<strong>alice@example.com</strong>"));
        assert!(
            !html.contains("name=\"name\""),
            "no name to type on a personal link"
        );
        assert!(html.contains("value=\"approve\""));
        assert!(html.contains("0 of 2 approvals"), "{html}");
        let r = handle(
            &w.services,
            req("POST", alice, Some("decision=approve&name=Mallory")),
        )
        .await;
        assert_eq!(r.status_code, 200, "{}", http::body_text(&r));
        let html = http::body_text(&r);
        assert!(
            html.contains("Approval counted — 1 of 2 approvals: alice@example.com"),
            "{html}"
        );
        assert!(html.contains("alice@example.com — personal email link"));
        assert!(!html.contains("Mallory"));
        assert_eq!(w.deployer.deployments_to("hello-prod"), 0);
        // bob's page shows the progress; his approval deploys
        let bob = link_of(&links, "bob@example.com");
        let html = http::body_text(&handle(&w.services, req("GET", bob, None)).await);
        assert!(
            html.contains("1 of 2 approvals: alice@example.com"),
            "{html}"
        );
        let r = handle(&w.services, req("POST", bob, Some("decision=approve"))).await;
        assert_eq!(r.status_code, 200, "{}", http::body_text(&r));
        assert!(http::body_text(&r).contains("Approved — production deployment started"));
        assert_eq!(w.deployer.deployments_to("hello-prod"), 1);
        let e = w.services.execution(&id).await.unwrap();
        assert_eq!(e.status, Status::DeployingProd);
    }

    #[tokio::test]
    async fn the_pushers_own_link_shows_no_approve_button_and_refuses_approval() {
        let w = FakeWorld::with_pipeline().await;
        let (id, links) = awaiting_with_approvers(&w).await;
        let ada = link_of(&links, "ada@example.com");
        let html = http::body_text(&handle(&w.services, req("GET", ada, None)).await);
        assert!(
            html.contains("ada@example.com cannot approve their own change"),
            "{html}"
        );
        assert!(!html.contains("value=\"approve\""), "{html}");
        assert!(html.contains("value=\"reject\""));
        let before = w.services.execution(&id).await.unwrap();
        let r = handle(&w.services, req("POST", ada, Some("decision=approve"))).await;
        assert_eq!(r.status_code, 403);
        let html = http::body_text(&r);
        assert!(html.contains("cannot approve their own change"), "{html}");
        assert!(html.contains("Nothing was changed"));
        assert_eq!(w.services.execution(&id).await.unwrap(), before);
    }

    fn status_req(method: &str, path: &str) -> HttpRequest {
        shipgate_sandbox::apigw::request(
            method,
            path,
            "/status/{token}",
            &[("User-Agent", "Mozilla/5.0 test")],
            None,
            "198.51.100.23",
        )
    }

    /// The status link the notices carry.
    fn status_path(w: &FakeWorld) -> String {
        let (_, notice) = w.notifier.sent().pop().unwrap();
        let link = notice
            .body
            .lines()
            .find_map(|l| l.split_once("Status page (read-only, valid 14 days): "))
            .map(|(_, url)| url.trim().to_string())
            .expect("a status link in the notice");
        link.trim_start_matches("https://shipgate.example.com")
            .to_string()
    }

    #[tokio::test]
    async fn status_page_shows_environments_and_strips_and_never_approves() {
        let w = FakeWorld::with_pipeline().await;
        let (id, approval_path) = awaiting(&w).await;
        let path = status_path(&w);
        assert!(path.starts_with("/status/"), "{path}");
        let before = w.services.execution(&id).await.unwrap();
        let r = handle(&w.services, status_req("GET", &path)).await;
        assert_eq!(r.status_code, 200, "{}", http::body_text(&r));
        let html = http::body_text(&r);
        assert!(html.contains("hello"));
        assert!(html.contains(&format!("data-execution=\"{id}\"")), "{html}");
        assert!(html.contains("data-status=\"AWAITING_APPROVAL\""));
        assert!(
            html.contains("class=\"waiting\" data-stage=\"approval\""),
            "{html}"
        );
        assert!(html.contains("class=\"succeeded\" data-stage=\"build\""));
        assert!(!html.contains("<script"));
        assert!(
            !html.contains("<form"),
            "a status page has nothing to submit"
        );
        let csp = r.headers.get("content-security-policy").unwrap();
        assert!(csp.to_str().unwrap().starts_with("default-src 'none'"));
        // the status token is no approval token, and a POST to the status route does nothing
        let status_token = path.trim_start_matches("/status/");
        let as_approval = handle(
            &w.services,
            req(
                "POST",
                &format!("/approvals/{status_token}"),
                Some("decision=approve"),
            ),
        )
        .await;
        assert!(as_approval.status_code >= 400);
        let post = handle(&w.services, status_req("POST", &path)).await;
        assert_eq!(post.status_code, 405);
        // and an approval token shows no status page
        let approval_token = approval_path.trim_start_matches("/approvals/");
        let r = handle(
            &w.services,
            status_req("GET", &format!("/status/{approval_token}")),
        )
        .await;
        assert!(
            r.status_code == 400 || r.status_code == 403,
            "{}",
            r.status_code
        );
        assert_eq!(w.services.execution(&id).await.unwrap(), before);
        assert_eq!(w.deployer.deployments_to("hello-prod"), 0);
        let head = handle(&w.services, status_req("HEAD", &path)).await;
        assert_eq!(head.status_code, 200);
        assert!(head.body.is_none());
    }

    #[tokio::test]
    async fn bad_status_links_are_clear_pages() {
        let w = FakeWorld::with_pipeline().await;
        let _ = awaiting(&w).await;
        let path = status_path(&w);
        let mut chars: Vec<char> = path.chars().collect();
        let i = chars.len() - 5;
        chars[i] = if chars[i] == 'A' { 'B' } else { 'A' };
        let tampered: String = chars.into_iter().collect();
        for (p, code, needle) in [
            ("/status/".to_string(), 400, "malformed"),
            ("/status/nope".to_string(), 400, "malformed"),
            (tampered, 403, "not valid"),
        ] {
            let r = handle(&w.services, status_req("GET", &p)).await;
            assert_eq!(r.status_code, code, "{p}");
            let html = http::body_text(&r);
            assert!(html.contains(needle), "{html}");
            assert!(html.contains("never changes anything"));
            assert_eq!(
                r.headers.get("content-type").unwrap(),
                "text/html; charset=utf-8"
            );
        }
        w.clock.advance(chrono::Duration::days(15));
        let r = handle(&w.services, status_req("GET", &path)).await;
        assert_eq!(r.status_code, 410);
        assert!(http::body_text(&r).contains("expired"));
    }

    #[tokio::test]
    async fn status_page_escapes_what_pushers_write() {
        let w = FakeWorld::with_pipeline().await;
        let (id, _) = awaiting(&w).await;
        let path = status_path(&w);
        let mut e = w.services.execution(&id).await.unwrap();
        let before = e.clone();
        e.commit.message = Some("<script>alert(1)</script> <img src=x>".into());
        e.version += 1;
        shared::ports::ExecutionStore::save(&*w.store, &before, &e)
            .await
            .unwrap();
        let html = http::body_text(&handle(&w.services, status_req("GET", &path)).await);
        assert!(
            !html.contains("<script>alert") && !html.contains("<img"),
            "{html}"
        );
        assert!(html.contains("&lt;script&gt;"));
    }

    #[tokio::test]
    async fn the_status_page_sample_event_renders() {
        // events/apigw/status-get.json: a link for pipeline `hello` signed with the fakes' key,
        // valid until 2100 (also `cargo lambda invoke approvals --data-file` against a sandbox)
        let w = FakeWorld::with_pipeline().await;
        let event: HttpRequest =
            serde_json::from_str(include_str!("../../../events/apigw/status-get.json")).unwrap();
        let r = handle(&w.services, event).await;
        assert_eq!(r.status_code, 200, "{}", http::body_text(&r));
        assert!(http::body_text(&r).contains("hello"));
    }
}
