//! In-memory fakes of every port, for tests. Each can be told to fail (throttle, 5xx, timeout,
//! conflict) so fault paths are testable. Behind the `test-util` feature.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, MutexGuard};

use async_trait::async_trait;
use chrono::{DateTime, Duration, TimeZone, Utc};

use crate::domain::{
    Environment, Execution, ExecutionId, PipelineDefinition, ServiceTarget, Source, Status,
};
use crate::ports::*;

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // a test that panicked while holding the lock must not poison the others
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// Scripted failures per operation name.
pub struct Faults<E> {
    queued: Mutex<HashMap<&'static str, VecDeque<E>>>,
    always: Mutex<HashMap<&'static str, E>>,
}

impl<E> Default for Faults<E> {
    fn default() -> Self {
        Faults {
            queued: Mutex::new(HashMap::new()),
            always: Mutex::new(HashMap::new()),
        }
    }
}

impl<E: Clone> Faults<E> {
    /// The next call of `op` fails with `err`.
    pub fn fail_next(&self, op: &'static str, err: E) {
        lock(&self.queued).entry(op).or_default().push_back(err);
    }
    /// The next `n` calls of `op` fail with `err`.
    pub fn fail_times(&self, op: &'static str, err: E, n: usize) {
        for _ in 0..n {
            self.fail_next(op, err.clone());
        }
    }
    /// Every call of `op` fails until [`Faults::heal`].
    pub fn fail_always(&self, op: &'static str, err: E) {
        lock(&self.always).insert(op, err);
    }
    pub fn heal(&self) {
        lock(&self.always).clear();
        lock(&self.queued).clear();
    }
    fn check(&self, op: &'static str) -> Result<(), E> {
        if let Some(e) = lock(&self.always).get(op) {
            return Err(e.clone());
        }
        match lock(&self.queued).get_mut(op).and_then(|q| q.pop_front()) {
            Some(e) => Err(e),
            None => Ok(()),
        }
    }
}

// ---------------------------------------------------------------------------------------------

#[derive(Default)]
struct StoreState {
    pipelines: BTreeMap<String, StoredPipeline>,
    /// Replaced versions per pipeline, oldest first.
    pipeline_history: HashMap<String, Vec<StoredPipeline>>,
    executions: BTreeMap<ExecutionId, Execution>,
    claims: HashMap<String, (String, DateTime<Utc>)>,
    revisions: HashMap<(String, Environment), Versioned<EnvironmentRevisions>>,
}

/// The execution store in memory.
#[derive(Default)]
pub struct InMemoryStore {
    state: Mutex<StoreState>,
    pub faults: Faults<StoreError>,
    writes: AtomicU64,
}

impl InMemoryStore {
    pub fn new() -> InMemoryStore {
        InMemoryStore::default()
    }
    /// Writes that changed state (for counting side effects).
    pub fn writes(&self) -> u64 {
        self.writes.load(Ordering::SeqCst)
    }
    pub fn executions(&self) -> Vec<Execution> {
        lock(&self.state).executions.values().cloned().collect()
    }
    /// Put an execution as-is (test set-up).
    pub fn insert(&self, e: Execution) {
        lock(&self.state).executions.insert(e.id.clone(), e);
    }
    /// Like the store's index on `Execution::awaited`: only the work an execution waits on
    /// finds it (the newest execution, should two wait on the same id).
    fn awaiting(&self, link: &crate::domain::Link) -> Option<ExecutionId> {
        lock(&self.state)
            .executions
            .values()
            .filter(|e| e.awaited().as_ref() == Some(link))
            .map(|e| e.id.clone())
            .max()
    }
    fn wrote(&self) {
        self.writes.fetch_add(1, Ordering::SeqCst);
    }
}

