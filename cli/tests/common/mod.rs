//! Start `shipgate dev` as a child process on free ports, for tests that talk to it over HTTP
//! only. Stopped with SIGTERM when dropped.

#![allow(dead_code)]

use std::collections::HashMap;
use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::{json, Value};

pub struct DevSandbox {
    child: Option<Child>,
    pub base: String,
    pub env: HashMap<String, String>,
    pub state_dir: PathBuf,
    pub output: Arc<Mutex<Vec<String>>>,
}

fn tmp_dir(tag: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!(
        "shipgate-{tag}-{}-{}",
        std::process::id(),
        ulid::Ulid::new()
    ));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

impl DevSandbox {
    /// Start `shipgate dev` (1-second builds and deployments); None (with a printed reason)
    /// when moto is not installed.
    pub fn start(tag: &str) -> Option<DevSandbox> {
        Self::start_in(tmp_dir(tag), &[])
    }

    /// A fresh state directory for `start_in`.
    pub fn state_dir(tag: &str) -> PathBuf {
        tmp_dir(tag)
    }

    /// Start with `state_dir` (which may hold files already) and extra `shipgate dev` arguments.
    pub fn start_in(state_dir: PathBuf, extra: &[&str]) -> Option<DevSandbox> {
        let mut child = Command::new(env!("CARGO_BIN_EXE_shipgate"))
            .args([
                "dev",
                "--port",
                "0",
                "--build-seconds",
                "1",
                "--deploy-seconds",
                "1",
                "--state-dir",
            ])
            .arg(&state_dir)
            .args(extra)
            .env("RUST_LOG", "warn")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("run the shipgate binary");
        let output = Arc::new(Mutex::new(Vec::new()));
        let (tx, rx) = std::sync::mpsc::channel::<Option<String>>();
        for stream in [
            Box::new(child.stdout.take().unwrap()) as Box<dyn std::io::Read + Send>,
            Box::new(child.stderr.take().unwrap()),
        ] {
            let out = output.clone();
            let tx = tx.clone();
            std::thread::spawn(move || {
                for line in BufReader::new(stream).lines().map_while(Result::ok) {
                    out.lock().unwrap().push(line.clone());
                    let _ = tx.send(Some(line));
                }
                let _ = tx.send(None);
            });
        }
        let deadline = Instant::now() + Duration::from_secs(60);
        let mut closed = 0;
        let base = loop {
            match rx.recv_timeout(deadline.saturating_duration_since(Instant::now())) {
                Ok(Some(line)) => {
                    if let Some(rest) = line.trim().strip_prefix("API") {
                        break rest.split_whitespace().next().unwrap().to_string();
                    }
                    if line.contains("moto is not installed") {
                        let _ = child.wait();
                        if std::env::var("SHIPGATE_REQUIRE_MOTO").is_ok_and(|v| v == "1") {
                            panic!("moto is required (SHIPGATE_REQUIRE_MOTO=1): {line}");
                        }
                        shipgate_tests::say("skipped: moto not installed (run make test)");
                        return None;
                    }
                }
                Ok(None) => {
                    closed += 1;
                    if closed == 2 {
                        panic!("shipgate dev exited early: {:?}", output.lock().unwrap());
                    }
                }
                Err(_) => panic!(
                    "shipgate dev did not start in time: {:?}",
                    output.lock().unwrap()
                ),
            }
        };
        let env_text = std::fs::read_to_string(state_dir.join("dev.env")).expect("dev.env written");
        let env = env_text
            .lines()
            .filter(|l| !l.starts_with('#'))
            .filter_map(|l| l.split_once('='))
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        Some(DevSandbox {
            child: Some(child),
            base,
            env,
            state_dir,
            output,
        })
    }

