use super::*;
use crate::domain::{Channel, Environment, ExecutionId};
use serde_json::{json, Value};

/// Every sample request in `events/control/`, with its file name.
fn samples() -> Vec<(String, Value)> {
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/../events/control");
    let mut out: Vec<(String, Value)> = std::fs::read_dir(dir)
        .unwrap()
        .map(|entry| {
            let path = entry.unwrap().path();
            let text = std::fs::read_to_string(&path).unwrap();
            let name = path.file_name().unwrap().to_string_lossy().into_owned();
            (name, serde_json::from_str(&text).unwrap())
        })
        .collect();
    out.sort_by(|a, b| a.0.cmp(&b.0));
    out
}

#[test]
fn every_sample_decodes_and_round_trips_unchanged() {
    for (name, raw) in samples() {
        let request = ControlRequest::decode(raw.clone()).unwrap_or_else(|e| panic!("{name}: {e}"));
        let via_serde: ControlRequest = serde_json::from_value(raw.clone()).unwrap();
        assert_eq!(via_serde, request, "{name}");
        assert_eq!(Some(request.command()), raw["command"].as_str(), "{name}");
        // what the CLI would send for it is the sample itself
        assert_eq!(serde_json::to_value(&request).unwrap(), raw, "{name}");
    }
}

#[test]
fn every_command_is_listed_and_has_a_sample() {
    let sampled: Vec<&'static str> = samples()
        .into_iter()
        .map(|(_, raw)| ControlRequest::decode(raw).unwrap().command())
        .collect();
    for command in ControlRequest::COMMANDS {
        assert!(
            sampled.contains(command),
            "no sample for {command} in events/control/"
        );
    }
    // every variant a sample decodes to is in the list the unknown-command error shows
    let unknown = ControlRequest::decode(json!({"command": "explode"})).unwrap_err();
    assert_eq!(unknown.code(), "unknown_command");
    for command in &sampled {
        assert!(ControlRequest::COMMANDS.contains(command), "{command}");
        assert!(unknown.to_string().contains(command), "{unknown}");
    }
    let mut distinct = ControlRequest::COMMANDS.to_vec();
    distinct.sort_unstable();
    distinct.dedup();
    assert_eq!(distinct.len(), ControlRequest::COMMANDS.len());
}

#[test]
fn problems_name_the_command_and_the_field() {
    for (input, code, needle) in [
        (json!("show"), "invalid_argument", "expected a JSON object"),
        (
            json!({}),
            "invalid_argument",
            "missing `command` (one of: apply_pipeline",
        ),
        (
            json!({"command": 3}),
            "invalid_argument",
            "`command` must be a string",
        ),
        (
            json!({"command": "explode"}),
            "unknown_command",
            "unknown command \"explode\"",
        ),
        (
            json!({"command": "show"}),
            "invalid_argument",
            "show: missing field `execution_id`",
        ),
        (
            json!({"command": "show", "execution_id": "nope"}),
            "invalid_argument",
            "show: field `execution_id`: not an execution id",
        ),
        (
            json!({"command": "show", "execution_id": "01JD3V5X8Q2M4N6P7R9S0T1V2W", "extra": 1}),
            "invalid_argument",
            "show: field `extra`: unknown field `extra`",
        ),
        (
            json!({"command": "show_pipeline", "pipeline": "hello", "history": "yes"}),
            "invalid_argument",
            "show_pipeline: field `history`: invalid type",
        ),
        (
            json!({"command": "rollback", "pipeline": "hello", "environment": "staging"}),
            "invalid_argument",
            "rollback: field `environment`: unknown environment \"staging\"",
        ),
        (
            json!({"command": "approve", "execution_id": "01JD3V5X8Q2M4N6P7R9S0T1V2W", "actor": "a", "channel": "email-link"}),
            "invalid_argument",
            "approve: field `channel`",
        ),
        (
            json!({"command": "apply_pipeline", "definition": "x", "format": "ini"}),
            "invalid_argument",
            "apply_pipeline: field `format`",
        ),
        (
            json!({"command": "retry", "execution_id": "01JD3V5X8Q2M4N6P7R9S0T1V2W", "actor": "a".repeat(MAX_ARGUMENT_BYTES + 1)}),
            "invalid_argument",
            "retry: `actor` is 1025 bytes; at most 1024 are allowed",
        ),
    ] {
        let e = ControlRequest::decode(input.clone()).unwrap_err();
        assert_eq!(e.code(), code, "{input}: {e}");
        assert!(e.to_string().contains(needle), "{input}: {e}");
        assert!(!e.to_string().contains(" at line "), "{e}");
    }
}