#[async_trait]
impl ExecutionStore for InMemoryStore {
    async fn put_pipeline_by(
        &self,
        definition: &PipelineDefinition,
        at: DateTime<Utc>,
        applied_by: &str,
    ) -> Result<PipelineWrite, StoreError> {
        self.faults.check("put_pipeline")?;
        let mut s = lock(&self.state);
        let previous = s.pipelines.get(&definition.name).cloned();
        let version = previous.as_ref().map_or(1, |p| p.version + 1);
        s.pipelines.insert(
            definition.name.clone(),
            StoredPipeline {
                definition: definition.clone(),
                version,
                applied_at: at,
                applied_by: Some(applied_by.to_string()),
            },
        );
        if let Some(p) = &previous {
            s.pipeline_history
                .entry(definition.name.clone())
                .or_default()
                .push(p.clone());
        }
        self.wrote();
        Ok(PipelineWrite {
            version,
            previous: previous.map(|p| p.definition),
        })
    }

    async fn pipeline_history(
        &self,
        name: &str,
        limit: usize,
    ) -> Result<Vec<StoredPipeline>, StoreError> {
        self.faults.check("pipeline_history")?;
        Ok(lock(&self.state)
            .pipeline_history
            .get(name)
            .map(|h| h.iter().rev().take(limit).cloned().collect())
            .unwrap_or_default())
    }

    async fn get_pipeline(&self, name: &str) -> Result<Option<StoredPipeline>, StoreError> {
        self.faults.check("get_pipeline")?;
        Ok(lock(&self.state).pipelines.get(name).cloned())
    }

    async fn list_pipelines(&self) -> Result<Vec<StoredPipeline>, StoreError> {
        self.faults.check("list_pipelines")?;
        Ok(lock(&self.state).pipelines.values().cloned().collect())
    }

    async fn list_pipelines_page(
        &self,
        after: Option<&str>,
        limit: usize,
    ) -> Result<Vec<StoredPipeline>, StoreError> {
        self.faults.check("list_pipelines")?;
        Ok(lock(&self.state)
            .pipelines
            .values()
            .filter(|p| after.is_none_or(|a| p.definition.name.as_str() > a))
            .take(limit)
            .cloned()
            .collect())
    }

    async fn pipelines_for_source(
        &self,
        source: &Source,
    ) -> Result<Vec<StoredPipeline>, StoreError> {
        self.faults.check("pipelines_for_source")?;
        let key = source.index_key();
        Ok(lock(&self.state)
            .pipelines
            .values()
            .filter(|p| p.definition.source.index_key() == key)
            .cloned()
            .collect())
    }

    async fn create_execution(
        &self,
        execution: &Execution,
        key: Option<&IdempotencyKey>,
    ) -> Result<Created, StoreError> {
        self.faults.check("create_execution")?;
        let mut s = lock(&self.state);
        if let Some(k) = key {
            if let Some((existing, _)) = s.claims.get(&k.key) {
                return Ok(Created::Duplicate(existing.parse().map_err(|_| {
                    StoreError::Corrupt {
                        key: k.key.clone(),
                        message: "claim value".into(),
                    }
                })?));
            }
            s.claims
                .insert(k.key.clone(), (execution.id.to_string(), k.expires_at));
        }
        drop(s);
        self.insert(execution.clone());
        self.wrote();
        Ok(Created::Created)
    }

    async fn get_execution(&self, id: &ExecutionId) -> Result<Option<Execution>, StoreError> {
        self.faults.check("get_execution")?;
        Ok(lock(&self.state).executions.get(id).cloned())
    }

    async fn list_executions(
        &self,
        pipeline: &str,
        limit: usize,
    ) -> Result<Vec<Execution>, StoreError> {
        self.faults.check("list_executions")?;
        Ok(lock(&self.state)
            .executions
            .values()
            .rev()
            .filter(|e| e.pipeline == pipeline)
            .take(limit)
            .cloned()
            .collect())
    }

    async fn list_by_status(
        &self,
        status: Status,
        limit: usize,
    ) -> Result<Vec<Execution>, StoreError> {
        self.faults.check("list_by_status")?;
        Ok(lock(&self.state)
            .executions
            .values()
            .filter(|e| e.status == status)
            .take(limit)
            .cloned()
            .collect())
    }

