//! The engine: every state change of an execution, and every effect it causes.
//!
//! [`Services::apply`] reads, decides with the pure state machine, and stores with a conditional
//! write on `(status, version)`; a lost race re-reads and re-decides. Only the writer that won
//! performs the transition's effects ([`Services::perform`]), so a repeated or concurrent event
//! never causes a second build, deploy or email. Every effect performer lives here; the use-case
//! modules decide *what* to apply, and [`notices`](super::notices) only builds texts.

use std::collections::{HashMap, VecDeque};
use std::sync::Arc;

use chrono::{DateTime, Utc};
use tracing::{error, info, warn};

use super::{
    approvals, metrics, notices, releases, verification, AppError, CachedSecrets, Settings,
    MAX_CONFLICT_RETRIES, RESUME_AFTER, SYSTEM_ACTOR,
};
use crate::domain::feedback;
use crate::domain::{
    pending_effects, transition, Change, DeploymentRecord, DomainError, Effect, Environment, Event,
    Execution, ExecutionId, ExecutionMode, PipelineDefinition, Status, Transition,
};
use crate::ports::{
    AlarmReader, BuildRequest, BuildRunner, Clock, CommitFeedback, Deployer, ExecutionStore,
    HealthProbe, ImageRegistry, Notice, Notifier, SecretSource, StoreError,
};

/// What a function is allowed to do (its IAM role), so that work it resumes for a dead worker is
/// never something it would be denied: a denied deploy would wrongly fail the execution.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Capabilities {
    pub start_build: bool,
    pub deploy_test: bool,
    pub deploy_prod: bool,
    pub request_approval: bool,
    pub notify: bool,
    /// Report transitions to GitHub (commit statuses, deployments).
    pub feedback: bool,
    /// Verified promotion: HTTP checks of deployed services, alarm states during a bake.
    pub verify: bool,
    /// The automatic rollback of production after its verification failed: pointing the prod
    /// service back at an earlier, already registered revision (ecs:UpdateService only).
    pub roll_back_prod: bool,
    /// Start the smoke test build of a test verification (codebuild:StartBuild on the smoke
    /// projects only, `SmokeProjectNamePrefix` in the template).
    pub start_smoke: bool,
}

impl Capabilities {
    /// Everything (control, tests). Each function's set is its profile in [`crate::wiring`].
    pub const ALL: Capabilities = Capabilities {
        start_build: true,
        deploy_test: true,
        deploy_prod: true,
        request_approval: true,
        notify: true,
        feedback: true,
        verify: true,
        roll_back_prod: true,
        start_smoke: true,
    };