#[test]
fn arguments_keep_their_defaults_and_bounds() {
    let r = ControlRequest::decode(json!({"command": "list_executions", "pipeline": "p"})).unwrap();
    let ControlRequest::ListExecutions(l) = r else {
        panic!("{r:?}")
    };
    assert_eq!(l.limit(), DEFAULT_EXECUTION_LIMIT);
    for (given, used) in [(0, 1), (7, 7), (10_000, MAX_EXECUTION_LIMIT)] {
        let l = ListExecutions {
            pipeline: "p".into(),
            limit: Some(given),
        };
        assert_eq!(l.limit(), used);
    }
    let r = ControlRequest::decode(
        json!({"command": "rollback", "pipeline": "p", "environment": "Production"}),
    )
    .unwrap();
    assert!(
        matches!(
            &r,
            ControlRequest::Rollback(Rollback {
                environment: Environment::Prod,
                ..
            })
        ),
        "{r:?}"
    );
    let r = ControlRequest::decode(
        json!({"command": "approve", "execution_id": "01jd3v5x8q2m4n6p7r9s0t1v2w"}),
    )
    .unwrap();
    let ControlRequest::Approve(d) = &r else {
        panic!("{r:?}")
    };
    assert_eq!(d.execution_id.as_str(), "01JD3V5X8Q2M4N6P7R9S0T1V2W");
    assert_eq!(d.channel(), Channel::Cli);
    // a definition is bounded as a pipeline file, not as an argument
    let long = "#".repeat(10 * MAX_ARGUMENT_BYTES);
    let r = ControlRequest::decode(
        json!({"command": "apply_pipeline", "definition": long, "format": "yml"}),
    )
    .unwrap();
    assert!(
        matches!(
            &r,
            ControlRequest::ApplyPipeline(ApplyPipeline {
                format: Some(DefinitionFormat::Yaml),
                ..
            })
        ),
        "{r:?}"
    );
}

#[test]
fn the_actor_is_set_only_where_control_records_one() {
    let id: ExecutionId = "01JD3V5X8Q2M4N6P7R9S0T1V2W".parse().unwrap();
    let mut approve = ControlRequest::Approve(Decide {
        execution_id: id.clone(),
        actor: None,
        comment: None,
        channel: None,
    });
    assert!(approve.records_actor());
    approve.set_actor("arn:aws:iam::123456789012:user/ops");
    assert_eq!(approve.actor(), Some("arn:aws:iam::123456789012:user/ops"));
    assert_eq!(
        serde_json::to_value(&approve).unwrap(),
        json!({"command": "approve", "execution_id": id.as_str(), "actor": "arn:aws:iam::123456789012:user/ops"})
    );
    let mut show = ControlRequest::Show(ExecutionRef {
        execution_id: id,
        actor: None,
    });
    assert!(!show.records_actor());
    show.set_actor("x");
    assert_eq!(show.actor(), None);
}

#[test]
fn answers_decode_as_the_type_of_their_request() {
    let request = ControlRequest::ApplyPipeline(ApplyPipeline::default());
    let applied = PipelineApplied {
        pipeline: "hello".into(),
        result: ApplyResult::Updated,
        version: 2,
        changes: vec![FieldChange {
            path: "mode".into(),
            before: Some(json!("superseded")),
            after: Some(json!("queued")),
        }],
    };
    let wire = serde_json::to_value(ControlResponse::Applied(applied.clone())).unwrap();
    assert_eq!(wire["result"], "updated");
    assert_eq!(
        Answer::decode(&request, wire).unwrap(),
        Answer::Done(Box::new(ControlResponse::Applied(applied)))
    );

    let refusal = json!({"error": {"code": "invalid_pipeline", "message": "2 problems", "details": [{"path": "name", "message": "required"}]}});
    let Answer::Refused(e) = Answer::decode(&request, refusal.clone()).unwrap() else {
        panic!("not a refusal")
    };
    assert_eq!(e.code, "invalid_pipeline");
    assert_eq!(e.details.as_ref().unwrap()[0].path, "name");
    assert_eq!(
        serde_json::to_value(ErrorAnswer { error: e }).unwrap(),
        refusal
    );

    let plain = ControlError::from(RequestError::UnknownCommand {
        command: "x".into(),
    });
    let wire = serde_json::to_value(ErrorAnswer { error: plain }).unwrap();
    assert_eq!(wire["error"]["code"], "unknown_command");
    assert!(wire["error"].get("details").is_none(), "{wire}");

    // an answer of another shape is not mistaken for this one
    assert!(Answer::decode(&request, json!({"pipelines": []})).is_err());
}
