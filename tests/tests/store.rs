//! The DynamoDB store against moto: create/get/list, conditional transitions, idempotency
//! claims, TTL, links and revisions.

use std::sync::Arc;

use chrono::{Duration, Utc};
use shared::adapters::dynamodb::DynamoStore;
use shared::domain::{
    transition, Change, Commit, DeploymentRecord, Environment, Event, Execution, ExecutionId,
    ImageRef, Status, Trigger,
};
use shared::fake_world::FakeWorld;
use shared::ports::{
    Claim, Created, DeployedRevision, EnvironmentRevisions, ExecutionStore, IdempotencyKey,
    StoreError,
};
use shipgate_sandbox::TableAdmin;
use shipgate_tests::moto_or_skip;

async fn store(m: &shipgate_tests::Moto, table: &str) -> DynamoStore {
    let s = DynamoStore::new(aws_sdk_dynamodb::Client::new(&m.sdk), table);
    s.create_table().await.expect("create table");
    s
}

fn exec(pipeline: &str, n: i64) -> Execution {
    let at = Utc::now() + Duration::milliseconds(n);
    Execution::received(
        ExecutionId::generate(at),
        pipeline,
        Commit {
            sha: format!("{n:040x}"),
            reference: "main".into(),
            ..Default::default()
        },
        Trigger::Release {
            actor: "test".into(),
        },
        at,
        "test",
    )
}

fn step(e: &Execution, event: Event) -> Execution {
    transition(e, Change::new(event, Utc::now(), "test"))
        .unwrap()
        .execution
}

#[tokio::test]
async fn create_get_list_newest_first() {
    let m = moto_or_skip!();
    let s = store(&m, "t-create").await;
    let mut ids = Vec::new();
    for n in 0..5 {
        let e = exec("hello", n * 10);
        assert_eq!(
            s.create_execution(&e, None).await.unwrap(),
            Created::Created
        );
        ids.push(e.id.clone());
    }
    s.create_execution(&exec("other", 100), None).await.unwrap();
    let got = s.get_execution(&ids[2]).await.unwrap().unwrap();
    assert_eq!(got.id, ids[2]);
    assert_eq!(got.status, Status::Received);
    let listed: Vec<ExecutionId> = s
        .list_executions("hello", 10)
        .await
        .unwrap()
        .into_iter()
        .map(|e| e.id)
        .collect();
    let mut newest_first = ids.clone();
    newest_first.reverse();
    assert_eq!(listed, newest_first);
    assert_eq!(s.list_executions("hello", 2).await.unwrap().len(), 2);
    assert!(s
        .get_execution(&ExecutionId::generate(Utc::now()))
        .await
        .unwrap()
        .is_none());
    assert_eq!(
        s.list_by_status(Status::Received, 100).await.unwrap().len(),
        6
    );
    assert!(matches!(
        s.create_execution(&exec("x", 1).clone(), None).await,
        Ok(Created::Created)
    ));
    let dup = s.get_execution(&ids[0]).await.unwrap().unwrap();
    assert!(
        s.create_execution(&dup, None).await.is_err(),
        "an id is created once"
    );
}

#[tokio::test]
async fn concurrent_transitions_from_one_version_have_one_winner() {
    let m = moto_or_skip!();
    let s = Arc::new(store(&m, "t-race").await);
    let e = exec("hello", 0);
    s.create_execution(&e, None).await.unwrap();
    let mut tasks = Vec::new();
    for i in 0..8 {
        let s = s.clone();
        let e = e.clone();
        tasks.push(tokio::spawn(async move {
            let next = step(
                &e,
                Event::BuildStarted {
                    build_id: format!("hello-build:{i}"),
                },
            );
            s.save(&e, &next).await
        }));
    }
    let mut wins = 0;
    let mut conflicts = 0;
    for t in tasks {
        match t.await.unwrap() {
            Ok(()) => wins += 1,
            Err(StoreError::Conflict(current)) => {
                assert_eq!(
                    current.status,
                    Status::Building,
                    "conflict carries the current item"
                );
                assert_eq!(current.version, 2);
                conflicts += 1;
            }
            Err(other) => panic!("{other}"),
        }
    }
    println!("concurrent transitions: {wins} won, {conflicts} conflicts");
    assert_eq!((wins, conflicts), (1, 7));
    let stored = s.get_execution(&e.id).await.unwrap().unwrap();
    let winner_build = stored.build_id.clone().unwrap();
    assert_eq!(
        s.find_by_build(&winner_build).await.unwrap(),
        Some(e.id.clone())
    );
    // a stale writer (old version) loses too
    let stale = step(&e, Event::BuildStartFailed { reason: "x".into() });
    assert!(matches!(
        s.save(&e, &stale).await,
        Err(StoreError::Conflict(_))
    ));
    // the status index follows the status
    assert_eq!(
        s.list_by_status(Status::Building, 10).await.unwrap().len(),
        1
    );
    assert!(s
        .list_by_status(Status::Received, 10)
        .await
        .unwrap()
        .is_empty());
}