    pub fn allows(&self, effect: &Effect) -> bool {
        match effect {
            Effect::StartBuild => self.start_build,
            Effect::DeployTest => self.deploy_test,
            Effect::DeployProd => self.deploy_prod,
            Effect::RequestApproval => self.request_approval,
            Effect::Notify => self.notify,
            Effect::CommitFeedback { .. } => self.feedback,
            Effect::Verify(Environment::Test) => self.verify,
            // a failing production verification rolls production back: it runs only where
            // that may be done (deploy-events), never half in a function that could only pass it
            Effect::Verify(Environment::Prod) => self.verify && self.roll_back_prod,
            Effect::AutoRollback => self.roll_back_prod,
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
    /// GitHub commit statuses and deployments ([`Services::with_feedback`]; none by default).
    pub feedback: Arc<dyn CommitFeedback>,
    /// Outbound HTTP checks (verified promotion); `Unused` unless wired.
    pub probe: Arc<dyn HealthProbe>,
    /// CloudWatch alarm states (production bake); `Unused` unless wired.
    pub alarms: Arc<dyn AlarmReader>,
    pub secrets: Arc<CachedSecrets>,
    pub clock: Arc<dyn Clock>,
    pub settings: Arc<Settings>,
    /// What this function may do (see [`Capabilities`]).
    pub can: Capabilities,
    /// Checks callers' identity proofs (control: STS; every other function: none).
    pub callers: Arc<dyn crate::ports::CallerVerifier>,
    /// Pipeline definitions read during one invocation ([`Services::for_invocation`]); `None`:
    /// every lookup reads the store.
    pipelines: Option<Arc<std::sync::Mutex<HashMap<String, PipelineDefinition>>>>,
    /// Set for the one change whose push order was checked just before it was applied.
    push_order_checked: bool,
}

/// What deciding a change came to.
enum Decided {
    Stored(Transition),
    Ignored(Applied),
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
            feedback: Arc::new(crate::adapters::Unused),
            probe: Arc::new(crate::adapters::Unused),
            alarms: Arc::new(crate::adapters::Unused),
            secrets: Arc::new(CachedSecrets::new(secrets)),
            clock,
            settings: Arc::new(settings),
            can: Capabilities::ALL,
            callers: Arc::new(crate::ports::NoCallerVerifier),
            pipelines: None,
            push_order_checked: false,
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
        if let Some(known) = self.pipelines.as_ref().and_then(|c| {
            c.lock()
                .unwrap_or_else(|e| e.into_inner())
                .get(name)
                .cloned()
        }) {
            return Ok(known);
        }
        let definition = self
            .store
            .get_pipeline(name)
            .await?
            .map(|p| p.definition)
            .ok_or_else(|| AppError::NotFound(format!("no pipeline named {name:?}")))?;
        self.remember_pipeline(&definition);
        Ok(definition)
    }

    /// Keep a definition read otherwise (a listing) for the rest of this invocation.
    pub fn remember_pipeline(&self, definition: &PipelineDefinition) {
        if let Some(c) = &self.pipelines {
            c.lock()
                .unwrap_or_else(|e| e.into_inner())
                .insert(definition.name.clone(), definition.clone());
        }
    }

    /// The services for one invocation of a function: a pipeline definition is read from the
    /// store at most once during it (an invocation handles one event; a definition applied
    /// meanwhile takes effect with the next one).
    pub fn for_invocation(&self) -> Services {
        let mut s = self.clone();
        s.pipelines = Some(Arc::default());
        s.push_order_checked = false;
        s
    }

    /// For applying a change whose push order the caller has just checked: the production
    /// deployment it causes does not check again (see `releases::gives_way_to`).
    pub(crate) fn push_order_checked(&self) -> Services {
        let mut s = self.clone();
        s.push_order_checked = true;
        s
    }

    /// Decide and store one change, re-reading after a lost race; then perform the effects of
    /// the stored transition.
    pub async fn apply(
        &self,
        id: &ExecutionId,
        actor: &str,
        event: Event,
    ) -> Result<Applied, AppError> {
        let current = self.execution(id).await?;
        self.apply_to(current, actor, event).await
    }

    /// [`Services::apply`] from the execution as the caller last read it: no second read when
    /// it is current; a stale copy costs one retry (the lost write answers the stored item).
    pub async fn apply_to(
        &self,
        current: Execution,
        actor: &str,
        event: Event,
    ) -> Result<Applied, AppError> {
        match self.decide_and_store(current, actor, &event).await? {
            Decided::Stored(tr) => Ok(Applied::Done(self.perform(tr).await?)),
            Decided::Ignored(ignored) => Ok(ignored),
        }
    }

    async fn decide_and_store(
        &self,
        mut current: Execution,
        actor: &str,
        event: &Event,
    ) -> Result<Decided, AppError> {
        // a copy the caller read may be stale: before ignoring a change, check the stored one
        let mut fresh = false;
        for _ in 0..MAX_CONFLICT_RETRIES {
            let change = Change::new(event.clone(), self.now(), actor);
            let tr = match transition(&current, change) {
                Ok(tr) => tr,
                Err(reason) => {
                    if !fresh {
                        fresh = true;
                        let stored = self.execution(&current.id).await?;
                        if stored.version != current.version {
                            current = stored;
                            continue;
                        }
                    }
                    info!(execution_id = %current.id, status = %current.status, event = event.name(), %reason, "change ignored");
                    return Ok(Decided::Ignored(Applied::Ignored { reason, current }));
                }
            };
            match self.store.save(&current, &tr.execution).await {
                Ok(()) => {
                    info!(execution_id = %current.id, pipeline = %current.pipeline, from = %current.status, to = %tr.execution.status, event = event.name(), "transition stored");
                    let mut tr = tr;
                    // every way into SUCCEEDED is announced (e-mail and chat), whatever states
                    // led there
                    if tr.execution.status == Status::Succeeded
                        && current.status != Status::Succeeded
                        && !tr.effects.contains(&Effect::Notify)
                    {
                        tr.effects.push(Effect::Notify);
                    }
                    // only the write that won reports it: a repeated event lost above
                    if !feedback::updates(current.status, &tr.execution).is_empty() {
                        tr.effects.push(Effect::CommitFeedback {
                            from: current.status,
                            to: tr.execution.status,
                        });
                    }
                    metrics::on_stored(current.status, &tr.execution);
                    return Ok(Decided::Stored(tr));
                }
                Err(StoreError::Conflict(now)) => {
                    info!(execution_id = %current.id, now = %now.status, "lost a race; deciding again");
                    current = *now;
                    fresh = true;
                }
                Err(e) => return Err(e.into()),
            }
        }
        Err(AppError::Conflict(format!(
            "execution {} kept changing; gave up after {MAX_CONFLICT_RETRIES} attempts",
            current.id
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
        // read only for an effect that needs the definition (recording a revision does not)
        let mut pipeline: Option<PipelineDefinition> = None;
        while let Some(effect) = queue.pop_front() {
            if !self.can.allows(&effect) {
                // stays owed (pending_effects) for a function that is allowed to do it
                info!(execution_id = %latest.id, effect = ?effect, "not this function's to do; skipped");
                continue;
            }
            let next = match effect {
                Effect::RecordRevision(env) => {
                    releases::record_revision(self, &latest, env).await?;
                    None
                }
                Effect::RecordFailure(env) => {
                    releases::record_failure(self, &latest, env).await?;
                    None
                }
                other => {
                    if pipeline.is_none() {
                        pipeline = Some(self.pipeline(&latest.pipeline).await?);
                    }
                    match &pipeline {
                        Some(p) => self.perform_one(&latest, p, &other).await?,
                        None => None,
                    }
                }
            };
            // an effect that changed this execution answers the stored transition, so `latest`
            // stays current without reading it again
            if let Some(next) = next {
                latest = next.execution;
                queue.extend(next.effects);
            }
        }
        Ok(latest)
    }

    /// Check callers' identity proofs with `callers` (control).
    pub fn with_caller_verifier(
        mut self,
        callers: Arc<dyn crate::ports::CallerVerifier>,
    ) -> Services {
        self.callers = callers;
        self
    }

    /// Report transitions to GitHub through `feedback` (pipelines with a `[github]` table).
    pub fn with_feedback(mut self, feedback: Arc<dyn CommitFeedback>) -> Services {
        self.feedback = feedback;
        self
    }

    /// Wire the ports of verified promotion (HTTP checks, alarm states).
    pub fn with_verification(
        mut self,
        probe: Arc<dyn HealthProbe>,
        alarms: Arc<dyn AlarmReader>,
    ) -> Services {
        self.probe = probe;
        self.alarms = alarms;
        self
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
            Effect::RequestApproval => self.request_approval(exec, pipeline).await,
            Effect::SupersedeOlder => self.supersede(exec, pipeline).await,
            // performed by `perform` without the definition
            Effect::RecordRevision(_) | Effect::RecordFailure(_) => Ok(None),
            Effect::MarkRolledBack => {
                releases::mark_rolled_back(self, exec, pipeline).await?;
                Ok(None)
            }
            Effect::Notify => {
                self.notify(exec, pipeline).await;
                Ok(None)
            }
            Effect::CommitFeedback { from, to } => {
                super::feedback::report(self, exec, pipeline, *from, *to).await;
                Ok(None)
            }
            // boxed: keeps the future of every effect small (deep chains of effects in debug
            // builds would otherwise need a larger stack)
            Effect::Verify(env) => Box::pin(verification::run(self, exec, pipeline, *env)).await,
            Effect::AutoRollback => Box::pin(verification::auto_rollback(self, exec)).await,
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
        if env == Environment::Prod && !self.push_order_checked {
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
                    verify: pipeline.verify_of(env).is_some(),
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

    /// Publish the approval request of an execution that reached `AWAITING_APPROVAL`, once.
    async fn request_approval(
        &self,
        exec: &Execution,
        pipeline: &PipelineDefinition,
    ) -> Result<Option<Transition>, AppError> {
        let Some(approval) = exec.approval.as_ref() else {
            return Ok(None);
        };
        if exec.status != Status::AwaitingApproval || approval.message_id.is_some() {
            return Ok(None);
        }
        let topic = &pipeline.approval.topic_arn;
        let message_id = if pipeline.approval.approvers.is_empty() {
            let link = approvals::approval_link(self, exec).await?;
            let notice = notices::approval_request(pipeline, exec, &link, approval.expires_at);
            let notice = self.with_status_link(notice, pipeline).await;
            self.notifier.publish(topic, &notice).await?
        } else {
            // one message per approver, holding only their personal link (message attribute
            // `shipgate_audience` = their address; their subscription's filter policy). A Lambda
            // dying between two publishes publishes them all again on the retry (the request is
            // recorded sent only after the last): an approver may get their link twice, never
            // someone else's.
            let status_url = self.status_url(pipeline).await;
            let mut ids = Vec::with_capacity(pipeline.approval.approvers.len());
            for approver in &pipeline.approval.approvers {
                let link = approvals::personal_approval_link(self, exec, &approver.email).await?;
                let notice = notices::personal_approval_request(
                    pipeline,
                    exec,
                    &link,
                    approval.expires_at,
                    approver,
                );
                let notice = match &status_url {
                    Some(url) => notices::with_status_link(notice, url),
                    None => notice,
                };
                ids.push(self.notifier.publish(topic, &notice).await?);
            }
            ids.join(",")
        };
        info!(execution_id = %exec.id, %message_id, "approval request sent");
        self.follow_up(exec, Event::ApprovalRequested { message_id })
            .await
    }

    /// Send a status notice on the pipeline's notification topic. Best effort: a failure is
    /// logged (the state is already stored and visible through `shipgate status`).
    pub(crate) async fn notify(&self, exec: &Execution, pipeline: &PipelineDefinition) {
        let notice = notices::status_notice(pipeline, exec);
        let notice = self.with_status_link(notice, pipeline).await;
        match self
            .notifier
            .publish(pipeline.notification_topic(), &notice)
            .await
        {
            Ok(id) => {
                info!(execution_id = %exec.id, status = %exec.status, message_id = %id, "notice sent")
            }
            Err(e) => {
                error!(execution_id = %exec.id, status = %exec.status, error = %e, "notice could not be sent")
            }
        }
    }

    /// A notice with the pipeline's status page link; without it if the link cannot be signed
    /// (the notice matters more than the link).
    async fn with_status_link(&self, notice: Notice, pipeline: &PipelineDefinition) -> Notice {
        match self.status_url(pipeline).await {
            Some(url) => notices::with_status_link(notice, &url),
            None => notice,
        }
    }

    /// The pipeline's status page link for a notice (None if it cannot be signed).
    async fn status_url(&self, pipeline: &PipelineDefinition) -> Option<String> {
        let validity = crate::domain::status_token::NOTICE_LINK_VALIDITY;
        match super::status_page::status_page_link(self, &pipeline.name, validity).await {
            Ok((url, _)) => Some(url),
            Err(e) => {
                warn!(pipeline = %pipeline.name, error = %e, "status page link could not be signed");
                None
            }
        }
    }

    /// Store the outcome of an effect as a transition (its effects are the caller's to run).
    pub(crate) async fn follow_up(
        &self,
        exec: &Execution,
        event: Event,
    ) -> Result<Option<Transition>, AppError> {
        match self
            .decide_and_store(exec.clone(), SYSTEM_ACTOR, &event)
            .await?
        {
            Decided::Stored(tr) => Ok(Some(tr)),
            Decided::Ignored(_) => Ok(None),
        }
    }

    /// Superseding. When this execution reaches approval: it gives way itself if a newer one
    /// was already approved (it could never go to production after it) or, in mode
    /// `superseded`, already waits; otherwise, in mode `superseded`, older waiting ones give way
    /// to it. When it is approved in mode `queued`, older waiting ones give way (releases reach
    /// production in push order).
    async fn supersede(
        &self,
        exec: &Execution,
        pipeline: &PipelineDefinition,
    ) -> Result<Option<Transition>, AppError> {
        if exec.trigger.is_rollback() {
            return Ok(None);
        }
        let superseded_mode = pipeline.mode == ExecutionMode::Superseded;
        let reached_approval = exec.status == Status::AwaitingApproval;
        // approved: in mode queued, older waiting ones can no longer be approved (in mode
        // superseded they gave way when this one reached approval)
        let approved = exec.status == Status::DeployingProd && !superseded_mode;
        if !(reached_approval || approved) {
            return Ok(None);
        }
        let recent = self.store.list_executions(&exec.pipeline, 100).await?;
        if reached_approval {
            // a newer release already approved (or, in mode superseded, waiting): this one
            // could never go to production after it, so it gives way instead of asking
            let newer = recent.iter().find(|e| {
                e.id > exec.id
                    && !e.trigger.is_rollback()
                    && (matches!(e.status, Status::DeployingProd | Status::Succeeded)
                        || (superseded_mode && e.status == Status::AwaitingApproval))
            });
            // `Superseded` has no effects, so storing the transition is all there is to do.
            if let Some(newer) = newer {
                return self
                    .follow_up(
                        exec,
                        Event::Superseded {
                            by: newer.id.clone(),
                        },
                    )
                    .await;
            }
            if !superseded_mode {
                return Ok(None);
            }
        }
        for older in recent
            .iter()
            .filter(|e| e.id < exec.id && e.status == Status::AwaitingApproval)
        {
            if let Some(tr) = self
                .follow_up(
                    older,
                    Event::Superseded {
                        by: exec.id.clone(),
                    },
                )
                .await?
            {
                info!(execution_id = %older.id, by = %exec.id, "superseded");
                // its only effect is the GitHub report (performing would nest this effect)
                for effect in &tr.effects {
                    if let (Effect::CommitFeedback { from, to }, true) = (effect, self.can.feedback)
                    {
                        super::feedback::report(self, &tr.execution, pipeline, *from, *to).await;
                    }
                }
            }
        }
        Ok(None)
    }
}
