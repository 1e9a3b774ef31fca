//! `infra/template.yaml` and `infra/example-environment.yaml` for ECS native blue/green and the
//! alarm events of production bakes: the hook role ECS assumes may invoke deploy-events and
//! nothing else, the alarm rule delivers only alarms a bake may watch (the prefix) entering
//! ALARM, to deploy-events, and the example environment wires the hook only when asked.

use serde_yaml::Value;

fn load(file: &str) -> Value {
    let path = format!("{}/../infra/{file}", env!("CARGO_MANIFEST_DIR"));
    serde_yaml::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap()
}

/// A tagged value (`!Ref X`, `!GetAtt X.Arn`) as `tag value`.
fn show(v: &Value) -> String {
    match v {
        Value::Tagged(t) => format!("{} {}", t.tag, show(&t.value)),
        Value::String(s) => s.clone(),
        Value::Sequence(items) => items.iter().map(show).collect::<Vec<_>>().join(","),
        other => serde_yaml::to_string(other).unwrap_or_default(),
    }
}

#[test]
fn the_hook_role_is_assumed_by_ecs_and_invokes_deploy_events_only() {
    let t = load("template.yaml");
    let role = &t["Resources"]["BlueGreenHookRole"];
    assert_eq!(role["Type"].as_str(), Some("AWS::IAM::Role"));
    let trust = &role["Properties"]["AssumeRolePolicyDocument"]["Statement"];
    let trust = trust.as_sequence().unwrap();
    assert_eq!(trust.len(), 1);
    assert_eq!(
        trust[0]["Principal"]["Service"].as_str(),
        Some("ecs.amazonaws.com")
    );
    assert_eq!(trust[0]["Action"].as_str(), Some("sts:AssumeRole"));
    assert!(show(&trust[0]["Condition"]).contains("AWS::AccountId"));
    let policies = role["Properties"]["Policies"].as_sequence().unwrap();
    assert!(role["Properties"]["ManagedPolicyArns"].is_null());
    let statements: Vec<&Value> = policies
        .iter()
        .flat_map(|p| p["PolicyDocument"]["Statement"].as_sequence().unwrap())
        .collect();
    assert_eq!(statements.len(), 1);
    assert_eq!(
        statements[0]["Action"].as_str(),
        Some("lambda:InvokeFunction")
    );
    assert_eq!(
        show(&statements[0]["Resource"]),
        "!GetAtt DeployEventsFunction.Arn"
    );
    // the environment stack gets both as outputs
    assert_eq!(
        show(&t["Outputs"]["BlueGreenHookRoleArn"]["Value"]),
        "!GetAtt BlueGreenHookRole.Arn"
    );
    assert_eq!(
        show(&t["Outputs"]["BlueGreenHookTargetArn"]["Value"]),
        "!GetAtt DeployEventsFunction.Arn"
    );
}

#[test]
fn the_alarm_rule_delivers_only_watchable_alarms_entering_alarm_to_deploy_events() {
    let t = load("template.yaml");
    let rule = &t["Resources"]["AlarmStateRule"];
    assert_eq!(rule["Type"].as_str(), Some("AWS::Events::Rule"));
    let pattern = &rule["Properties"]["EventPattern"];
    assert_eq!(show(&pattern["source"]), "aws.cloudwatch");
    assert_eq!(
        show(&pattern["detail-type"]),
        shared::domain::alarm_events::ALARM_DETAIL_TYPE
    );
    assert_eq!(show(&pattern["detail"]["state"]["value"]), "ALARM");
    let names = &pattern["detail"]["alarmName"].as_sequence().unwrap()[0];
    assert_eq!(show(&names["prefix"]), "!Ref VerifyAlarmNamePrefix");
    let targets = rule["Properties"]["Targets"].as_sequence().unwrap();
    assert_eq!(targets.len(), 1);
    assert_eq!(show(&targets[0]["Arn"]), "!GetAtt DeployEventsFunction.Arn");
    assert!(!targets[0]["DeadLetterConfig"].is_null());
    let permission = &t["Resources"]["AlarmStateInvokePermission"]["Properties"];
    assert_eq!(
        show(&permission["FunctionName"]),
        "!Ref DeployEventsFunction"
    );
    assert_eq!(
        permission["Principal"].as_str(),
        Some("events.amazonaws.com")
    );
    assert_eq!(show(&permission["SourceArn"]), "!GetAtt AlarmStateRule.Arn");
    // the sample event matches the pattern's literal parts
    let sample: serde_json::Value =
        serde_json::from_str(include_str!("../../events/cloudwatch/alarm.json")).unwrap();
    assert_eq!(sample["source"], "aws.cloudwatch");
    assert_eq!(sample["detail"]["state"]["value"], "ALARM");
    assert!(sample["detail"]["alarmName"].as_str().unwrap().starts_with(
        t["Parameters"]["VerifyAlarmNamePrefix"]["Default"]
            .as_str()
            .unwrap()
    ));
}

#[test]
fn the_example_environment_offers_blue_green_wiring_the_hook() {
    let e = load("example-environment.yaml");
    let strategy = &e["Parameters"]["ProdDeploymentStrategy"];
    assert_eq!(strategy["Default"].as_str(), Some("ROLLING"));
    assert_eq!(show(&strategy["AllowedValues"]), "ROLLING,BLUE_GREEN");
    let prod = &e["Resources"]["ProdService"]["Properties"];
    let config = &prod["DeploymentConfiguration"];
    assert!(show(&config["Strategy"]).contains("IsBlueGreen,BLUE_GREEN,ROLLING"));
    let hooks = show(&config["LifecycleHooks"]);
    for part in [
        "IsBlueGreen",
        "!Ref BlueGreenHookTargetArn",
        "!Ref BlueGreenHookRoleArn",
        "POST_TEST_TRAFFIC_SHIFT",
    ] {
        assert!(hooks.contains(part), "{part} in {hooks}");
    }
    let lb = show(&prod["LoadBalancers"][0]["AdvancedConfiguration"]);
    for part in [
        "!Ref ProdAlternateTargetGroup",
        "!Ref ProdListenerRule",
        "!Ref ProdTestListenerRule",
        "!GetAtt EcsLoadBalancerRole.Arn",
    ] {
        assert!(lb.contains(part), "{part} in {lb}");
    }
    // every blue/green resource exists only when asked for
    for id in [
        "ProdAlternateTargetGroup",
        "ProdListenerRule",
        "ProdTestListener",
        "ProdTestListenerRule",
        "ProdTestListenerIngress",
        "EcsLoadBalancerRole",
    ] {
        assert_eq!(
            e["Resources"][id]["Condition"].as_str(),
            Some("IsBlueGreen"),
            "{id}"
        );
    }
    assert_eq!(
        e["Outputs"]["ProdTestListenerUrl"]["Condition"].as_str(),
        Some("IsBlueGreen")
    );
    // the health URLs are outputs and fill the generated pipeline file
    for output in ["TestUrl", "ProdUrl", "ProdTestListenerUrl"] {
        assert!(
            show(&e["Outputs"][output]["Value"]).ends_with("/health"),
            "{output}"
        );
    }
    let file = show(&e["Outputs"]["PipelineFile"]["Value"]);
    assert!(file.contains("[verify.test]\nurl = \"http://${LoadBalancer.DNSName}:8080/health\""));
    assert!(file.contains("[verify.prod]\nurl = \"http://${LoadBalancer.DNSName}/health\""));
    assert!(file.contains("test_listener_url = \"http://${LoadBalancer.DNSName}:9090/health\""));
}
