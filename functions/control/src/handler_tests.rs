use super::*;
use serde_json::json;
use shared::fake_world::FakeWorld;

/// Verifies a fake proof `FAKE <user> <binding>`: the caller is IAM user `<user>` if the proof
/// is bound to the command it came with (what STS's signature check does).
struct FakeCallers;

#[async_trait::async_trait]
impl shared::ports::CallerVerifier for FakeCallers {
    async fn verify(
        &self,
        proof: &IdentityProof,
        binding: &str,
    ) -> Result<VerifiedCaller, IdentityError> {
        match proof.authorization.split(' ').collect::<Vec<_>>()[..] {
            ["FAKE", user, bound] if bound == binding => Ok(VerifiedCaller::new(&format!(
                "arn:aws:iam::123456789012:user/{user}"
            ))),
            _ => Err(IdentityError::Refused("SignatureDoesNotMatch".into())),
        }
    }
}

fn fake_proof(user: &str, command: &Value) -> IdentityProof {
    IdentityProof {
        authorization: format!(
            "FAKE {user} {}",
            ControlRequest::decode(command.clone()).unwrap().binding()
        ),
        amz_date: "20261201T000000Z".into(),
        security_token: None,
    }
}

/// `command` as IAM user `user` sends it with the CLI.
async fn as_user(w: &FakeWorld, user: &str, command: Value) -> Value {
    let mut sent = command.clone();
    sent["identity_proof"] = serde_json::to_value(fake_proof(user, &command)).unwrap();
    let svc = w
        .services
        .clone()
        .with_caller_verifier(std::sync::Arc::new(FakeCallers));
    handle(&svc, sent).await
}

#[tokio::test]
async fn the_recorded_actor_is_the_verified_caller_never_the_claimed_one() {
    let w = FakeWorld::with_pipeline().await;
    let svc = w
        .services
        .clone()
        .with_caller_verifier(std::sync::Arc::new(FakeCallers));
    let release = json!({"command": "release", "pipeline": "hello", "commit": "9f2c7a1e4b6d8f0a2c4e6b8d0f1a3c5e7b9d1f3a", "request_id": "r1"});
    let writes = w.store.writes();
    // a direct invoke claiming someone: refused, nothing changed
    let mut claimed = release.clone();
    claimed["actor"] = json!("arn:aws:iam::123456789012:user/alice");
    let out = handle(&svc, claimed.clone()).await;
    assert_eq!(code(&out), "unverified_actor", "{out}");
    // bob proves himself but claims alice: refused
    let mut sent = claimed.clone();
    sent["identity_proof"] = serde_json::to_value(fake_proof("bob", &claimed)).unwrap();
    let out = handle(&svc, sent).await;
    assert_eq!(code(&out), "actor_mismatch", "{out}");
    assert!(
        out["error"]["message"]
            .as_str()
            .unwrap()
            .contains("user/bob"),
        "{out}"
    );
    // a proof for another command: refused
    let mut other = release.clone();
    other["commit"] = json!("0000000000000000000000000000000000000000");
    let mut sent = release.clone();
    sent["identity_proof"] = serde_json::to_value(fake_proof("bob", &other)).unwrap();
    let out = handle(&svc, sent).await;
    assert_eq!(code(&out), "unauthenticated", "{out}");
    assert_eq!(w.store.writes(), writes, "refusals change nothing");
    assert!(w.builds.started().is_empty());
    // a function without a verifier refuses proofs instead of trusting them
    let out = as_user_without_verifier(&w, &release).await;
    assert_eq!(code(&out), "unavailable", "{out}");
    // bob, proven (claiming himself is fine): recorded as bob
    let mut own = release.clone();
    own["actor"] = json!("arn:aws:iam::123456789012:user/bob");
    let mut sent = own.clone();
    sent["identity_proof"] = serde_json::to_value(fake_proof("bob", &own)).unwrap();
    let out = handle(&svc, sent).await;
    assert_eq!(out["execution"]["status"], "BUILDING", "{out}");
    let actors: Vec<&str> = out["execution"]["history"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|h| h["actor"].as_str())
        .collect();
    assert!(
        actors.contains(&"arn:aws:iam::123456789012:user/bob"),
        "{actors:?}"
    );
    // without a proof or a claim: recorded as the unverified console
    let out = handle(&svc, json!({"command": "release", "pipeline": "hello", "commit": "1111111111111111111111111111111111111111", "request_id": "r2"})).await;
    let actors: Vec<&str> = out["execution"]["history"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|h| h["actor"].as_str())
        .collect();
    assert!(actors.contains(&"console (unverified)"), "{out}");
}

