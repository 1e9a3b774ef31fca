//! The event pump: stands in for EventBridge, for every pipeline in the sandbox's table.
//!
//! - Builds started in the local CodeBuild are "built" after `--build-seconds` (an image is put
//!   into the pipeline's ECR repository under the execution's tag) and a CodeBuild state change is
//!   delivered to `build-events`. Builds of one pipeline finish in push order.
//! - Each ECS deployment of a pipeline's services (the launcher gives every UpdateService its own
//!   deployment id, as ECS does) is "deployed" after `--deploy-seconds`: its rollout is ended in
//!   the local ECS and a deployment state change naming that id is delivered to `deploy-events`.
//!   A deployment that a newer one replaced before it completed gets no event (ECS sends none);
//!   the pump at once does what the sweeper does for it in AWS (DescribeServices: no longer
//!   PRIMARY → SUPERSEDED).
//! - `[fail-build]` in the commit message fails the build; `[fail-deploy]` / `[fail-prod]` fail
//!   the test / production deployment as the ECS circuit breaker does: the rollout is FAILED,
//!   SERVICE_DEPLOYMENT_FAILED is delivered, and the service is rolled back to the task
//!   definition of its last completed deployment.
//! - Pipelines applied while the sandbox runs get their resources created when missing
//!   (`resources::ensure`).
//! - Messages captured from the topics are printed and kept for `/_dev/outbox`.

mod build_logs;
mod events;
mod rules;
mod smoke;
mod verify;

use shared::wiring::profiles;
use std::collections::{BTreeMap, HashMap, HashSet};
use std::time::{Duration, Instant};

use serde_json::{json, Value};
use shared::domain::{Environment, Execution, ExecutionId, PipelineDefinition};
use shipgate_sandbox::drain_outbox;
use tokio::sync::watch;
use tracing::warn;

use super::{resources, DevState};
use events::{build_event, deployment_event, summary};
use rules::{deliverable, fail_marker, fails, rollback_target, short_td, DeploymentNow};

const TICK: Duration = Duration::from_millis(300);
/// How long a build that finds no execution is held back before it is delivered as unknown.
const UNLINKED_GRACE: Duration = Duration::from_secs(3);
const PIPELINE_REFRESH: Duration = Duration::from_secs(2);

struct Pump {
    state: DevState,
    codebuild: aws_sdk_codebuild::Client,
    ecs: aws_sdk_ecs::Client,
    ecr: aws_sdk_ecr::Client,
    sqs: aws_sdk_sqs::Client,
    http: reqwest::Client,
    build_after: Duration,
    deploy_after: Duration,
    builds_seen: HashMap<String, Instant>,
    builds_done: HashSet<String>,
    /// The simulated builds' logs in the local CloudWatch Logs.
    build_logs: build_logs::BuildLogs,
    /// Pipelines by name, and the version whose resources were ensured.
    pipelines: BTreeMap<String, (u64, PipelineDefinition)>,
    pipelines_at: Option<Instant>,
    /// Every deployment seen in progress, by deployment id.
    deployments: HashMap<String, Tracked>,
    /// Events whose function answered an error, to deliver again (as Lambda retries an
    /// asynchronous invocation twice).
    retries: Vec<Retry>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Function {
    BuildEvents,
    DeployEvents,
}

struct Retry {
    at: Instant,
    attempt: u32,
    function: Function,
    event: Value,
}

const RETRIES: u32 = 2;
const RETRY_AFTER: Duration = Duration::from_secs(1);

struct Tracked {
    since: Instant,
    cluster: String,
    service: String,
    done: bool,
}

/// A service and its deployments, newest first.
#[derive(Debug, Clone)]
struct ServiceNow {
    cluster: String,
    service: String,
    deployments: Vec<DeploymentNow>,
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
        http: reqwest::Client::new(),
        state,
        build_after,
        deploy_after,
        builds_seen: HashMap::new(),
        builds_done: HashSet::new(),
        build_logs: build_logs::BuildLogs::new(&sdk),
        pipelines: BTreeMap::new(),
        pipelines_at: None,
        deployments: HashMap::new(),
        retries: Vec::new(),
    };
    let mut last_sweep = Instant::now();
    loop {
        tokio::select! {
            _ = stop.wait_for(|s| *s) => return,
            _ = tokio::time::sleep(TICK) => {}
        }
        pump.refresh_pipelines().await;
        pump.builds().await;
        pump.deployments().await;
        pump.retry().await;
        pump.outbox().await;
        if last_sweep.elapsed() >= sweep_every {
            last_sweep = Instant::now();
            pump.sweep().await;
        }
    }
}