    async fn save(&self, previous: &Execution, next: &Execution) -> Result<(), StoreError> {
        self.faults.check("save")?;
        let mut s = lock(&self.state);
        let current = s
            .executions
            .get(&previous.id)
            .cloned()
            .ok_or_else(|| StoreError::NotFound(previous.id.to_string()))?;
        if current.version != previous.version || current.status != previous.status {
            return Err(StoreError::Conflict(Box::new(current)));
        }
        s.executions.insert(next.id.clone(), next.clone());
        self.wrote();
        Ok(())
    }

    async fn claim(&self, key: &IdempotencyKey, value: &str) -> Result<Claim, StoreError> {
        self.faults.check("claim")?;
        let mut s = lock(&self.state);
        if let Some((v, _)) = s.claims.get(&key.key) {
            return Ok(Claim::Existing(v.clone()));
        }
        s.claims
            .insert(key.key.clone(), (value.to_string(), key.expires_at));
        self.wrote();
        Ok(Claim::Claimed)
    }

    async fn find_by_build(&self, build_id: &str) -> Result<Option<ExecutionId>, StoreError> {
        self.faults.check("find_by_build")?;
        Ok(self.awaiting(&crate::domain::Link::Build(build_id.to_string())))
    }

    async fn find_by_deployment(
        &self,
        deployment_id: &str,
    ) -> Result<Option<ExecutionId>, StoreError> {
        self.faults.check("find_by_deployment")?;
        Ok(self.awaiting(&crate::domain::Link::Deployment(deployment_id.to_string())))
    }

    async fn get_revisions(
        &self,
        pipeline: &str,
        environment: Environment,
    ) -> Result<Option<Versioned<EnvironmentRevisions>>, StoreError> {
        self.faults.check("get_revisions")?;
        Ok(lock(&self.state)
            .revisions
            .get(&(pipeline.to_string(), environment))
            .cloned())
    }

    async fn put_revisions(
        &self,
        pipeline: &str,
        environment: Environment,
        revisions: &EnvironmentRevisions,
        expected: Option<u64>,
    ) -> Result<bool, StoreError> {
        self.faults.check("record_revision")?;
        let mut s = lock(&self.state);
        let key = (pipeline.to_string(), environment);
        let stored = s.revisions.get(&key).map(|v| v.version);
        if stored != expected {
            return Ok(false);
        }
        s.revisions.insert(
            key,
            Versioned {
                value: revisions.clone(),
                version: expected.unwrap_or(0) + 1,
            },
        );
        self.wrote();
        Ok(true)
    }
}

// ---------------------------------------------------------------------------------------------

/// CodeBuild in memory: records every StartBuild.
#[derive(Default)]
pub struct FakeBuilds {
    pub started: Mutex<Vec<BuildRequest>>,
    /// StopBuild calls, in order.
    pub stopped: Mutex<Vec<String>>,
    pub observations: Mutex<HashMap<String, BuildObservation>>,
    by_token: Mutex<HashMap<String, String>>,
    counter: AtomicU64,
    pub faults: Faults<ServiceError>,
}

impl FakeBuilds {
    /// StartBuild calls that created a build.
    pub fn started(&self) -> Vec<BuildRequest> {
        lock(&self.started).clone()
    }
    /// Set what `get_build` answers for a build.
    pub fn set_state(&self, build_id: &str, status: &str, reason: Option<&str>) {
        lock(&self.observations).insert(
            build_id.to_string(),
            BuildObservation {
                build_id: build_id.to_string(),
                status: status.to_string(),
                phase: Some("BUILD".into()),
                reason: reason.map(str::to_string),
                logs_link: None,
                resolved_source_version: None,
                exported_variables: Vec::new(),
            },
        );
    }
    /// Set what `get_build` answers for the commit a build resolved and the variables it exported.
    pub fn set_outputs(&self, build_id: &str, resolved: Option<&str>, exported: &[(&str, &str)]) {
        if let Some(o) = lock(&self.observations).get_mut(build_id) {
            o.resolved_source_version = resolved.map(str::to_string);
            o.exported_variables = exported
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect();
        }
    }
}

