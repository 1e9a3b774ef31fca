//! Approval policy (issue 15): who may approve a pipeline's releases, how many distinct
//! approvers are needed (N-of-M), and no self-approval. Pure: types, validation, matching.
//!
//! ```toml
//! [approval]
//! topic_arn = "arn:aws:sns:eu-west-1:123456789012:shipgate-approvals"
//! required = 2                 # distinct approvers (default 1)
//! allow_self_approval = false  # default: the pusher / commit author cannot approve
//! approvers = [
//!   { email = "alice@example.com", github = "alice", arn = "arn:aws:iam::123456789012:user/alice" },
//!   { email = "bob@example.com", arn = "arn:aws:sts::123456789012:assumed-role/Deploy/bob*" },
//! ]
//! ```

use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::glob::Glob;
use super::identity::VerifiedCaller;
use super::{Approval, Execution, Trigger, ValidationError};

/// Most approvers a pipeline lists.
pub const MAX_APPROVERS: usize = 50;

/// One person who may approve.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Approver {
    /// Their e-mail address: their id in decisions and counts.
    pub email: String,
    /// Their GitHub login (for the self-approval check).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub github: Option<String>,
    /// The IAM ARN (glob: `*` within a `/` segment, `**` across) a CLI/console caller verified by
    /// STS must match (as the ARN STS answered, or its principal) to act as this approver.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub arn: Option<String>,
}

/// The default number of approvals.
pub fn one() -> u32 {
    1
}

pub fn is_one(n: &u32) -> bool {
    *n == 1
}

/// Validate `approval.approvers`, `approval.required` and `approval.allow_self_approval` of a
/// definition's `approval` table; every problem is pushed with its path.
pub fn parse_policy(
    table: &serde_json::Map<String, Value>,
    path: &str,
    errors: &mut Vec<ValidationError>,
) -> (Vec<Approver>, u32, bool) {
    let mut push = |p: String, m: &str| {
        errors.push(ValidationError {
            path: p,
            message: m.to_string(),
        })
    };
    let mut approvers: Vec<Approver> = Vec::new();
    match table.get("approvers") {
        None | Some(Value::Null) => {}
        Some(Value::Array(list)) => {
            if list.len() > MAX_APPROVERS {
                push(
                    format!("{path}.approvers"),
                    &format!("at most {MAX_APPROVERS} approvers"),
                );
            }
            for (i, item) in list.iter().enumerate().take(MAX_APPROVERS) {
                let p = format!("{path}.approvers[{i}]");
                let Value::Object(o) = item else {
                    push(p, "must be a table like { email = \"alice@example.com\" }");
                    continue;
                };
                if let Some(k) = o
                    .keys()
                    .find(|k| !["email", "github", "arn"].contains(&k.as_str()))
                {
                    push(
                        format!("{p}.{}", super::limits::excerpt(k, 40)),
                        "unknown field (known: email, github, arn)",
                    );
                }
                let text = |k: &str| o.get(k).and_then(Value::as_str).map(str::trim);
                let email = match text("email") {
                    Some(e) if valid_email(e) => e.to_ascii_lowercase(),
                    Some(_) => {
                        push(
                            format!("{p}.email"),
                            "must be an e-mail address (name@domain)",
                        );
                        continue;
                    }
                    None => {
                        push(format!("{p}.email"), "is required");
                        continue;
                    }
                };
                let github = match (o.get("github"), text("github")) {
                    (None, _) => None,
                    (_, Some(g)) if valid_github_login(g) => Some(g.to_string()),
                    _ => {
                        push(
                            format!("{p}.github"),
                            "must be a GitHub login (letters, digits, -; at most 39)",
                        );
                        None
                    }
                };
                let arn = match (o.get("arn"), text("arn")) {
                    (None, _) => None,
                    (_, Some(a))
                        if a.starts_with("arn:") && a.len() <= 2048 && Glob::new(a).is_ok() =>
                    {
                        Some(a.to_string())
                    }
                    _ => {
                        push(
                            format!("{p}.arn"),
                            "must be an IAM ARN or ARN glob (arn:aws:iam::123456789012:user/alice)",
                        );
                        None
                    }
                };
                if approvers.iter().any(|a| a.email == email) {
                    push(format!("{p}.email"), "is listed twice");
                    continue;
                }
                approvers.push(Approver { email, github, arn });
            }
        }
        Some(_) => push(format!("{path}.approvers"), "must be a list of approvers"),
    }
    let required = match table.get("required") {
        None | Some(Value::Null) => 1,
        Some(v) => match v.as_u64() {
            Some(n) if n >= 1 && (n as usize) <= approvers.len().max(1) => n as u32,
            _ => {
                push(
                    format!("{path}.required"),
                    &format!(
                        "must be between 1 and the number of approvers ({})",
                        approvers.len().max(1)
                    ),
                );
                1
            }
        },
    };
    let allow_self = match table.get("allow_self_approval") {
        None | Some(Value::Null) => false,
        Some(Value::Bool(b)) => *b,
        Some(_) => {
            push(
                format!("{path}.allow_self_approval"),
                "must be true or false",
            );
            false
        }
    };
    (approvers, required, allow_self)
}

