//! `Deployer` on ECS: new task-definition revisions with one container's image replaced, and
//! `UpdateService`.

use async_trait::async_trait;
use aws_sdk_ecs::types::{Service, TaskDefinition, TaskDefinitionField};
use aws_sdk_ecs::Client;

use super::classify;
use crate::domain::ServiceTarget;
use crate::ports::{
    Deployer, DeploymentObservation, ServiceError, ServiceState, StartedDeployment,
};

pub struct EcsDeployer {
    client: Client,
}

impl EcsDeployer {
    pub fn new(client: Client) -> EcsDeployer {
        EcsDeployer { client }
    }

    async fn service(&self, target: &ServiceTarget) -> Result<Service, ServiceError> {
        let out = self
            .client
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
        let out = self
            .client
            .update_service()
            .cluster(&target.cluster)
            .service(&target.service)
            .task_definition(task_definition)
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
        let registered = self
            .client
            .register_task_definition()
            .family(family)
            .set_container_definitions(Some(containers))
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
            .set_ephemeral_storage(td.ephemeral_storage().cloned())
            .set_runtime_platform(td.runtime_platform().cloned())
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
