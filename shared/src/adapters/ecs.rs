//! `Deployer` on ECS: new task-definition revisions with one container's image replaced, and
//! `UpdateService`.

use async_trait::async_trait;
use aws_sdk_ecs::operation::register_task_definition::builders::RegisterTaskDefinitionFluentBuilder;
use aws_sdk_ecs::types::{Service, TaskDefinition, TaskDefinitionField};
use aws_sdk_ecs::Client;

use super::classify;
use crate::domain::ServiceTarget;
use crate::ports::{
    Deployer, DeploymentObservation, ServiceError, ServiceState, StartedDeployment,
};

pub struct EcsDeployer {
    /// Built on first use (`super::lazy`).
    client: super::lazy::Lazy<Client>,
}

impl EcsDeployer {
    /// Around a client already built.
    pub fn new(client: Client) -> EcsDeployer {
        EcsDeployer {
            client: super::lazy::Lazy::ready(client),
        }
    }

    /// Its client is built from `sdk` on the first call (once per cold start).
    pub fn from_sdk(sdk: &aws_config::SdkConfig) -> EcsDeployer {
        EcsDeployer {
            client: super::lazy::Lazy::sdk_client(sdk, Client::new),
        }
    }

    async fn service(&self, target: &ServiceTarget) -> Result<Service, ServiceError> {
        let out = self
            .client
            .get()?
            .describe_services()
            .cluster(&target.cluster)
            .services(&target.service)
            .send()
            .await
            .map_err(|e| classify(&e))?;
        out.services()
            .iter()
            .find(|s| s.status() != Some("INACTIVE"))
            .cloned()
            .ok_or_else(|| {
                ServiceError::NotFound(format!(
                    "service {} in cluster {}",
                    target.service, target.cluster
                ))
            })
    }

    async fn task_definition(
        &self,
        arn: &str,
    ) -> Result<(TaskDefinition, Vec<aws_sdk_ecs::types::Tag>), ServiceError> {
        let out = self
            .client
            .get()?
            .describe_task_definition()
            .task_definition(arn)
            .include(TaskDefinitionField::Tags)
            .send()
            .await
            .map_err(|e| classify(&e))?;
        let td = out
            .task_definition()
            .cloned()
            .ok_or_else(|| ServiceError::NotFound(format!("task definition {arn}")))?;
        Ok((td, out.tags().to_vec()))
    }

    async fn update(
        &self,
        target: &ServiceTarget,
        task_definition: &str,
        previous: Option<String>,
    ) -> Result<StartedDeployment, ServiceError> {
        // pointing a service at the revision it already runs (a rollback to the release ECS's
        // circuit breaker put back) starts no deployment unless forced, and then no event
        // would ever report it
        let unchanged = previous.as_deref() == Some(task_definition);
        let out = self
            .client
            .get()?
            .update_service()
            .cluster(&target.cluster)
            .service(&target.service)
            .task_definition(task_definition)
            .set_force_new_deployment(unchanged.then_some(true))
            .send()
            .await
            .map_err(|e| classify(&e))?;
        let service = out
            .service()
            .ok_or_else(|| ServiceError::Unavailable("UpdateService answered no service".into()))?;
        let deployment = service
            .deployments()
            .iter()
            .find(|d| d.status() == Some("PRIMARY"))
            .or_else(|| service.deployments().first())
            .and_then(|d| d.id())
            .ok_or_else(|| {
                ServiceError::Unavailable("UpdateService answered no deployment id".into())
            })?;
        Ok(StartedDeployment {
            task_definition: task_definition.to_string(),
            previous_task_definition: previous,
            deployment_id: deployment.to_string(),
        })
    }
}

/// A new revision of `td`: every field RegisterTaskDefinition accepts is copied from what
/// DescribeTaskDefinition answered (aws-sdk-ecs 1.157: all of its inputs except `family`,
/// `containerDefinitions` and `tags`, which the caller sets). Fields DescribeTaskDefinition
/// computes (`revision`, `status`, `compatibilities`, `requiresAttributes`, `registeredAt`/`By`,
/// `deregisteredAt`, `deleteRequestedAt`) are not inputs.
// `inferenceAccelerators` is deprecated (Elastic Inference ended) but still an input: a revision
// is registered as the current one is, and ECS decides.
#[allow(deprecated)]
fn next_revision(
    builder: RegisterTaskDefinitionFluentBuilder,
    td: &TaskDefinition,
) -> RegisterTaskDefinitionFluentBuilder {
    builder
        .set_task_role_arn(td.task_role_arn().map(str::to_string))
        .set_execution_role_arn(td.execution_role_arn().map(str::to_string))
        .set_network_mode(td.network_mode().cloned())
        .set_volumes(Some(td.volumes().to_vec()).filter(|v| !v.is_empty()))
        .set_placement_constraints(
            Some(td.placement_constraints().to_vec()).filter(|v| !v.is_empty()),
        )
        .set_requires_compatibilities(
            Some(td.requires_compatibilities().to_vec()).filter(|v| !v.is_empty()),
        )
        .set_cpu(td.cpu().map(str::to_string))
        .set_memory(td.memory().map(str::to_string))
        .set_pid_mode(td.pid_mode().cloned())
        .set_ipc_mode(td.ipc_mode().cloned())
        .set_proxy_configuration(td.proxy_configuration().cloned())
        .set_inference_accelerators(
            Some(td.inference_accelerators().to_vec()).filter(|v| !v.is_empty()),
        )
        .set_ephemeral_storage(td.ephemeral_storage().cloned())
        .set_runtime_platform(td.runtime_platform().cloned())
        .set_enable_fault_injection(td.enable_fault_injection())
}

