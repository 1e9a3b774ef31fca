//! Test harness for tests against a local AWS API (moto).
//!
//! Each test starts its own moto server on a free 127.0.0.1 port ([`moto`]) and gets a fresh
//! table; the server is killed when the returned value drops — also when the test panics, and
//! (through the server's stdin watchdog) even when the test process is killed.
//!
//! Without moto installed, [`moto`] prints `skipped: moto not installed (run make test)` and the
//! test returns early; with `SHIPGATE_REQUIRE_MOTO=1` (set by `make test`) it fails instead.

use std::io::Write;

pub mod strict_sts;

use aws_config::SdkConfig;
use shared::app::{Services, Settings};
use shared::wiring::{aws_services, Config};
use shipgate_sandbox::{sdk_config, LocalError, MotoServer, Provisioned, Sandbox};

/// A running moto server and an SDK configuration pointed at it.
pub struct Moto {
    pub server: MotoServer,
    pub sdk: SdkConfig,
}

/// Print straight to the terminal: libtest does not capture direct writes, so the reason for a
/// skip is visible in a plain `cargo test` run.
pub fn say(line: &str) {
    let _ = writeln!(std::io::stderr(), "{line}");
}

/// Start moto, or explain why the test is skipped.
pub async fn moto() -> Option<Moto> {
    match MotoServer::start(0) {
        Ok(server) => {
            let sdk = sdk_config(&server.endpoint()).await;
            Some(Moto { server, sdk })
        }
        Err(e @ LocalError::MotoMissing { .. }) => {
            if std::env::var("SHIPGATE_REQUIRE_MOTO").is_ok_and(|v| v == "1") {
                panic!("moto is required (SHIPGATE_REQUIRE_MOTO=1) but: {e}");
            }
            say("skipped: moto not installed (run make test)");
            None
        }
        Err(e) => panic!("could not start moto: {e}"),
    }
}

/// Start moto or return from the test with a printed reason.
#[macro_export]
macro_rules! moto_or_skip {
    () => {
        match $crate::moto().await {
            Some(m) => m,
            None => return,
        }
    };
}

/// A provisioned sandbox (table, secrets, topic + capture queue, ECR, CodeBuild, ECS, pipeline)
/// and the real AWS adapters wired to it.
pub struct World {
    pub moto: Moto,
    pub provisioned: Provisioned,
    pub services: Services,
    pub public_url: String,
}

impl World {
    /// An execution as stored, read without going through a counting store.
    pub async fn peek(&self, id: &shared::domain::ExecutionId) -> shared::domain::Execution {
        use shared::ports::ExecutionStore;
        shared::adapters::dynamodb::DynamoStore::new(
            aws_sdk_dynamodb::Client::new(&self.moto.sdk),
            &self.provisioned.sandbox.table,
        )
        .get_execution(id)
        .await
        .expect("read the execution")
        .expect("the execution exists")
    }

    /// From now on, count the DynamoDB requests and items this world's store makes. The
    /// cold-start warm-up (a Lambda's init, not part of an execution) runs first, uncounted.
    pub async fn count_dynamodb_writes(&mut self) -> std::sync::Arc<WriteCounter> {
        shared::adapters::dynamodb::DynamoStore::new(
            aws_sdk_dynamodb::Client::new(&self.moto.sdk),
            &self.provisioned.sandbox.table,
        )
        .warm_up()
        .await;
        let counter = std::sync::Arc::new(WriteCounter::default());
        let conf = aws_sdk_dynamodb::config::Builder::from(&self.moto.sdk)
            .interceptor(CountWrites(counter.clone()))
            .build();
        self.services.store = std::sync::Arc::new(shared::adapters::dynamodb::DynamoStore::new(
            aws_sdk_dynamodb::Client::from_conf(conf),
            &self.provisioned.sandbox.table,
        ));
        counter
    }

    pub async fn start() -> Option<World> {
        World::start_with(Sandbox::default()).await
    }