#[tokio::test]
async fn idempotency_claims_and_ttl() {
    let m = moto_or_skip!();
    let s = store(&m, "t-claims").await;
    let key = IdempotencyKey {
        key: "DELIVERY#1#abc#hello".into(),
        expires_at: Utc::now() + Duration::days(8),
    };
    assert_eq!(s.claim(&key, "first").await.unwrap(), Claim::Claimed);
    assert_eq!(
        s.claim(&key, "second").await.unwrap(),
        Claim::Existing("first".into())
    );
    let raw = s
        .raw_item("IDEM#DELIVERY#1#abc#hello", "IDEM")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        raw["ttl"],
        key.expires_at.timestamp().to_string(),
        "TTL attribute set"
    );
    // an expired claim (TTL passed, not yet deleted by DynamoDB) may be taken again
    let old = IdempotencyKey {
        key: "old".into(),
        expires_at: Utc::now() - Duration::hours(1),
    };
    assert_eq!(s.claim(&old, "a").await.unwrap(), Claim::Claimed);
    assert_eq!(s.claim(&old, "b").await.unwrap(), Claim::Claimed);

    // creating an execution under a key: the second sees the first
    let a = exec("hello", 0);
    let b = exec("hello", 1);
    let k = IdempotencyKey {
        key: "EVENT#e-1#hello".into(),
        expires_at: Utc::now() + Duration::days(8),
    };
    assert_eq!(
        s.create_execution(&a, Some(&k)).await.unwrap(),
        Created::Created
    );
    assert_eq!(
        s.create_execution(&b, Some(&k)).await.unwrap(),
        Created::Duplicate(a.id.clone())
    );
    assert!(
        s.get_execution(&b.id).await.unwrap().is_none(),
        "the duplicate wrote nothing"
    );
    let raw = s
        .raw_item("IDEM#EVENT#e-1#hello", "IDEM")
        .await
        .unwrap()
        .unwrap();
    assert!(raw.contains_key("ttl"));
    let raw_exec = s
        .raw_item(&format!("EXEC#{}", a.id), "EXEC")
        .await
        .unwrap()
        .unwrap();
    assert!(!raw_exec.contains_key("ttl"), "executions are kept");
}

#[tokio::test]
async fn concurrent_creates_under_one_key_make_one_execution() {
    let m = moto_or_skip!();
    let s = Arc::new(store(&m, "t-create-race").await);
    let key = IdempotencyKey {
        key: "DELIVERY#1#race#hello".into(),
        expires_at: Utc::now() + Duration::days(8),
    };
    let mut tasks = Vec::new();
    for n in 0..20 {
        let s = s.clone();
        let key = key.clone();
        tasks.push(tokio::spawn(async move {
            s.create_execution(&exec("hello", n), Some(&key)).await
        }));
    }
    let mut created = Vec::new();
    let mut duplicates = Vec::new();
    for t in tasks {
        match t.await.unwrap().unwrap() {
            Created::Created => created.push(()),
            Created::Duplicate(id) => duplicates.push(id),
        }
    }
    assert_eq!(created.len(), 1);
    assert_eq!(duplicates.len(), 19);
    assert_eq!(s.list_executions("hello", 100).await.unwrap().len(), 1);
    let winner = s.list_executions("hello", 1).await.unwrap()[0].id.clone();
    assert!(duplicates.iter().all(|d| *d == winner));
}

