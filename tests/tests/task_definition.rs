//! A deployment's new task-definition revision keeps every registrable field of the current one
//! (against moto, through the ECS adapter): only the target container's image differs.
// inferenceAccelerators is deprecated in the SDK but still a field to keep
#![allow(deprecated)]

use aws_sdk_ecs::types::{
    Compatibility, ContainerDefinition, CpuArchitecture, EphemeralStorage, HostVolumeProperties,
    InferenceAccelerator, IpcMode, KeyValuePair, LogConfiguration, LogDriver, NetworkMode,
    OsFamily, PidMode, PortMapping, ProxyConfiguration, ProxyConfigurationType, RuntimePlatform,
    Tag, TaskDefinition, TaskDefinitionField, TaskDefinitionPlacementConstraint,
    TaskDefinitionPlacementConstraintType, Volume,
};
use shared::adapters::ecs::EcsDeployer;
use shared::domain::ServiceTarget;
use shared::ports::Deployer;
use shipgate_tests::World;

async fn describe(w: &World, arn: &str) -> (TaskDefinition, Vec<Tag>) {
    let out = w
        .ecs()
        .describe_task_definition()
        .task_definition(arn)
        .include(TaskDefinitionField::Tags)
        .send()
        .await
        .expect("describe task definition");
    (out.task_definition().unwrap().clone(), out.tags().to_vec())
}

#[tokio::test]
async fn a_deployed_revision_keeps_every_field_but_the_image() {
    let Some(w) = World::start().await else {
        return;
    };
    let ecs = w.ecs();
    let cluster = w.provisioned.sandbox.test_cluster.clone();
    let app = ContainerDefinition::builder()
        .name("app")
        .image("123456789012.dkr.ecr.us-east-1.amazonaws.com/rich:old")
        .cpu(256)
        .memory(512)
        .essential(true)
        .port_mappings(PortMapping::builder().container_port(8080).build())
        .environment(KeyValuePair::builder().name("MODE").value("test").build())
        .log_configuration(
            LogConfiguration::builder()
                .log_driver(LogDriver::Awslogs)
                .options("awslogs-group", "/ecs/rich")
                .build()
                .unwrap(),
        )
        .build();
    let envoy = ContainerDefinition::builder()
        .name("envoy")
        .image("public.ecr.aws/appmesh/aws-appmesh-envoy:v1.29")
        .memory(128)
        .essential(true)
        .build();
    let registered = ecs
        .register_task_definition()
        .family("rich")
        .task_role_arn("arn:aws:iam::123456789012:role/rich-task")
        .execution_role_arn("arn:aws:iam::123456789012:role/rich-exec")
        .network_mode(NetworkMode::Awsvpc)
        .container_definitions(app)
        .container_definitions(envoy)
        .volumes(
            Volume::builder()
                .name("scratch")
                .host(HostVolumeProperties::builder().source_path("/tmp").build())
                .build(),
        )
        .placement_constraints(
            TaskDefinitionPlacementConstraint::builder()
                .r#type(TaskDefinitionPlacementConstraintType::MemberOf)
                .expression("attribute:ecs.availability-zone in [us-east-1a]")
                .build(),
        )
        .requires_compatibilities(Compatibility::Ec2)
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
                .properties(
                    KeyValuePair::builder()
                        .name("IgnoredUID")
                        .value("1337")
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
        .tags(Tag::builder().key("team").value("payments").build())
        .send()
        .await
        .expect("register the rich task definition");
    let current_arn = registered
        .task_definition()
        .unwrap()
        .task_definition_arn()
        .unwrap()
        .to_string();
    ecs.create_service()
        .cluster(&cluster)
        .service_name("rich")
        .task_definition(&current_arn)
        .desired_count(1)
        .send()
        .await
        .expect("create the service");

    let deployer = EcsDeployer::new(ecs.clone());
    let target = ServiceTarget {
        cluster: cluster.clone(),
        service: "rich".into(),
        container: "app".into(),
    };
    let image = format!(
        "123456789012.dkr.ecr.us-east-1.amazonaws.com/rich@sha256:{}",
        "c".repeat(64)
    );
    let started = deployer.deploy_image(&target, &image).await.unwrap();
    assert_ne!(started.task_definition, current_arn);

    let (before, before_tags) = describe(&w, &current_arn).await;
    let (after, after_tags) = describe(&w, &started.task_definition).await;
    assert_eq!(after.revision(), before.revision() + 1);
    // every registrable field, one by one (what moto stores of them: see below)
    assert_eq!(after.family(), before.family(), "family");
    assert_eq!(after.task_role_arn(), before.task_role_arn(), "taskRoleArn");
    assert_eq!(
        after.execution_role_arn(),
        before.execution_role_arn(),
        "executionRoleArn"
    );
    assert_eq!(after.network_mode(), before.network_mode(), "networkMode");
    assert_eq!(after.volumes(), before.volumes(), "volumes");
    assert_eq!(
        after.placement_constraints(),
        before.placement_constraints(),
        "placementConstraints"
    );
    assert_eq!(
        after.requires_compatibilities(),
        before.requires_compatibilities(),
        "requiresCompatibilities"
    );
    assert_eq!(after.cpu(), before.cpu(), "cpu");
    assert_eq!(after.memory(), before.memory(), "memory");
    assert_eq!(after.pid_mode(), before.pid_mode(), "pidMode");
    assert_eq!(after.ipc_mode(), before.ipc_mode(), "ipcMode");
    assert_eq!(
        after.proxy_configuration(),
        before.proxy_configuration(),
        "proxyConfiguration"
    );
    assert_eq!(
        after.inference_accelerators(),
        before.inference_accelerators(),
        "inferenceAccelerators"
    );
    assert_eq!(
        after.ephemeral_storage(),
        before.ephemeral_storage(),
        "ephemeralStorage"
    );
    assert_eq!(
        after.runtime_platform(),
        before.runtime_platform(),
        "runtimePlatform"
    );
    assert_eq!(
        after.enable_fault_injection(),
        before.enable_fault_injection(),
        "enableFaultInjection"
    );
    assert_eq!(after_tags, before_tags, "tags");
    // containers: only app's image changed
    let mut expected = before.container_definitions().to_vec();
    expected[0].image = Some(image.clone());
    assert_eq!(
        after.container_definitions(),
        expected.as_slice(),
        "containerDefinitions"
    );

    // the fields were really set in moto (so the comparison above compares something) — except
    // enableFaultInjection, which moto 5.2's RegisterTaskDefinition drops (it is not among its
    // parameters); the adapter's unit test `a_new_revision_copies_every_registrable_field`
    // proves it is sent.
    assert!(!before.volumes().is_empty());
    assert!(!before.placement_constraints().is_empty());
    assert!(before.proxy_configuration().is_some());
    assert!(
        !before.inference_accelerators().is_empty(),
        "inferenceAccelerators"
    );
    assert!(before.ephemeral_storage().is_some());
    assert!(before.runtime_platform().is_some());
    assert!(before.pid_mode().is_some() && before.ipc_mode().is_some());
    assert_eq!(before_tags.len(), 1);
    assert_eq!(
        before.enable_fault_injection(),
        None,
        "moto now keeps enableFaultInjection: assert it instead"
    );
}