#[async_trait]
impl Deployer for EcsDeployer {
    async fn deploy_image(
        &self,
        target: &ServiceTarget,
        image: &str,
    ) -> Result<StartedDeployment, ServiceError> {
        let service = self.service(target).await?;
        let current = service
            .task_definition()
            .ok_or_else(|| {
                ServiceError::Rejected(format!("service {} has no task definition", target.service))
            })?
            .to_string();
        let (td, tags) = self.task_definition(&current).await?;
        let mut containers = td.container_definitions().to_vec();
        let Some(container) = containers
            .iter_mut()
            .find(|c| c.name() == Some(target.container.as_str()))
        else {
            let names: Vec<&str> = td
                .container_definitions()
                .iter()
                .filter_map(|c| c.name())
                .collect();
            return Err(ServiceError::Rejected(format!(
                "task definition {current} has no container named {:?} (it has: {})",
                target.container,
                names.join(", ")
            )));
        };
        container.image = Some(image.to_string());
        let family = td.family().ok_or_else(|| {
            ServiceError::Rejected(format!("task definition {current} has no family"))
        })?;
        let registered = next_revision(self.client.get()?.register_task_definition(), &td)
            .family(family)
            .set_container_definitions(Some(containers))
            .set_tags(Some(tags).filter(|t| !t.is_empty()))
            .send()
            .await
            .map_err(|e| classify(&e))?;
        let new_arn = registered
            .task_definition()
            .and_then(|t| t.task_definition_arn())
            .ok_or_else(|| {
                ServiceError::Unavailable("RegisterTaskDefinition answered no ARN".into())
            })?
            .to_string();
        self.update(target, &new_arn, Some(current)).await
    }

    async fn deploy_task_definition(
        &self,
        target: &ServiceTarget,
        task_definition: &str,
    ) -> Result<StartedDeployment, ServiceError> {
        let previous = self
            .service(target)
            .await?
            .task_definition()
            .map(str::to_string);
        self.update(target, task_definition, previous).await
    }

    async fn service_state(&self, target: &ServiceTarget) -> Result<ServiceState, ServiceError> {
        let service = self.service(target).await?;
        let current = service.task_definition().unwrap_or_default().to_string();
        let (td, _) = self.task_definition(&current).await?;
        let image = td
            .container_definitions()
            .iter()
            .find(|c| c.name() == Some(target.container.as_str()))
            .and_then(|c| c.image())
            .map(str::to_string);
        Ok(ServiceState {
            task_definition: current,
            image,
        })
    }

    async fn deployment_state(
        &self,
        target: &ServiceTarget,
        deployment_id: &str,
    ) -> Result<DeploymentObservation, ServiceError> {
        let service = self.service(target).await?;
        let deployments = service.deployments();
        let Some(ours) = deployments.iter().find(|d| d.id() == Some(deployment_id)) else {
            return Ok(
                if deployments.iter().any(|d| d.status() == Some("PRIMARY")) {
                    DeploymentObservation::Replaced
                } else {
                    DeploymentObservation::Unknown
                },
            );
        };
        // a failed rollout stays FAILED (and ACTIVE) after the circuit breaker's rollback
        // deployment became PRIMARY: it failed, it was not replaced
        if ours.rollout_state().map(|s| s.as_str()) == Some("FAILED") {
            return Ok(DeploymentObservation::Failed(
                ours.rollout_state_reason()
                    .unwrap_or("rollout failed")
                    .to_string(),
            ));
        }
        if ours.status() != Some("PRIMARY") {
            return Ok(DeploymentObservation::Replaced);
        }
        Ok(match ours.rollout_state().map(|s| s.as_str()) {
            Some("COMPLETED") => DeploymentObservation::Completed,
            _ => DeploymentObservation::InProgress,
        })
    }
}

