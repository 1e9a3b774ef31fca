//! Release truth through the real handlers against moto: rollback after a failed production
//! deployment, rollbacks that walk back, concurrent rollbacks, queued mode's push order, and
//! pruning with two pipelines on one repository. After each scenario: what `status` says runs
//! is what ECS runs, and no image that runs (or may be rolled back to) was deleted.
//!
//! moto's ECS has no circuit breaker: where AWS would roll a failed deployment back by itself,
//! the test points the service back at the previous task definition (as ECS does) and delivers
//! the FAILED event EventBridge would send.

use serde_json::{json, Value};
use shipgate_tests::{
    approve, approve_to_success, control, deployment_event, release_to_approval, World,
};

fn sha(c: char) -> String {
    c.to_string().repeat(40)
}

/// The invariant users rely on: `status` names, for test and prod, the image ECS runs.
async fn assert_status_is_what_ecs_runs(w: &World, pipeline: &str, services: [(&str, &str); 2]) {
    let status = control(w, json!({"command": "status", "pipeline": pipeline})).await;
    for (env, (cluster, service)) in ["test", "prod"].into_iter().zip(services) {
        let current = &status["pipelines"][0][env]["current"];
        if current.is_null() {
            continue;
        }
        let said = format!(
            "{}@{}",
            current["image"]["repository_uri"].as_str().unwrap(),
            current["image"]["digest"].as_str().unwrap()
        );
        let runs = w.service_image(cluster, service).await;
        assert_eq!(
            runs, said,
            "{pipeline} {env}: status says {said}, ECS runs {runs}"
        );
    }
}

async fn demo_invariant(w: &World) {
    let sb = &w.provisioned.sandbox;
    assert_status_is_what_ecs_runs(
        w,
        "demo",
        [
            (&sb.test_cluster, &sb.test_service),
            (&sb.prod_cluster, &sb.prod_service),
        ],
    )
    .await;
}

async fn task_definition_of(w: &World, cluster: &str, service: &str) -> String {
    w.ecs()
        .describe_services()
        .cluster(cluster)
        .services(service)
        .send()
        .await
        .unwrap()
        .services()[0]
        .task_definition()
        .unwrap()
        .to_string()
}

fn restored(rollback: &Value) -> &str {
    rollback["execution"]["trigger"]["restores"]
        .as_str()
        .unwrap_or_else(|| panic!("{rollback}"))
}

async fn status_of(w: &World, id: &str) -> String {
    let shown = control(w, json!({"command": "show", "execution_id": id})).await;
    shown["execution"]["status"].as_str().unwrap().to_string()
}

async fn rollback(w: &World, to: Option<&str>) -> Value {
    let mut cmd = json!({"command": "rollback", "pipeline": "demo", "environment": "prod"});
    if let Some(to) = to {
        cmd["to"] = to.into();
    }
    control(w, cmd).await
}

async fn complete(w: &World, rb: &Value) {
    let dep = rb["execution"]["prod"]["deployment_id"]
        .as_str()
        .unwrap_or_else(|| panic!("{rb}"));
    let done = deployment_event(w, dep, "SERVICE_DEPLOYMENT_COMPLETED").await;
    assert_eq!(done["execution_status"], "SUCCEEDED", "{done}");
}

