//! The event pump: stands in for EventBridge. Builds started in the local AWS are "built" after
//! `--build-seconds` (an image is put into ECR under the build's tag) and a CodeBuild state change
//! is delivered to `build-events`; service deployments are "deployed" after `--deploy-seconds` and
//! an ECS deployment state change is delivered to `deploy-events`. `[fail-build]` or
//! `[fail-deploy]` in the commit message makes the pump deliver the failure instead. Approval
//! messages captured from the topic are printed and kept for `/_dev/outbox`.

use std::collections::{HashMap, HashSet};
use std::time::{Duration, Instant};

use serde_json::{json, Value};
use shared::domain::Execution;
use shared::local::{drain_outbox, ACCOUNT, REGION};
use tokio::sync::watch;
use tracing::warn;

use super::DevState;

const TICK: Duration = Duration::from_millis(300);

struct Pump {
    state: DevState,
    codebuild: aws_sdk_codebuild::Client,
    ecs: aws_sdk_ecs::Client,
    ecr: aws_sdk_ecr::Client,
    sqs: aws_sdk_sqs::Client,
    build_after: Duration,
    deploy_after: Duration,
    builds_seen: HashMap<String, Instant>,
    builds_done: HashSet<String>,
    /// Per (cluster, service): the task definition already accounted for.
    baseline: HashMap<(String, String), String>,
    /// Per (cluster, service): a service update waiting to be "deployed".
    pending: HashMap<(String, String), PendingDeployment>,
}

struct PendingDeployment {
    since: Instant,
    task_definition: String,
    deployment_id: String,
}

pub async fn run(
    state: DevState,
    build_after: Duration,
    deploy_after: Duration,
    sweep_every: Duration,
    mut stop: watch::Receiver<bool>,
) {
    let sdk = state.sdk.clone();
    let mut pump = Pump {
        codebuild: aws_sdk_codebuild::Client::new(&sdk),
        ecs: aws_sdk_ecs::Client::new(&sdk),
        ecr: aws_sdk_ecr::Client::new(&sdk),
        sqs: aws_sdk_sqs::Client::new(&sdk),
        state,
        build_after,
        deploy_after,
        builds_seen: HashMap::new(),
        builds_done: HashSet::new(),
        baseline: HashMap::new(),
        pending: HashMap::new(),
    };
    // the services' first deployments (from provisioning) are not shipgate's
    for s in pump.services().await {
        pump.baseline
            .insert((s.cluster, s.service), s.task_definition);
    }
    let mut last_sweep = Instant::now();
    loop {
        tokio::select! {
            _ = stop.wait_for(|s| *s) => return,
            _ = tokio::time::sleep(TICK) => {}
        }
        pump.builds().await;
        pump.deployments().await;
        pump.outbox().await;
        if last_sweep.elapsed() >= sweep_every {
            last_sweep = Instant::now();
            pump.sweep().await;
        }
    }
}

struct ServiceNow {
    cluster: String,
    service: String,
    task_definition: String,
    deployment_id: String,
}

fn fails(exec: Option<&Execution>, marker: &str) -> bool {
    exec.and_then(|e| e.commit.message.as_deref())
        .is_some_and(|m| m.contains(marker))
}

impl Pump {
    async fn execution_by_build(&self, build_id: &str) -> Option<Execution> {
        let id = self
            .state
            .services
            .store
            .find_by_build(build_id)
            .await
            .ok()??;
        self.state.services.store.get_execution(&id).await.ok()?
    }

    async fn builds(&mut self) {
        let Ok(out) = self.codebuild.list_builds().send().await else {
            return;
        };
        let now = Instant::now();
        for id in out.ids() {
            self.builds_seen.entry(id.clone()).or_insert(now);
        }
        let due: Vec<String> = self
            .builds_seen
            .iter()
            .filter(|(id, at)| {
                !self.builds_done.contains(*id) && now.duration_since(**at) >= self.build_after
            })
            .map(|(id, _)| id.clone())
            .collect();
        for build_id in due {
            self.builds_done.insert(build_id.clone());
            let exec = self.execution_by_build(&build_id).await;
            let failed = fails(exec.as_ref(), "[fail-build]");
            if !failed {
                if let Some(e) = &exec {
                    if let Err(err) = self.put_image(e).await {
                        warn!(build_id = %build_id, error = %err, "could not put the image into ECR");
                    }
                }
            }
            let status = if failed { "FAILED" } else { "SUCCEEDED" };
            let event = build_event(&build_id, status, &self.state.provisioned.sandbox.project);
            let out = build_events::handler::handle(&self.state.services, event).await;
            println!(
                "[pump] build {build_id} {status} → build-events: {}",
                summary(out.map_err(|e| e.to_string()))
            );
        }
    }

