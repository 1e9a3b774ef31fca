use chrono::{TimeZone, Utc};

use super::*;
use crate::domain::{Format, PipelineDefinition};

const SHA: &str = "0123456789abcdef0123456789abcdef01234567";
const TAG: &str = "0123456789ab";

fn check(version: VersionSource) -> HttpCheck {
    HttpCheck {
        url: "http://127.0.0.1:9/health".into(),
        expect_status: 200,
        version,
        attempts: 3,
        interval_seconds: 1,
        timeout_seconds: 2,
    }
}

fn answer(status: u16, body: &str) -> ProbeAnswer {
    ProbeAnswer {
        status,
        headers: vec![("x-version".into(), TAG.into())],
        body: body.as_bytes().to_vec(),
    }
}

fn at() -> DateTime<Utc> {
    Utc.timestamp_opt(1_800_000_000, 0).unwrap()
}

#[test]
fn the_version_may_be_the_full_sha_or_the_tag_in_a_field_or_a_header() {
    let json = check(VersionSource::JsonField("version".into()));
    for body in [
        format!(r#"{{"status":"ok","version":"{SHA}"}}"#),
        format!(r#"{{"version":"{}"}}"#, TAG.to_uppercase()),
    ] {
        let r = judge(&json, Ok(&answer(200, &body)), SHA, TAG, at(), 5);
        assert!(r.passed, "{r:?}");
        assert!(r.detail.is_empty());
    }
    let nested = check(VersionSource::JsonField("build.commit".into()));
    let r = judge(
        &nested,
        Ok(&answer(
            200,
            &format!(r#"{{"build":{{"commit":"{TAG}"}}}}"#),
        )),
        SHA,
        TAG,
        at(),
        5,
    );
    assert!(r.passed);
    let header = check(VersionSource::Header("X-Version".into()));
    assert!(judge(&header, Ok(&answer(200, "")), SHA, TAG, at(), 5).passed);
}

#[test]
fn a_wrong_version_status_or_body_fails_with_the_cause() {
    let json = check(VersionSource::JsonField("version".into()));
    let wrong = judge(
        &json,
        Ok(&answer(200, r#"{"version":"ffffffffffff"}"#)),
        SHA,
        TAG,
        at(),
        5,
    );
    assert!(!wrong.passed);
    assert_eq!(wrong.version_seen.as_deref(), Some("ffffffffffff"));
    assert!(wrong
        .describe()
        .contains("version seen ffffffffffff, expected 0123456789abcdef"));
    let down = judge(
        &json,
        Ok(&answer(503, "upstream <b>busy</b>")),
        SHA,
        TAG,
        at(),
        5,
    );
    assert!(!down.passed);
    assert_eq!(down.status, Some(503));
    assert!(
        down.detail.contains("expected status 200") && down.detail.contains("busy"),
        "{}",
        down.detail
    );
    let none = judge(&json, Ok(&answer(200, "not json")), SHA, TAG, at(), 5);
    assert!(!none.passed && none.detail.contains("no version in JSON field"));
    let refused = judge(&json, Err("connection refused"), SHA, TAG, at(), 5);
    assert!(!refused.passed && refused.status.is_none());
    assert!(refused.describe().contains("no answer"));
    // an empty version never matches
    assert!(!version_matches("", SHA, TAG));
    assert!(!version_matches("0123", SHA, TAG));
}

#[test]
fn excerpts_are_bounded_and_free_of_control_characters() {
    let long = "x\n".repeat(1000);
    let e = excerpt(&long);
    assert!(e.chars().count() <= BODY_EXCERPT_CHARS + 1);
    assert!(!e.contains('\n'));
}

#[test]
fn alarms_in_alarm_or_missing_are_problems() {
    let watched = vec!["a".to_string(), "b".to_string(), "c".to_string()];
    let states = vec![
        ("a".to_string(), AlarmState::Ok),
        ("b".to_string(), AlarmState::Alarm),
    ];
    assert_eq!(
        alarm_problems(&watched, &states),
        vec![
            "alarm b is in ALARM".to_string(),
            "alarm c does not exist".to_string()
        ]
    );
    assert!(alarm_problems(&watched[..1], &states).is_empty());
    assert_eq!(
        AlarmState::parse("INSUFFICIENT_DATA"),
        Some(AlarmState::InsufficientData)
    );
    assert_eq!(AlarmState::parse("nope"), None);
}

#[test]
fn check_urls_are_http_or_https_with_a_host_and_no_credentials() {
    assert!(valid_check_url("https://hello.example.com/health").is_ok());
    assert!(valid_check_url("http://127.0.0.1:8080/health?x=1").is_ok());
    for bad in [
        "ftp://x/health",
        "file:///etc/passwd",
        "https://",
        "https://user:pw@host/health",
        "https://host/he alth",
        "//host/health",
    ] {
        assert!(valid_check_url(bad).is_err(), "{bad}");
    }
    assert!(valid_check_url(&format!("https://h/{}", "a".repeat(MAX_URL_LEN))).is_err());
}

const BASE: &str = r#"
name = "hello"
source = { github = "acme/hello" }
build = { project = "hello-build" }
image = { repository = "123456789012.dkr.ecr.eu-west-1.amazonaws.com/hello" }
test = { cluster = "apps", service = "hello-test", container = "app" }
prod = { cluster = "apps", service = "hello-prod", container = "app" }
approval = { topic_arn = "arn:aws:sns:eu-west-1:123456789012:approvals" }
"#;

fn parse(extra: &str) -> Result<PipelineDefinition, crate::domain::ValidationErrors> {
    PipelineDefinition::parse(&format!("{BASE}\n{extra}"), Format::Toml)
}

#[test]
fn a_pipeline_without_verify_has_none() {
    let p = parse("").unwrap();
    assert!(p.verify.is_none());
    assert!(!serde_json::to_string(&p).unwrap().contains("verify"));
}

#[test]
fn verify_settings_parse_with_defaults_and_survive_storage() {
    let p = parse(
        r#"
[verify.test]
url = "https://hello-test.example.com/health"

[verify.prod]
url = "https://hello.example.com/health"
version_header = "x-version"
attempts = 3
interval_seconds = 2
timeout_seconds = 4
bake_minutes = 10
alarms = ["hello-prod-5xx", "hello-prod-latency"]
"#,
    )
    .unwrap();
    let test = p.verify_of(crate::domain::Environment::Test).unwrap();
    let http = test.http().unwrap();
    assert_eq!(http.version, VersionSource::JsonField("version".into()));
    assert_eq!(
        (
            http.attempts,
            http.interval_seconds,
            http.timeout_seconds,
            http.expect_status
        ),
        (
            DEFAULT_ATTEMPTS,
            DEFAULT_INTERVAL_SECONDS,
            DEFAULT_TIMEOUT_SECONDS,
            200
        )
    );
    let prod = p.verify_of(crate::domain::Environment::Prod).unwrap();
    assert_eq!(prod.bake_seconds, 600);
    assert_eq!(prod.alarms.len(), 2);
    assert_eq!(
        prod.http().unwrap().version,
        VersionSource::Header("x-version".into())
    );
    assert_eq!(prod.http().unwrap().overall_seconds(), 18);
    // stored as JSON and validated again (PipelineDefinition::validate)
    p.validate().unwrap();
    let back: PipelineDefinition =
        serde_json::from_str(&serde_json::to_string(&p).unwrap()).unwrap();
    assert_eq!(back, p);
}

#[test]
fn verify_settings_are_bounded_and_every_problem_named() {
    let err = parse(
        r#"
[verify.test]
url = "ftp://hello/health"
attempts = 0
interval_seconds = 61
timeout_seconds = 11
expect_status = 700
bake_seconds = 5
alarms = ["a"]
version_field = "a..b"
colour = "red"

[verify.prod]
bake_minutes = 2000
bake_seconds = 10
alarms = ["a", "b", "c", "d", "e", "f", "g", "h", "i", "j", "k"]
version_field = "version"
version_header = "x-version"

[verify.staging]
url = "https://x/health"
"#,
    )
    .unwrap_err();
    let paths: Vec<&str> = err.0.iter().map(|e| e.path.as_str()).collect();
    for p in [
        "verify.test.url",
        "verify.test.attempts",
        "verify.test.interval_seconds",
        "verify.test.timeout_seconds",
        "verify.test.expect_status",
        "verify.test.bake_seconds",
        "verify.test.alarms",
        "verify.test.version_field",
        "verify.test.colour",
        "verify.prod.bake_minutes",
        "verify.prod.alarms",
        "verify.prod.version_header",
        "verify.staging",
    ] {
        assert!(paths.contains(&p), "{p} missing from {paths:?}");
    }
    // nothing to verify
    let err = parse("[verify.prod]\nattempts = 3\n").unwrap_err();
    assert!(err
        .0
        .iter()
        .any(|e| e.path == "verify.prod" && e.message.contains("needs url")));
    // alarms without a bake
    let err = parse("[verify.prod]\nurl = \"https://x/health\"\nalarms = [\"a\"]\n").unwrap_err();
    assert!(err.0.iter().any(|e| e.path == "verify.prod.alarms"));
    // a non-table verify
    assert!(parse("verify = 3\n").is_err());
    // a bake-only production verification is fine
    let p = parse("[verify.prod]\nbake_seconds = 5\nalarms = [\"a\"]\n").unwrap();
    assert!(p
        .verify_of(crate::domain::Environment::Prod)
        .unwrap()
        .http()
        .is_none());
}

#[test]
fn test_listener_url_is_a_validated_production_only_check_url() {
    let p = parse(
        "[verify.prod]\ntest_listener_url = \"http://hello-lb:9090/health\"\nattempts = 4\nversion_header = \"x-version\"\n",
    )
    .expect("a blue/green check alone is enough");
    let prod = p.verify_of(crate::domain::Environment::Prod).unwrap();
    assert!(prod.http().is_none(), "no check after ECS completed");
    let green = prod.green_check().unwrap();
    assert_eq!(green.url, "http://hello-lb:9090/health");
    assert_eq!(green.attempts, 4);
    assert_eq!(green.version, VersionSource::Header("x-version".into()));
    for (text, path) in [
        (
            "[verify.prod]\ntest_listener_url = \"ftp://x\"\n",
            "verify.prod.test_listener_url",
        ),
        (
            "[verify.prod]\ntest_listener_url = \"http://user:pw@x/health\"\n",
            "verify.prod.test_listener_url",
        ),
        (
            "[verify.prod]\ntest_listener_url = 9\n",
            "verify.prod.test_listener_url",
        ),
        (
            "[verify.test]\nurl = \"http://x/health\"\ntest_listener_url = \"http://x:9090/health\"\n",
            "verify.test.test_listener_url",
        ),
    ] {
        let err = parse(text).unwrap_err();
        assert!(err.0.iter().any(|e| e.path == path), "{path}: {err:?}");
    }
    let long = format!(
        "[verify.prod]\ntest_listener_url = \"http://x/{}\"\n",
        "a".repeat(3000)
    );
    assert!(parse(&long).is_err());
}

#[test]
fn smoke_test_settings_are_validated_and_stored() {
    let p = parse(
        r#"
[verify.test]
url = "https://hello-test.example.com/health"
smoke_project = "shipgate-smoke-hello"
smoke_timeout_minutes = 15
"#,
    )
    .unwrap();
    let test = p.verify_of(crate::domain::Environment::Test).unwrap();
    let smoke = test.smoke().unwrap();
    assert_eq!(smoke.project, "shipgate-smoke-hello");
    assert_eq!(smoke.timeout_minutes, 15);
    // TARGET_URL defaults to the check's url
    assert_eq!(smoke.target_url, "https://hello-test.example.com/health");
    p.validate().unwrap();
    let back: PipelineDefinition =
        serde_json::from_str(&serde_json::to_string(&p).unwrap()).unwrap();
    assert_eq!(back, p);
    // a smoke test alone verifies test; the default timeout; its own TARGET_URL
    let p = parse(
        "[verify.test]\nsmoke_project = \"shipgate-smoke-hello\"\nsmoke_target_url = \"https://hello-test.example.com/\"\n",
    )
    .unwrap();
    let smoke = p
        .verify_of(crate::domain::Environment::Test)
        .unwrap()
        .smoke()
        .unwrap();
    assert_eq!(smoke.timeout_minutes, DEFAULT_SMOKE_TIMEOUT_MINUTES);
    assert_eq!(smoke.target_url, "https://hello-test.example.com/");
    // without a smoke test: none
    let p = parse("[verify.test]\nurl = \"https://x/health\"\n").unwrap();
    assert!(p
        .verify_of(crate::domain::Environment::Test)
        .unwrap()
        .smoke()
        .is_none());
    // every problem with its path
    let err = parse(
        r#"
[verify.test]
url = "https://x/health"
smoke_project = "no spaces allowed"
smoke_timeout_minutes = 121
smoke_target_url = "https://user:pw@x/"

[verify.prod]
url = "https://y/health"
test_listener_url = "https://y:9090/health"
smoke_project = "shipgate-smoke-hello"
"#,
    )
    .unwrap_err();
    let problems: Vec<(&str, &str)> = err
        .0
        .iter()
        .map(|e| (e.path.as_str(), e.message.as_str()))
        .collect();
    for (path, needle) in [
        ("verify.test.smoke_project", "CodeBuild project name"),
        ("verify.test.smoke_timeout_minutes", "between 1 and 120"),
        ("verify.test.smoke_target_url", "user information"),
        ("verify.prod.smoke_project", "not with test_listener_url"),
    ] {
        assert!(
            problems
                .iter()
                .any(|(p, m)| *p == path && m.contains(needle)),
            "{path}: {needle} missing from {problems:?}"
        );
    }
    // production: a smoke test after the HTTP check, or alone (with a bake)
    let p = parse(
        "[verify.prod]\nurl = \"https://y/health\"\nsmoke_project = \"shipgate-smoke-hello\"\nsmoke_timeout_minutes = 7\nbake_minutes = 1\n",
    )
    .unwrap();
    let prod = p.verify_of(crate::domain::Environment::Prod).unwrap();
    let smoke = prod.smoke().unwrap();
    assert_eq!(smoke.project, "shipgate-smoke-hello");
    assert_eq!(smoke.timeout_minutes, 7);
    assert_eq!(smoke.target_url, "https://y/health");
    assert_eq!(prod.bake_seconds, 60);
    let p = parse("[verify.prod]\nsmoke_project = \"shipgate-smoke-hello\"\nsmoke_target_url = \"https://y/\"\n")
        .unwrap();
    assert_eq!(
        p.verify_of(crate::domain::Environment::Prod)
            .unwrap()
            .smoke()
            .unwrap()
            .target_url,
        "https://y/"
    );
    // the smoke fields need a project
    let err = parse(
        "[verify.test]\nurl = \"https://x/health\"\nsmoke_timeout_minutes = 5\nsmoke_target_url = \"https://x/\"\n",
    )
    .unwrap_err();
    for path in [
        "verify.test.smoke_timeout_minutes",
        "verify.test.smoke_target_url",
    ] {
        assert!(
            err.0
                .iter()
                .any(|e| e.path == path && e.message.contains("needs smoke_project")),
            "{path}: {err}"
        );
    }
    // nothing to verify in test
    let err = parse("[verify.test]\nattempts = 3\n").unwrap_err();
    assert!(err
        .0
        .iter()
        .any(|e| e.path == "verify.test"
            && e.message.contains("url (the HTTP check) or smoke_project")));
}
