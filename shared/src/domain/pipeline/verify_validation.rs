//! Validation of a pipeline's `verify` table (see [`crate::domain::verify`]): every field
//! bounded, every problem reported with its path.

use serde_json::{Map, Value};

use super::{join, Validator};
use crate::domain::verify::*;

const ENV_FIELDS: &[&str] = &[
    "url",
    "expect_status",
    "version_field",
    "version_header",
    "attempts",
    "interval_seconds",
    "timeout_seconds",
    "bake_seconds",
    "bake_minutes",
    "alarms",
    "test_listener_url",
    "smoke_project",
    "smoke_timeout_minutes",
    "smoke_target_url",
];

impl Validator {
    /// `verify` (optional): `verify.test` and `verify.prod`, each optional.
    pub(super) fn verify(&mut self, root: &Map<String, Value>) -> Option<VerifySettings> {
        let value = root.get("verify").filter(|v| !v.is_null())?;
        let table = self.object(value, "verify")?;
        self.unknown_fields(table, "verify", &["test", "prod"]);
        let test = self.environment_verify(table, "test");
        let prod = self.environment_verify(table, "prod");
        if test.is_none() && prod.is_none() {
            return None;
        }
        Some(VerifySettings { test, prod })
    }

    fn environment_verify(
        &mut self,
        table: &Map<String, Value>,
        env: &str,
    ) -> Option<EnvironmentVerify> {
        let value = table.get(env).filter(|v| !v.is_null())?;
        let p = join("verify", env);
        let t = self.object(value, &p)?;
        self.unknown_fields(t, &p, ENV_FIELDS);
        let mut out = EnvironmentVerify {
            url: None,
            expect_status: 200,
            version_field: None,
            version_header: None,
            attempts: DEFAULT_ATTEMPTS,
            interval_seconds: DEFAULT_INTERVAL_SECONDS,
            timeout_seconds: DEFAULT_TIMEOUT_SECONDS,
            bake_seconds: 0,
            alarms: Vec::new(),
            test_listener_url: None,
            smoke_project: None,
            smoke_timeout_minutes: 0,
            smoke_target_url: None,
        };
        if t.contains_key("url") {
            if let Some(url) = self.required_str(t, &p, "url") {
                match valid_check_url(&url) {
                    Ok(()) => out.url = Some(url),
                    Err(m) => self.push(&join(&p, "url"), m),
                }
            }
        }
        if t.contains_key("test_listener_url") {
            if let Some(url) = self.required_str(t, &p, "test_listener_url") {
                match valid_check_url(&url) {
                    Ok(()) if env == "prod" => out.test_listener_url = Some(url),
                    Ok(()) => self.push(
                        &join(&p, "test_listener_url"),
                        "only production is deployed blue/green (ECS lifecycle hook)",
                    ),
                    Err(m) => self.push(&join(&p, "test_listener_url"), m),
                }
            }
        }
        let bounded = |v: &mut Validator, field: &str, range: std::ops::RangeInclusive<u32>| {
            let n = v.optional_u32(t, &p, field)?;
            if range.contains(&n) {
                Some(n)
            } else {
                v.push(
                    &join(&p, field),
                    &format!("must be between {} and {}", range.start(), range.end()),
                );
                None
            }
        };
        if let Some(s) = bounded(self, "expect_status", 100..=599) {
            out.expect_status = s as u16;
        }
        if let Some(n) = bounded(self, "attempts", 1..=MAX_ATTEMPTS) {
            out.attempts = n;
        }
        if let Some(n) = bounded(self, "interval_seconds", 1..=MAX_INTERVAL_SECONDS) {
            out.interval_seconds = n;
        }
        if let Some(n) = bounded(self, "timeout_seconds", 1..=MAX_TIMEOUT_SECONDS) {
            out.timeout_seconds = n;
        }
        let seconds = bounded(self, "bake_seconds", 0..=MAX_BAKE_SECONDS);
        let minutes = bounded(self, "bake_minutes", 0..=MAX_BAKE_SECONDS / 60);
        match (seconds, minutes) {
            (Some(_), Some(_)) => self.push(
                &join(&p, "bake_minutes"),
                "give bake_minutes or bake_seconds, not both",
            ),
            (Some(s), None) => out.bake_seconds = s,
            (None, Some(m)) => out.bake_seconds = m * 60,
            (None, None) => {}
        }
        for field in ["version_field", "version_header"] {
            if t.contains_key(field) {
                if let Some(name) = self.required_str(t, &p, field) {
                    let ok = name.len() <= 128
                        && name
                            .chars()
                            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
                        && !name.split('.').any(str::is_empty);
                    if !ok {
                        self.push(
                            &join(&p, field),
                            "must be up to 128 letters, digits, '-', '_' (a JSON field may be a dot path like build.commit)",
                        );
                    } else if field == "version_field" {
                        out.version_field = Some(name);
                    } else {
                        out.version_header = Some(name);
                    }
                }
            }
        }
        if out.version_field.is_some() && out.version_header.is_some() {
            self.push(
                &join(&p, "version_header"),
                "give version_field or version_header, not both",
            );
        }
        match t.get("alarms") {
            None => {}
            Some(Value::Array(items)) => {
                let ap = join(&p, "alarms");
                if items.len() > MAX_ALARMS {
                    self.push(&ap, &format!("at most {MAX_ALARMS} alarms"));
                }
                for (i, item) in items.iter().take(MAX_ALARMS).enumerate() {
                    match item.as_str() {
                        Some(name) if valid_alarm_name(name) => out.alarms.push(name.to_string()),
                        _ => self.push(
                            &format!("{ap}[{i}]"),
                            "must be a CloudWatch alarm name (1-255 characters)",
                        ),
                    }
                }
            }
            Some(_) => self.push(&join(&p, "alarms"), "must be a list of alarm names"),
        }
        self.smoke(t, &p, &mut out);
        if env == "test" {
            if out.bake_seconds > 0 {
                self.push(&join(&p, "bake_seconds"), "only production bakes");
            }
            if !out.alarms.is_empty() {
                self.push(
                    &join(&p, "alarms"),
                    "alarms are watched only during the production bake",
                );
            }
        }
        if out.url.is_none()
            && out.bake_seconds == 0
            && out.test_listener_url.is_none()
            && out.smoke_project.is_none()
        {
            self.push(
                &p,
                if env == "test" {
                    "needs url (the HTTP check) or smoke_project (a smoke test)"
                } else {
                    "needs url (the HTTP check), test_listener_url (blue/green), smoke_project (a smoke test) or bake_minutes"
                },
            );
        }
        if !out.alarms.is_empty() && out.bake_seconds == 0 {
            self.push(
                &join(&p, "alarms"),
                "are watched during the bake: set bake_minutes (or bake_seconds)",
            );
        }
        Some(out)
    }