    /// [`World::start`] with a sandbox of one's own (e.g. reporting to a fake GitHub).
    pub async fn start_with(sandbox: Sandbox) -> Option<World> {
        let moto = moto().await?;
        let provisioned = sandbox
            .provision(&moto.sdk)
            .await
            .expect("provision the sandbox in moto");
        let public_url = "http://127.0.0.1:9".to_string();
        let config = Config {
            table: sandbox.table.clone(),
            settings: Settings {
                public_url: public_url.clone(),
                webhook_secret_id: sandbox.webhook_secret_id.clone(),
                signing_key_id: sandbox.signing_key_id.clone(),
            },
        };
        let services = aws_services(&moto.sdk, &config);
        Some(World {
            moto,
            provisioned,
            services,
            public_url,
        })
    }

    pub fn sqs(&self) -> aws_sdk_sqs::Client {
        aws_sdk_sqs::Client::new(&self.moto.sdk)
    }
    pub fn ecs(&self) -> aws_sdk_ecs::Client {
        aws_sdk_ecs::Client::new(&self.moto.sdk)
    }
    pub fn ecr(&self) -> aws_sdk_ecr::Client {
        aws_sdk_ecr::Client::new(&self.moto.sdk)
    }
    pub fn codebuild(&self) -> aws_sdk_codebuild::Client {
        aws_sdk_codebuild::Client::new(&self.moto.sdk)
    }

    /// The image the service's container runs (from its task definition).
    pub async fn service_image(&self, cluster: &str, service: &str) -> String {
        let ecs = self.ecs();
        let svc = ecs
            .describe_services()
            .cluster(cluster)
            .services(service)
            .send()
            .await
            .expect("describe service");
        let td = svc.services()[0].task_definition().unwrap().to_string();
        let def = ecs
            .describe_task_definition()
            .task_definition(&td)
            .send()
            .await
            .expect("describe task definition");
        def.task_definition().unwrap().container_definitions()[0]
            .image()
            .unwrap()
            .to_string()
    }

    /// Push an image manifest to ECR under `tag`, as a build would; answers its digest.
    pub async fn push_image(&self, tag: &str, seed: &str) -> String {
        let manifest = serde_json::json!({
            "schemaVersion": 2,
            "mediaType": "application/vnd.docker.distribution.manifest.v2+json",
            "config": { "mediaType": "application/vnd.docker.container.image.v1+json", "size": 1470, "digest": format!("sha256:{:0>64}", hex_of(seed)) },
            "layers": [{ "mediaType": "application/vnd.docker.image.rootfs.diff.tar.gzip", "size": 3_000_000, "digest": format!("sha256:{:0>64}", hex_of(&format!("layer-{seed}"))) }]
        });
        let out = self
            .ecr()
            .put_image()
            .repository_name(&self.provisioned.sandbox.repository)
            .image_manifest(manifest.to_string())
            .image_tag(tag)
            .send()
            .await
            .expect("put image");
        out.image()
            .and_then(|i| i.image_id())
            .and_then(|i| i.image_digest())
            .expect("digest")
            .to_string()
    }
}

fn hex_of(s: &str) -> String {
    s.bytes()
        .map(|b| format!("{b:02x}"))
        .collect::<String>()
        .chars()
        .take(64)
        .collect()
}

/// A GitHub push sample (events/github/push.json).
pub const PUSH: &str = include_str!("../../events/github/push.json");

/// A CodeBuild "Build State Change" event for `build_id`, from a build that exported no
/// variables (so the image is found by its tag).
pub fn build_event(build_id: &str, status: &str) -> serde_json::Value {
    let mut v: serde_json::Value =
        serde_json::from_str(include_str!("../../events/codebuild/succeeded.json")).unwrap();
    v["detail"]["build-id"] =
        format!("arn:aws:codebuild:us-east-1:123456789012:build/{build_id}").into();
    v["detail"]["build-status"] = status.into();
    if let Some(info) = v["detail"]["additional-information"].as_object_mut() {
        info.remove("exported-environment-variables");
    }
    v
}