fn valid_email(e: &str) -> bool {
    let Some((local, domain)) = e.split_once('@') else {
        return false;
    };
    e.len() <= 254
        && !local.is_empty()
        && domain.contains('.')
        && !domain.starts_with('.')
        && !domain.ends_with('.')
        && e.bytes()
            .all(|b| b.is_ascii_graphic() && b != b'<' && b != b'>' && b != b'"')
        && !domain.contains('@')
}

fn valid_github_login(g: &str) -> bool {
    (1..=39).contains(&g.len())
        && g.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
        && !g.starts_with('-')
}

/// The approver a verified caller acts as: the first whose ARN pattern matches the ARN STS
/// answered or its principal (an assumed role's role ARN).
pub fn approver_for_caller<'a>(
    approvers: &'a [Approver],
    caller: &VerifiedCaller,
) -> Option<&'a Approver> {
    approvers.iter().find(|a| {
        a.arn.as_deref().is_some_and(|pattern| {
            Glob::new(pattern)
                .is_ok_and(|g| g.is_match(&caller.arn) || g.is_match(&caller.principal))
        })
    })
}

/// Whether `approver` pushed or wrote the change `exec` releases: the pusher or the commit
/// author, matched by GitHub login or e-mail (case-insensitive) against what the source reported
/// ([`super::pushed_by::PushedBy`]: GitHub's pusher name and e-mail, sender login, head commit
/// author e-mail and username; executions stored before it: the pusher login and the author
/// name), and for CodeCommit the pushing IAM identity against the approver's `arn` pattern.
pub fn is_own_change(approver: &Approver, exec: &Execution) -> bool {
    let mut who: Vec<&str> = Vec::new();
    if let Trigger::GithubPush {
        pusher: Some(p), ..
    } = &exec.trigger
    {
        who.push(p);
    }
    if let Some(a) = exec.commit.author.as_deref() {
        who.push(a);
    }
    if let Some(p) = exec.pushed_by.as_deref() {
        who.extend(p.names());
        if let (Some(arn), Some(pattern)) = (p.caller_arn.as_deref(), approver.arn.as_deref()) {
            let caller = VerifiedCaller::new(arn);
            if Glob::new(pattern)
                .is_ok_and(|g| g.is_match(&caller.arn) || g.is_match(&caller.principal))
            {
                return true;
            }
        }
    }
    who.iter().any(|w| {
        let w = w.trim();
        w.eq_ignore_ascii_case(&approver.email)
            || approver
                .github
                .as_deref()
                .is_some_and(|g| w.eq_ignore_ascii_case(g))
    })
}

/// [`progress`] with what the round recorded (`shipgate show`, `status`, the page).
pub fn recorded_progress(approval: &Approval) -> String {
    progress(approval, approval.required)
}

