//! Every `control` command through the real handler against moto.

use serde_json::json;
use shared::domain::Status;
use shipgate_sandbox::drain_outbox;
use shipgate_tests::{
    approve_to_success, control, control_as, deploy_event, release_to_approval as release_of, World,
};

async fn release_to_approval(w: &World, commit: &str) -> (String, String) {
    release_of(w, "demo", commit).await
}

#[tokio::test]
async fn every_command_against_moto() {
    let Some(w) = World::start().await else {
        return;
    };
    let sb = w.provisioned.sandbox.clone();

    // apply_pipeline: invalid → every problem with its path, nothing stored
    let bad = control(&w, json!({"command": "apply_pipeline", "format": "yaml", "definition": "name: other\nsource: {github: nope}\nmode: fast\n"})).await;
    assert_eq!(bad["error"]["code"], "invalid_pipeline");
    let paths: Vec<&str> = bad["error"]["details"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["path"].as_str().unwrap())
        .collect();
    assert_eq!(
        paths,
        vec![
            "source.github",
            "build",
            "image",
            "test",
            "prod",
            "approval",
            "mode"
        ]
    );
    // apply_pipeline: an update of the demo pipeline lists what changed
    let mut def = w.provisioned.pipeline.clone();
    def.keep_images = 5;
    let applied = control(&w, json!({"command": "apply_pipeline", "pipeline": def})).await;
    assert_eq!(applied["result"], "updated", "{applied}");
    assert_eq!(applied["changes"][0]["path"], "keep_images");
    let list = control(&w, json!({"command": "list_pipelines"})).await;
    assert_eq!(
        list["pipelines"].as_array().unwrap().len(),
        1,
        "the invalid one was not stored"
    );

    // release a commit → a real CodeBuild build of it
    let (first, first_digest) =
        release_to_approval(&w, "1111111111111111111111111111111111111111").await;
    let builds = w
        .codebuild()
        .list_builds_for_project()
        .project_name(&sb.project)
        .send()
        .await
        .unwrap();
    let got = w
        .codebuild()
        .batch_get_builds()
        .ids(&builds.ids()[0])
        .send()
        .await
        .unwrap();
    assert_eq!(
        got.builds()[0].source_version(),
        Some("1111111111111111111111111111111111111111")
    );

    // reject, then release again and approve
    let rejected = control(
        &w,
        json!({"command": "reject", "execution_id": first, "comment": "not today"}),
    )
    .await;
    assert_eq!(rejected["execution"]["status"], "REJECTED", "{rejected}");
    let (v1, d1) = release_to_approval(&w, "2222222222222222222222222222222222222222").await;
    approve_to_success(&w, &v1).await;
    let (v2, d2) = release_to_approval(&w, "3333333333333333333333333333333333333333").await;
    approve_to_success(&w, &v2).await;
    assert_ne!(d1, d2);
    assert_ne!(first_digest, d1);
    assert!(w
        .service_image(&sb.prod_cluster, &sb.prod_service)
        .await
        .ends_with(&d2));

    // list_executions newest first, show, status
    let listed = control(
        &w,
        json!({"command": "list_executions", "pipeline": "demo"}),
    )
    .await;
    let ids: Vec<&str> = listed["executions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, vec![v2.as_str(), v1.as_str(), first.as_str()]);
    let shown = control(&w, json!({"command": "show", "execution_id": v2})).await;
    assert_eq!(shown["execution"]["status"], "SUCCEEDED");
    assert_eq!(shown["execution"]["approval"]["decision"]["channel"], "cli");
    let status = control(&w, json!({"command": "status", "pipeline": "demo"})).await;
    assert_eq!(
        status["pipelines"][0]["prod"]["current"]["image"]["digest"],
        d2.as_str()
    );
    assert_eq!(
        status["pipelines"][0]["prod"]["previous"]["image"]["digest"],
        d1.as_str()
    );

    // rollback: prod runs the previous digest again, recorded as its own execution
    let rb = control(
        &w,
        json!({"command": "rollback", "pipeline": "demo", "environment": "prod"}),
    )
    .await;
    assert_eq!(rb["execution"]["status"], "DEPLOYING_PROD", "{rb}");
    assert!(rb["execution"]["history"][0]["cause"]
        .as_str()
        .unwrap()
        .contains("rollback"));
    let prod_image = w.service_image(&sb.prod_cluster, &sb.prod_service).await;
    assert!(
        prod_image.ends_with(&format!("@{d1}")),
        "prod runs {prod_image}, expected {d1}"
    );
    let rb_dep = rb["execution"]["prod"]["deployment_id"]
        .as_str()
        .unwrap()
        .to_string();
    deploy_events::handler::handle(
        &w.services,
        deploy_event(&rb_dep, "SERVICE_DEPLOYMENT_COMPLETED"),
    )
    .await
    .unwrap();
    // the release moved away from is marked once the rollback completed
    assert_eq!(
        w.services
            .execution(&v2.parse().unwrap())
            .await
            .unwrap()
            .status,
        Status::RolledBack
    );
    let status = control(&w, json!({"command": "status", "pipeline": "demo"})).await;
    assert_eq!(
        status["pipelines"][0]["prod"]["current"]["image"]["digest"],
        d1.as_str()
    );
    let notices = drain_outbox(&w.sqs(), &w.provisioned.outbox_queue_url)
        .await
        .unwrap();
    assert!(
        notices.iter().any(|n| n.subject.contains("ROLLED_BACK")),
        "{notices:?}"
    );

    // retry of something that did not fail: a clear conflict, nothing changed
    let retry = control(&w, json!({"command": "retry", "execution_id": v1})).await;
    assert_eq!(retry["error"]["code"], "conflict", "{retry}");
    println!("commands run against moto: apply_pipeline ×2, list_pipelines, release ×3, reject, approve ×2, list_executions, show, status ×2, rollback, retry");
}

#[tokio::test]
async fn apply_pipeline_records_who_and_keeps_every_version() {
    let Some(w) = World::start().await else {
        return;
    };
    // the sandbox applied v1 itself; two operators update it
    let mut def = w.provisioned.pipeline.clone();
    def.keep_images = 5;
    // IAM users in moto: their keys sign the CLI's identity proofs
    let endpoint = w.moto.server.endpoint();
    let ada_user = shipgate_sandbox::create_iam_user(&endpoint, "ada")
        .await
        .unwrap();
    let grace_user = shipgate_sandbox::create_iam_user(&endpoint, "grace")
        .await
        .unwrap();
    let (ada, grace) = (ada_user.arn.as_str(), grace_user.arn.as_str());
    assert_eq!(ada, "arn:aws:iam::123456789012:user/ada");
    let out = control_as(
        &w,
        &ada_user,
        json!({"command": "apply_pipeline", "pipeline": def}),
    )
    .await;
    assert_eq!(
        (out["result"].as_str(), out["version"].as_u64()),
        (Some("updated"), Some(2)),
        "{out}"
    );
    def.approval.timeout_hours = 24;
    let out = control_as(
        &w,
        &grace_user,
        json!({"command": "apply_pipeline", "pipeline": def}),
    )
    .await;
    assert_eq!(out["version"], 3, "{out}");

    let shown = control(&w, json!({"command": "show_pipeline", "pipeline": "demo"})).await;
    assert_eq!(shown["pipeline"]["version"], 3, "{shown}");
    assert_eq!(shown["pipeline"]["applied_by"], grace);
    assert_eq!(shown["pipeline"]["definition"]["keep_images"], 5);
    assert!(shown.get("history").is_none());

    let shown = control(
        &w,
        json!({"command": "show_pipeline", "pipeline": "demo", "history": true}),
    )
    .await;
    let history = shown["history"]
        .as_array()
        .unwrap_or_else(|| panic!("{shown}"));
    let versions: Vec<u64> = history
        .iter()
        .map(|v| v["version"].as_u64().unwrap())
        .collect();
    assert_eq!(versions, vec![3, 2, 1], "{shown}");
    assert_eq!(history[0]["applied_by"], grace);
    assert_eq!(history[0]["changes"][0]["path"], "approval.timeout_hours");
    assert_eq!(history[1]["applied_by"], ada);
    assert_eq!(history[1]["changes"][0]["path"], "keep_images");
    assert_eq!(history[1]["changes"][0]["after"], 5);
    assert_eq!(
        history[2]["applied_by"], "shipgate",
        "the sandbox's own apply"
    );
    assert_eq!(history[2]["changes"], json!([]));

    // the kept versions are their own items, not pipelines
    let list = control(&w, json!({"command": "list_pipelines"})).await;
    assert_eq!(list["pipelines"].as_array().unwrap().len(), 1, "{list}");
    assert_eq!(list["pipelines"][0]["applied_by"], grace);

    let missing = control(&w, json!({"command": "show_pipeline", "pipeline": "nope"})).await;
    assert_eq!(missing["error"]["code"], "not_found", "{missing}");
}
