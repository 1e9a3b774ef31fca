//! What a pipeline needs in the local AWS: its ECR repository, CodeBuild project, both ECS
//! clusters and services (circuit breaker on, like the demo's), and its SNS topics subscribed to
//! the sandbox's capture queue. Created when missing, so any pipeline applied to the sandbox runs
//! like the demo; nothing that exists is changed.

use aws_config::SdkConfig;
use shared::domain::{PipelineDefinition, ServiceTarget, Source};
use shipgate_sandbox::{create_service, register_bootstrap_task_definition, ACCOUNT, REGION};

/// An AWS error with its whole cause chain, as one line.
fn aws<E: std::error::Error + 'static>(what: &str) -> impl FnOnce(E) -> String + '_ {
    move |e| format!("{what}: {}", aws_sdk_ecs::error::DisplayErrorContext(e))
}

/// One `ensure` at a time (the apply hook and the pump may both see a new pipeline): the second
/// finds everything the first created.
static ENSURING: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// Make sure everything `pipeline` names exists in the local AWS; answers what was created
/// (empty when everything was there).
pub async fn ensure(
    sdk: &SdkConfig,
    pipeline: &PipelineDefinition,
    outbox_queue_url: &str,
) -> Result<Vec<String>, String> {
    let _one_at_a_time = ENSURING.lock().await;
    let mut created = Vec::new();
    let repository_uri = ensure_repository(sdk, pipeline, &mut created).await?;
    ensure_project(sdk, pipeline, &pipeline.build.project, &mut created).await?;
    // the verifications' smoke test projects (the pump runs their builds like image builds)
    let mut smoke_projects: Vec<&str> = [
        shared::domain::Environment::Test,
        shared::domain::Environment::Prod,
    ]
    .into_iter()
    .filter_map(|env| {
        pipeline
            .verify_of(env)
            .and_then(|v| v.smoke_project.as_deref())
    })
    .collect();
    smoke_projects.dedup();
    for smoke in smoke_projects {
        ensure_project(sdk, pipeline, smoke, &mut created).await?;
    }
    let ecs_client = aws_sdk_ecs::Client::new(sdk);
    for target in [&pipeline.test, &pipeline.prod] {
        ensure_cluster(&ecs_client, &target.cluster, &mut created).await?;
        ensure_service(&ecs_client, target, &repository_uri, &mut created).await?;
    }
    let mut topics = vec![pipeline.approval.topic_arn.as_str()];
    if let Some(n) = &pipeline.notifications {
        topics.push(n.topic_arn.as_str());
    }
    for topic in topics {
        ensure_topic(sdk, topic, outbox_queue_url, &mut created).await?;
    }
    Ok(created)
}

async fn ensure_repository(
    sdk: &SdkConfig,
    pipeline: &PipelineDefinition,
    created: &mut Vec<String>,
) -> Result<String, String> {
    let ecr = aws_sdk_ecr::Client::new(sdk);
    let name = pipeline.image.repository_name();
    match ecr
        .describe_repositories()
        .repository_names(name)
        .send()
        .await
    {
        Ok(out) => {
            if let Some(uri) = out.repositories().first().and_then(|r| r.repository_uri()) {
                return Ok(uri.to_string());
            }
        }
        Err(e)
            if e.as_service_error()
                .is_some_and(|s| s.is_repository_not_found_exception()) => {}
        Err(e) => return Err(aws("ecr:DescribeRepositories")(e)),
    }
    let out = ecr
        .create_repository()
        .repository_name(name)
        .send()
        .await
        .map_err(aws("ecr:CreateRepository"))?;
    created.push(format!("ECR repository {name}"));
    Ok(out
        .repository()
        .and_then(|r| r.repository_uri())
        .unwrap_or(&pipeline.image.repository)
        .to_string())
}

async fn ensure_project(
    sdk: &SdkConfig,
    pipeline: &PipelineDefinition,
    name: &str,
    created: &mut Vec<String>,
) -> Result<(), String> {
    use aws_sdk_codebuild::types as cb;
    let codebuild = aws_sdk_codebuild::Client::new(sdk);
    let found = codebuild
        .batch_get_projects()
        .names(name)
        .send()
        .await
        .map_err(aws("codebuild:BatchGetProjects"))?;
    if found.projects().iter().any(|p| p.name() == Some(name)) {
        return Ok(());
    }
    let (kind, location) = match &pipeline.source {
        Source::Github(repo) => (
            cb::SourceType::Github,
            format!("https://github.com/{repo}.git"),
        ),
        Source::Codecommit(repo) => (
            cb::SourceType::Codecommit,
            format!("https://git-codecommit.{REGION}.amazonaws.com/v1/repos/{repo}"),
        ),
    };
    let build = |e: aws_sdk_codebuild::error::BuildError| format!("codebuild project {name}: {e}");
    codebuild
        .create_project()
        .name(name)
        .source(
            cb::ProjectSource::builder()
                .r#type(kind)
                .location(location)
                .build()
                .map_err(build)?,
        )
        .artifacts(
            cb::ProjectArtifacts::builder()
                .r#type(cb::ArtifactsType::NoArtifacts)
                .build()
                .map_err(build)?,
        )
        .environment(
            cb::ProjectEnvironment::builder()
                .r#type(cb::EnvironmentType::LinuxContainer)
                .image("aws/codebuild/standard:7.0")
                .compute_type(cb::ComputeType::BuildGeneral1Small)
                .privileged_mode(true)
                .build()
                .map_err(build)?,
        )
        .service_role(format!("arn:aws:iam::{ACCOUNT}:role/shipgate-codebuild"))
        .send()
        .await
        .map_err(aws("codebuild:CreateProject"))?;
    created.push(format!("CodeBuild project {name}"));
    Ok(())
}