    /// What a build's `docker push` would leave in ECR: an image under the execution's tag.
    async fn put_image(&self, e: &Execution) -> Result<(), String> {
        let seed: String = e.id.as_str().bytes().map(|b| format!("{b:02x}")).collect();
        let digest = |s: &str| format!("sha256:{:0<64}", &s[..s.len().min(64)]);
        let manifest = json!({
            "schemaVersion": 2,
            "mediaType": "application/vnd.docker.distribution.manifest.v2+json",
            "config": {"mediaType": "application/vnd.docker.container.image.v1+json", "size": 1470, "digest": digest(&seed)},
            "layers": [{"mediaType": "application/vnd.docker.image.rootfs.diff.tar.gzip", "size": 2_811_478, "digest": digest(&seed.chars().rev().collect::<String>())}]
        });
        self.ecr
            .put_image()
            .repository_name(&self.state.provisioned.sandbox.repository)
            .image_manifest(manifest.to_string())
            .image_tag(e.image_tag())
            .send()
            .await
            .map(|_| ())
            .map_err(|err| aws_sdk_ecr::error::DisplayErrorContext(err).to_string())
    }

    /// What each sandbox service runs now. moto does not advance `deployments` on
    /// `UpdateService` and keeps one deployment id per service, so a service update is noticed
    /// as a change of the service's task definition.
    async fn services(&self) -> Vec<ServiceNow> {
        let sb = &self.state.provisioned.sandbox;
        let mut out = Vec::new();
        for (cluster, service) in [
            (&sb.test_cluster, &sb.test_service),
            (&sb.prod_cluster, &sb.prod_service),
        ] {
            let Ok(d) = self
                .ecs
                .describe_services()
                .cluster(cluster)
                .services(service)
                .send()
                .await
            else {
                continue;
            };
            for s in d.services() {
                let primary = s
                    .deployments()
                    .iter()
                    .find(|d| d.status() == Some("PRIMARY"))
                    .and_then(|d| d.id());
                if let (Some(td), Some(id)) = (s.task_definition(), primary) {
                    out.push(ServiceNow {
                        cluster: cluster.clone(),
                        service: service.clone(),
                        task_definition: td.to_string(),
                        deployment_id: id.to_string(),
                    });
                }
            }
        }
        out
    }

    async fn deployments(&mut self) {
        let now = Instant::now();
        for s in self.services().await {
            let key = (s.cluster.clone(), s.service.clone());
            let settled = self.baseline.get(&key) == Some(&s.task_definition);
            let already = self
                .pending
                .get(&key)
                .is_some_and(|p| p.task_definition == s.task_definition);
            if settled {
                self.pending.remove(&key);
            } else if !already {
                // a new update (or a newer one replacing a pending one) starts its clock
                self.pending.insert(
                    key,
                    PendingDeployment {
                        since: now,
                        task_definition: s.task_definition,
                        deployment_id: s.deployment_id,
                    },
                );
            }
        }
        let due: Vec<(String, String)> = self
            .pending
            .iter()
            .filter(|(_, p)| now.duration_since(p.since) >= self.deploy_after)
            .map(|(k, _)| k.clone())
            .collect();
        for key in due {
            let Some(p) = self.pending.remove(&key) else {
                continue;
            };
            self.baseline.insert(key.clone(), p.task_definition.clone());
            let (cluster, service) = key;
            let store = &self.state.services.store;
            let exec = match store.find_by_deployment(&p.deployment_id).await {
                Ok(Some(id)) => store.get_execution(&id).await.ok().flatten(),
                _ => None,
            };
            let failed = fails(exec.as_ref(), "[fail-deploy]");
            let name = if failed {
                "SERVICE_DEPLOYMENT_FAILED"
            } else {
                "SERVICE_DEPLOYMENT_COMPLETED"
            };
            let event = deployment_event(&p.deployment_id, name, &cluster, &service);
            let out = deploy_events::handler::handle(&self.state.services, event).await;
            println!(
                "[pump] {service} now on {} → {name} → deploy-events: {}",
                p.task_definition.rsplit('/').next().unwrap_or(""),
                summary(out.map_err(|e| e.to_string()))
            );
        }
    }

    /// What the EventBridge schedule does in AWS: one sweeper run.
    async fn sweep(&self) {
        match sweeper::handler::handle(
            &self.state.services,
            json!({"detail-type": "Scheduled Event"}),
        )
        .await
        {
            Ok(report) => {
                let busy = [
                    "expired",
                    "builds_reconciled",
                    "deployments_reconciled",
                    "resumed",
                    "images_deleted",
                ]
                .iter()
                .any(|k| report[*k].as_u64().unwrap_or(0) > 0);
                if busy {
                    println!("[pump] sweeper: {report}");
                }
            }
            Err(e) => println!("[pump] sweeper failed: {e}"),
        }
    }