/// [`build_event`] of a build that exported `IMAGE_DIGEST=digest`.
pub fn build_event_exporting(build_id: &str, status: &str, digest: &str) -> serde_json::Value {
    let mut v = build_event(build_id, status);
    v["detail"]["additional-information"]["exported-environment-variables"] =
        serde_json::json!([{"name": "IMAGE_DIGEST", "value": digest}]);
    v
}

/// An ECS "Deployment State Change" event for `deployment_id`.
pub fn deploy_event(deployment_id: &str, name: &str) -> serde_json::Value {
    let mut v: serde_json::Value =
        serde_json::from_str(include_str!("../../events/ecs/completed.json")).unwrap();
    v["detail"]["deploymentId"] = deployment_id.into();
    v["detail"]["eventName"] = name.into();
    v
}

/// A signed push (`body`, or the sample) as API Gateway delivers it.
pub fn signed_push(body: &str, delivery: &str, secret: &str) -> shared::http::HttpRequest {
    let sig = shared::domain::github::sign_body(secret.as_bytes(), body.as_bytes());
    shipgate_sandbox::apigw::request(
        "POST",
        "/webhooks/github",
        "/webhooks/github",
        &[
            ("X-GitHub-Event", "push"),
            ("X-GitHub-Delivery", delivery),
            ("X-GitHub-Hook-ID", "512345678"),
            ("X-Hub-Signature-256", &sig),
            ("Content-Type", "application/json"),
        ],
        Some(body),
        "140.82.115.11",
    )
}

/// The sample push, sent through the webhook handler; answers the execution id.
pub async fn start(w: &World, delivery: &str) -> shared::domain::ExecutionId {
    let req = signed_push(PUSH, delivery, shipgate_sandbox::DEV_WEBHOOK_SECRET);
    let resp = webhook::handler::handle(&w.services, req).await;
    let body: serde_json::Value = serde_json::from_str(&shared::http::body_text(&resp)).unwrap();
    body["execution_id"]
        .as_str()
        .expect("execution id")
        .parse()
        .unwrap()
}

/// The proof of who sends `command` (a signed sts:GetCallerIdentity bound to it, as the CLI
/// makes it), signed with `user`'s key for the STS endpoint `sts_url` and `shipgate-control`.
pub fn prove(
    user: &shipgate_sandbox::IamUser,
    sts_url: &str,
    command: &serde_json::Value,
) -> shared::domain::identity::IdentityProof {
    let request =
        shared::protocol::ControlRequest::decode(command.clone()).expect("a valid command");
    shared::adapters::sts::sign_proof(
        &user.credentials,
        shipgate_sandbox::REGION,
        sts_url,
        "shipgate-control",
        &request.binding(),
        std::time::SystemTime::now(),
    )
    .expect("sign the proof")
}

/// `command` with `proof` beside it, as the CLI sends it.
pub fn with_proof(
    command: &serde_json::Value,
    proof: &shared::domain::identity::IdentityProof,
) -> serde_json::Value {
    let mut sent = command.clone();
    sent[shared::protocol::PROOF_FIELD] = serde_json::to_value(proof).unwrap();
    sent
}

/// One `control` command as `user` sends it with the CLI: with a proof checked by moto's STS.
pub async fn control_as(
    w: &World,
    user: &shipgate_sandbox::IamUser,
    command: serde_json::Value,
) -> serde_json::Value {
    let proof = prove(user, &w.moto.server.endpoint(), &command);
    control::handler::handle(&w.services, with_proof(&command, &proof)).await
}

/// One `control` command through the real handler.
pub async fn control(w: &World, command: serde_json::Value) -> serde_json::Value {
    control::handler::handle(&w.services, command).await
}