async fn ensure_cluster(
    client: &aws_sdk_ecs::Client,
    cluster: &str,
    created: &mut Vec<String>,
) -> Result<(), String> {
    let found = client
        .describe_clusters()
        .clusters(cluster)
        .send()
        .await
        .map_err(aws("ecs:DescribeClusters"))?;
    let active = found
        .clusters()
        .iter()
        .any(|c| c.cluster_name() == Some(cluster) && c.status() != Some("INACTIVE"));
    if active {
        return Ok(());
    }
    client
        .create_cluster()
        .cluster_name(cluster)
        .send()
        .await
        .map_err(aws("ecs:CreateCluster"))?;
    created.push(format!("ECS cluster {cluster}"));
    Ok(())
}

async fn ensure_service(
    client: &aws_sdk_ecs::Client,
    target: &ServiceTarget,
    repository_uri: &str,
    created: &mut Vec<String>,
) -> Result<(), String> {
    let found = client
        .describe_services()
        .cluster(&target.cluster)
        .services(&target.service)
        .send()
        .await
        .map_err(aws("ecs:DescribeServices"))?;
    if found
        .services()
        .iter()
        .any(|s| s.status() != Some("INACTIVE"))
    {
        return Ok(());
    }
    let td = register_bootstrap_task_definition(
        client,
        &target.service,
        &target.container,
        repository_uri,
    )
    .await
    .map_err(|e| e.to_string())?;
    create_service(client, &target.cluster, &target.service, &td)
        .await
        .map_err(|e| e.to_string())?;
    created.push(format!(
        "ECS service {}/{} (task definition {})",
        target.cluster,
        target.service,
        td.rsplit('/').next().unwrap_or(&td)
    ));
    Ok(())
}

/// The topic's name if the ARN is one of the sandbox's account and region.
fn local_topic_name(arn: &str) -> Option<&str> {
    let rest = arn.strip_prefix("arn:aws:sns:")?;
    let mut parts = rest.splitn(3, ':');
    let (region, account, name) = (parts.next()?, parts.next()?, parts.next()?);
    (region == REGION && account == ACCOUNT && !name.is_empty() && !name.contains(':'))
        .then_some(name)
}

async fn ensure_topic(
    sdk: &SdkConfig,
    topic_arn: &str,
    outbox_queue_url: &str,
    created: &mut Vec<String>,
) -> Result<(), String> {
    let Some(name) = local_topic_name(topic_arn) else {
        // another account or region: the sandbox cannot hold it; publishing will say so
        return Ok(());
    };
    let sns = aws_sdk_sns::Client::new(sdk);
    let exists = match sns.get_topic_attributes().topic_arn(topic_arn).send().await {
        Ok(_) => true,
        Err(e)
            if e.as_service_error()
                .is_some_and(|s| s.is_not_found_exception()) =>
        {
            false
        }
        Err(e) => return Err(aws("sns:GetTopicAttributes")(e)),
    };
    if !exists {
        sns.create_topic()
            .name(name)
            .send()
            .await
            .map_err(aws("sns:CreateTopic"))?;
        created.push(format!("SNS topic {name}"));
    }
    let sqs = aws_sdk_sqs::Client::new(sdk);
    let queue_arn = sqs
        .get_queue_attributes()
        .queue_url(outbox_queue_url)
        .attribute_names(aws_sdk_sqs::types::QueueAttributeName::QueueArn)
        .send()
        .await
        .map_err(aws("sqs:GetQueueAttributes"))?
        .attributes()
        .and_then(|a| {
            a.get(&aws_sdk_sqs::types::QueueAttributeName::QueueArn)
                .cloned()
        })
        .unwrap_or_default();
    let subscribed = sns
        .list_subscriptions_by_topic()
        .topic_arn(topic_arn)
        .send()
        .await
        .map_err(aws("sns:ListSubscriptionsByTopic"))?
        .subscriptions()
        .iter()
        .any(|s| s.endpoint() == Some(queue_arn.as_str()));
    if !subscribed {
        sns.subscribe()
            .topic_arn(topic_arn)
            .protocol("sqs")
            .endpoint(&queue_arn)
            .send()
            .await
            .map_err(aws("sns:Subscribe"))?;
        created.push(format!("subscription of {name} to the sandbox's outbox"));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_local_topics_are_created() {
        assert_eq!(
            local_topic_name("arn:aws:sns:us-east-1:123456789012:shop-approvals"),
            Some("shop-approvals")
        );
        assert_eq!(
            local_topic_name("arn:aws:sns:eu-west-1:123456789012:x"),
            None
        );
        assert_eq!(
            local_topic_name("arn:aws:sns:us-east-1:999999999999:x"),
            None
        );
        assert_eq!(
            local_topic_name("arn:aws:sns:us-east-1:123456789012:"),
            None
        );
        assert_eq!(local_topic_name("not an arn"), None);
    }
}