#[async_trait]
impl BuildRunner for FakeBuilds {
    async fn start_build(&self, request: &BuildRequest) -> Result<String, ServiceError> {
        self.faults.check("start_build")?;
        // like AWS, the same idempotency token answers the same build
        if let Some(id) = lock(&self.by_token).get(&request.idempotency_token) {
            return Ok(id.clone());
        }
        let n = self.counter.fetch_add(1, Ordering::SeqCst) + 1;
        let id = format!("{}:00000000-0000-0000-0000-{n:012}", request.project);
        lock(&self.started).push(request.clone());
        lock(&self.by_token).insert(request.idempotency_token.clone(), id.clone());
        self.set_state(&id, "IN_PROGRESS", None);
        Ok(id)
    }

    async fn get_build(&self, build_id: &str) -> Result<BuildObservation, ServiceError> {
        self.faults.check("get_build")?;
        lock(&self.observations)
            .get(build_id)
            .cloned()
            .ok_or_else(|| ServiceError::NotFound(format!("build {build_id}")))
    }

    async fn stop_build(&self, build_id: &str) -> Result<(), ServiceError> {
        self.faults.check("stop_build")?;
        lock(&self.stopped).push(build_id.to_string());
        // like CodeBuild: a running build ends STOPPED, an ended one keeps its status
        match lock(&self.observations).get_mut(build_id) {
            Some(o) if o.status == "IN_PROGRESS" => o.status = "STOPPED".into(),
            Some(_) => {}
            None => return Err(ServiceError::NotFound(format!("build {build_id}"))),
        }
        Ok(())
    }
}

// ---------------------------------------------------------------------------------------------

#[derive(Debug, Clone)]
struct FakeService {
    task_definition: String,
    containers: Vec<(String, String)>,
    primary_deployment: String,
}

/// ECS in memory: services with a task definition, every deployment recorded.
#[derive(Default)]
pub struct FakeDeployer {
    services: Mutex<HashMap<(String, String), FakeService>>,
    task_definitions: Mutex<HashMap<String, Vec<(String, String)>>>,
    /// (cluster, service, task definition, deployment id) in order.
    pub deployments: Mutex<Vec<(String, String, String, String)>>,
    pub states: Mutex<HashMap<String, DeploymentObservation>>,
    counter: AtomicU64,
    pub faults: Faults<ServiceError>,
}

impl FakeDeployer {
    /// A service whose `container` runs `image`.
    pub fn add_service(&self, target: &ServiceTarget, image: &str) {
        let td = format!(
            "arn:aws:ecs:eu-west-1:123456789012:task-definition/{}:1",
            target.service
        );
        let containers = vec![(target.container.clone(), image.to_string())];
        lock(&self.task_definitions).insert(td.clone(), containers.clone());
        lock(&self.services).insert(
            (target.cluster.clone(), target.service.clone()),
            FakeService {
                task_definition: td,
                containers,
                primary_deployment: "ecs-svc/0".into(),
            },
        );
    }

    pub fn deployments(&self) -> Vec<(String, String, String, String)> {
        lock(&self.deployments).clone()
    }

    /// Deployments started on one service.
    pub fn deployments_to(&self, service: &str) -> usize {
        lock(&self.deployments)
            .iter()
            .filter(|d| d.1 == service)
            .count()
    }

    /// The image a service's container runs now.
    pub fn image_of(&self, target: &ServiceTarget) -> Option<String> {
        lock(&self.services)
            .get(&(target.cluster.clone(), target.service.clone()))
            .and_then(|s| {
                s.containers
                    .iter()
                    .find(|(c, _)| *c == target.container)
                    .map(|(_, i)| i.clone())
            })
    }

    pub fn set_deployment_state(&self, deployment_id: &str, state: DeploymentObservation) {
        lock(&self.states).insert(deployment_id.to_string(), state);
    }

