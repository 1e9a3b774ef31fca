use super::*;
use serde_json::json;

fn sample() -> Value {
    serde_json::from_str(include_str!(
        "../../../events/ecs/lifecycle-hook-post-test-traffic-shift.json"
    ))
    .unwrap()
}

#[test]
fn the_documented_payload_decodes() {
    let v = sample();
    assert!(is_lifecycle_hook(&v));
    let h = decode_lifecycle_hook(&v).unwrap();
    assert_eq!(h.execution_id, "3a0345ba-b029-404b-890d-7da2a4b266aa");
    assert_eq!(h.stage, LifecycleStage::PostTestTrafficShift);
    assert_eq!(
        (h.cluster.as_str(), h.service.as_str()),
        ("my-cluster", "my-service")
    );
    assert_eq!(
        h.target_revision,
        "arn:aws:ecs:us-west-2:123456789012:service-revision/my-cluster/my-service/9313423515462893900"
    );
    assert!(h
        .resource_arn
        .contains(":service-deployment/my-cluster/my-service/"));
    assert!(!h.rolling_back);
    // hookDetails (service configuration or our own IN_PROGRESS state) is not needed
    let mut with_details = v.clone();
    with_details["hookDetails"] = json!({"S3_BUCKET_NAME": "x", "big": "y".repeat(100_000)});
    assert_eq!(decode_lifecycle_hook(&with_details).unwrap(), h);
}

#[test]
fn a_rollback_traffic_shift_is_recognised() {
    let v: Value = serde_json::from_str(include_str!(
        "../../../events/ecs/lifecycle-hook-production-traffic-shift-rollback.json"
    ))
    .unwrap();
    let h = decode_lifecycle_hook(&v).unwrap();
    assert_eq!(h.stage, LifecycleStage::ProductionTrafficShift);
    assert!(h.rolling_back);
}

#[test]
fn other_payloads_are_not_hooks() {
    let ecs: Value =
        serde_json::from_str(include_str!("../../../events/ecs/completed.json")).unwrap();
    assert!(!is_lifecycle_hook(&ecs));
    assert!(!is_lifecycle_hook(&Value::Null));
    assert!(!is_lifecycle_hook(&json!({"lifecycleStage": "X"})));
}

#[test]
fn hostile_payloads_are_clear_errors() {
    let path_of = |v: &Value| match decode_lifecycle_hook(v) {
        Err(EventDecodeError::Payload { path, .. }) => path,
        other => panic!("expected an error, got {other:?}"),
    };
    let mut v = sample();
    v["lifecycleStage"] = "EXPLODE".into();
    assert_eq!(path_of(&v), "lifecycleStage");
    let mut v = sample();
    v["lifecycleStage"] = "X".repeat(1_000_000).into();
    let err = decode_lifecycle_hook(&v).unwrap_err().to_string();
    assert!(
        err.len() < 300,
        "the error quotes an excerpt: {}",
        err.len()
    );
    let mut v = sample();
    v["executionDetails"]["serviceArn"] = "arn:aws:ecs:us-west-2:1:cluster/x".into();
    assert_eq!(path_of(&v), "executionDetails.serviceArn");
    let mut v = sample();
    v["executionDetails"]["serviceArn"] =
        format!("arn:aws:ecs:r:1:service/c/{}", "s".repeat(5000)).into();
    assert_eq!(path_of(&v), "executionDetails.serviceArn");
    let mut v = sample();
    v["executionDetails"]["targetServiceRevisionArn"] = "rev\u{0}".into();
    assert_eq!(path_of(&v), "executionDetails.targetServiceRevisionArn");
    let mut v = sample();
    v["executionDetails"]["targetServiceRevisionArn"] = 7.into();
    assert_eq!(path_of(&v), "executionDetails.targetServiceRevisionArn");
    let mut v = sample();
    v["executionDetails"]
        .as_object_mut()
        .unwrap()
        .remove("serviceArn");
    assert!(path_of(&v).starts_with("executionDetails"));
    let mut v = sample();
    v["executionId"] = "".into();
    assert_eq!(path_of(&v), "executionId");
    let mut v = sample();
    let many: serde_json::Map<String, Value> =
        (0..1000).map(|i| (format!("rev{i}"), json!(0))).collect();
    v["executionDetails"]["productionTrafficWeights"] = Value::Object(many);
    assert_eq!(path_of(&v), "executionDetails.productionTrafficWeights");
    assert!(decode_lifecycle_hook(&json!([1, 2])).is_err());
    assert!(decode_lifecycle_hook(&Value::Null).is_err());
}

#[test]
fn service_arns() {
    assert_eq!(
        service_of_arn("arn:aws:ecs:eu-west-1:1:service/apps/hello"),
        Some(("apps".into(), "hello".into()))
    );
    assert_eq!(
        service_of_arn("arn:aws:ecs:eu-west-1:1:service/hello"),
        Some(("default".into(), "hello".into()))
    );
    for bad in [
        "arn:aws:lambda:eu-west-1:1:service/apps/hello",
        "arn:aws:ecs:eu-west-1:1:service/",
        "arn:aws:ecs:eu-west-1:1:service/a/b/c",
        "service/apps/hello",
    ] {
        assert_eq!(service_of_arn(bad), None, "{bad}");
    }
    let h = decode_lifecycle_hook(&sample()).unwrap();
    assert!(names_service("my-cluster", "my-service", &h));
    assert!(names_service(
        "arn:aws:ecs:us-west-2:123456789012:cluster/my-cluster",
        "my-service",
        &h
    ));
    assert!(!names_service("other", "my-service", &h));
    assert!(!names_service("my-cluster", "my-service-2", &h));
}

#[test]
fn answers_are_what_ecs_reads() {
    assert_eq!(
        serde_json::to_value(HookAnswer::succeeded()).unwrap(),
        json!({"hookStatus": "SUCCEEDED"})
    );
    assert_eq!(
        serde_json::to_value(HookAnswer::failed()).unwrap(),
        json!({"hookStatus": "FAILED"})
    );
    assert_eq!(
        serde_json::to_value(HookAnswer::in_progress(5)).unwrap(),
        json!({"hookStatus": "IN_PROGRESS", "callBackDelay": 5})
    );
    assert_eq!(HookAnswer::in_progress(-3).callback_delay, Some(1));
    assert_eq!(
        HookAnswer::in_progress(100_000).callback_delay,
        Some(MAX_CALLBACK_DELAY)
    );
}