    /// Wait (bounded) until `shipgate dev` has printed `needle`; answers everything printed.
    pub fn wait_printed(&self, needle: &str) -> String {
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let printed = self.printed();
            if printed.contains(needle) {
                return printed;
            }
            if Instant::now() > deadline {
                panic!("shipgate dev did not print {needle:?}: {printed}");
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// The `shipgate dev` process id.
    pub fn pid(&self) -> u32 {
        self.child.as_ref().map(|c| c.id()).unwrap_or(0)
    }

    /// Everything `shipgate dev` printed so far, one string.
    pub fn printed(&self) -> String {
        self.output.lock().unwrap().join("\n")
    }

    /// Wait (bounded) for `shipgate dev` to exit by itself; answers its exit status.
    pub fn wait_exit(&mut self, within: Duration) -> Option<std::process::ExitStatus> {
        let child = self.child.as_mut()?;
        let deadline = Instant::now() + within;
        while Instant::now() < deadline {
            if let Ok(Some(status)) = child.try_wait() {
                self.child = None;
                return Some(status);
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        None
    }

    /// Poll until the execution is in one of `statuses` (or fail with its history).
    pub async fn wait_for_any(&self, id: &str, statuses: &[&str]) -> Value {
        let deadline = Instant::now() + Duration::from_secs(90);
        loop {
            let e = self.show(id).await;
            if statuses.iter().any(|s| e["status"] == *s) {
                return e;
            }
            if Instant::now() > deadline {
                panic!(
                    "execution {id} did not reach any of {statuses:?}: {e:#}\nsandbox output: {:#?}",
                    self.output.lock().unwrap()
                );
            }
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
    }

    /// What an ECS service of the local AWS runs: (task definition ARN, image of `container`).
    pub async fn service_runs(
        &self,
        cluster: &str,
        service: &str,
        container: &str,
    ) -> (String, String) {
        let sdk = shipgate_sandbox::sdk_config(&self.aws_endpoint()).await;
        let ecs = aws_sdk_ecs::Client::new(&sdk);
        let svc = ecs
            .describe_services()
            .cluster(cluster)
            .services(service)
            .send()
            .await
            .unwrap();
        let td = svc.services()[0].task_definition().unwrap().to_string();
        let def = ecs
            .describe_task_definition()
            .task_definition(&td)
            .send()
            .await
            .unwrap();
        let image = def
            .task_definition()
            .unwrap()
            .container_definitions()
            .iter()
            .find(|c| c.name() == Some(container))
            .and_then(|c| c.image())
            .unwrap_or_default()
            .to_string();
        (td, image)
    }

    /// Poll until the service points at `task_definition` (or fail saying what it runs).
    pub async fn wait_service_on(&self, cluster: &str, service: &str, task_definition: &str) {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let (td, _) = self.service_runs(cluster, service, "app").await;
            if td == task_definition {
                return;
            }
            if Instant::now() > deadline {
                panic!(
                    "{cluster}/{service} runs {td}, not {task_definition}\nsandbox output: {:#?}",
                    self.output.lock().unwrap()
                );
            }
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
    }

    pub fn aws_endpoint(&self) -> String {
        self.env["AWS_ENDPOINT_URL"].clone()
    }

    /// Invoke `shipgate-control` through the Lambda Invoke API.
    pub async fn control(&self, command: Value) -> Value {
        reqwest::Client::new()
            .post(format!(
                "{}/2015-03-31/functions/shipgate-control/invocations",
                self.base
            ))
            .json(&command)
            .send()
            .await
            .expect("invoke")
            .json()
            .await
            .expect("json answer")
    }

    pub async fn show(&self, id: &str) -> Value {
        self.control(json!({"command": "show", "execution_id": id}))
            .await["execution"]
            .clone()
    }

    /// Poll until the execution reaches `status` (or fail with its history).
    pub async fn wait_for(&self, id: &str, status: &str) -> Value {
        let deadline = Instant::now() + Duration::from_secs(40);
        loop {
            let e = self.show(id).await;
            if e["status"] == status {
                return e;
            }
            if Instant::now() > deadline {
                panic!(
                    "execution {id} did not reach {status}: {e:#}\nsandbox output: {:#?}",
                    self.output.lock().unwrap()
                );
            }
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
    }

    pub async fn outbox(&self) -> Vec<Value> {
        reqwest::get(format!("{}/_dev/outbox", self.base))
            .await
            .unwrap()
            .json()
            .await
            .unwrap()
    }

    /// Wait for an outbox message whose subject contains `needle`.
    pub async fn message(&self, needle: &str) -> Value {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if let Some(m) = self
                .outbox()
                .await
                .into_iter()
                .find(|m| m["subject"].as_str().unwrap_or("").contains(needle))
            {
                return m;
            }
            if Instant::now() > deadline {
                panic!("no message about {needle:?} in {:#?}", self.outbox().await);
            }
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
    }

    /// Approve execution `id` of the demo pipeline as alice, through her personal link (the
    /// demo pipeline lists approvers: an unverified control command cannot approve).
    pub async fn approve_by_link(&self, id: &str) {
        let deadline = Instant::now() + Duration::from_secs(30);
        let link = loop {
            let found = self.outbox().await.into_iter().find_map(|m| {
                let mine = m["audience"] == "alice@example.com"
                    && m["message"].as_str().unwrap_or("").contains(id);
                m["links"].as_array().and_then(|l| {
                    l.iter()
                        .filter_map(|l| l.as_str())
                        .find(|l| mine && l.contains("/approvals/"))
                        .map(str::to_string)
                })
            });
            if let Some(link) = found {
                break link;
            }
            if Instant::now() > deadline {
                panic!(
                    "no approval link of {id} for alice in {:#?}",
                    self.outbox().await
                );
            }
            tokio::time::sleep(Duration::from_millis(250)).await;
        };
        let r = reqwest::Client::new()
            .post(&link)
            .form(&[("decision", "approve")])
            .send()
            .await
            .unwrap();
        let status = r.status().as_u16();
        assert_eq!(status, 200, "{}", r.text().await.unwrap_or_default());
    }

    /// A signed push with a fresh commit; answers the HTTP status and JSON.
    pub async fn push(&self, message: &str) -> (u16, Value) {
        self.push_to("shipgate-demo/hello", message).await
    }

    /// A signed push to GitHub repository `repo` with a fresh commit.
    pub async fn push_to(&self, repo: &str, message: &str) -> (u16, Value) {
        let sha = format!("{:040x}", ulid::Ulid::new().0 >> 8);
        let body = json!({
            "ref": "refs/heads/main",
            "before": "1e3c5a7b9d2f4e6a8c0b1d3f5a7c9e2b4d6f8a0c",
            "after": sha,
            "repository": {"full_name": repo},
            "pusher": {"name": "e2e"},
            "compare": format!("https://github.com/{repo}/compare/a...b"),
            "head_commit": {"id": sha, "message": message, "author": {"name": "E2E Test"}},
            "commits": [{"id": sha, "added": [], "removed": [], "modified": ["src/main.py"]}]
        })
        .to_string();
        let sig = shared::domain::github::sign_body(
            self.env["SHIPGATE_DEV_WEBHOOK_SECRET"].as_bytes(),
            body.as_bytes(),
        );
        let resp = reqwest::Client::new()
            .post(format!("{}/webhooks/github", self.base))
            .header("content-type", "application/json")
            .header("x-github-event", "push")
            .header("x-github-delivery", ulid::Ulid::new().to_string())
            .header("x-hub-signature-256", sig)
            .body(body)
            .send()
            .await
            .unwrap();
        let status = resp.status().as_u16();
        (status, resp.json().await.unwrap_or(Value::Null))
    }

    /// SIGTERM, then wait: answers the exit status.
    pub fn stop(&mut self) -> Option<std::process::ExitStatus> {
        let mut child = self.child.take()?;
        let _ = Command::new("kill")
            .arg("-TERM")
            .arg(child.id().to_string())
            .status();
        let deadline = Instant::now() + Duration::from_secs(15);
        loop {
            if let Ok(Some(status)) = child.try_wait() {
                return Some(status);
            }
            if Instant::now() > deadline {
                let _ = child.kill();
                return child.wait().ok();
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}

impl Drop for DevSandbox {
    fn drop(&mut self) {
        self.stop();
        let _ = std::fs::remove_dir_all(&self.state_dir);
    }
}