async fn as_user_without_verifier(w: &FakeWorld, command: &Value) -> Value {
    let mut sent = command.clone();
    sent["identity_proof"] = serde_json::to_value(fake_proof("bob", command)).unwrap();
    handle(&w.services, sent).await
}

fn code(v: &Value) -> &str {
    v["error"]["code"].as_str().unwrap_or("")
}

#[tokio::test]
async fn bad_commands_name_the_problem_and_change_nothing() {
    let w = FakeWorld::with_pipeline().await;
    let writes = w.store.writes();
    for (input, expected) in [
        (json!("show"), "invalid_argument"),
        (json!({}), "invalid_argument"),
        (json!({"command": 3}), "invalid_argument"),
        (json!({"command": "explode"}), "unknown_command"),
        (json!({"command": "show"}), "invalid_argument"),
        (
            json!({"command": "show", "execution_id": "nope"}),
            "invalid_argument",
        ),
        (
            json!({"command": "show", "execution_id": "01JD3V5X8Q2M4N6P7R9S0T1V2W"}),
            "not_found",
        ),
        (
            json!({"command": "show", "execution_id": "01JD3V5X8Q2M4N6P7R9S0T1V2W", "extra": 1}),
            "invalid_argument",
        ),
        (
            json!({"command": "approve", "execution_id": "01JD3V5X8Q2M4N6P7R9S0T1V2W"}),
            "not_found",
        ),
        (
            json!({"command": "approve", "execution_id": "01JD3V5X8Q2M4N6P7R9S0T1V2W", "actor": "alice"}),
            "unverified_actor",
        ),
        (
            json!({"command": "approve", "execution_id": "01JD3V5X8Q2M4N6P7R9S0T1V2W", "identity_proof": {"authorization": "x"}}),
            "invalid_argument",
        ),
        (
            json!({"command": "rollback", "pipeline": "hello", "environment": "staging"}),
            "invalid_argument",
        ),
        (
            json!({"command": "rollback", "pipeline": "hello", "environment": "prod"}),
            "conflict",
        ),
        (
            json!({"command": "list_executions", "pipeline": "nope"}),
            "not_found",
        ),
        (
            json!({"command": "release", "pipeline": "hello", "commit": "zzz"}),
            "invalid_argument",
        ),
        (
            json!({"command": "retry", "execution_id": "01JD3V5X8Q2M4N6P7R9S0T1V2W"}),
            "not_found",
        ),
        (json!({"command": "apply_pipeline"}), "invalid_argument"),
        (
            json!({"command": "apply_pipeline", "definition": "x", "format": "ini"}),
            "invalid_argument",
        ),
    ] {
        let out = handle(&w.services, input.clone()).await;
        assert_eq!(code(&out), expected, "{input} → {out}");
        assert!(out["error"]["message"].as_str().unwrap().len() > 5, "{out}");
    }
    assert_eq!(w.store.writes(), writes);
    assert!(w.builds.started().is_empty());
}

