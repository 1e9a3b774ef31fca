//! Verified callers (issue 15): control records who AWS says sends a command, never who the
//! payload claims. moto answers GetCallerIdentity with the IAM user owning the signing key but
//! checks no signature; [`StrictSts`] checks signatures as STS does, for the binding tests.

use std::sync::Arc;

use serde_json::json;
use shared::adapters::sts::{StsEndpoint, StsVerifier};
use shared::ports::SystemClock;
use shipgate_sandbox::{create_iam_user, IamUser, REGION};
use shipgate_tests::strict_sts::StrictSts;
use shipgate_tests::{control, control_as, prove, release_to_approval, with_proof, World};

const COMMIT: &str = "1111111111111111111111111111111111111111";

async fn people(w: &World) -> (IamUser, IamUser) {
    let endpoint = w.moto.server.endpoint();
    (
        create_iam_user(&endpoint, "alice").await.unwrap(),
        create_iam_user(&endpoint, "bob").await.unwrap(),
    )
}

fn decision_actor(e: &serde_json::Value) -> &str {
    e["approval"]["decision"]["actor"].as_str().unwrap_or("")
}

#[tokio::test]
async fn decisions_record_the_caller_sts_verified() {
    let Some(w) = World::start().await else {
        return;
    };
    let (alice, bob) = people(&w).await;
    assert_ne!(alice.arn, bob.arn);
    let (id, _) = release_to_approval(&w, "demo", COMMIT).await;

    // a direct invoke claiming alice, without proof: refused, nothing changed
    let claim = json!({"command": "approve", "execution_id": id, "actor": alice.arn});
    let out = control(&w, claim.clone()).await;
    assert_eq!(out["error"]["code"], "unverified_actor", "{out}");
    // bob, proven, claiming alice: refused
    let out = control_as(&w, &bob, claim).await;
    assert_eq!(out["error"]["code"], "actor_mismatch", "{out}");
    let shown = control(&w, json!({"command": "show", "execution_id": id})).await;
    assert_eq!(
        shown["execution"]["status"], "AWAITING_APPROVAL",
        "nothing changed"
    );

    // alice, proven: recorded as the ARN STS answered, on the cli channel
    let out = control_as(
        &w,
        &alice,
        json!({"command": "approve", "execution_id": id, "comment": "ok"}),
    )
    .await;
    assert!(out.get("error").is_none(), "{out}");
    assert_eq!(decision_actor(&out["execution"]), alice.arn);
    assert_eq!(out["execution"]["approval"]["decision"]["channel"], "cli");
}

#[tokio::test]
async fn without_a_proof_the_console_is_recorded_unverified() {
    let Some(w) = World::start().await else {
        return;
    };
    let (id, _) = release_to_approval(&w, "demo", COMMIT).await;
    let out = control(
        &w,
        json!({"command": "reject", "execution_id": id, "channel": "cli"}),
    )
    .await;
    assert!(out.get("error").is_none(), "{out}");
    assert_eq!(decision_actor(&out["execution"]), "console (unverified)");
    assert_eq!(
        out["execution"]["approval"]["decision"]["channel"], "console",
        "an unproven decision is the console's, whatever it says"
    );
}

