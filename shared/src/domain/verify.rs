//! Verified promotion, the pure part: a pipeline's `verify` settings per environment (HTTP
//! checks of the deployed service, a production bake watching CloudWatch alarms), what one check
//! attempt came to, and the record an execution keeps of its verification. The states and
//! transitions are in the execution state machine (`VERIFYING_TEST`, `VERIFYING_PROD`,
//! `BAKING_PROD`); performing checks is `app::verification`.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::Environment;

/// Most HTTP check attempts per verification.
pub const MAX_ATTEMPTS: u32 = 30;
/// Default attempts.
pub const DEFAULT_ATTEMPTS: u32 = 10;
/// Longest wait between two attempts, seconds.
pub const MAX_INTERVAL_SECONDS: u32 = 60;
pub const DEFAULT_INTERVAL_SECONDS: u32 = 5;
/// Longest time one request may take, seconds (well inside a function's 30 s timeout).
pub const MAX_TIMEOUT_SECONDS: u32 = 10;
pub const DEFAULT_TIMEOUT_SECONDS: u32 = 5;
/// Longest production bake: one day.
pub const MAX_BAKE_SECONDS: u32 = 86_400;
/// Most alarms watched during a bake (one `DescribeAlarms` call answers up to 100 names).
pub const MAX_ALARMS: usize = 10;
/// Longest check URL.
pub const MAX_URL_LEN: usize = 2048;
/// Most bytes of a response body read; the rest is not read.
pub const MAX_BODY_BYTES: usize = 64 * 1024;
/// Most characters of a body kept in a check result (for the failure cause).
pub const BODY_EXCERPT_CHARS: usize = 200;
/// Longest a smoke test build may take before the verification fails, minutes (the sweeper
/// fails a smoke build that never reports after this).
pub const MAX_SMOKE_TIMEOUT_MINUTES: u32 = 120;
pub const DEFAULT_SMOKE_TIMEOUT_MINUTES: u32 = 20;

/// `verify` of a pipeline: per environment, optional.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
pub struct VerifySettings {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub test: Option<EnvironmentVerify>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub prod: Option<EnvironmentVerify>,
}

impl VerifySettings {
    pub fn of(&self, env: Environment) -> Option<&EnvironmentVerify> {
        match env {
            Environment::Test => self.test.as_ref(),
            Environment::Prod => self.prod.as_ref(),
        }
    }
}

/// What verifies one environment after ECS reports its deployment complete. Stored flat, as
/// written in the pipeline file (`[verify.test]`, `[verify.prod]`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
pub struct EnvironmentVerify {
    /// The HTTP check's URL; `None`: no HTTP check (production: only the bake).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub url: Option<String>,
    pub expect_status: u16,
    /// The JSON field (dot path) carrying the version; default `version`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub version_field: Option<String>,
    /// Or the header carrying it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub version_header: Option<String>,
    pub attempts: u32,
    pub interval_seconds: u32,
    pub timeout_seconds: u32,
    /// Production only: seconds the release bakes after its check passed (0: no bake).
    #[serde(default)]
    pub bake_seconds: u32,
    /// Production only: CloudWatch alarm names; one in ALARM during the bake rolls back.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub alarms: Vec<String>,
    /// Production only, ECS blue/green: the URL of the load balancer's test listener, checked
    /// (with this table's expectations) when ECS invokes shipgate's lifecycle hook at
    /// `POST_TEST_TRAFFIC_SHIFT` — the green revision answers there before production
    /// traffic moves (see [`crate::domain::ecs_hook`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub test_listener_url: Option<String>,
    /// The CodeBuild project of the smoke test started after the HTTP check passed (or at once
    /// without a URL); its build state change decides the verification (production: a failed
    /// one rolls back automatically; not with `test_listener_url`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub smoke_project: Option<String>,
    /// Minutes the smoke test may take (0: [`DEFAULT_SMOKE_TIMEOUT_MINUTES`]).
    #[serde(default, skip_serializing_if = "is_zero")]
    pub smoke_timeout_minutes: u32,
    /// `TARGET_URL` of the smoke build when it is not the check's `url`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub smoke_target_url: Option<String>,
}

fn is_zero(n: &u32) -> bool {
    *n == 0
}

/// The smoke test a verification asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SmokeSpec {
    pub project: String,
    /// `TARGET_URL` ("" when the pipeline names none).
    pub target_url: String,
    pub timeout_minutes: u32,
}