/// Issue 14: a control `command` holding a line break cannot forge a text log line.
#[tokio::test]
async fn a_command_cannot_forge_a_log_line() {
    use std::sync::{Arc, Mutex};
    #[derive(Clone)]
    struct Capture(Arc<Mutex<Vec<u8>>>);
    impl std::io::Write for Capture {
        fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(b);
            Ok(b.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }
    let buf = Capture(Arc::new(Mutex::new(Vec::new())));
    let writer = buf.clone();
    let subscriber = shared::telemetry::text_subscriber(move || writer.clone());
    let _guard = tracing::subscriber::set_default(subscriber);
    let w = FakeWorld::new();
    let forged = "list_pipelines\n2026-12-01T00:00:00Z  INFO approved by admin\r";
    let out = handle(&w.services, json!({"command": forged})).await;
    assert_eq!(code(&out), "unknown_command");
    let text = String::from_utf8(buf.0.lock().unwrap().clone()).unwrap();
    assert!(text.contains("list_pipelines\\n2026"), "{text}");
    assert!(!text.contains('\r'), "{text}");
    for line in text.lines() {
        assert!(
            !line.starts_with("2026-12-01T00:00:00Z"),
            "a forged line: {text}"
        );
        assert!(
            line.contains("command") || line.contains("control"),
            "{line}"
        );
    }
}

/// Issue 14: test = prod written as an ARN and a name, parser and glob bombs, and a
/// request the store refuses: each a clear error, nothing stored, never `unavailable`.
#[tokio::test]
async fn hostile_pipelines_are_refused_and_store_rejections_are_permanent() {
    let w = FakeWorld::new();
    let apply = |definition: String, format: &str| json!({"command": "apply_pipeline", "format": format, "definition": definition});
    let same = shared::fakes::SAMPLE_PIPELINE.replace(
        r#"test = { cluster = "apps", service = "hello-test""#,
        r#"test = { cluster = "arn:aws:ecs:us-east-1:123456789012:cluster/apps", service = "hello-prod""#,
    );
    assert_ne!(same, shared::fakes::SAMPLE_PIPELINE);
    let out = handle(&w.services, apply(same, "toml")).await;
    assert_eq!(code(&out), "invalid_pipeline", "{out}");
    assert_eq!(out["error"]["details"][0]["path"], "prod.service", "{out}");

    let deep_glob = shared::fakes::SAMPLE_PIPELINE.replace(
        r#"branches = ["main"]"#,
        &format!(
            r#"branches = ["{}{}"]"#,
            "{".repeat(30_000),
            "}".repeat(30_000)
        ),
    );
    let nested_yaml = format!("name: {}{}", "[".repeat(30_000), "]".repeat(30_000));
    let big_yaml = format!("name: {}{}", "[".repeat(100_000), "]".repeat(100_000));
    let started = std::time::Instant::now();
    for (text, format, needle) in [
        (deep_glob, "toml", "at most 256"),
        (nested_yaml, "yaml", "nested more than 16"),
        (big_yaml, "yaml", "at most 65536"),
    ] {
        let out = handle(&w.services, apply(text, format)).await;
        assert_eq!(code(&out), "invalid_pipeline", "{out}");
        assert!(out.to_string().contains(needle), "{needle}: {out}");
    }
    let mut huge = serde_json::to_value(shared::fake_world::FakeWorld::pipeline()).unwrap();
    huge["branches"] = json!(vec!["main"; 20_000]);
    let out = handle(
        &w.services,
        json!({"command": "apply_pipeline", "pipeline": huge}),
    )
    .await;
    assert_eq!(out["error"]["details"][0]["path"], "pipeline", "{out}");
    let out = handle(
        &w.services,
        json!({"command": "retry", "execution_id": "01JD3V5X8Q2M4N6P7R9S0T1V2W", "actor": "a".repeat(300_000)}),
    )
    .await;
    assert_eq!(code(&out), "invalid_argument", "{out}");
    assert!(out["error"]["message"]
        .as_str()
        .unwrap()
        .contains("`actor` is 300000 bytes"));
    let out = handle(&w.services, json!({"command": "x\n".repeat(1_000_000)})).await;
    assert_eq!(code(&out), "unknown_command");
    assert!(
        out.to_string().len() < 2_000,
        "the answer echoes an excerpt"
    );
    assert!(started.elapsed() < std::time::Duration::from_secs(5));
    assert!(
        shared::ports::ExecutionStore::list_pipelines(w.store.as_ref())
            .await
            .unwrap()
            .is_empty()
    );

    w.store.faults.fail_next(
        "put_pipeline",
        shared::ports::StoreError::Rejected(
            "ValidationException: Item size has exceeded the maximum allowed size".into(),
        ),
    );
    let out = handle(
        &w.services,
        apply(shared::fakes::SAMPLE_PIPELINE.to_string(), "toml"),
    )
    .await;
    assert_eq!(code(&out), "invalid_argument", "{out}");
    assert!(
        out["error"]["message"]
            .as_str()
            .unwrap()
            .contains("Item size"),
        "{out}"
    );
}

#[tokio::test]
async fn invalid_pipeline_lists_every_error_with_its_path() {
    let w = FakeWorld::new();
    let out = handle(&w.services, json!({"command": "apply_pipeline", "format": "toml", "definition": "name = \"x y\"\nmode = \"fast\"\n"})).await;
    assert_eq!(code(&out), "invalid_pipeline");
    let paths: Vec<&str> = out["error"]["details"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["path"].as_str().unwrap())
        .collect();
    assert_eq!(
        paths,
        vec!["name", "source", "build", "image", "test", "prod", "approval", "mode"]
    );
    assert!(w.store.executions().is_empty());
}

#[tokio::test]
async fn apply_list_release_show() {
    let w = FakeWorld::new();
    let text = shared::fakes::SAMPLE_PIPELINE;
    let out = handle(
        &w.services,
        json!({"command": "apply_pipeline", "definition": text, "format": "toml"}),
    )
    .await;
    assert_eq!(out["result"], "created", "{out}");
    let out = handle(&w.services, json!({"command": "list_pipelines"})).await;
    assert_eq!(out["pipelines"][0]["name"], "hello");
    let out = handle(&w.services, json!({"command": "release", "pipeline": "hello", "commit": "9f2c7a1e4b6d8f0a2c4e6b8d0f1a3c5e7b9d1f3a"})).await;
    let id = out["execution_id"].as_str().unwrap().to_string();
    assert_eq!(out["execution"]["status"], "BUILDING");
    let out = handle(&w.services, json!({"command": "show", "execution_id": id})).await;
    assert_eq!(out["execution"]["id"], id.as_str());
    assert_eq!(out["execution"]["pipeline"], "hello");
    assert_eq!(
        out["execution"]["commit"]["sha"],
        "9f2c7a1e4b6d8f0a2c4e6b8d0f1a3c5e7b9d1f3a"
    );
    assert!(out["execution"]["history"].as_array().unwrap().len() >= 2);
    let out = handle(
        &w.services,
        json!({"command": "list_executions", "pipeline": "hello"}),
    )
    .await;
    assert_eq!(out["executions"].as_array().unwrap().len(), 1);
    let out = handle(&w.services, json!({"command": "status"})).await;
    assert_eq!(
        out["pipelines"][0]["in_flight"].as_array().unwrap().len(),
        1
    );
}

#[tokio::test]
async fn applied_versions_record_who_and_show_their_history() {
    let w = FakeWorld::new();
    let text = shared::fakes::SAMPLE_PIPELINE;
    let out = as_user(
        &w,
        "ada",
        json!({"command": "apply_pipeline", "definition": text, "format": "toml"}),
    )
    .await;
    assert_eq!(out["version"], 1, "{out}");
    let changed = text.replace("timeout_hours = 72", "timeout_hours = 24");
    let out = as_user(
        &w,
        "grace",
        json!({"command": "apply_pipeline", "definition": changed, "format": "toml"}),
    )
    .await;
    assert_eq!(out["result"], "updated", "{out}");

    let out = handle(
        &w.services,
        json!({"command": "show_pipeline", "pipeline": "hello"}),
    )
    .await;
    assert_eq!(out["pipeline"]["version"], 2, "{out}");
    assert_eq!(
        out["pipeline"]["applied_by"],
        "arn:aws:iam::123456789012:user/grace"
    );
    assert_eq!(
        out["pipeline"]["definition"]["approval"]["timeout_hours"],
        24
    );
    assert!(out["pipeline"]["applied_at"].is_string());
    assert!(out.get("history").is_none(), "{out}");

    let out = handle(
        &w.services,
        json!({"command": "show_pipeline", "pipeline": "hello", "history": true}),
    )
    .await;
    let history = out["history"].as_array().unwrap();
    assert_eq!(history.len(), 2, "{out}");
    assert_eq!(history[0]["version"], 2);
    assert_eq!(
        history[0]["applied_by"],
        "arn:aws:iam::123456789012:user/grace"
    );
    assert_eq!(history[0]["changes"][0]["path"], "approval.timeout_hours");
    assert_eq!(history[0]["changes"][0]["before"], 72);
    assert_eq!(history[0]["changes"][0]["after"], 24);
    assert_eq!(history[1]["version"], 1);
    assert_eq!(
        history[1]["applied_by"],
        "arn:aws:iam::123456789012:user/ada"
    );
    assert_eq!(history[1]["changes"], json!([]));

    // an unchanged apply writes no version
    let writes = w.store.writes();
    let out = handle(
        &w.services,
        json!({"command": "apply_pipeline", "definition": changed, "format": "toml"}),
    )
    .await;
    assert_eq!(out["result"], "unchanged");
    assert_eq!(w.store.writes(), writes);

    for (input, expected) in [
        (
            json!({"command": "show_pipeline", "pipeline": "nope"}),
            "not_found",
        ),
        (json!({"command": "show_pipeline"}), "invalid_argument"),
        (
            json!({"command": "show_pipeline", "pipeline": "hello", "history": "yes"}),
            "invalid_argument",
        ),
        (
            json!({"command": "show_pipeline", "pipeline": "hello", "extra": 1}),
            "invalid_argument",
        ),
    ] {
        let out = handle(&w.services, input.clone()).await;
        assert_eq!(code(&out), expected, "{input} → {out}");
    }
}

#[tokio::test]
async fn sample_payloads_are_accepted() {
    let w = FakeWorld::with_pipeline().await;
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/../../events/control");
    let mut seen = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        let input: Value = serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
        let out = handle(&w.services, input).await;
        // samples name executions that do not exist here; anything but a malformed request is fine
        assert_ne!(code(&out), "invalid_argument", "{}: {out}", path.display());
        assert_ne!(code(&out), "unknown_command", "{}: {out}", path.display());
        // a sample for the console asserts no actor (it could not be verified)
        assert_ne!(code(&out), "unverified_actor", "{}: {out}", path.display());
        seen.push(
            path.file_stem()
                .unwrap()
                .to_string_lossy()
                .replace('-', "_"),
        );
    }
    for c in COMMANDS {
        assert!(seen.iter().any(|s| s == c), "no sample for {c}");
    }
    let refused: Value = serde_json::from_str(include_str!(
        "../../../events/control/apply-pipeline-test-is-prod.json"
    ))
    .unwrap();
    let out = handle(&w.services, refused).await;
    assert_eq!(code(&out), "invalid_pipeline", "{out}");
    assert_eq!(out["error"]["details"][0]["path"], "prod.service");
}