impl Pump {
    async fn execution(&self, id: Option<ExecutionId>) -> Option<Execution> {
        self.state.services.store.get_execution(&id?).await.ok()?
    }

    /// Deliver an event to its function; an error schedules it again (at most `RETRIES` times).
    async fn deliver(&mut self, function: Function, event: Value, attempt: u32) -> String {
        let out = match function {
            Function::BuildEvents => {
                build_events::handler::handle(
                    &self.state.services_of(&profiles::BUILD_EVENTS),
                    event.clone(),
                )
                .await
            }
            Function::DeployEvents => {
                deploy_events::handler::handle(
                    &self.state.services_of(&profiles::DEPLOY_EVENTS),
                    event.clone(),
                )
                .await
            }
        };
        let failed = out.is_err();
        let mut said = summary(out.map_err(|e| e.to_string()));
        if failed && attempt < RETRIES {
            self.retries.push(Retry {
                at: Instant::now() + RETRY_AFTER,
                attempt: attempt + 1,
                function,
                event,
            });
            said.push_str(" (delivered again in 1 s)");
        }
        said
    }

    async fn retry(&mut self) {
        let now = Instant::now();
        let (due, later): (Vec<Retry>, Vec<Retry>) = std::mem::take(&mut self.retries)
            .into_iter()
            .partition(|r| r.at <= now);
        self.retries = later;
        for r in due {
            let what = r.event["detail-type"]
                .as_str()
                .unwrap_or("event")
                .to_string();
            let name = match r.function {
                Function::BuildEvents => "build-events",
                Function::DeployEvents => "deploy-events",
            };
            let said = self.deliver(r.function, r.event, r.attempt).await;
            println!(
                "[pump] {what} again (attempt {}) → {name}: {said}",
                r.attempt + 1
            );
        }
    }

    /// The pipelines in the table; resources of new ones (or new versions) are ensured.
    async fn refresh_pipelines(&mut self) {
        if self
            .pipelines_at
            .is_some_and(|at| at.elapsed() < PIPELINE_REFRESH)
        {
            return;
        }
        self.pipelines_at = Some(Instant::now());
        let Ok(stored) = self.state.services.store.list_pipelines().await else {
            return;
        };
        for p in stored {
            let name = p.definition.name.clone();
            if self
                .pipelines
                .get(&name)
                .is_some_and(|(v, _)| *v == p.version)
            {
                continue;
            }
            match resources::ensure(
                &self.state.sdk,
                &p.definition,
                &self.state.provisioned.outbox_queue_url,
            )
            .await
            {
                Ok(created) => super::print_created(&name, &created),
                // said once per version; the pump still watches what exists of it
                Err(e) => println!("[sandbox] pipeline {name}: cannot create its resources: {e}"),
            }
            self.pipelines.insert(name, (p.version, p.definition));
        }
    }

    fn pipeline(&self, name: &str) -> Option<&PipelineDefinition> {
        self.pipelines.get(name).map(|(_, p)| p)
    }