    /// `smoke_project` (not with a blue/green `test_listener_url`), `smoke_timeout_minutes`,
    /// `smoke_target_url`.
    fn smoke(&mut self, t: &Map<String, Value>, p: &str, out: &mut EnvironmentVerify) {
        if t.contains_key("smoke_project") {
            if let Some(project) = self.required_str(t, p, "smoke_project") {
                if out.test_listener_url.is_some() {
                    // blue/green: the green revision is verified by ECS's lifecycle hook before
                    // it takes traffic; a smoke build after the traffic moved could only roll
                    // back what the hook already let through
                    self.push(
                        &join(p, "smoke_project"),
                        "not with test_listener_url: a blue/green production is verified by the lifecycle hook before it takes traffic (verify it with url/test_listener_url, bake and alarms)",
                    );
                } else if super::valid_codebuild_project(&project) {
                    out.smoke_project = Some(project);
                } else {
                    self.push(
                        &join(p, "smoke_project"),
                        "must be a CodeBuild project name (2-255 letters, digits, '-' or '_')",
                    );
                }
            }
        }
        let has_smoke = t.contains_key("smoke_project");
        if let Some(n) = self.optional_u32(t, p, "smoke_timeout_minutes") {
            if !(1..=MAX_SMOKE_TIMEOUT_MINUTES).contains(&n) {
                self.push(
                    &join(p, "smoke_timeout_minutes"),
                    &format!("must be between 1 and {MAX_SMOKE_TIMEOUT_MINUTES}"),
                );
            } else if !has_smoke {
                self.push(&join(p, "smoke_timeout_minutes"), "needs smoke_project");
            } else {
                out.smoke_timeout_minutes = n;
            }
        }
        if t.contains_key("smoke_target_url") {
            if let Some(url) = self.required_str(t, p, "smoke_target_url") {
                match valid_check_url(&url) {
                    Err(m) => self.push(&join(p, "smoke_target_url"), m),
                    Ok(()) if !has_smoke => {
                        self.push(&join(p, "smoke_target_url"), "needs smoke_project")
                    }
                    Ok(()) => out.smoke_target_url = Some(url),
                }
            }
        }
    }
}