    fn point_at(
        &self,
        target: &ServiceTarget,
        task_definition: &str,
    ) -> Result<StartedDeployment, ServiceError> {
        let containers = lock(&self.task_definitions)
            .get(task_definition)
            .cloned()
            .ok_or_else(|| ServiceError::NotFound(format!("task definition {task_definition}")))?;
        let mut services = lock(&self.services);
        let svc = services
            .get_mut(&(target.cluster.clone(), target.service.clone()))
            .ok_or_else(|| ServiceError::NotFound(format!("service {}", target.service)))?;
        let previous = std::mem::replace(&mut svc.task_definition, task_definition.to_string());
        svc.containers = containers;
        let n = self.counter.fetch_add(1, Ordering::SeqCst) + 1;
        let deployment_id = format!("ecs-svc/{:019}", 1000 + n);
        svc.primary_deployment = deployment_id.clone();
        lock(&self.deployments).push((
            target.cluster.clone(),
            target.service.clone(),
            task_definition.to_string(),
            deployment_id.clone(),
        ));
        Ok(StartedDeployment {
            task_definition: task_definition.to_string(),
            previous_task_definition: Some(previous),
            deployment_id,
        })
    }
}

#[async_trait]
impl Deployer for FakeDeployer {
    async fn deploy_image(
        &self,
        target: &ServiceTarget,
        image: &str,
    ) -> Result<StartedDeployment, ServiceError> {
        self.faults.check("deploy_image")?;
        let current = {
            let services = lock(&self.services);
            services
                .get(&(target.cluster.clone(), target.service.clone()))
                .cloned()
                .ok_or_else(|| ServiceError::NotFound(format!("service {}", target.service)))?
        };
        if !current
            .containers
            .iter()
            .any(|(c, _)| *c == target.container)
        {
            return Err(ServiceError::Rejected(format!(
                "task definition has no container named {}",
                target.container
            )));
        }
        let containers: Vec<(String, String)> = current
            .containers
            .iter()
            .map(|(c, i)| {
                if *c == target.container {
                    (c.clone(), image.to_string())
                } else {
                    (c.clone(), i.clone())
                }
            })
            .collect();
        let revision = {
            let mut tds = lock(&self.task_definitions);
            let rev = tds.len() + 1;
            let td = format!(
                "arn:aws:ecs:eu-west-1:123456789012:task-definition/{}:{rev}",
                target.service
            );
            tds.insert(td.clone(), containers);
            td
        };
        self.point_at(target, &revision)
    }

    async fn deploy_task_definition(
        &self,
        target: &ServiceTarget,
        task_definition: &str,
    ) -> Result<StartedDeployment, ServiceError> {
        self.faults.check("deploy_task_definition")?;
        self.point_at(target, task_definition)
    }

    async fn service_state(&self, target: &ServiceTarget) -> Result<ServiceState, ServiceError> {
        self.faults.check("service_state")?;
        let services = lock(&self.services);
        let svc = services
            .get(&(target.cluster.clone(), target.service.clone()))
            .ok_or_else(|| ServiceError::NotFound(format!("service {}", target.service)))?;
        Ok(ServiceState {
            task_definition: svc.task_definition.clone(),
            image: svc
                .containers
                .iter()
                .find(|(c, _)| *c == target.container)
                .map(|(_, i)| i.clone()),
        })
    }

    async fn deployment_state(
        &self,
        target: &ServiceTarget,
        deployment_id: &str,
    ) -> Result<DeploymentObservation, ServiceError> {
        self.faults.check("deployment_state")?;
        if let Some(s) = lock(&self.states).get(deployment_id) {
            return Ok(s.clone());
        }
        let services = lock(&self.services);
        match services.get(&(target.cluster.clone(), target.service.clone())) {
            Some(s) if s.primary_deployment == deployment_id => {
                Ok(DeploymentObservation::InProgress)
            }
            Some(_) => Ok(DeploymentObservation::Replaced),
            None => Ok(DeploymentObservation::Unknown),
        }
    }
}

// ---------------------------------------------------------------------------------------------

/// ECR in memory.
#[derive(Default)]
pub struct FakeRegistry {
    images: Mutex<HashMap<String, Vec<ImageDetail>>>,
    pub deleted: Mutex<Vec<String>>,
    pub faults: Faults<ServiceError>,
}

impl FakeRegistry {
    /// Push an image (tag moves to this digest).
    pub fn push(&self, repository: &str, tag: &str, digest: &str, pushed_at: DateTime<Utc>) {
        let mut images = lock(&self.images);
        let repo = images.entry(repository.to_string()).or_default();
        for i in repo.iter_mut() {
            i.tags.retain(|t| t != tag);
        }
        match repo.iter_mut().find(|i| i.digest == digest) {
            Some(i) => i.tags.push(tag.to_string()),
            None => repo.push(ImageDetail {
                digest: digest.to_string(),
                tags: vec![tag.to_string()],
                pushed_at: Some(pushed_at),
                size_bytes: Some(50_000_000),
            }),
        }
    }
}