impl EnvironmentVerify {
    /// The smoke test, if a project is set.
    pub fn smoke(&self) -> Option<SmokeSpec> {
        let project = self.smoke_project.clone()?;
        Some(SmokeSpec {
            project,
            target_url: self
                .smoke_target_url
                .clone()
                .or_else(|| self.url.clone())
                .unwrap_or_default(),
            timeout_minutes: match self.smoke_timeout_minutes {
                0 => DEFAULT_SMOKE_TIMEOUT_MINUTES,
                n => n.min(MAX_SMOKE_TIMEOUT_MINUTES),
            },
        })
    }

    /// The HTTP check, if a URL is set.
    pub fn http(&self) -> Option<HttpCheck> {
        let url = self.url.clone()?;
        let version = match (&self.version_header, &self.version_field) {
            (Some(h), _) => VersionSource::Header(h.clone()),
            (None, Some(f)) => VersionSource::JsonField(f.clone()),
            (None, None) => VersionSource::JsonField("version".into()),
        };
        Some(HttpCheck {
            url,
            expect_status: self.expect_status,
            version,
            attempts: self.attempts,
            interval_seconds: self.interval_seconds,
            timeout_seconds: self.timeout_seconds,
        })
    }

    /// The check the blue/green lifecycle hook runs against the green revision: this table's
    /// check with the test listener's URL, if one is set.
    pub fn green_check(&self) -> Option<HttpCheck> {
        let url = self.test_listener_url.clone()?;
        let mut with_url = self.clone();
        with_url.url = Some(url);
        with_url.http()
    }

    /// Does anything remain after the HTTP check passed (a bake or alarms)?
    pub fn bakes(&self) -> bool {
        self.bake_seconds > 0
    }
}

/// Which part of the answer carries the version.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum VersionSource {
    /// A field of the JSON body, a dot path (`version`, `build.commit`).
    JsonField(String),
    /// A response header (name compared ignoring case).
    Header(String),
}

impl VersionSource {
    pub fn describe(&self) -> String {
        match self {
            VersionSource::JsonField(f) => format!("JSON field {f:?}"),
            VersionSource::Header(h) => format!("header {h:?}"),
        }
    }
}

/// `GET url` must answer `expect_status` and name the deployed commit (its full SHA or its
/// 12-character tag) in `version`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HttpCheck {
    pub url: String,
    pub expect_status: u16,
    pub version: VersionSource,
    pub attempts: u32,
    pub interval_seconds: u32,
    pub timeout_seconds: u32,
}

impl HttpCheck {
    /// The longest a verification by this check can take: every attempt timing out.
    pub fn overall_seconds(&self) -> u64 {
        u64::from(self.attempts) * u64::from(self.interval_seconds + self.timeout_seconds)
    }
}

/// One HTTP answer (or the error instead of one), bounded: at most [`MAX_BODY_BYTES`] of body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProbeAnswer {
    pub status: u16,
    /// Header names lower case.
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

/// What one check attempt came to.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CheckResult {
    pub url: String,
    pub at: DateTime<Utc>,
    pub elapsed_ms: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<u16>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub version_seen: Option<String>,
    pub version_expected: String,
    pub passed: bool,
    /// Why it did not pass (error, wrong status with a body excerpt, wrong version); empty
    /// when it passed.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub detail: String,
}

impl CheckResult {
    /// One line for the history and the failure cause.
    pub fn describe(&self) -> String {
        let seen = self.version_seen.as_deref().unwrap_or("none");
        let status = self
            .status
            .map(|s| s.to_string())
            .unwrap_or_else(|| "no answer".into());
        if self.passed {
            format!(
                "GET {} answered {status} with version {seen} ({} ms)",
                self.url, self.elapsed_ms
            )
        } else {
            format!(
                "GET {} answered {status}, version seen {seen}, expected {}: {}",
                self.url, self.version_expected, self.detail
            )
        }
    }
}

/// The verification of one environment, kept on the execution.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Verification {
    pub started_at: DateTime<Utc>,
    /// Check attempts recorded so far.
    #[serde(default)]
    pub attempts: u32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last: Option<CheckResult>,
    /// When the check passed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub passed_at: Option<DateTime<Utc>>,
    /// Production: the bake this verification asked for (seconds after passing).
    #[serde(default)]
    pub bake_seconds: u32,
    /// Production: when the bake ends.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bake_until: Option<DateTime<Utc>>,
    /// Alarm names watched during the bake.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub alarms: Vec<String>,
    /// The verification failed.
    #[serde(default)]
    pub failed: bool,
    /// Production: the automatic rollback started after it failed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rollback: Option<super::ExecutionId>,
    /// ECS blue/green: the green service revision (ARN) this verification checks through the
    /// test listener, driven by ECS's lifecycle hook invocations; ECS, not shipgate, rolls
    /// back a green revision that fails.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub green: Option<String>,
    /// The smoke test, once the HTTP check passed (the verification's second phase).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub smoke: Option<SmokeRun>,
}