#[tokio::test]
async fn links_revisions_and_pipelines() {
    let m = moto_or_skip!();
    let s = store(&m, "t-links").await;
    let e = exec("hello", 0);
    s.create_execution(&e, None).await.unwrap();
    let b = step(
        &e,
        Event::BuildStarted {
            build_id: "hello-build:1".into(),
        },
    );
    s.save(&e, &b).await.unwrap();
    assert_eq!(
        s.find_by_build("hello-build:1").await.unwrap(),
        Some(e.id.clone()),
        "a building execution is found by its build"
    );
    let raw = s
        .raw_item(&format!("EXEC#{}", e.id), "EXEC")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(raw["gsi3pk"], "BUILD#hello-build:1");
    let built = step(
        &b,
        Event::BuildSucceeded {
            image: ImageRef {
                repository_uri: "r".into(),
                tag: "t".into(),
                digest: "sha256:1".into(),
            },
            resolved_sha: None,
            note: None,
        },
    );
    s.save(&b, &built).await.unwrap();
    let dep = step(
        &built,
        Event::DeployStarted {
            deployment: DeploymentRecord {
                environment: Environment::Test,
                cluster: "c".into(),
                service: "s".into(),
                task_definition: "td:2".into(),
                previous_task_definition: Some("td:1".into()),
                deployment_id: "ecs-svc/42".into(),
                verify: false,
                started_at: Utc::now(),
            },
        },
    );
    s.save(&built, &dep).await.unwrap();
    // the index follows what the execution waits on: the deployment now, not the build
    assert_eq!(s.find_by_build("hello-build:1").await.unwrap(), None);
    assert_eq!(
        s.find_by_deployment("ecs-svc/42").await.unwrap(),
        Some(e.id.clone())
    );
    assert_eq!(s.find_by_deployment("ecs-svc/43").await.unwrap(), None);
    // no separate link items: one item per transition
    assert_eq!(
        s.raw_item("BUILD#hello-build:1", "LINK").await.unwrap(),
        None
    );
    assert_eq!(s.raw_item("DEPLOY#ecs-svc/42", "LINK").await.unwrap(), None);

    // environment histories: conditional puts on their version, values round-trip
    let rev = |id: &ExecutionId, d: &str, started: i64| DeployedRevision {
        execution_id: id.clone(),
        restores: None,
        how: shared::domain::DeployKind::Push,
        deployment_id: Some(format!("ecs-svc/{d}")),
        commit: Commit::default(),
        image: ImageRef {
            repository_uri: "r".into(),
            tag: "t".into(),
            digest: d.into(),
        },
        task_definition: format!("td:{d}"),
        started_at: Some(Utc::now() + Duration::seconds(started)),
        deployed_at: Utc::now(),
        withdrawn: false,
    };
    let other = ExecutionId::generate(Utc::now() + Duration::seconds(1));
    let mut history = EnvironmentRevisions::default();
    history.record(rev(&e.id, "a", 0));
    assert!(s
        .put_revisions("hello", Environment::Prod, &history, None)
        .await
        .unwrap());
    assert!(
        !s.put_revisions("hello", Environment::Prod, &history, None)
            .await
            .unwrap(),
        "a second first write loses"
    );
    history.record(rev(&other, "b", 1));
    assert!(s
        .put_revisions("hello", Environment::Prod, &history, Some(1))
        .await
        .unwrap());
    assert!(
        !s.put_revisions("hello", Environment::Prod, &history, Some(1))
            .await
            .unwrap(),
        "a write from a stale read loses"
    );
    let r = s
        .get_revisions("hello", Environment::Prod)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(r.version, 2);
    assert_eq!(r.value, history);
    assert_eq!(r.value.current().unwrap().image.digest, "b");
    assert_eq!(r.value.previous().unwrap().image.digest, "a");
    assert!(s
        .get_revisions("hello", Environment::Test)
        .await
        .unwrap()
        .is_none());

    let p = FakeWorld::pipeline();
    assert_eq!(s.put_pipeline(&p, Utc::now()).await.unwrap().version, 1);
    let mut p2 = p.clone();
    p2.keep_images = 3;
    let w = s.put_pipeline(&p2, Utc::now()).await.unwrap();
    assert_eq!((w.version, w.previous), (2, Some(p.clone())));
    assert_eq!(
        s.get_pipeline("hello")
            .await
            .unwrap()
            .unwrap()
            .definition
            .keep_images,
        3
    );
    assert_eq!(s.list_pipelines().await.unwrap().len(), 1);
    assert!(s.get_pipeline("nope").await.unwrap().is_none());
}

