//! The sandbox's stand-in for the deployed control-plane stack: a CloudFormation stack in the
//! local AWS with the parameters, outputs and rules `shipgate doctor` (and the coverage check of
//! `shipgate pipeline apply`) read from the real stack (`infra/template.yaml`).
//!
//! moto cannot run the SAM template (no transform, no Lambda build), so the stand-in has the
//! template's parameters (the allow-lists, here allowing exactly the demo pipeline's resources),
//! the outputs doctor reads (same keys as the template's `Outputs`), and of its resources only
//! those doctor looks at: the dead-letter queue, the failure topic, and the two EventBridge rules
//! with the template's event patterns. The functions are the sandbox's own (its Invoke API); the
//! table, secrets and approval topic are the ones provisioning created.

use aws_config::SdkConfig;
use serde_json::{json, Value};

use crate::{aws_step, LocalError, Provisioned, ACCOUNT, REGION};

/// Name of the stand-in stack (the default `--stack` of `shipgate doctor`).
pub const STACK_NAME: &str = "shipgate";

/// The allow-list parameters of the stand-in: what the demo pipeline needs, as a correctly
/// configured stack would list it.
pub fn allow_list_parameters(p: &Provisioned) -> Vec<(&'static str, String)> {
    let sb = &p.sandbox;
    let service = |cluster: &str, name: &str| {
        format!("arn:aws:ecs:{REGION}:{ACCOUNT}:service/{cluster}/{name}")
    };
    vec![
        ("CodeBuildProjectNames", sb.project.clone()),
        (
            "CodeBuildProjectArns",
            format!(
                "arn:aws:codebuild:{REGION}:{ACCOUNT}:project/{}",
                sb.project
            ),
        ),
        (
            "EcrRepositoryArns",
            format!(
                "arn:aws:ecr:{REGION}:{ACCOUNT}:repository/{}",
                sb.repository
            ),
        ),
        (
            "TestServiceArns",
            service(&sb.test_cluster, &sb.test_service),
        ),
        (
            "ProdServiceArns",
            service(&sb.prod_cluster, &sb.prod_service),
        ),
        (
            "EcsTaskRoleArns",
            format!("arn:aws:iam::{ACCOUNT}:role/shipgate-task-execution"),
        ),
        ("CodeCommitRepositoryArns", String::new()),
        // String parameters (the template's defaults, which the demo's smoke project and alarm
        // are named with)
        ("SmokeProjectNamePrefix", "shipgate-smoke-".into()),
        ("VerifyAlarmNamePrefix", "shipgate-".into()),
    ]
}

fn function_arn(name: &str) -> String {
    format!("arn:aws:lambda:{REGION}:{ACCOUNT}:function:{STACK_NAME}-{name}")
}