/// A smoke test build: asked for (the HTTP check passed), started (its build id linked to the
/// execution, so its CodeBuild state change finds it), finished.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SmokeRun {
    pub project: String,
    /// `TARGET_URL` given to the build.
    #[serde(default)]
    pub target_url: String,
    pub timeout_minutes: u32,
    /// CodeBuild idempotency token of its `StartBuild`: one per execution and round, so a
    /// retried or resumed step gets the same build (AWS keeps a token for 5 minutes).
    pub token: String,
    pub requested_at: DateTime<Utc>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub build_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub started_at: Option<DateTime<Utc>>,
    /// The build's final status (`SUCCEEDED`, `FAILED`, `FAULT`, `STOPPED`, `TIMED_OUT`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub outcome: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub finished_at: Option<DateTime<Utc>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub logs_link: Option<String>,
}

impl SmokeRun {
    /// The token of the smoke build of execution `execution_id` in round `attempt` of `env`
    /// (test keeps the token it always had).
    pub fn token_for(execution_id: &str, attempt: u32, env: Environment) -> String {
        match env {
            Environment::Test => format!("{execution_id}-smoke-{attempt}"),
            Environment::Prod => format!("{execution_id}-smoke-prod-{attempt}"),
        }
    }

    /// The build that runs and has not reported yet.
    pub fn running_build(&self) -> Option<&str> {
        self.build_id.as_deref().filter(|_| self.outcome.is_none())
    }

    /// When a started build that never reported fails the verification.
    pub fn deadline(&self) -> Option<DateTime<Utc>> {
        self.started_at
            .map(|s| s + chrono::Duration::minutes(i64::from(self.timeout_minutes)))
    }

    pub fn passed(&self) -> bool {
        self.outcome.as_deref() == Some("SUCCEEDED")
    }

    /// One line: `smoke test P passed (build B, 12 s)`.
    pub fn describe(&self) -> String {
        let build = self.build_id.as_deref().unwrap_or("not started");
        let took = match (self.started_at, self.finished_at) {
            (Some(s), Some(f)) => format!(", {} s", (f - s).num_seconds()),
            _ => String::new(),
        };
        match self.outcome.as_deref() {
            Some("SUCCEEDED") => {
                format!("smoke test {} passed (build {build}{took})", self.project)
            }
            Some(other) => format!("smoke test {} {other} (build {build}{took})", self.project),
            None => format!("smoke test {} running (build {build})", self.project),
        }
    }
}

/// Is `status` a final CodeBuild build status?
pub fn build_finished(status: &str) -> bool {
    matches!(
        status,
        "SUCCEEDED" | "FAILED" | "FAULT" | "STOPPED" | "TIMED_OUT"
    )
}

impl Verification {
    /// A blue/green verification whose green revision failed before it took production
    /// traffic: ECS rolls it back (the hook answered FAILED), shipgate does not.
    pub fn rolled_back_by_ecs(&self) -> bool {
        self.green.is_some() && self.failed && self.passed_at.is_none()
    }

    /// A blue/green verification of the green revision whose check passed.
    pub fn green_passed(&self) -> bool {
        self.green.is_some() && self.passed_at.is_some() && !self.failed
    }

    /// Seconds from the start of the verification to its pass.
    pub fn duration_seconds(&self) -> Option<i64> {
        self.passed_at.map(|p| (p - self.started_at).num_seconds())
    }

    /// What was verified, one line (for the approval message and page).
    pub fn summary(&self) -> Option<String> {
        let smoke = self.smoke.as_ref().filter(|s| s.passed());
        let Some(last) = self.last.as_ref().filter(|l| l.passed) else {
            return smoke.map(SmokeRun::describe);
        };
        let http = format!(
            "GET {} answered {} with version {} after {} attempt{} ({} s)",
            last.url,
            last.status.map(|s| s.to_string()).unwrap_or_default(),
            last.version_seen.as_deref().unwrap_or("-"),
            self.attempts,
            if self.attempts == 1 { "" } else { "s" },
            self.duration_seconds().unwrap_or(0)
        );
        Some(match smoke {
            Some(s) => format!("{http}; {}", s.describe()),
            None => http,
        })
    }
}

/// Alarm state as CloudWatch reports it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum AlarmState {
    Ok,
    Alarm,
    InsufficientData,
}