/// The functions' SDK configuration (`lambda_sdk_config`: region, credentials and endpoints from
/// Lambda's variables, no aws-config chain) works end to end: signed requests reach the endpoint
/// the variables name, a per-service endpoint wins, and missing credentials are an error.
#[tokio::test]
async fn lambda_sdk_configuration_from_the_environment() {
    let m = moto_or_skip!();
    let lambda_env = |pairs: Vec<(&'static str, String)>| {
        shared::adapters::lambda_sdk_config_from(move |name| {
            pairs
                .iter()
                .find(|(k, _)| *k == name)
                .map(|(_, v)| v.clone())
        })
    };
    let endpoint = m.server.endpoint();
    let sdk = lambda_env(vec![
        ("AWS_REGION", "us-east-1".into()),
        ("AWS_ACCESS_KEY_ID", "testing".into()),
        ("AWS_SECRET_ACCESS_KEY", "testing".into()),
        ("AWS_SESSION_TOKEN", "token".into()),
        ("AWS_ENDPOINT_URL", endpoint.clone()),
    ]);
    let s = DynamoStore::new(aws_sdk_dynamodb::Client::new(&sdk), "t-lambda-sdk");
    s.create_table().await.expect("create table through it");
    let e = exec("hello", 0);
    s.create_execution(&e, None).await.unwrap();
    assert_eq!(s.get_execution(&e.id).await.unwrap().unwrap(), e);

    // AWS_ENDPOINT_URL_DYNAMODB wins over a generic endpoint nothing listens on
    let sdk = lambda_env(vec![
        ("AWS_REGION", "us-east-1".into()),
        ("AWS_ACCESS_KEY_ID", "testing".into()),
        ("AWS_SECRET_ACCESS_KEY", "testing".into()),
        ("AWS_ENDPOINT_URL", "http://127.0.0.1:9".into()),
        ("AWS_ENDPOINT_URL_DYNAMODB", endpoint.clone()),
    ]);
    let s = DynamoStore::new(aws_sdk_dynamodb::Client::new(&sdk), "t-lambda-sdk");
    assert_eq!(s.get_execution(&e.id).await.unwrap().unwrap(), e);

    // no credentials: an error naming the problem, not a panic
    let sdk = lambda_env(vec![
        ("AWS_REGION", "us-east-1".into()),
        ("AWS_ENDPOINT_URL", endpoint),
    ]);
    let s = DynamoStore::new(aws_sdk_dynamodb::Client::new(&sdk), "t-lambda-sdk");
    let err = s.get_execution(&e.id).await.unwrap_err().to_string();
    assert!(err.to_lowercase().contains("credentials"), "{err}");
}