#[cfg(test)]
#[allow(deprecated)] // InferenceAccelerator
mod tests {
    use super::*;
    use aws_sdk_ecs::types::{
        Compatibility, ContainerDefinition, CpuArchitecture, EphemeralStorage,
        InferenceAccelerator, IpcMode, KeyValuePair, NetworkMode, OsFamily, PidMode,
        ProxyConfiguration, ProxyConfigurationType, RuntimePlatform,
        TaskDefinitionPlacementConstraint, TaskDefinitionPlacementConstraintType, Volume,
    };

    /// The fields of a `Name { a: x, b: None, … }` Debug string that are `None` at its top level.
    fn top_level_unset_fields(debug: &str) -> Vec<String> {
        let Some(body) = debug.split_once('{').map(|(_, b)| b) else {
            return vec![];
        };
        let (mut depth, mut field, mut out) = (0i32, String::new(), Vec::new());
        for c in body.chars() {
            match c {
                '{' | '[' | '(' => depth += 1,
                '}' | ']' | ')' => depth -= 1,
                _ => {}
            }
            if depth < 0 || (depth == 0 && c == ',') {
                if let Some((name, value)) = field.split_once(':') {
                    if value.trim() == "None" {
                        out.push(name.trim().to_string());
                    }
                }
                field.clear();
            } else {
                field.push(c);
            }
        }
        out
    }

    /// Every input of RegisterTaskDefinition is set from a task definition that has all of them
    /// (the input builder's Debug lists every field; none may stay `None`). A newer aws-sdk-ecs
    /// with a new input fails here until it is copied too.
    #[test]
    fn a_new_revision_copies_every_registrable_field() {
        let td = TaskDefinition::builder()
            .family("hello")
            .task_role_arn("arn:aws:iam::123456789012:role/task")
            .execution_role_arn("arn:aws:iam::123456789012:role/exec")
            .network_mode(NetworkMode::Awsvpc)
            .container_definitions(
                ContainerDefinition::builder()
                    .name("app")
                    .image("a")
                    .build(),
            )
            .volumes(Volume::builder().name("data").build())
            .placement_constraints(
                TaskDefinitionPlacementConstraint::builder()
                    .r#type(TaskDefinitionPlacementConstraintType::MemberOf)
                    .expression("attribute:ecs.os-type == linux")
                    .build(),
            )
            .requires_compatibilities(Compatibility::Fargate)
            .cpu("512")
            .memory("1024")
            .pid_mode(PidMode::Task)
            .ipc_mode(IpcMode::Task)
            .proxy_configuration(
                ProxyConfiguration::builder()
                    .r#type(ProxyConfigurationType::Appmesh)
                    .container_name("envoy")
                    .properties(
                        KeyValuePair::builder()
                            .name("AppPorts")
                            .value("8080")
                            .build(),
                    )
                    .build()
                    .unwrap(),
            )
            .inference_accelerators(
                InferenceAccelerator::builder()
                    .device_name("device1")
                    .device_type("eia2.medium")
                    .build()
                    .unwrap(),
            )
            .ephemeral_storage(EphemeralStorage::builder().size_in_gib(30).build())
            .runtime_platform(
                RuntimePlatform::builder()
                    .cpu_architecture(CpuArchitecture::Arm64)
                    .operating_system_family(OsFamily::Linux)
                    .build(),
            )
            .enable_fault_injection(true)
            .build();
        let conf = aws_sdk_ecs::Config::builder()
            .behavior_version(aws_sdk_ecs::config::BehaviorVersion::latest())
            .region(aws_sdk_ecs::config::Region::new("us-east-1"))
            .build();
        let client = Client::from_conf(conf);
        let b = next_revision(client.register_task_definition(), &td)
            .family("hello")
            .set_container_definitions(Some(td.container_definitions().to_vec()))
            .tags(
                aws_sdk_ecs::types::Tag::builder()
                    .key("k")
                    .value("v")
                    .build(),
            );
        let input = format!("{:?}", b.as_input());
        let unset = top_level_unset_fields(&input);
        assert!(
            unset.is_empty(),
            "registrable fields not copied: {unset:?} in {input}"
        );
        // the check itself sees a missing field
        assert_eq!(
            top_level_unset_fields("X { a: Some([B { c: None }]), d: None }"),
            vec!["d".to_string()]
        );
        assert_eq!(b.as_input().get_enable_fault_injection(), &Some(true));
        assert_eq!(
            b.as_input().get_inference_accelerators().as_deref(),
            Some(td.inference_accelerators())
        );
    }
}