/// Drive an execution started by `release` of `pipeline` to AWAITING_APPROVAL through the real
/// handlers (an image is pushed under its tag, as the build would); answers its id and digest.
pub async fn release_to_approval(w: &World, pipeline: &str, commit: &str) -> (String, String) {
    let out = control(
        w,
        serde_json::json!({"command": "release", "pipeline": pipeline, "commit": commit}),
    )
    .await;
    let id = out["execution_id"]
        .as_str()
        .unwrap_or_else(|| panic!("{out}"))
        .to_string();
    let e = w.services.execution(&id.parse().unwrap()).await.unwrap();
    let digest = w.push_image(&e.image_tag(), commit).await;
    build_events::handler::handle(
        &w.services,
        build_event(e.build_id.as_deref().unwrap(), "SUCCEEDED"),
    )
    .await
    .unwrap();
    let e = w.services.execution(&e.id).await.unwrap();
    deploy_events::handler::handle(
        &w.services,
        deploy_event(
            &e.test.unwrap().deployment_id,
            "SERVICE_DEPLOYMENT_COMPLETED",
        ),
    )
    .await
    .unwrap();
    shipgate_sandbox::drain_outbox(&w.sqs(), &w.provisioned.outbox_queue_url)
        .await
        .unwrap();
    (id, digest)
}

/// The sandbox's default credentials (`testing`) as a CLI user: moto answers its
/// GetCallerIdentity with `arn:aws:sts::123456789012:user/moto`.
pub fn operator() -> shipgate_sandbox::IamUser {
    shipgate_sandbox::IamUser {
        name: "moto".into(),
        arn: format!("arn:aws:sts::{}:user/moto", shipgate_sandbox::ACCOUNT),
        credentials: aws_credential_types::Credentials::new("testing", "testing", None, None, "t"),
    }
}

/// Approve from the CLI channel (with the operator's proof); answers the prod deployment id.
pub async fn approve(w: &World, id: &str) -> String {
    let out = control_as(
        w,
        &operator(),
        serde_json::json!({"command": "approve", "execution_id": id, "comment": "ok"}),
    )
    .await;
    assert_eq!(out["execution"]["status"], "DEPLOYING_PROD", "{out}");
    out["execution"]["prod"]["deployment_id"]
        .as_str()
        .unwrap()
        .to_string()
}

/// Deliver an ECS deployment state change through the real handler; answers its report.
pub async fn deployment_event(w: &World, deployment_id: &str, name: &str) -> serde_json::Value {
    deploy_events::handler::handle(&w.services, deploy_event(deployment_id, name))
        .await
        .unwrap()
}

/// Approve and complete the prod deployment: SUCCEEDED.
pub async fn approve_to_success(w: &World, id: &str) {
    let dep = approve(w, id).await;
    let done = deployment_event(w, &dep, "SERVICE_DEPLOYMENT_COMPLETED").await;
    assert_eq!(done["execution_status"], "SUCCEEDED", "{done}");
}

/// DynamoDB items written by successful requests, by operation: PutItem, UpdateItem and
/// DeleteItem write one; TransactWriteItems and BatchWriteItem write each of their items.
#[derive(Debug, Default)]
pub struct WriteCounter(
    std::sync::Mutex<std::collections::BTreeMap<String, u64>>,
    /// Every request sent (reads too), by operation.
    std::sync::Mutex<std::collections::BTreeMap<String, u64>>,
);

impl WriteCounter {
    pub fn total(&self) -> u64 {
        self.by_operation().values().sum()
    }
    pub fn by_operation(&self) -> std::collections::BTreeMap<String, u64> {
        self.0.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }
    /// DynamoDB requests sent (every operation, every attempt).
    pub fn calls(&self) -> u64 {
        self.calls_by_operation().values().sum()
    }
    pub fn calls_by_operation(&self) -> std::collections::BTreeMap<String, u64> {
        self.1.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }
}

/// The counting adapter: an SDK interceptor that notes what each attempt writes before it is
/// sent and counts it once the attempt succeeded.
#[derive(Debug)]
struct CountWrites(std::sync::Arc<WriteCounter>);

/// What the attempt in flight writes (kept in the attempt's config bag).
#[derive(Debug, Clone)]
struct Writes(String, u64);

