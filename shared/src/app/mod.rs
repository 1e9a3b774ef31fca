//! Use cases, written against the ports only.
//!
//! Every state change goes through [`Services::apply`]: read, decide with the pure state machine,
//! conditional write on `(status, version)`; a lost race re-reads and re-decides. Only the writer
//! that won performs the transition's effects ([`Services::perform`]), so a repeated or concurrent
//! event never causes a second build, deploy or email.

pub mod approvals;
pub mod control;
pub mod events;
pub mod notices;
pub mod releases;
pub mod sources;
pub mod sweeper;

#[cfg(test)]
mod approval_key_tests;
#[cfg(test)]
mod build_output_tests;
#[cfg(test)]
mod flow_tests;
#[cfg(test)]
mod hostile_tests;
#[cfg(test)]
mod release_tests;
#[cfg(test)]
mod sweeper_tests;
#[cfg(test)]
mod test_support;

use std::collections::{HashMap, VecDeque};
use std::sync::Arc;

use chrono::{DateTime, Duration, Utc};
use tokio::sync::Mutex;
use tracing::{info, warn};

use crate::domain::{
    pending_effects, transition, Change, DeploymentRecord, DomainError, Effect, Environment, Event,
    Execution, ExecutionId, ExecutionMode, PipelineDefinition, Status, Transition,
    ValidationErrors,
};
use crate::ports::{
    BuildRequest, BuildRunner, Clock, Deployer, ExecutionStore, ImageRegistry, Notifier,
    SecretSource, SecretValue, ServiceError, StoreError,
};

/// How often a conditional write is retried after losing a race.
pub(crate) const MAX_CONFLICT_RETRIES: usize = 8;
/// A state that has not changed for this long may have lost its worker (a Lambda died between
/// the write and the effect); a redelivered event or the sweeper then resumes its effects.
pub const RESUME_AFTER: Duration = Duration::seconds(120);
/// GitHub redelivers for up to 3 days; webhook idempotency keys live longer than that.
pub const DELIVERY_KEY_TTL: Duration = Duration::days(8);
/// The actor recorded for changes made by shipgate itself.
pub const SYSTEM_ACTOR: &str = "shipgate";

/// Configuration every function reads from its environment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Settings {
    /// Base of approval links (`${public_url}/approvals/{token}`).
    pub public_url: String,
    /// Secrets Manager id of the GitHub webhook secret.
    pub webhook_secret_id: String,
    /// Secrets Manager id of the approval signing key.
    pub signing_key_id: String,
}

/// Errors of the use cases.
#[derive(Debug, thiserror::Error)]
pub enum AppError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("AWS call failed: {0}")]
    Service(#[from] ServiceError),
    #[error("{0}")]
    NotFound(String),
    #[error("{0}")]
    Invalid(String),
    #[error(transparent)]
    Validation(#[from] ValidationErrors),
    /// The execution is not in a state where this is possible.
    #[error("{0}")]
    Conflict(String),
    /// The approval window closed.
    #[error("{0}")]
    Gone(String),
    #[error("configuration: {0}")]
    Config(String),
}

impl AppError {
    /// Throttling, timeouts and 5xx: the caller (EventBridge, API Gateway client) should retry.
    pub fn is_retryable(&self) -> bool {
        match self {
            AppError::Store(e) => e.is_retryable(),
            AppError::Service(e) => e.is_retryable(),
            _ => false,
        }
    }

    /// A short machine-readable code.
    pub fn code(&self) -> &'static str {
        match self {
            AppError::Store(StoreError::Conflict(_)) | AppError::Conflict(_) => "conflict",
            AppError::Store(StoreError::Rejected(_)) => "invalid_argument",
            AppError::Store(_) | AppError::Service(_) => "unavailable",
            AppError::NotFound(_) => "not_found",
            AppError::Invalid(_) => "invalid_argument",
            AppError::Validation(_) => "invalid_pipeline",
            AppError::Gone(_) => "gone",
            AppError::Config(_) => "configuration",
        }
    }
}

/// Secrets read once per cold start and cached (a failed read is not cached).
pub struct CachedSecrets {
    source: Arc<dyn SecretSource>,
    cache: Mutex<HashMap<String, SecretValue>>,
}