impl FakeRegistry {
    /// The images of a repository, without going through the port.
    pub fn list_images_now(&self, repository: &str) -> Vec<ImageDetail> {
        lock(&self.images)
            .get(repository)
            .cloned()
            .unwrap_or_default()
    }

    /// Change when an image was pushed (to make it old or new).
    pub fn set_pushed_at(&self, repository: &str, digest: &str, at: DateTime<Utc>) {
        if let Some(repo) = lock(&self.images).get_mut(repository) {
            for i in repo.iter_mut().filter(|i| i.digest == digest) {
                i.pushed_at = Some(at);
            }
        }
    }
}

#[async_trait]
impl ImageRegistry for FakeRegistry {
    async fn find_image(
        &self,
        repository: &str,
        tag: &str,
    ) -> Result<Option<ImageDetail>, ServiceError> {
        self.faults.check("find_image")?;
        Ok(lock(&self.images)
            .get(repository)
            .and_then(|r| r.iter().find(|i| i.tags.iter().any(|t| t == tag)).cloned()))
    }

    async fn find_digest(
        &self,
        repository: &str,
        digest: &str,
    ) -> Result<Option<ImageDetail>, ServiceError> {
        self.faults.check("find_digest")?;
        Ok(lock(&self.images)
            .get(repository)
            .and_then(|r| r.iter().find(|i| i.digest == digest).cloned()))
    }

    async fn list_images(&self, repository: &str) -> Result<Vec<ImageDetail>, ServiceError> {
        self.faults.check("list_images")?;
        Ok(lock(&self.images)
            .get(repository)
            .cloned()
            .unwrap_or_default())
    }

    async fn delete_images(
        &self,
        repository: &str,
        digests: &[String],
    ) -> Result<Vec<String>, ServiceError> {
        self.faults.check("delete_images")?;
        let mut images = lock(&self.images);
        let repo = images.entry(repository.to_string()).or_default();
        let before: Vec<String> = repo.iter().map(|i| i.digest.clone()).collect();
        repo.retain(|i| !digests.contains(&i.digest));
        let gone: Vec<String> = before.into_iter().filter(|d| digests.contains(d)).collect();
        lock(&self.deleted).extend(gone.iter().cloned());
        Ok(gone)
    }
}

// ---------------------------------------------------------------------------------------------

/// SNS in memory: every published notice, in order.
#[derive(Default)]
pub struct FakeNotifier {
    pub sent: Mutex<Vec<(String, Notice)>>,
    pub faults: Faults<ServiceError>,
}

impl FakeNotifier {
    pub fn sent(&self) -> Vec<(String, Notice)> {
        lock(&self.sent).clone()
    }
    /// Notices whose subject contains `needle`.
    pub fn count(&self, needle: &str) -> usize {
        lock(&self.sent)
            .iter()
            .filter(|(_, n)| n.subject.contains(needle))
            .count()
    }
}

#[async_trait]
impl Notifier for FakeNotifier {
    async fn publish(&self, topic_arn: &str, notice: &Notice) -> Result<String, ServiceError> {
        self.faults.check("publish")?;
        let mut sent = lock(&self.sent);
        sent.push((topic_arn.to_string(), notice.clone()));
        Ok(format!("msg-{}", sent.len()))
    }
}

/// One call GitHub received (see [`FakeGitHub`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum GitHubCall {
    Status {
        sha: String,
        context: String,
        state: crate::domain::feedback::CommitState,
        description: String,
        target_url: Option<String>,
    },
    Deployment {
        sha: String,
        environment: String,
        task: String,
        state: crate::domain::feedback::DeploymentState,
        log_url: Option<String>,
        environment_url: Option<String>,
    },
}