/// What the handler answers decodes as the typed answer the CLI expects for the request.
#[tokio::test]
async fn answers_decode_as_the_types_the_cli_reads() {
    use shared::protocol::{Answer, ControlResponse};
    let w = FakeWorld::new();
    let ask = |request: Value| {
        let services = &w.services;
        async move {
            let typed: ControlRequest = serde_json::from_value(request.clone()).unwrap();
            let out = handle(services, request.clone()).await;
            Answer::decode(&typed, out.clone()).unwrap_or_else(|e| panic!("{request} → {out}: {e}"))
        }
    };
    let done = |answer: Answer| match answer {
        Answer::Done(r) => *r,
        Answer::Refused(e) => panic!("refused: {e}"),
    };
    let applied = done(ask(json!({"command": "apply_pipeline", "definition": shared::fakes::SAMPLE_PIPELINE, "format": "toml"})).await);
    assert!(
        matches!(applied, ControlResponse::Applied(_)),
        "{applied:?}"
    );
    let listed = done(ask(json!({"command": "list_pipelines"})).await);
    assert!(
        matches!(listed, ControlResponse::Pipelines(_)),
        "{listed:?}"
    );
    let shown =
        done(ask(json!({"command": "show_pipeline", "pipeline": "hello", "history": true})).await);
    assert!(
        matches!(shown, ControlResponse::PipelineShown(_)),
        "{shown:?}"
    );
    let ControlResponse::Released(released) = done(ask(json!({"command": "release", "pipeline": "hello", "commit": "9f2c7a1e4b6d8f0a2c4e6b8d0f1a3c5e7b9d1f3a", "request_id": "r1"})).await) else {
        panic!("release answers Released")
    };
    let id = released.execution_id.to_string();
    let executions = done(ask(json!({"command": "list_executions", "pipeline": "hello"})).await);
    assert!(
        matches!(executions, ControlResponse::Executions(_)),
        "{executions:?}"
    );
    let status = done(ask(json!({"command": "status"})).await);
    assert!(matches!(status, ControlResponse::Status(_)), "{status:?}");
    let ControlResponse::Execution(one) =
        done(ask(json!({"command": "show", "execution_id": id})).await)
    else {
        panic!("show answers an execution")
    };
    assert_eq!(one.execution, released.execution);
    // refusals are typed too: nothing is awaiting approval, nothing ran in prod
    for request in [
        json!({"command": "approve", "execution_id": id}),
        json!({"command": "rollback", "pipeline": "hello", "environment": "prod"}),
    ] {
        let Answer::Refused(e) = ask(request.clone()).await else {
            panic!("{request} was not refused")
        };
        assert_eq!(e.code, "conflict", "{request}: {e}");
    }
}