/// "1 of 2 approvals: bob@example.com" (empty when one approval decides).
pub fn progress(approval: &Approval, required: u32) -> String {
    if required <= 1 && approval.approvals.is_empty() {
        return String::new();
    }
    let names: Vec<&str> = approval
        .approvals
        .iter()
        .map(|d| d.approver.as_deref().unwrap_or(&d.actor))
        .collect();
    format!(
        "{} of {required} approvals{}{}",
        names.len(),
        if names.is_empty() { "" } else { ": " },
        names.join(", ")
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn parse(v: Value) -> (Vec<Approver>, u32, bool, Vec<ValidationError>) {
        let mut errors = Vec::new();
        let (a, r, s) = parse_policy(v.as_object().unwrap(), "approval", &mut errors);
        (a, r, s, errors)
    }

    #[test]
    fn a_policy_is_validated_with_paths() {
        let (a, r, s, e) = parse(json!({"required": 2, "approvers": [
            {"email": "Alice@Example.com", "github": "alice", "arn": "arn:aws:iam::1:user/alice"},
            {"email": "bob@example.com"}]}));
        assert!(e.is_empty(), "{e:?}");
        assert_eq!((a.len(), r, s), (2, 2, false));
        assert_eq!(a[0].email, "alice@example.com");
        let (_, _, _, e) = parse(
            json!({"required": 3, "allow_self_approval": "yes", "approvers": [
            {"email": "nope"}, {"email": "b@x.org", "github": "-x", "arn": "user/bob", "role": 1},
            {"email": "b@x.org"}, 7]}),
        );
        let paths: Vec<&str> = e.iter().map(|e| e.path.as_str()).collect();
        assert_eq!(
            paths,
            [
                "approval.approvers[0].email",
                "approval.approvers[1].role",
                "approval.approvers[1].github",
                "approval.approvers[1].arn",
                "approval.approvers[2].email",
                "approval.approvers[3]",
                "approval.required",
                "approval.allow_self_approval"
            ]
        );
        let (_, _, _, e) = parse(json!({"required": 2}));
        assert_eq!(e[0].path, "approval.required", "no approvers: one approval");
    }

    #[test]
    fn own_changes_are_matched_by_email_login_or_pushing_arn() {
        use crate::domain::pushed_by::PushedBy;
        let alice = Approver {
            email: "alice@example.com".into(),
            github: Some("alice-gh".into()),
            arn: Some("arn:aws:iam::1:user/alice".into()),
        };
        let mut e = crate::domain::Execution::received(
            crate::domain::ExecutionId::generate(chrono::Utc::now()),
            "p",
            crate::domain::Commit {
                sha: "a".repeat(40),
                reference: "main".into(),
                author: Some("Alice Liddell".into()),
                ..Default::default()
            },
            Trigger::GithubPush {
                delivery: "d".into(),
                pusher: Some("someone".into()),
            },
            chrono::Utc::now(),
            "github",
        );
        assert!(!is_own_change(&alice, &e), "a display name matches nothing");
        for p in [
            PushedBy {
                author_email: Some("Alice@Example.com".into()),
                ..Default::default()
            },
            PushedBy {
                pusher_email: Some("alice@example.com".into()),
                ..Default::default()
            },
            PushedBy {
                sender_login: Some("ALICE-GH".into()),
                ..Default::default()
            },
            PushedBy {
                author_username: Some("alice-gh".into()),
                ..Default::default()
            },
            PushedBy {
                caller_arn: Some("arn:aws:iam::1:user/alice".into()),
                ..Default::default()
            },
        ] {
            e.pushed_by = Some(Box::new(p.clone()));
            assert!(is_own_change(&alice, &e), "{p:?}");
        }
        e.pushed_by = Some(Box::new(PushedBy {
            author_email: Some("bob@example.com".into()),
            caller_arn: Some("arn:aws:iam::1:user/bob".into()),
            sender_login: Some("bob".into()),
            ..Default::default()
        }));
        assert!(!is_own_change(&alice, &e));
    }

    #[test]
    fn callers_map_to_approvers_by_arn_pattern() {
        let approvers = vec![
            Approver {
                email: "alice@x.org".into(),
                github: None,
                arn: Some("arn:aws:iam::1:user/alice".into()),
            },
            Approver {
                email: "bob@x.org".into(),
                github: None,
                arn: Some("arn:aws:iam::1:role/Deploy".into()),
            },
            Approver {
                email: "carol@x.org".into(),
                github: None,
                arn: Some("arn:aws:sts::1:assumed-role/Ops/carol*".into()),
            },
        ];
        let who = |arn: &str| {
            approver_for_caller(&approvers, &VerifiedCaller::new(arn)).map(|a| a.email.as_str())
        };
        assert_eq!(who("arn:aws:iam::1:user/alice"), Some("alice@x.org"));
        assert_eq!(
            who("arn:aws:sts::1:assumed-role/Deploy/anyone"),
            Some("bob@x.org")
        );
        assert_eq!(
            who("arn:aws:sts::1:assumed-role/Ops/carol@x.org"),
            Some("carol@x.org")
        );
        assert_eq!(who("arn:aws:sts::1:assumed-role/Ops/mallory"), None);
        assert_eq!(who("arn:aws:iam::1:user/alice2"), None);
    }
}