/// GitHub's REST API in memory: every accepted call in order, the tokens it was called with,
/// and the deployments created (one per task and environment).
#[derive(Default)]
pub struct FakeGitHub {
    pub calls: Mutex<Vec<GitHubCall>>,
    pub tokens: Mutex<Vec<String>>,
    /// Deployments created: (repository, task, environment).
    pub created: Mutex<Vec<(String, String, String)>>,
    pub faults: Faults<FeedbackError>,
}

impl FakeGitHub {
    pub fn calls(&self) -> Vec<GitHubCall> {
        lock(&self.calls).clone()
    }
    /// `(context or "deployment/<env>", state)` of every call, in order.
    pub fn summary(&self) -> Vec<(String, String)> {
        self.calls()
            .into_iter()
            .map(|c| match c {
                GitHubCall::Status { context, state, .. } => (context, format!("{state:?}")),
                GitHubCall::Deployment {
                    environment, state, ..
                } => (format!("deployment/{environment}"), format!("{state:?}")),
            })
            .collect()
    }
}

#[async_trait]
impl CommitFeedback for FakeGitHub {
    async fn commit_status(
        &self,
        _repo: &GitHubRepository,
        token: &SecretValue,
        request: &CommitStatusRequest,
    ) -> Result<(), FeedbackError> {
        self.faults.check("commit_status")?;
        lock(&self.tokens).push(token.expose().to_string());
        lock(&self.calls).push(GitHubCall::Status {
            sha: request.sha.clone(),
            context: request.context.clone(),
            state: request.state,
            description: request.description.clone(),
            target_url: request.target_url.clone(),
        });
        Ok(())
    }
    async fn deployment_status(
        &self,
        repo: &GitHubRepository,
        token: &SecretValue,
        deployment: &DeploymentRequest,
        status: &DeploymentStatusRequest,
    ) -> Result<(), FeedbackError> {
        self.faults.check("deployment_status")?;
        lock(&self.tokens).push(token.expose().to_string());
        let key = (
            repo.repository.clone(),
            deployment.task.clone(),
            deployment.environment.clone(),
        );
        let mut created = lock(&self.created);
        if !created.contains(&key) {
            created.push(key);
        }
        lock(&self.calls).push(GitHubCall::Deployment {
            sha: deployment.sha.clone(),
            environment: deployment.environment.clone(),
            task: deployment.task.clone(),
            state: status.state,
            log_url: status.log_url.clone(),
            environment_url: status.environment_url.clone(),
        });
        Ok(())
    }
}

/// Secrets Manager in memory; counts reads (to prove caching).
#[derive(Default)]
pub struct FakeSecrets {
    values: Mutex<HashMap<String, String>>,
    reads: AtomicU64,
    pub faults: Faults<ServiceError>,
}

impl FakeSecrets {
    pub fn with(pairs: &[(&str, &str)]) -> FakeSecrets {
        let s = FakeSecrets::default();
        for (k, v) in pairs {
            lock(&s.values).insert(k.to_string(), v.to_string());
        }
        s
    }
    pub fn reads(&self) -> u64 {
        self.reads.load(Ordering::SeqCst)
    }
    /// Replace a secret's value (a rotation; cached readers see it after their next cold start).
    pub fn set(&self, id: &str, value: &str) {
        lock(&self.values).insert(id.to_string(), value.to_string());
    }
}

#[async_trait]
impl SecretSource for FakeSecrets {
    async fn secret(&self, id: &str) -> Result<SecretValue, ServiceError> {
        self.faults.check("secret")?;
        self.reads.fetch_add(1, Ordering::SeqCst);
        lock(&self.values)
            .get(id)
            .map(|v| SecretValue::new(v.clone()))
            .ok_or_else(|| ServiceError::NotFound(format!("secret {id}")))
    }
}

/// A clock tests move by hand (and that ticks 1 ms per reading).
pub struct ManualClock(Mutex<DateTime<Utc>>);

impl Default for ManualClock {
    fn default() -> Self {
        ManualClock(Mutex::new(
            Utc.with_ymd_and_hms(2026, 11, 21, 10, 0, 0).unwrap(),
        ))
    }
}