#[tokio::test]
async fn rollback_after_a_failed_prod_deploy_restores_the_last_good_release_then_walks_back() {
    let Some(w) = World::start().await else {
        return;
    };
    let sb = w.provisioned.sandbox.clone();
    let (a, da) = release_to_approval(&w, "demo", &sha('a')).await;
    approve_to_success(&w, &a).await;
    let (b, db) = release_to_approval(&w, "demo", &sha('b')).await;
    approve_to_success(&w, &b).await;
    let b_task_definition = task_definition_of(&w, &sb.prod_cluster, &sb.prod_service).await;

    // C fails in production; the circuit breaker puts B back
    let (c, _) = release_to_approval(&w, "demo", &sha('c')).await;
    let dep = approve(&w, &c).await;
    w.ecs()
        .update_service()
        .cluster(&sb.prod_cluster)
        .service(&sb.prod_service)
        .task_definition(&b_task_definition)
        .send()
        .await
        .unwrap();
    let failed = deployment_event(&w, &dep, "SERVICE_DEPLOYMENT_FAILED").await;
    assert_eq!(failed["execution_status"], "PROD_FAILED", "{failed}");
    demo_invariant(&w).await;

    // the advised command restores B, the last good one, and rolls back only C
    let rb1 = rollback(&w, None).await;
    assert_eq!(restored(&rb1), b, "{rb1}");
    assert!(w
        .service_image(&sb.prod_cluster, &sb.prod_service)
        .await
        .ends_with(&db));
    complete(&w, &rb1).await;
    assert_eq!(status_of(&w, &c).await, "ROLLED_BACK");
    assert_eq!(status_of(&w, &b).await, "SUCCEEDED");
    demo_invariant(&w).await;

    // rolling back again walks back to A, and B is now the one rolled back
    let rb2 = rollback(&w, None).await;
    assert_eq!(restored(&rb2), a, "{rb2}");
    assert!(w
        .service_image(&sb.prod_cluster, &sb.prod_service)
        .await
        .ends_with(&da));
    complete(&w, &rb2).await;
    assert_eq!(status_of(&w, &b).await, "ROLLED_BACK");
    demo_invariant(&w).await;

    // nothing older: a clear conflict and nothing changes
    let none = rollback(&w, None).await;
    assert_eq!(none["error"]["code"], "conflict", "{none}");
    // --to goes forward again to B by its commit
    let rb3 = rollback(&w, Some(&sha('b'))).await;
    assert_eq!(restored(&rb3), b, "{rb3}");
    complete(&w, &rb3).await;
    demo_invariant(&w).await;
    // the history lists every successful deployment with how it got there
    let status = control(&w, json!({"command": "status", "pipeline": "demo"})).await;
    let hows: Vec<&str> = status["pipelines"][0]["prod"]["history"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["how"].as_str().unwrap())
        .collect();
    assert_eq!(
        hows,
        ["rollback", "rollback", "rollback", "release", "release"]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_rollbacks_of_one_environment_act_once() {
    let Some(w) = World::start().await else {
        return;
    };
    let sb = w.provisioned.sandbox.clone();
    for c in ['a', 'b', 'c'] {
        let (id, _) = release_to_approval(&w, "demo", &sha(c)).await;
        approve_to_success(&w, &id).await;
    }
    let w = std::sync::Arc::new(w);
    let tasks: Vec<_> = (0..10)
        .map(|_| {
            let w = w.clone();
            tokio::spawn(async move { rollback(&w, None).await })
        })
        .collect();
    let mut ok = Vec::new();
    for t in tasks {
        let out = t.await.unwrap();
        if out["error"].is_null() {
            ok.push(out);
        } else {
            assert_eq!(out["error"]["code"], "conflict", "{out}");
            assert!(
                out["error"]["message"]
                    .as_str()
                    .unwrap()
                    .contains("already under way"),
                "{out}"
            );
        }
    }
    assert_eq!(ok.len(), 1, "exactly one rollback acts");
    let listed = control(
        &w,
        json!({"command": "list_executions", "pipeline": "demo", "limit": 50}),
    )
    .await;
    let rollbacks = listed["executions"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["trigger"]["kind"] == "rollback")
        .count();
    assert_eq!(rollbacks, 1);
    complete(&w, &ok[0]).await;
    assert!(w
        .service_image(&sb.prod_cluster, &sb.prod_service)
        .await
        .contains("@sha256:"));
    demo_invariant(&w).await;
}

#[tokio::test]
async fn queued_mode_keeps_push_order_and_status_true() {
    let Some(w) = World::start().await else {
        return;
    };
    let mut def = w.provisioned.pipeline.clone();
    def.mode = shared::domain::ExecutionMode::Queued;
    let applied = control(&w, json!({"command": "apply_pipeline", "pipeline": def})).await;
    assert_eq!(applied["result"], "updated", "{applied}");
    let (x, _) = release_to_approval(&w, "demo", &sha('1')).await;
    let (y, dy) = release_to_approval(&w, "demo", &sha('2')).await;
    assert_eq!(status_of(&w, &x).await, "AWAITING_APPROVAL");
    approve_to_success(&w, &y).await;
    // the older one can no longer reach production after the newer one
    assert_eq!(status_of(&w, &x).await, "SUPERSEDED");
    let late = control(&w, json!({"command": "approve", "execution_id": x})).await;
    assert_eq!(late["error"]["code"], "gone", "{late}");
    let sb = &w.provisioned.sandbox;
    assert!(w
        .service_image(&sb.prod_cluster, &sb.prod_service)
        .await
        .ends_with(&dy));
    let status = control(&w, json!({"command": "status", "pipeline": "demo"})).await;
    assert_eq!(
        status["pipelines"][0]["prod"]["current"]["execution_id"],
        y.as_str()
    );
    demo_invariant(&w).await;
}

async fn add_service(w: &World, cluster: &str, name: &str) {
    let sb = &w.provisioned.sandbox;
    let td = task_definition_of(w, &sb.test_cluster, &sb.test_service).await;
    w.ecs()
        .create_service()
        .cluster(cluster)
        .service_name(name)
        .task_definition(td)
        .desired_count(1)
        .send()
        .await
        .unwrap();
}

#[tokio::test]
async fn pruning_with_two_pipelines_on_one_repository_deletes_nothing_either_needs() {
    let Some(w) = World::start().await else {
        return;
    };
    let sb = w.provisioned.sandbox.clone();
    // "alpha" lists first, keeps one image, and shares demo's repository
    add_service(&w, &sb.test_cluster, "alpha-test").await;
    add_service(&w, &sb.prod_cluster, "alpha-prod").await;
    let mut alpha = w.provisioned.pipeline.clone();
    alpha.name = "alpha".into();
    alpha.source = shared::domain::Source::Github("shipgate-demo/alpha".into());
    alpha.test.service = "alpha-test".into();
    alpha.prod.service = "alpha-prod".into();
    alpha.keep_images = 1;
    let mut demo = w.provisioned.pipeline.clone();
    demo.keep_images = 1;
    for def in [&alpha, &demo] {
        let out = control(&w, json!({"command": "apply_pipeline", "pipeline": def})).await;
        assert!(out["error"].is_null(), "{out}");
    }
    // an image no one needs, older than every release (ECR times have second resolution)
    let stray = w.push_image("stray", "stray").await;
    tokio::time::sleep(std::time::Duration::from_millis(1100)).await;
    let mut needed = Vec::new();
    for (pipeline, commits) in [("demo", ['d', 'e']), ("alpha", ['f', '9'])] {
        for c in commits {
            let (id, digest) = release_to_approval(&w, pipeline, &sha(c)).await;
            approve_to_success(&w, &id).await;
            needed.push(digest);
        }
    }
    // a rejected release
    let (rejected, rejected_digest) = release_to_approval(&w, "demo", &sha('7')).await;
    let out = control(&w, json!({"command": "reject", "execution_id": rejected})).await;
    assert!(out["error"].is_null(), "{out}");
    // demo's test now runs the rejected release's image: that is needed too
    needed.push(rejected_digest);

    let report = shared::app::sweeper::sweep(&w.services, &Default::default())
        .await
        .unwrap();
    assert!(report.errors.is_empty(), "{:?}", report.errors);
    let left: Vec<String> = w
        .ecr()
        .describe_images()
        .repository_name(&sb.repository)
        .send()
        .await
        .unwrap()
        .image_details()
        .iter()
        .filter_map(|i| i.image_digest().map(str::to_string))
        .collect();
    for d in &needed {
        assert!(
            left.contains(d),
            "{d} is needed but was deleted (left: {left:?})"
        );
    }
    assert!(!left.contains(&stray), "the stray image is pruned");
    demo_invariant(&w).await;
    assert_status_is_what_ecs_runs(
        &w,
        "alpha",
        [
            (&sb.test_cluster, "alpha-test"),
            (&sb.prod_cluster, "alpha-prod"),
        ],
    )
    .await;
}