/// The stand-in template (JSON). Event patterns and conditions as in `infra/template.yaml`.
pub fn template(p: &Provisioned, public_url: &str) -> Value {
    let list = |names: &[&str]| -> Value {
        let parts: Vec<Value> = names
            .iter()
            .map(|n| json!({"Fn::Join": [",", {"Ref": n}]}))
            .collect();
        json!({"Fn::Split": [",", {"Fn::Join": [",", parts]}]})
    };
    let sb = &p.sandbox;
    let mut parameters = serde_json::Map::new();
    for (name, _) in allow_list_parameters(p) {
        let mut param = if name.ends_with("Prefix") {
            json!({"Type": "String"})
        } else {
            json!({"Type": "CommaDelimitedList"})
        };
        if name == "CodeCommitRepositoryArns" {
            param["Default"] = json!("");
        }
        parameters.insert(name.to_string(), param);
    }
    json!({
        "AWSTemplateFormatVersion": "2010-09-09",
        "Description": "shipgate dev: stand-in for the control-plane stack (see sandbox/src/stack.rs)",
        "Parameters": parameters,
        "Conditions": {
            "HasCodeCommit": {"Fn::Not": [{"Fn::Equals": [{"Fn::Join": ["", {"Ref": "CodeCommitRepositoryArns"}]}, ""]}]}
        },
        "Resources": {
            "DeadLetterQueue": {
                "Type": "AWS::SQS::Queue",
                "Properties": {"QueueName": format!("{STACK_NAME}-dead-letters")}
            },
            "FailureTopic": {
                "Type": "AWS::SNS::Topic",
                "Properties": {"TopicName": format!("{STACK_NAME}-failures")}
            },
            "BuildEventsRule": {
                "Type": "AWS::Events::Rule",
                "Properties": {
                    "Name": format!("{STACK_NAME}-build-events"),
                    "State": "ENABLED",
                    "EventPattern": {
                        "source": ["aws.codebuild"],
                        "detail-type": ["CodeBuild Build State Change"],
                        "detail": {
                            "project-name": {"Ref": "CodeBuildProjectNames"},
                            "build-status": ["SUCCEEDED", "FAILED", "STOPPED"]
                        }
                    },
                    "Targets": [{"Id": "build-events", "Arn": function_arn("build-events")}]
                }
            },
            "DeployEventsRule": {
                "Type": "AWS::Events::Rule",
                "Properties": {
                    "Name": format!("{STACK_NAME}-deploy-events"),
                    "State": "ENABLED",
                    "EventPattern": {
                        "source": ["aws.ecs"],
                        "detail-type": ["ECS Deployment State Change"],
                        "resources": list(&["TestServiceArns", "ProdServiceArns"]),
                        "detail": {"eventName": [
                            "SERVICE_DEPLOYMENT_IN_PROGRESS",
                            "SERVICE_DEPLOYMENT_COMPLETED",
                            "SERVICE_DEPLOYMENT_FAILED"
                        ]}
                    },
                    "Targets": [{"Id": "deploy-events", "Arn": function_arn("deploy-events")}]
                }
            },
            "CodeCommitRule": {
                "Type": "AWS::Events::Rule",
                "Condition": "HasCodeCommit",
                "Properties": {
                    "Name": format!("{STACK_NAME}-codecommit"),
                    "State": "ENABLED",
                    "EventPattern": {
                        "source": ["aws.codecommit"],
                        "detail-type": ["CodeCommit Repository State Change"],
                        "resources": {"Ref": "CodeCommitRepositoryArns"},
                        "detail": {
                            "event": ["referenceCreated", "referenceUpdated"],
                            "referenceType": ["branch", "tag"]
                        }
                    },
                    "Targets": [{"Id": "codecommit", "Arn": function_arn("codecommit")}]
                }
            }
        },
        "Outputs": {
            "PublicUrl": {"Value": public_url},
            "WebhookUrl": {"Value": format!("{public_url}/webhooks/github")},
            "ApprovalsBaseUrl": {"Value": format!("{public_url}/approvals")},
            "ControlFunctionName": {"Value": format!("{STACK_NAME}-control")},
            "TableName": {"Value": sb.table},
            "WebhookSecretArn": {"Value": sb.webhook_secret_id},
            "SigningKeySecretArn": {"Value": sb.signing_key_id},
            "ApprovalTopicArn": {"Value": p.approval_topic_arn},
            "FailureTopicArn": {"Value": {"Ref": "FailureTopic"}},
            "DeadLetterQueueUrl": {"Value": {"Ref": "DeadLetterQueue"}},
            "BuildEventsRuleName": {"Value": {"Ref": "BuildEventsRule"}},
            "DeployEventsRuleName": {"Value": {"Ref": "DeployEventsRule"}},
            "CodeCommitRuleName": {"Condition": "HasCodeCommit", "Value": {"Ref": "CodeCommitRule"}}
        }
    })
}

/// Create the stand-in stack in the local AWS (CREATE_COMPLETE when this returns: moto creates
/// stacks synchronously).
pub async fn create_stand_in_stack(
    sdk: &SdkConfig,
    provisioned: &Provisioned,
    public_url: &str,
) -> Result<(), LocalError> {
    use aws_sdk_cloudformation::types::Parameter;
    let client = aws_sdk_cloudformation::Client::new(sdk);
    let parameters: Vec<Parameter> = allow_list_parameters(provisioned)
        .into_iter()
        .map(|(k, v)| {
            Parameter::builder()
                .parameter_key(k)
                .parameter_value(v)
                .build()
        })
        .collect();
    client
        .create_stack()
        .stack_name(STACK_NAME)
        .template_body(template(provisioned, public_url).to_string())
        .set_parameters(Some(parameters))
        .send()
        .await
        .map_err(aws_step("stand-in stack"))?;
    Ok(())
}