impl ManualClock {
    pub fn advance(&self, by: Duration) {
        let mut t = lock(&self.0);
        *t += by;
    }
    pub fn set(&self, at: DateTime<Utc>) {
        *lock(&self.0) = at;
    }
}

impl Clock for ManualClock {
    /// Ticks one millisecond per reading, so ids and history stay strictly ordered.
    fn now(&self) -> DateTime<Utc> {
        let mut t = lock(&self.0);
        *t += Duration::milliseconds(1);
        *t
    }
}

// ---------------------------------------------------------------------------------------------

pub const WEBHOOK_SECRET_ID: &str = "shipgate/webhook";
pub const SIGNING_KEY_ID: &str = "shipgate/signing-key";
pub const WEBHOOK_SECRET: &str = "It's a Secret to Everybody";
pub const SIGNING_KEY: &str = "0123456789abcdef0123456789abcdef";

/// The pipeline used across tests and the local sandbox.
pub const SAMPLE_PIPELINE: &str = r#"
name = "hello"
source = { github = "shipgate-demo/hello" }
branches = ["main"]
build = { project = "hello-build" }
image = { repository = "123456789012.dkr.ecr.us-east-1.amazonaws.com/hello" }
test = { cluster = "apps", service = "hello-test", container = "app" }
prod = { cluster = "apps", service = "hello-prod", container = "app" }
approval = { topic_arn = "arn:aws:sns:us-east-1:123456789012:shipgate-approvals", timeout_hours = 72 }
"#;

/// The HTTP check's fake: answers `/health` of every URL with `version` (or the scripted
/// answers first), counting requests.
#[derive(Default)]
pub struct FakeProbe {
    /// What every `/health` answers: status and JSON version (`None`: connection refused).
    pub answer: Mutex<Option<(u16, String)>>,
    scripted: Mutex<VecDeque<Result<crate::domain::verify::ProbeAnswer, ServiceError>>>,
    pub requests: Mutex<Vec<String>>,
}

impl FakeProbe {
    pub fn answer_version(&self, status: u16, version: &str) {
        *lock(&self.answer) = Some((status, version.to_string()));
    }
    pub fn refuse(&self) {
        *lock(&self.answer) = None;
    }
    pub fn script(&self, answer: Result<crate::domain::verify::ProbeAnswer, ServiceError>) {
        lock(&self.scripted).push_back(answer);
    }
    pub fn count(&self) -> usize {
        lock(&self.requests).len()
    }
}

#[async_trait]
impl HealthProbe for FakeProbe {
    async fn get(
        &self,
        url: &str,
        _timeout: std::time::Duration,
        max_body: usize,
    ) -> Result<crate::domain::verify::ProbeAnswer, ServiceError> {
        lock(&self.requests).push(url.to_string());
        if let Some(a) = lock(&self.scripted).pop_front() {
            return a;
        }
        match lock(&self.answer).clone() {
            None => Err(ServiceError::Unavailable("connection refused".into())),
            Some((status, version)) => {
                let mut body = serde_json::json!({"status": "ok", "version": version})
                    .to_string()
                    .into_bytes();
                body.truncate(max_body);
                Ok(crate::domain::verify::ProbeAnswer {
                    status,
                    headers: vec![("content-type".into(), "application/json".into())],
                    body,
                })
            }
        }
    }
}

/// CloudWatch alarms' fake: states by name.
#[derive(Default)]
pub struct FakeAlarms {
    pub states: Mutex<HashMap<String, crate::domain::verify::AlarmState>>,
    pub reads: AtomicU64,
}

impl FakeAlarms {
    pub fn set(&self, name: &str, state: crate::domain::verify::AlarmState) {
        lock(&self.states).insert(name.to_string(), state);
    }
}

#[async_trait]
impl AlarmReader for FakeAlarms {
    async fn alarm_states(
        &self,
        names: &[String],
    ) -> Result<Vec<(String, crate::domain::verify::AlarmState)>, ServiceError> {
        self.reads.fetch_add(1, Ordering::SeqCst);
        let states = lock(&self.states);
        Ok(names
            .iter()
            .filter_map(|n| states.get(n).map(|s| (n.clone(), *s)))
            .collect())
    }
}