/// A push reads its repository's pipelines only (gsi2 `SOURCE#…`), GitHub names ignoring case;
/// re-applying a pipeline with another source moves it; pipeline items written before the index
/// get their key once, on the first lookup of a table without the schema marker.
#[tokio::test]
async fn pipelines_are_found_by_source() {
    use shared::domain::Source;
    let m = moto_or_skip!();
    let s = store(&m, "t-by-source").await;
    let named = |name: &str, source: Source| {
        let mut p = FakeWorld::pipeline();
        p.name = name.into();
        p.source = source;
        p
    };
    let gh = |r: &str| Source::Github(r.into());
    let cc = |r: &str| Source::Codecommit(r.into());
    for p in [
        named("a", gh("Acme/Hello")),
        named("b", gh("acme/hello")),
        named("c", gh("acme/other")),
        named("d", cc("hello")),
        named("e", cc("Hello")),
    ] {
        s.put_pipeline(&p, Utc::now()).await.unwrap();
    }
    let names = |found: Vec<shared::ports::StoredPipeline>| {
        found
            .into_iter()
            .map(|p| p.definition.name)
            .collect::<Vec<_>>()
    };
    assert_eq!(
        names(s.pipelines_for_source(&gh("ACME/HELLO")).await.unwrap()),
        ["a", "b"]
    );
    assert_eq!(
        names(s.pipelines_for_source(&cc("hello")).await.unwrap()),
        ["d"]
    );
    // every pipeline, a page at a time by name
    assert_eq!(
        names(s.list_pipelines_page(None, 2).await.unwrap()),
        ["a", "b"]
    );
    assert_eq!(
        names(s.list_pipelines_page(Some("b"), 2).await.unwrap()),
        ["c", "d"]
    );
    assert_eq!(
        names(s.list_pipelines_page(Some("d"), 10).await.unwrap()),
        ["e"]
    );
    assert!(s
        .pipelines_for_source(&gh("acme/none"))
        .await
        .unwrap()
        .is_empty());
    // a changed source moves the pipeline; its replaced version is found by neither
    s.put_pipeline(&named("b", cc("hello")), Utc::now())
        .await
        .unwrap();
    assert_eq!(
        names(s.pipelines_for_source(&gh("acme/hello")).await.unwrap()),
        ["a"]
    );
    assert_eq!(
        names(s.pipelines_for_source(&cc("hello")).await.unwrap()),
        ["b", "d"]
    );

    // a table from before the index: pipeline items without gsi2 keys, no schema marker
    let client = aws_sdk_dynamodb::Client::new(&m.sdk);
    let legacy = store(&m, "t-by-source-legacy").await;
    use aws_sdk_dynamodb::types::AttributeValue as A;
    client
        .delete_item()
        .table_name("t-by-source-legacy")
        .key("pk", A::S("SCHEMA".into()))
        .key("sk", A::S("PIPELINE_SOURCE_INDEX".into()))
        .send()
        .await
        .unwrap();
    for p in [named("old", gh("acme/hello")), named("other", gh("acme/x"))] {
        let stored = shared::ports::StoredPipeline {
            definition: p.clone(),
            version: 3,
            applied_at: Utc::now(),
            applied_by: None,
        };
        client
            .put_item()
            .table_name("t-by-source-legacy")
            .item("pk", A::S(format!("PIPELINE#{}", p.name)))
            .item("sk", A::S("CONFIG".into()))
            .item("gsi1pk", A::S("PIPELINES".into()))
            .item("gsi1sk", A::S(p.name.clone()))
            .item("version", A::N("3".into()))
            .item("body", A::S(serde_json::to_string(&stored).unwrap()))
            .send()
            .await
            .unwrap();
    }
    // the first lookup (of this process) finds no marker, keys the old items, writes the marker
    let fresh = DynamoStore::new(client.clone(), legacy.table());
    assert_eq!(
        names(fresh.pipelines_for_source(&gh("acme/hello")).await.unwrap()),
        ["old"]
    );
    let item = fresh
        .raw_item("PIPELINE#old", "CONFIG")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(item["gsi2pk"], "SOURCE#github:acme/hello");
    assert_eq!(item["version"], "3", "the backfill changes no version");
    assert!(fresh
        .raw_item("SCHEMA", "PIPELINE_SOURCE_INDEX")
        .await
        .unwrap()
        .is_some());
    let got = fresh.get_pipeline("old").await.unwrap().unwrap();
    assert_eq!((got.version, got.applied_by), (3, None));
    // later stores (and processes: their warm-up reads the marker) look up by source only
    let later = DynamoStore::new(client, legacy.table());
    later.warm_up().await;
    assert_eq!(
        names(later.pipelines_for_source(&gh("acme/x")).await.unwrap()),
        ["other"]
    );
}