#[tokio::test]
async fn operator_commands_need_a_verified_operator_when_patterns_are_set() {
    let w = FakeWorld::with_pipeline().await;
    let svc = w
        .services
        .clone()
        .with_caller_verifier(std::sync::Arc::new(FakeCallers));
    let ops = Operators::parse("arn:aws:iam::123456789012:user/ada").map_err(|e| e.to_string());
    let send = |user: Option<&'static str>, command: Value| {
        let svc = svc.clone();
        let ops = ops.clone();
        async move {
            let mut sent = command.clone();
            if let Some(user) = user {
                sent["identity_proof"] = serde_json::to_value(fake_proof(user, &command)).unwrap();
            }
            handle_with(&svc, &ops, sent).await
        }
    };
    let release = json!({"command": "release", "pipeline": "hello", "commit": "9f2c7a1e4b6d8f0a2c4e6b8d0f1a3c5e7b9d1f3a", "request_id": "r1"});
    let apply = json!({"command": "apply_pipeline", "definition": shared::fakes::SAMPLE_PIPELINE, "format": "toml"});
    let writes = w.store.writes();
    // bob (verified, not an operator) and the unverified console: forbidden, nothing changed
    for (user, command) in [
        (Some("bob"), release.clone()),
        (Some("bob"), apply.clone()),
        (
            Some("bob"),
            json!({"command": "rollback", "pipeline": "hello", "environment": "prod"}),
        ),
        (None, release.clone()),
    ] {
        let out = send(user, command).await;
        assert_eq!(code(&out), "forbidden", "{out}");
        let message = out["error"]["message"].as_str().unwrap();
        assert!(message.contains("nothing was changed"), "{message}");
        if user.is_some() {
            assert!(message.contains("user/bob is not an operator"), "{message}");
        }
    }
    assert_eq!(w.store.writes(), writes, "refusals change nothing");
    assert!(w.builds.started().is_empty());
    // reads stay open to anyone who may invoke control
    let out = send(Some("bob"), json!({"command": "status"})).await;
    assert!(out.get("error").is_none(), "{out}");
    // ada is an operator
    let out = send(Some("ada"), release.clone()).await;
    assert_eq!(out["execution"]["status"], "BUILDING", "{out}");
    // invalid patterns fail closed
    let bad: Result<Operators, String> = Operators::parse("ada");
    let mut sent = release.clone();
    sent["identity_proof"] = serde_json::to_value(fake_proof("ada", &release)).unwrap();
    let out = handle_with(&svc, &bad, sent).await;
    assert_eq!(code(&out), "forbidden", "{out}");
    assert!(out["error"]["message"]
        .as_str()
        .unwrap()
        .contains("OperatorArnPatterns"));
    // no patterns: everyone who may invoke control (today's behaviour)
    let open = Operators::parse("");
    let out = handle_with(&svc, &open, json!({"command": "release", "pipeline": "hello", "commit": "1111111111111111111111111111111111111111", "request_id": "r2"})).await;
    assert_eq!(out["execution"]["status"], "BUILDING", "{out}");
}