    async fn builds(&mut self) {
        let Ok(out) = self.codebuild.list_builds().send().await else {
            return;
        };
        let now = Instant::now();
        for id in out.ids() {
            if self.builds_seen.contains_key(id) {
                continue;
            }
            self.builds_seen.insert(id.clone(), now);
            let store = &self.state.services.store;
            let exec = self
                .execution(store.find_by_build(id).await.ok().flatten())
                .await;
            self.build_logs.started(id, exec.as_ref()).await;
        }
        let due_ids: Vec<String> = self
            .builds_seen
            .iter()
            .filter(|(id, at)| {
                !self.builds_done.contains(*id) && now.duration_since(**at) >= self.build_after
            })
            .map(|(id, _)| id.clone())
            .collect();
        if due_ids.is_empty() {
            return;
        }
        let store = &self.state.services.store;
        let mut due = Vec::new();
        let mut recent: HashMap<String, Vec<Execution>> = HashMap::new();
        for build_id in due_ids {
            let exec = self
                .execution(store.find_by_build(&build_id).await.ok().flatten())
                .await;
            if let Some(e) = &exec {
                if !recent.contains_key(&e.pipeline) {
                    let list = store
                        .list_executions(&e.pipeline, 100)
                        .await
                        .unwrap_or_default();
                    recent.insert(e.pipeline.clone(), list);
                }
            }
            due.push((build_id, exec));
        }
        let ready = deliverable(due, &recent, &self.builds_done, chrono::Utc::now());
        for (build_id, exec) in ready {
            // a smoke test build is linked to its execution right after StartBuild answered:
            // a build not (yet) linked waits a little before it counts as someone else's
            if exec.is_none()
                && self
                    .builds_seen
                    .get(&build_id)
                    .is_some_and(|at| at.elapsed() < self.build_after + UNLINKED_GRACE)
            {
                continue;
            }
            self.builds_done.insert(build_id.clone());
            // a verification's smoke test: `[smoke-fail]` / `[prod-smoke-fail]` fails it, no
            // image is pushed
            let smoke = exec
                .as_ref()
                .is_some_and(|e| shared::app::smoke::is_smoke_build(e, &build_id));
            if smoke {
                self.smoke_finished(&build_id, exec.as_ref()).await;
                continue;
            }
            let failed = fails(exec.as_ref(), "[fail-build]");
            if !failed {
                if let Some(e) = &exec {
                    if let Err(err) = self.put_image(e).await {
                        warn!(build_id = %build_id, error = %err, "could not put the image into ECR");
                    }
                }
            }
            self.build_logs
                .finished(&build_id, exec.as_ref(), failed)
                .await;
            let status = if failed { "FAILED" } else { "SUCCEEDED" };
            let project = build_id.split(':').next().unwrap_or(&build_id).to_string();
            let event = build_event(&build_id, status, &project);
            let said = self.deliver(Function::BuildEvents, event, 0).await;
            println!("[pump] build {build_id} {status} → build-events: {said}");
        }
    }

    /// What a build's `docker push` would leave in ECR: an image under the execution's tag, in
    /// the execution's pipeline's repository.
    async fn put_image(&self, e: &Execution) -> Result<(), String> {
        let repository = match self.pipeline(&e.pipeline) {
            Some(p) => p.image.repository_name().to_string(),
            None => match self.state.services.store.get_pipeline(&e.pipeline).await {
                Ok(Some(p)) => p.definition.image.repository_name().to_string(),
                _ => return Err(format!("pipeline {} not found", e.pipeline)),
            },
        };
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
            .repository_name(repository)
            .image_manifest(manifest.to_string())
            .image_tag(e.image_tag())
            .send()
            .await
            .map(|_| ())
            .map_err(|err| aws_sdk_ecr::error::DisplayErrorContext(err).to_string())
    }

    /// Every pipeline's test and prod services with their deployments.
    async fn services(&self) -> Vec<ServiceNow> {
        let mut by_cluster: BTreeMap<&str, Vec<&str>> = BTreeMap::new();
        for (_, p) in self.pipelines.values() {
            for t in [&p.test, &p.prod] {
                let list = by_cluster.entry(t.cluster.as_str()).or_default();
                if !list.contains(&t.service.as_str()) {
                    list.push(t.service.as_str());
                }
            }
        }
        let mut out = Vec::new();
        for (cluster, services) in by_cluster {
            for chunk in services.chunks(10) {
                let Ok(d) = self
                    .ecs
                    .describe_services()
                    .cluster(cluster)
                    .set_services(Some(chunk.iter().map(|s| s.to_string()).collect()))
                    .send()
                    .await
                else {
                    continue;
                };
                for s in d.services() {
                    let deployments = s
                        .deployments()
                        .iter()
                        .filter_map(|d| {
                            Some(DeploymentNow {
                                id: d.id()?.to_string(),
                                primary: d.status() == Some("PRIMARY"),
                                rollout: d
                                    .rollout_state()
                                    .map(|r| r.as_str().to_string())
                                    .unwrap_or_default(),
                                task_definition: d
                                    .task_definition()
                                    .unwrap_or_default()
                                    .to_string(),
                            })
                        })
                        .collect();
                    out.push(ServiceNow {
                        cluster: cluster.to_string(),
                        service: s.service_name().unwrap_or_default().to_string(),
                        deployments,
                    });
                }
            }
        }
        out
    }