    async fn outbox(&mut self) {
        let Ok(messages) = drain_outbox(&self.sqs, &self.state.provisioned.outbox_queue_url).await
        else {
            return;
        };
        for m in messages {
            println!("\n──── message on the approval topic ─────────────────────────────");
            println!("Subject: {}\n", m.subject);
            println!("{}", m.message.trim_end());
            println!("─────────────────────────────────────────────────────────────────\n");
            if let Ok(mut outbox) = self.state.outbox.lock() {
                outbox.push(m);
            }
        }
    }
}

fn summary(out: Result<Value, String>) -> String {
    match out {
        Ok(v) => match v["status"].as_str() {
            Some("applied") => format!(
                "{} is now {}",
                v["execution_id"].as_str().unwrap_or("?"),
                v["execution_status"].as_str().unwrap_or("?")
            ),
            _ => v.to_string(),
        },
        Err(e) => format!("error: {e}"),
    }
}

/// The event EventBridge delivers for a CodeBuild build state change.
fn build_event(build_id: &str, status: &str, project: &str) -> Value {
    let arn = format!("arn:aws:codebuild:{REGION}:{ACCOUNT}:build/{build_id}");
    let failed = status == "FAILED";
    let mut phases = vec![
        json!({"phase-type": "SUBMITTED", "phase-status": "SUCCEEDED"}),
        json!({"phase-type": "PROVISIONING", "phase-status": "SUCCEEDED"}),
        json!({"phase-type": "PRE_BUILD", "phase-status": "SUCCEEDED"}),
    ];
    phases.push(if failed {
        json!({"phase-type": "BUILD", "phase-status": "FAILED", "phase-context": ["COMMAND_EXECUTION_ERROR: Error while executing command: make test. Reason: exit status 2 (simulated by [fail-build])"]})
    } else {
        json!({"phase-type": "BUILD", "phase-status": "SUCCEEDED"})
    });
    phases.push(json!({"phase-type": "COMPLETED"}));
    json!({
        "version": "0",
        "id": ulid::Ulid::new().to_string(),
        "detail-type": "CodeBuild Build State Change",
        "source": "aws.codebuild",
        "account": ACCOUNT,
        "time": chrono::Utc::now().to_rfc3339(),
        "region": REGION,
        "resources": [arn],
        "detail": {
            "build-status": status,
            "project-name": project,
            "build-id": arn,
            "current-phase": "COMPLETED",
            "current-phase-context": "[: ]",
            "version": "1",
            "additional-information": {
                "build-complete": true,
                "logs": {"deep-link": format!("https://console.aws.amazon.com/cloudwatch/home?region={REGION}#logEvent:group=/aws/codebuild/{project}")},
                "phases": phases
            }
        }
    })
}

/// The event EventBridge delivers for an ECS service deployment state change.
fn deployment_event(deployment_id: &str, name: &str, cluster: &str, service: &str) -> Value {
    let failed = name.ends_with("FAILED");
    json!({
        "version": "0",
        "id": ulid::Ulid::new().to_string(),
        "detail-type": "ECS Deployment State Change",
        "source": "aws.ecs",
        "account": ACCOUNT,
        "time": chrono::Utc::now().to_rfc3339(),
        "region": REGION,
        "resources": [format!("arn:aws:ecs:{REGION}:{ACCOUNT}:service/{cluster}/{service}")],
        "detail": {
            "eventType": if failed { "ERROR" } else { "INFO" },
            "eventName": name,
            "deploymentId": deployment_id,
            "updatedAt": chrono::Utc::now().to_rfc3339(),
            "reason": if failed {
                format!("ECS deployment circuit breaker: tasks failed to start; rolled back (simulated by [fail-deploy]) ({deployment_id})")
            } else {
                format!("ECS deployment {deployment_id} completed.")
            }
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pump_events_decode() {
        let b = shared::domain::aws_events::decode_build_state(&build_event(
            "hello-build:1",
            "FAILED",
            "hello-build",
        ))
        .unwrap();
        assert_eq!(b.build_id, "hello-build:1");
        assert!(b.reason.unwrap().contains("[fail-build]"));
        let d = shared::domain::aws_events::decode_deployment_state(&deployment_event(
            "ecs-svc/1",
            "SERVICE_DEPLOYMENT_COMPLETED",
            "c",
            "s",
        ))
        .unwrap();
        assert_eq!(d.deployment_id, "ecs-svc/1");
    }
}