impl AlarmState {
    pub fn parse(s: &str) -> Option<AlarmState> {
        match s {
            "OK" => Some(AlarmState::Ok),
            "ALARM" => Some(AlarmState::Alarm),
            "INSUFFICIENT_DATA" => Some(AlarmState::InsufficientData),
            _ => None,
        }
    }
}

/// The alarms among `watched` that are in ALARM, or missing (a watched alarm that does not
/// exist is a misconfiguration the bake must not pass silently).
pub fn alarm_problems(watched: &[String], states: &[(String, AlarmState)]) -> Vec<String> {
    let mut out = Vec::new();
    for name in watched {
        match states.iter().find(|(n, _)| n == name) {
            Some((_, AlarmState::Alarm)) => out.push(format!("alarm {name} is in ALARM")),
            Some(_) => {}
            None => out.push(format!("alarm {name} does not exist")),
        }
    }
    out
}

/// Does `seen` name the commit: its full SHA or its 12-character tag (ASCII case ignored)?
pub fn version_matches(seen: &str, sha: &str, tag: &str) -> bool {
    let seen = seen.trim();
    !seen.is_empty()
        && ((!sha.is_empty() && seen.eq_ignore_ascii_case(sha))
            || (!tag.is_empty() && seen.eq_ignore_ascii_case(tag)))
}

/// Judge one answer (or the error instead of one) of `check` against the deployed commit.
pub fn judge(
    check: &HttpCheck,
    answer: Result<&ProbeAnswer, &str>,
    sha: &str,
    tag: &str,
    at: DateTime<Utc>,
    elapsed_ms: u64,
) -> CheckResult {
    let expected = if sha.is_empty() { tag } else { sha }.to_string();
    let mut result = CheckResult {
        url: check.url.clone(),
        at,
        elapsed_ms,
        status: None,
        version_seen: None,
        version_expected: expected,
        passed: false,
        detail: String::new(),
    };
    let answer = match answer {
        Ok(a) => a,
        Err(e) => {
            result.detail = excerpt(e);
            return result;
        }
    };
    result.status = Some(answer.status);
    result.version_seen = match &check.version {
        VersionSource::Header(h) => answer
            .headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(h))
            .map(|(_, v)| excerpt(v)),
        VersionSource::JsonField(path) => serde_json::from_slice::<Value>(&answer.body)
            .ok()
            .and_then(|v| {
                let mut cur = &v;
                for seg in path.split('.') {
                    cur = cur.get(seg)?;
                }
                match cur {
                    Value::String(s) => Some(excerpt(s)),
                    Value::Number(n) => Some(n.to_string()),
                    _ => None,
                }
            }),
    };
    if answer.status != check.expect_status {
        result.detail = format!(
            "expected status {}; body: {:?}",
            check.expect_status,
            excerpt(&String::from_utf8_lossy(&answer.body))
        );
        return result;
    }
    match &result.version_seen {
        Some(v) if version_matches(v, sha, tag) => result.passed = true,
        Some(_) => result.detail = "the service runs another version".into(),
        None => {
            result.detail = format!(
                "no version in {}; body: {:?}",
                check.version.describe(),
                excerpt(&String::from_utf8_lossy(&answer.body))
            )
        }
    }
    result
}

/// At most [`BODY_EXCERPT_CHARS`] characters, control characters replaced.
pub fn excerpt(s: &str) -> String {
    let mut out: String = s
        .chars()
        .take(BODY_EXCERPT_CHARS)
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect();
    if s.chars().count() > BODY_EXCERPT_CHARS {
        out.push('…');
    }
    out
}

/// A check URL: `http://` or `https://`, a host, no user info, at most [`MAX_URL_LEN`].
pub fn valid_check_url(url: &str) -> Result<(), &'static str> {
    if url.len() > MAX_URL_LEN {
        return Err("must be at most 2048 characters");
    }
    if url.chars().any(|c| c.is_control() || c.is_whitespace()) {
        return Err("must not contain spaces or control characters");
    }
    let rest = url
        .strip_prefix("https://")
        .or_else(|| url.strip_prefix("http://"))
        .ok_or("must start with http:// or https://")?;
    let authority = rest.split(['/', '?', '#']).next().unwrap_or("");
    if authority.is_empty() {
        return Err("must name a host");
    }
    if authority.contains('@') {
        return Err("must not contain user information (credentials do not belong in a pipeline definition)");
    }
    Ok(())
}

/// A CloudWatch alarm name: 1-255 printable characters.
pub fn valid_alarm_name(name: &str) -> bool {
    (1..=255).contains(&name.len()) && !name.chars().any(|c| c.is_control())
}

#[cfg(test)]
#[path = "verify_tests.rs"]
mod tests;