    /// End a rollout in the local ECS (the launcher's `/_shipgate/ecs/rollout`).
    async fn end_rollout(
        &self,
        cluster: &str,
        service: &str,
        deployment_id: &str,
        state: &str,
        reason: &str,
    ) -> Result<(), String> {
        let url = format!(
            "{}/_shipgate/ecs/rollout",
            self.state.aws_endpoint.trim_end_matches('/')
        );
        let resp = self
            .http
            .post(url)
            .json(&json!({"cluster": cluster, "service": service, "deploymentId": deployment_id, "rolloutState": state, "reason": reason}))
            .send()
            .await
            .map_err(|e| e.to_string())?;
        if resp.status().is_success() {
            Ok(())
        } else {
            Err(format!(
                "{}: {}",
                resp.status(),
                resp.text().await.unwrap_or_default()
            ))
        }
    }

    async fn deployments(&mut self) {
        if self.pipelines.is_empty() {
            return;
        }
        let now = Instant::now();
        let services = self.services().await;
        for s in &services {
            for d in &s.deployments {
                if d.rollout == "IN_PROGRESS" && !self.deployments.contains_key(&d.id) {
                    self.deployments.insert(
                        d.id.clone(),
                        Tracked {
                            since: now,
                            cluster: s.cluster.clone(),
                            service: s.service.clone(),
                            done: false,
                        },
                    );
                }
            }
        }
        let mut due: Vec<(Instant, String)> = self
            .deployments
            .iter()
            .filter(|(_, t)| !t.done && now.duration_since(t.since) >= self.deploy_after)
            .map(|(id, t)| (t.since, id.clone()))
            .collect();
        due.sort();
        let mut replaced = Vec::new();
        for (_, id) in due {
            let Some(t) = self.deployments.get_mut(&id) else {
                continue;
            };
            let (cluster, service) = (t.cluster.clone(), t.service.clone());
            let Some(svc) = services
                .iter()
                .find(|s| s.cluster == cluster && s.service == service)
            else {
                // not described this tick (the local AWS did not answer): next tick
                continue;
            };
            t.done = true;
            let store = &self.state.services.store;
            let exec = self
                .execution(store.find_by_deployment(&id).await.ok().flatten())
                .await;
            let ours = svc.deployments.iter().find(|d| d.id == id);
            let primary = ours.is_some_and(|d| d.primary);
            let task_definition = ours.map(|d| d.task_definition.clone()).unwrap_or_default();
            let Some(exec) = exec else {
                // not shipgate's (a service's first deployment, a circuit-breaker rollback)
                if primary {
                    let _ = self
                        .end_rollout(&cluster, &service, &id, "COMPLETED", "")
                        .await;
                }
                continue;
            };
            if !primary {
                // ECS sends nothing for a deployment another one replaced
                println!(
                    "[pump] {service}: deployment {id} ({}) was replaced by a newer one before it completed",
                    short_td(&task_definition)
                );
                replaced.push(exec.id.clone());
                continue;
            }
            let env = exec.environment_of(&id).unwrap_or(Environment::Test);
            let marker = fail_marker(env);
            if fails(Some(&exec), marker) {
                let reason = format!(
                    "ECS deployment circuit breaker: tasks failed to start; rolling back (simulated by {marker}) ({id})"
                );
                if let Err(e) = self
                    .end_rollout(&cluster, &service, &id, "FAILED", &reason)
                    .await
                {
                    warn!(deployment_id = %id, error = %e, "could not fail the rollout");
                }
                let event = deployment_event(
                    &id,
                    "SERVICE_DEPLOYMENT_FAILED",
                    &cluster,
                    &service,
                    &reason,
                );
                let said = self.deliver(Function::DeployEvents, event, 0).await;
                println!(
                    "[pump] {service} on {} → SERVICE_DEPLOYMENT_FAILED → deploy-events: {said}",
                    short_td(&task_definition),
                );
                self.roll_back(svc, &id).await;
            } else {
                if let Err(e) = self
                    .end_rollout(&cluster, &service, &id, "COMPLETED", "")
                    .await
                {
                    warn!(deployment_id = %id, error = %e, "could not complete the rollout");
                }
                self.before_completion(&exec, env, &cluster, &service).await;
                let reason = format!("ECS deployment {id} completed.");
                let event = deployment_event(
                    &id,
                    "SERVICE_DEPLOYMENT_COMPLETED",
                    &cluster,
                    &service,
                    &reason,
                );
                let said = self.deliver(Function::DeployEvents, event, 0).await;
                println!(
                    "[pump] {service} now on {} → SERVICE_DEPLOYMENT_COMPLETED → deploy-events: {said}",
                    short_td(&task_definition),
                );
                self.print_checks(&exec).await;
            }
        }
        if !replaced.is_empty() {
            self.reconcile_replaced(&replaced).await;
        }
    }