impl aws_smithy_types::config_bag::Storable for Writes {
    type Storer = aws_smithy_types::config_bag::StoreReplace<Self>;
}

impl aws_sdk_dynamodb::config::Intercept for CountWrites {
    fn name(&self) -> &'static str {
        "CountWrites"
    }

    fn read_before_transmit(
        &self,
        context: &aws_sdk_dynamodb::config::interceptors::BeforeTransmitInterceptorContextRef<'_>,
        _: &aws_sdk_dynamodb::config::RuntimeComponents,
        cfg: &mut aws_sdk_dynamodb::config::ConfigBag,
    ) -> Result<(), aws_sdk_dynamodb::error::BoxError> {
        let request = context.request();
        let operation = request
            .headers()
            .get("x-amz-target")
            .and_then(|t| t.rsplit('.').next())
            .unwrap_or("?")
            .to_string();
        let body: serde_json::Value = request
            .body()
            .bytes()
            .and_then(|b| serde_json::from_slice(b).ok())
            .unwrap_or_default();
        let items = match operation.as_str() {
            "PutItem" | "UpdateItem" | "DeleteItem" => 1,
            "TransactWriteItems" => body["TransactItems"].as_array().map_or(0, |items| {
                items
                    .iter()
                    .filter(|i| i.get("ConditionCheck").is_none())
                    .count() as u64
            }),
            "BatchWriteItem" => body["RequestItems"].as_object().map_or(0, |tables| {
                tables
                    .values()
                    .filter_map(|v| v.as_array())
                    .map(|v| v.len() as u64)
                    .sum()
            }),
            _ => 0,
        };
        *self
            .0
             .1
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .entry(operation.clone())
            .or_default() += 1;
        cfg.interceptor_state().store_put(Writes(operation, items));
        Ok(())
    }

    fn read_after_attempt(
        &self,
        context: &aws_sdk_dynamodb::config::interceptors::FinalizerInterceptorContextRef<'_>,
        _: &aws_sdk_dynamodb::config::RuntimeComponents,
        cfg: &mut aws_sdk_dynamodb::config::ConfigBag,
    ) -> Result<(), aws_sdk_dynamodb::error::BoxError> {
        let succeeded = context.response().is_some_and(|r| r.status().is_success());
        if let (true, Some(Writes(operation, items))) = (succeeded, cfg.load::<Writes>()) {
            if *items > 0 {
                *self
                    .0
                     .0
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .entry(operation.clone())
                    .or_default() += items;
            }
        }
        Ok(())
    }
}

/// A TCP proxy in front of moto that can be cut (every open connection dropped, new ones
/// refused) and restored: an AWS outage in the middle of a run, with moto's state kept.
pub struct Outage {
    pub endpoint: String,
    down: std::sync::Arc<tokio::sync::watch::Sender<bool>>,
}

impl Outage {
    /// Start a proxy on a free loopback port forwarding to `upstream` (`http://127.0.0.1:port`).
    pub async fn proxy(upstream: &str) -> Outage {
        let target = upstream.trim_start_matches("http://").to_string();
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let endpoint = format!("http://{}", listener.local_addr().unwrap());
        let (tx, rx) = tokio::sync::watch::channel(false);
        tokio::spawn(async move {
            loop {
                let Ok((mut client, _)) = listener.accept().await else {
                    return;
                };
                if *rx.borrow() {
                    continue; // refused: dropped at once
                }
                let target = target.clone();
                let mut down = rx.clone();
                tokio::spawn(async move {
                    let Ok(mut server) = tokio::net::TcpStream::connect(&target).await else {
                        return;
                    };
                    tokio::select! {
                        _ = tokio::io::copy_bidirectional(&mut client, &mut server) => {}
                        _ = down.wait_for(|d| *d) => {}
                    }
                });
            }
        });
        Outage {
            endpoint,
            down: std::sync::Arc::new(tx),
        }
    }

    pub fn cut(&self) {
        let _ = self.down.send(true);
    }

    pub fn restore(&self) {
        let _ = self.down.send(false);
    }
}