/// control pointed at a strict STS (as in AWS): a proof is good for its own command, its own
/// control function and 15 minutes only.
#[tokio::test]
async fn a_proof_is_bound_to_its_command_its_server_and_its_time() {
    let Some(mut w) = World::start().await else {
        return;
    };
    let (alice, bob) = people(&w).await;
    let sts = StrictSts::start(&[alice.clone(), bob.clone()], REGION).await;
    w.services = w
        .services
        .clone()
        .with_caller_verifier(Arc::new(StsVerifier::new(
            StsEndpoint {
                url: sts.url.clone(),
                region: REGION.into(),
                server_id: "shipgate-control".into(),
            },
            Arc::new(SystemClock),
        )));
    let (id, _) = release_to_approval(&w, "demo", COMMIT).await;
    let approve = json!({"command": "approve", "execution_id": id});
    let reject = json!({"command": "reject", "execution_id": id});

    // a proof made for rejecting, sent with an approval: STS refuses the signature
    let proof = prove(&alice, &sts.url, &reject);
    let out = control(&w, with_proof(&approve, &proof)).await;
    assert_eq!(out["error"]["code"], "unauthenticated", "{out}");
    assert!(
        out["error"]["message"]
            .as_str()
            .unwrap()
            .contains("SignatureDoesNotMatch"),
        "{out}"
    );

    // a proof made for another control function (another shipgate): refused
    let request = shared::protocol::ControlRequest::decode(approve.clone()).unwrap();
    let other_server = shared::adapters::sts::sign_proof(
        &alice.credentials,
        REGION,
        &sts.url,
        "someone-elses-control",
        &request.binding(),
        std::time::SystemTime::now(),
    )
    .unwrap();
    let out = control(&w, with_proof(&approve, &other_server)).await;
    assert_eq!(out["error"]["code"], "unauthenticated", "{out}");

    // expired: signed 20 minutes ago
    let old = shared::adapters::sts::sign_proof(
        &alice.credentials,
        REGION,
        &sts.url,
        "shipgate-control",
        &request.binding(),
        std::time::SystemTime::now() - std::time::Duration::from_secs(20 * 60),
    )
    .unwrap();
    let out = control(&w, with_proof(&approve, &old)).await;
    assert_eq!(out["error"]["code"], "unauthenticated", "{out}");
    assert!(
        out["error"]["message"]
            .as_str()
            .unwrap()
            .contains("expired"),
        "{out}"
    );

    // garbled: a clear error, never a panic
    let mut garbled = proof.clone();
    garbled.authorization = "AWS4-HMAC-SHA256 nonsense".into();
    let out = control(&w, with_proof(&approve, &garbled)).await;
    assert_eq!(out["error"]["code"], "unauthenticated", "{out}");
    let out = control(
        &w,
        json!({"command": "approve", "execution_id": id, "identity_proof": "x"}),
    )
    .await;
    assert_eq!(out["error"]["code"], "invalid_argument", "{out}");

    // a key STS does not know (a forged identity)
    let stranger = IamUser {
        name: "mallory".into(),
        arn: "arn:aws:iam::123456789012:user/mallory".into(),
        credentials: aws_credential_types::Credentials::new("AKIAMALLORY", "x", None, None, "t"),
    };
    let out = control(
        &w,
        with_proof(&approve, &prove(&stranger, &sts.url, &approve)),
    )
    .await;
    assert_eq!(out["error"]["code"], "unauthenticated", "{out}");

    let shown = control(&w, json!({"command": "show", "execution_id": id})).await;
    assert_eq!(
        shown["execution"]["status"], "AWAITING_APPROVAL",
        "refusals changed nothing"
    );

    // bob's own proof for this very command: recorded as bob
    let out = control(&w, with_proof(&approve, &prove(&bob, &sts.url, &approve))).await;
    assert!(out.get("error").is_none(), "{out}");
    assert_eq!(decision_actor(&out["execution"]), bob.arn);
}

/// 2-of-2 through the real control handler, with identities moto's STS answers for alice's and
/// bob's keys: production is deployed after the second distinct approver only.
#[tokio::test]
async fn two_verified_approvers_are_needed_and_the_same_one_counts_once() {
    use shared::domain::approval_policy::Approver;
    let Some(w) = World::start().await else {
        return;
    };
    let (alice, bob) = people(&w).await;
    let mallory = create_iam_user(&w.moto.server.endpoint(), "mallory")
        .await
        .unwrap();
    let mut def = w.provisioned.pipeline.clone();
    def.approval.required = 2;
    def.approval.approvers = vec![
        Approver {
            email: "alice@example.com".into(),
            github: None,
            arn: Some(alice.arn.clone()),
        },
        Approver {
            email: "bob@example.com".into(),
            github: None,
            arn: Some(bob.arn.clone()),
        },
    ];
    let out = control_as(
        &w,
        &alice,
        json!({"command": "apply_pipeline", "pipeline": def}),
    )
    .await;
    assert_eq!(out["result"], "updated", "{out}");
    let (id, digest) = release_to_approval(&w, "demo", COMMIT).await;
    let approve = json!({"command": "approve", "execution_id": id});

    let out = control_as(&w, &bob, approve.clone()).await;
    assert_eq!(out["execution"]["status"], "AWAITING_APPROVAL", "{out}");
    assert_eq!(
        out["execution"]["approval"]["approvals"][0]["approver"],
        "bob@example.com"
    );
    let again = control_as(&w, &bob, approve.clone()).await;
    assert_eq!(again["error"]["code"], "conflict", "{again}");
    assert!(
        again["error"]["message"]
            .as_str()
            .unwrap()
            .contains("1 of 2 approvals: bob@example.com"),
        "{again}"
    );
    let out = control_as(&w, &mallory, approve.clone()).await;
    assert_eq!(out["error"]["code"], "forbidden", "{out}");
    let out = control(&w, approve.clone()).await;
    assert_eq!(out["error"]["code"], "forbidden", "unverified: {out}");
    let prod = w
        .service_image(
            &w.provisioned.sandbox.prod_cluster,
            &w.provisioned.sandbox.prod_service,
        )
        .await;
    assert!(
        !prod.ends_with(&digest),
        "prod untouched after one approval"
    );

    let out = control_as(&w, &alice, approve).await;
    assert_eq!(out["execution"]["status"], "DEPLOYING_PROD", "{out}");
    assert_eq!(decision_actor(&out["execution"]), alice.arn);
    let prod = w
        .service_image(
            &w.provisioned.sandbox.prod_cluster,
            &w.provisioned.sandbox.prod_service,
        )
        .await;
    assert!(
        prod.ends_with(&digest),
        "prod runs the tested digest: {prod}"
    );
}