    /// The circuit breaker's automatic rollback: the service goes back to the task definition of
    /// its last completed deployment.
    async fn roll_back(&self, svc: &ServiceNow, failed: &str) {
        let Some(target) = rollback_target(&svc.deployments, failed) else {
            println!("[pump] {}: nothing to roll back to", svc.service);
            return;
        };
        match self
            .ecs
            .update_service()
            .cluster(&svc.cluster)
            .service(&svc.service)
            .task_definition(target)
            .send()
            .await
        {
            Ok(_) => println!(
                "[pump] {}: circuit breaker rolled the service back to {}",
                svc.service,
                short_td(target)
            ),
            Err(e) => println!(
                "[pump] {}: rollback to {} failed: {}",
                svc.service,
                short_td(target),
                aws_sdk_ecs::error::DisplayErrorContext(e)
            ),
        }
    }

    /// What the sweeper does for a deployment whose events never come (in AWS after 10 minutes;
    /// here at once): DescribeServices, and a deployment that is no longer PRIMARY makes its
    /// execution SUPERSEDED.
    async fn reconcile_replaced(&self, executions: &[ExecutionId]) {
        let limits = shared::app::sweeper::SweepLimits {
            per_status: 100,
            build_stuck_after: chrono::Duration::days(3650),
            deploy_stuck_after: chrono::Duration::zero(),
            max_image_deletions: 0,
            prune_repositories: 0,
        };
        if let Err(e) =
            shared::app::sweeper::sweep(&self.state.services_of(&profiles::SWEEPER), &limits).await
        {
            println!("[pump] reconciling replaced deployments failed: {e}");
            return;
        }
        for id in executions {
            if let Some(e) = self.execution(Some(id.clone())).await {
                println!(
                    "[pump] sweeper (DescribeServices): {} is now {}",
                    e.id, e.status
                );
            }
        }
    }

    /// What the EventBridge schedule does in AWS: one sweeper run, and deploy-events' resume of
    /// production verifications (the schedule's second target).
    async fn sweep(&self) {
        match deploy_events::handler::handle(
            &self.state.services_of(&profiles::DEPLOY_EVENTS),
            json!({"detail-type": "Scheduled Event", "source": "aws.events", "detail": {}}),
        )
        .await
        {
            Ok(report) if report["resumed"].as_u64().unwrap_or(0) > 0 => {
                println!("[pump] deploy-events (schedule): {report}");
            }
            Ok(_) => {}
            Err(e) => println!("[pump] deploy-events (schedule) failed: {e}"),
        }
        match sweeper::handler::handle(
            &self.state.services_of(&profiles::SWEEPER),
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
            println!("For: {}", m.audience);
            println!("Subject: {}\n", m.subject);
            println!("{}", m.message.trim_end());
            println!("─────────────────────────────────────────────────────────────────\n");
            if let Ok(mut outbox) = self.state.outbox.lock() {
                outbox.push(m);
            }
        }
        // each demo approver's mailbox: what their filtered subscription received
        for mailbox in &self.state.provisioned.mailboxes {
            let Ok(messages) = drain_outbox(&self.sqs, &mailbox.queue_url).await else {
                continue;
            };
            if let Ok(mut all) = self.state.mailboxes.lock() {
                all.entry(mailbox.approver.clone())
                    .or_default()
                    .extend(messages);
            }
        }
    }
}