impl CachedSecrets {
    pub fn new(source: Arc<dyn SecretSource>) -> CachedSecrets {
        CachedSecrets {
            source,
            cache: Mutex::new(HashMap::new()),
        }
    }

    pub async fn get(&self, id: &str) -> Result<SecretValue, ServiceError> {
        let mut cache = self.cache.lock().await;
        if let Some(v) = cache.get(id) {
            return Ok(v.clone());
        }
        let v = self.source.secret(id).await?;
        cache.insert(id.to_string(), v.clone());
        Ok(v)
    }
}

/// What a function is allowed to do (its IAM role), so that work it resumes for a dead worker is
/// never something it would be denied: a denied deploy would wrongly fail the execution.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Capabilities {
    pub start_build: bool,
    pub deploy_test: bool,
    pub deploy_prod: bool,
    pub request_approval: bool,
    pub notify: bool,
}

impl Capabilities {
    /// Everything (control, the local sandbox, tests).
    pub const ALL: Capabilities = Capabilities {
        start_build: true,
        deploy_test: true,
        deploy_prod: true,
        request_approval: true,
        notify: true,
    };
    /// webhook, codecommit: start builds.
    pub const SOURCES: Capabilities = Capabilities {
        start_build: true,
        deploy_test: false,
        deploy_prod: false,
        request_approval: false,
        notify: false,
    };
    /// build-events: deploy to test, send notices.
    pub const BUILD_EVENTS: Capabilities = Capabilities {
        start_build: false,
        deploy_test: true,
        deploy_prod: false,
        request_approval: false,
        notify: true,
    };
    /// deploy-events: request approvals, send notices.
    pub const DEPLOY_EVENTS: Capabilities = Capabilities {
        start_build: false,
        deploy_test: false,
        deploy_prod: false,
        request_approval: true,
        notify: true,
    };
    /// approvals: deploy to prod, send notices.
    pub const APPROVALS: Capabilities = Capabilities {
        start_build: false,
        deploy_test: false,
        deploy_prod: true,
        request_approval: false,
        notify: true,
    };
    /// sweeper: everything but production (a never-started prod deployment is failed instead,
    /// and `shipgate retry` starts it through `control`).
    pub const SWEEPER: Capabilities = Capabilities {
        start_build: true,
        deploy_test: true,
        deploy_prod: false,
        request_approval: true,
        notify: true,
    };

    pub fn allows(&self, effect: &Effect) -> bool {
        match effect {
            Effect::StartBuild => self.start_build,
            Effect::DeployTest => self.deploy_test,
            Effect::DeployProd => self.deploy_prod,
            Effect::RequestApproval => self.request_approval,
            Effect::Notify => self.notify,
            Effect::SupersedeOlder
            | Effect::RecordRevision(_)
            | Effect::RecordFailure(_)
            | Effect::MarkRolledBack => true,
        }
    }
}

/// Everything a use case may touch.
#[derive(Clone)]
pub struct Services {
    pub store: Arc<dyn ExecutionStore>,
    pub builds: Arc<dyn BuildRunner>,
    pub deployer: Arc<dyn Deployer>,
    pub registry: Arc<dyn ImageRegistry>,
    pub notifier: Arc<dyn Notifier>,
    pub secrets: Arc<CachedSecrets>,
    pub clock: Arc<dyn Clock>,
    pub settings: Arc<Settings>,
    /// What this function may do (see [`Capabilities`]).
    pub can: Capabilities,
}

/// What [`Services::apply`] did.
#[derive(Debug)]
pub enum Applied {
    /// The change was stored; its effects were performed.
    Done(Execution),
    /// The change does not apply (repeated, stale or out-of-order event): nothing changed.
    Ignored {
        reason: DomainError,
        current: Execution,
    },
}

impl Applied {
    pub fn execution(&self) -> &Execution {
        match self {
            Applied::Done(e) => e,
            Applied::Ignored { current, .. } => current,
        }
    }
}

