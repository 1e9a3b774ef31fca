//! Ids, statuses, commits and the stored JSON form of an execution.

use super::fixtures::*;
use super::*;

#[test]
fn image_tags() {
    let e = new_exec();
    assert_eq!(e.image_tag(), "0123456789ab");
    let mut release = new_exec();
    release.commit.sha = String::new();
    assert!(release.image_tag().starts_with("r-"));
    assert_eq!(
        release.image_tag(),
        release.image_tag().to_ascii_lowercase()
    );
}

#[test]
fn ids_statuses_and_environments_parse() {
    let id = ExecutionId::generate(t(0));
    assert_eq!(id.as_str().len(), 26);
    assert_eq!(id.as_str().parse::<ExecutionId>().unwrap(), id);
    assert!("nope".parse::<ExecutionId>().is_err());
    assert!(
        ExecutionId::generate(t(0)) < ExecutionId::generate(t(1)),
        "ids sort by time"
    );
    for s in Status::ALL {
        assert_eq!(s.as_str().parse::<Status>().unwrap(), s);
        assert_eq!(
            serde_json::to_value(s).unwrap(),
            serde_json::json!(s.as_str())
        );
    }
    assert_eq!("PROD".parse::<Environment>().unwrap(), Environment::Prod);
    assert!("staging".parse::<Environment>().is_err());
}

#[test]
fn commit_helpers() {
    let c = new_exec().commit;
    assert_eq!(c.short_sha(), "0123456789ab");
    assert_eq!(c.title(), "Add health check");
    let short = Commit {
        sha: "abc".into(),
        ..Default::default()
    };
    assert_eq!(short.short_sha(), "abc");
    assert_eq!(short.title(), "");
}

#[test]
fn execution_json_round_trip() {
    let e = at(Status::Succeeded);
    let json = serde_json::to_string(&e).unwrap();
    let back: Execution = serde_json::from_str(&json).unwrap();
    assert_eq!(back, e);
    let v: serde_json::Value = serde_json::from_str(&json).unwrap();
    assert_eq!(v["status"], "SUCCEEDED");
    assert_eq!(v["trigger"]["kind"], "github_push");
    assert_eq!(v["approval"]["decision"]["channel"], "email-link");
}

/// Executions exactly as the store holds them (one JSON document per line, as written before
/// `Failure::stage` became an enum): builds failed with and without a link, failed test and prod
/// deployments, a rolled-back release, a success, a completed rollback, a release and a
/// CodeCommit push.
const STORED: &str = include_str!("stored-executions.jsonl");

#[test]
fn stored_executions_decode_and_encode_to_the_same_bytes() {
    let mut stages = Vec::new();
    for line in STORED.lines() {
        let e: Execution = serde_json::from_str(line).expect("a stored execution decodes");
        assert_eq!(serde_json::to_string(&e).unwrap(), line, "{}", e.id);
        stages.extend(e.failure.map(|f| f.stage.to_string()));
    }
    assert_eq!(STORED.lines().count(), 9);
    assert_eq!(stages, ["build", "build", "test", "prod", "prod"]);
}

#[test]
fn stages_are_stored_as_lowercase_words() {
    for (stage, text) in [
        (Stage::Build, "build"),
        (Stage::Test, "test"),
        (Stage::Prod, "prod"),
    ] {
        assert_eq!(stage.to_string(), text);
        assert_eq!(
            serde_json::to_string(&stage).unwrap(),
            format!("\"{text}\"")
        );
        assert_eq!(
            serde_json::from_str::<Stage>(&format!("\"{text}\"")).unwrap(),
            stage
        );
        assert_eq!(text.parse::<Stage>(), Ok(stage));
        assert_eq!(text.to_ascii_uppercase().parse::<Stage>(), Ok(stage));
    }
    assert_eq!(Stage::ALL.len(), 3);
    let err = "deploy".parse::<Stage>().unwrap_err();
    assert_eq!(err, UnknownStage("deploy".into()));
    assert_eq!(
        err.to_string(),
        "unknown stage \"deploy\" (expected build, test or prod)"
    );
}

#[test]
fn parse_errors_are_typed_and_name_the_text() {
    let env = "Staging".parse::<Environment>().unwrap_err();
    assert_eq!(env, UnknownEnvironment("staging".into()));
    assert_eq!(
        env.to_string(),
        "unknown environment \"staging\" (expected test or prod)"
    );
    let status = "DONE".parse::<Status>().unwrap_err();
    assert_eq!(status, UnknownStatus("DONE".into()));
    assert_eq!(status.to_string(), "unknown status \"DONE\"");
}
