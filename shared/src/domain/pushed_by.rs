//! Who pushed or wrote a change, as its source reported it (issue 15: no self-approval matched
//! by e-mail or GitHub login). Recorded on the execution at its start; pure.
//!
//! | source | field | what it is |
//! | --- | --- | --- |
//! | GitHub push | `pusher.name`, `pusher.email` | the account that pushed (login, its e-mail) |
//! | GitHub push | `sender.login` | the GitHub account that triggered the event |
//! | GitHub push | `head_commit.author.email`, `.username` | the head commit's author (git e-mail; GitHub login when GitHub matched it) |
//! | CodeCommit | `callerUserArn` | the IAM identity that pushed (AWS verified it) |
//!
//! Every value is bounded ([`MAX_PUSHED_BY_BYTES`]; longer ones are dropped); stored executions
//! without it read as empty.

use serde::{Deserialize, Serialize};

/// Longest value kept of each field.
pub const MAX_PUSHED_BY_BYTES: usize = 256;

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct PushedBy {
    /// GitHub `pusher.name` (the pusher's login).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pusher_name: Option<String>,
    /// GitHub `pusher.email`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pusher_email: Option<String>,
    /// GitHub `sender.login`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sender_login: Option<String>,
    /// The head commit's author e-mail (GitHub `head_commit.author.email`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub author_email: Option<String>,
    /// The head commit's author GitHub login (`head_commit.author.username`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub author_username: Option<String>,
    /// CodeCommit `callerUserArn`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub caller_arn: Option<String>,
}

/// A value kept: trimmed, without control characters; one too long to be an address or a login
/// is dropped (a cut value could never match one).
fn bounded(v: Option<&str>) -> Option<String> {
    v.map(str::trim)
        .filter(|s| !s.is_empty() && s.len() <= MAX_PUSHED_BY_BYTES)
        .map(|s| s.chars().filter(|c| !c.is_control()).collect())
}

impl PushedBy {
    pub fn is_empty(&self) -> bool {
        *self == PushedBy::default()
    }

    /// Every value trimmed, bounded, empty ones dropped.
    pub fn bounded(self) -> PushedBy {
        PushedBy {
            pusher_name: bounded(self.pusher_name.as_deref()),
            pusher_email: bounded(self.pusher_email.as_deref()),
            sender_login: bounded(self.sender_login.as_deref()),
            author_email: bounded(self.author_email.as_deref()),
            author_username: bounded(self.author_username.as_deref()),
            caller_arn: bounded(self.caller_arn.as_deref()),
        }
    }

    /// The e-mail addresses and GitHub logins recorded (matched case-insensitively against an
    /// approver's `email` and `github`).
    pub fn names(&self) -> impl Iterator<Item = &str> {
        [
            &self.pusher_name,
            &self.pusher_email,
            &self.sender_login,
            &self.author_email,
            &self.author_username,
        ]
        .into_iter()
        .filter_map(|v| v.as_deref())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_are_bounded_and_old_items_read_empty() {
        let p = PushedBy {
            pusher_name: Some("  ".into()),
            pusher_email: Some(format!(" {}@x.org ", "a".repeat(400))),
            ..Default::default()
        }
        .bounded();
        assert_eq!(p.pusher_name, None);
        assert_eq!(p.pusher_email, None, "too long to be an address");
        let p = PushedBy {
            author_email: Some(" Ada@Example.com\n".into()),
            ..Default::default()
        }
        .bounded();
        assert_eq!(p.author_email.as_deref(), Some("Ada@Example.com"));
        let empty: PushedBy = serde_json::from_str("{}").unwrap();
        assert!(empty.is_empty());
        assert_eq!(serde_json::to_string(&PushedBy::default()).unwrap(), "{}");
    }
}