impl Services {
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        store: Arc<dyn ExecutionStore>,
        builds: Arc<dyn BuildRunner>,
        deployer: Arc<dyn Deployer>,
        registry: Arc<dyn ImageRegistry>,
        notifier: Arc<dyn Notifier>,
        secrets: Arc<dyn SecretSource>,
        clock: Arc<dyn Clock>,
        settings: Settings,
    ) -> Services {
        Services {
            store,
            builds,
            deployer,
            registry,
            notifier,
            secrets: Arc::new(CachedSecrets::new(secrets)),
            clock,
            settings: Arc::new(settings),
            can: Capabilities::ALL,
        }
    }

    pub fn now(&self) -> DateTime<Utc> {
        self.clock.now()
    }

    pub async fn execution(&self, id: &ExecutionId) -> Result<Execution, AppError> {
        self.store
            .get_execution(id)
            .await?
            .ok_or_else(|| AppError::NotFound(format!("no execution {id}")))
    }

    pub async fn pipeline(&self, name: &str) -> Result<PipelineDefinition, AppError> {
        self.store
            .get_pipeline(name)
            .await?
            .map(|p| p.definition)
            .ok_or_else(|| AppError::NotFound(format!("no pipeline named {name:?}")))
    }

    /// Decide and store one change, re-reading after a lost race; then perform the effects of
    /// the stored transition. `make` builds the event from the current execution.
    pub async fn apply(
        &self,
        id: &ExecutionId,
        actor: &str,
        make: impl Fn(&Execution) -> Event + Send + Sync,
    ) -> Result<Applied, AppError> {
        let tr = match self.decide_and_store(id, actor, &make).await? {
            Ok(tr) => tr,
            Err(ignored) => return Ok(ignored),
        };
        let done = self.perform(tr).await?;
        Ok(Applied::Done(done))
    }

    async fn decide_and_store(
        &self,
        id: &ExecutionId,
        actor: &str,
        make: &(impl Fn(&Execution) -> Event + Send + Sync),
    ) -> Result<Result<Transition, Applied>, AppError> {
        for _ in 0..MAX_CONFLICT_RETRIES {
            let current = self.execution(id).await?;
            let change = Change::new(make(&current), self.now(), actor);
            let event_name = change.event.name();
            let tr = match transition(&current, change) {
                Ok(tr) => tr,
                Err(reason) => {
                    info!(execution_id = %id, status = %current.status, event = event_name, %reason, "change ignored");
                    return Ok(Err(Applied::Ignored { reason, current }));
                }
            };
            match self.store.save(&current, &tr.execution).await {
                Ok(()) => {
                    info!(execution_id = %id, pipeline = %current.pipeline, from = %current.status, to = %tr.execution.status, event = event_name, "transition stored");
                    return Ok(Ok(tr));
                }
                Err(StoreError::Conflict(now)) => {
                    info!(execution_id = %id, now = %now.status, "lost a race; re-reading");
                    continue;
                }
                Err(e) => return Err(e.into()),
            }
        }
        Err(AppError::Conflict(format!(
            "execution {id} kept changing; gave up after {MAX_CONFLICT_RETRIES} attempts"
        )))
    }

    /// Perform a stored transition's effects (and those of transitions they cause).
    /// Answers the execution as last stored.
    pub async fn perform(&self, tr: Transition) -> Result<Execution, AppError> {
        let mut latest = tr.execution;
        let mut queue: VecDeque<Effect> = tr.effects.into();
        if queue.is_empty() {
            return Ok(latest);
        }
        let pipeline = self.pipeline(&latest.pipeline).await?;
        while let Some(effect) = queue.pop_front() {
            if !self.can.allows(&effect) {
                // stays owed (pending_effects) for a function that is allowed to do it
                info!(execution_id = %latest.id, effect = ?effect, "not this function's to do; skipped");
                continue;
            }
            if let Some(next) = self.perform_one(&latest, &pipeline, &effect).await? {
                latest = next.execution;
                queue.extend(next.effects);
            } else if let Some(fresh) = self.store.get_execution(&latest.id).await? {
                latest = fresh;
            }
        }
        Ok(latest)
    }

    /// Restrict what this function does (see [`Capabilities`]).
    pub fn with_capabilities(mut self, can: Capabilities) -> Services {
        self.can = can;
        self
    }

    /// If the execution owes effects and has not changed for [`RESUME_AFTER`], perform them
    /// (its worker died) — if this function is allowed to do all of them; otherwise they are
    /// left to a function that is. Safe to call from any event handler or the sweeper.
    pub async fn resume_if_stale(&self, exec: &Execution) -> Result<Option<Execution>, AppError> {
        let owed = pending_effects(exec);
        if owed.is_empty() || self.now() - exec.updated_at < RESUME_AFTER {
            return Ok(None);
        }
        if let Some(denied) = owed.iter().find(|e| !self.can.allows(e)) {
            info!(execution_id = %exec.id, status = %exec.status, effect = ?denied, "owed work left to a function allowed to do it");
            return Ok(None);
        }
        warn!(execution_id = %exec.id, status = %exec.status, effects = ?owed, "resuming work a previous invocation did not finish");
        let done = self
            .perform(Transition {
                execution: exec.clone(),
                effects: owed,
            })
            .await?;
        Ok(Some(done))
    }

    /// One effect; answers a further stored transition if the effect caused one.
    async fn perform_one(
        &self,
        exec: &Execution,
        pipeline: &PipelineDefinition,
        effect: &Effect,
    ) -> Result<Option<Transition>, AppError> {
        match effect {
            Effect::StartBuild => self.start_build(exec, pipeline).await,
            Effect::DeployTest => self.deploy(exec, pipeline, Environment::Test).await,
            Effect::DeployProd => self.deploy(exec, pipeline, Environment::Prod).await,
            Effect::RequestApproval => approvals::request_approval(self, exec, pipeline).await,
            Effect::SupersedeOlder => {
                self.supersede(exec, pipeline).await?;
                Ok(None)
            }
            Effect::RecordRevision(env) => {
                releases::record_revision(self, exec, *env).await?;
                Ok(None)
            }
            Effect::RecordFailure(env) => {
                releases::record_failure(self, exec, *env).await?;
                Ok(None)
            }
            Effect::MarkRolledBack => {
                releases::mark_rolled_back(self, exec, pipeline).await?;
                Ok(None)
            }
            Effect::Notify => {
                notices::notify_status(self, exec, pipeline).await;
                Ok(None)
            }
        }
    }

    async fn start_build(
        &self,
        exec: &Execution,
        pipeline: &PipelineDefinition,
    ) -> Result<Option<Transition>, AppError> {
        let source_version = if exec.commit.sha.is_empty() {
            exec.commit.reference.clone()
        } else {
            exec.commit.sha.clone()
        };
        let request = BuildRequest {
            project: pipeline.build.project.clone(),
            source_version,
            environment: vec![
                ("IMAGE_TAG".into(), exec.image_tag()),
                ("SHIPGATE_EXECUTION_ID".into(), exec.id.to_string()),
                ("IMAGE_REPO_URI".into(), pipeline.image.repository.clone()),
            ],
            // one token per execution attempt: a retried call within 5 minutes starts nothing new
            idempotency_token: format!("{}-{}", exec.id, exec.attempt),
        };
        let event = match self.builds.start_build(&request).await {
            Ok(build_id) => Event::BuildStarted { build_id },
            Err(e) => {
                warn!(execution_id = %exec.id, error = %e, "StartBuild failed");
                Event::BuildStartFailed {
                    reason: format!("codebuild:StartBuild failed: {e}"),
                }
            }
        };
        self.follow_up(exec, event).await
    }

    async fn deploy(
        &self,
        exec: &Execution,
        pipeline: &PipelineDefinition,
        env: Environment,
    ) -> Result<Option<Transition>, AppError> {
        // checked at apply time too; a stored definition that predates the check never deploys
        if let Err(reason) = pipeline.check_distinct_targets() {
            let reason = format!("refused to deploy: prod {reason}");
            let event = Event::DeployStartFailed {
                environment: env,
                reason,
            };
            return self.follow_up(exec, event).await;
        }
        let Some(image) = &exec.image else {
            return Err(AppError::Conflict(format!(
                "execution {} has no image to deploy",
                exec.id
            )));
        };
        if env == Environment::Prod {
            // an approval of a newer release, or a rollback, may have come in between
            if let Some(by) = releases::gives_way_to(self, exec).await? {
                return self.follow_up(exec, Event::Superseded { by }).await;
            }
        }
        let target = pipeline.target(env);
        // a rollback points the service back at the revision it restores; everything else
        // registers a revision of the current one with the pinned image
        let started = match exec.restores_task_definition(env) {
            Some(td) => self.deployer.deploy_task_definition(target, td).await,
            None => self.deployer.deploy_image(target, &image.pinned()).await,
        };
        let event = match started {
            Ok(started) => Event::DeployStarted {
                deployment: DeploymentRecord {
                    environment: env,
                    cluster: target.cluster.clone(),
                    service: target.service.clone(),
                    task_definition: started.task_definition,
                    previous_task_definition: started.previous_task_definition,
                    deployment_id: started.deployment_id,
                    started_at: self.now(),
                },
            },
            Err(e) => {
                warn!(execution_id = %exec.id, environment = %env, error = %e, "deployment could not be started");
                Event::DeployStartFailed {
                    environment: env,
                    reason: format!("ECS deployment to {} failed to start: {e}", target.service),
                }
            }
        };
        self.follow_up(exec, event).await
    }

    /// Store the outcome of an effect as a transition (its effects are the caller's to run).
    pub(crate) async fn follow_up(
        &self,
        exec: &Execution,
        event: Event,
    ) -> Result<Option<Transition>, AppError> {
        match self
            .decide_and_store(&exec.id, SYSTEM_ACTOR, &move |_| event.clone())
            .await?
        {
            Ok(tr) => Ok(Some(tr)),
            Err(_) => Ok(None),
        }
    }

    /// Older executions still awaiting approval give way: in mode `superseded` when this one
    /// reaches approval (and if a newer one already awaits approval, this one gives way
    /// instead); in every mode when this one is approved, since releases reach production in
    /// push order and the older ones could no longer be approved.
    async fn supersede(
        &self,
        exec: &Execution,
        pipeline: &PipelineDefinition,
    ) -> Result<(), AppError> {
        let approved = exec.status == Status::DeployingProd;
        let reached_approval =
            exec.status == Status::AwaitingApproval && pipeline.mode == ExecutionMode::Superseded;
        if exec.trigger.is_rollback() || !(approved || reached_approval) {
            return Ok(());
        }
        let recent = self.store.list_executions(&exec.pipeline, 100).await?;
        let newer_waiting = recent.iter().find(|e| {
            e.id > exec.id && e.status == Status::AwaitingApproval && !e.trigger.is_rollback()
        });
        // `Superseded` has no effects, so storing the transition is all there is to do.
        if let (true, Some(newer)) = (reached_approval, newer_waiting) {
            self.follow_up(
                exec,
                Event::Superseded {
                    by: newer.id.clone(),
                },
            )
            .await?;
            return Ok(());
        }
        for older in recent
            .iter()
            .filter(|e| e.id < exec.id && e.status == Status::AwaitingApproval)
        {
            if self
                .follow_up(
                    older,
                    Event::Superseded {
                        by: exec.id.clone(),
                    },
                )
                .await?
                .is_some()
            {
                info!(execution_id = %older.id, by = %exec.id, "superseded");
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fake_world::FakeWorld;

    #[tokio::test]
    async fn secrets_are_read_once() {
        let w = FakeWorld::new();
        for _ in 0..5 {
            let v = w
                .services
                .secrets
                .get(crate::fakes::SIGNING_KEY_ID)
                .await
                .unwrap();
            assert_eq!(v.expose(), crate::fakes::SIGNING_KEY);
        }
        assert_eq!(w.secrets.reads(), 1);
    }

    #[tokio::test]
    async fn failed_secret_reads_are_not_cached() {
        let w = FakeWorld::new();
        w.secrets
            .faults
            .fail_next("secret", ServiceError::Throttled("slow down".into()));
        assert!(w
            .services
            .secrets
            .get(crate::fakes::SIGNING_KEY_ID)
            .await
            .is_err());
        assert!(w
            .services
            .secrets
            .get(crate::fakes::SIGNING_KEY_ID)
            .await
            .is_ok());
    }

    #[test]
    fn error_codes_and_retryability() {
        assert!(AppError::Service(ServiceError::Throttled("x".into())).is_retryable());
        assert!(!AppError::Invalid("x".into()).is_retryable());
        assert_eq!(AppError::Gone("x".into()).code(), "gone");
        assert_eq!(AppError::NotFound("x".into()).code(), "not_found");
    }
}
