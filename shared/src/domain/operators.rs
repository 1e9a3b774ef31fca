//! Who may run the operator commands (`apply_pipeline`, `retry`, `rollback`, `release`).
//!
//! Invoking `shipgate-control` is one IAM permission, so IAM cannot tell an approver from an
//! operator. The stack's `OperatorArnPatterns` (env `SHIPGATE_OPERATOR_ARN_PATTERNS`,
//! comma-separated ARN globs) can: when set, control runs those commands only for a caller whose
//! VERIFIED ARN (or an assumed role's role ARN) matches one; empty keeps everyone who may invoke
//! control an operator. Approve/reject are governed by the pipeline's approver list instead.

use super::glob::Glob;
use super::identity::VerifiedCaller;

/// The environment variable control reads once per cold start.
pub const OPERATORS_ENV: &str = "SHIPGATE_OPERATOR_ARN_PATTERNS";
/// At most this many patterns (a CloudFormation parameter is at most 4 KB anyway).
pub const MAX_OPERATOR_PATTERNS: usize = 50;

/// The operator patterns; empty = no restriction.
#[derive(Debug, Clone, Default)]
pub struct Operators {
    patterns: Vec<(String, Glob)>,
}

impl Operators {
    /// Parse `arn:aws:iam::1:user/ada, arn:aws:iam::1:role/Deploy` (blanks ignored).
    pub fn parse(text: &str) -> Result<Operators, String> {
        let parts: Vec<&str> = text
            .split(',')
            .map(str::trim)
            .filter(|p| !p.is_empty())
            .collect();
        if parts.len() > MAX_OPERATOR_PATTERNS {
            return Err(format!(
                "{OPERATORS_ENV}: {} patterns; at most {MAX_OPERATOR_PATTERNS} are allowed",
                parts.len()
            ));
        }
        let mut patterns = Vec::with_capacity(parts.len());
        for p in parts {
            if !p.starts_with("arn:") {
                return Err(format!(
                    "{OPERATORS_ENV}: {p:?} is not an ARN pattern (arn:aws:iam::ACCOUNT:user/NAME, …:role/NAME, globs allowed)"
                ));
            }
            let glob = Glob::new(p).map_err(|e| format!("{OPERATORS_ENV}: {p:?}: {e}"))?;
            patterns.push((p.to_string(), glob));
        }
        Ok(Operators { patterns })
    }

    /// No patterns: everyone who may invoke control is an operator.
    pub fn is_open(&self) -> bool {
        self.patterns.is_empty()
    }

    /// Whether a caller STS verified is an operator (`None`: unverified, an operator only when
    /// open).
    pub fn allows(&self, caller: Option<&VerifiedCaller>) -> bool {
        if self.is_open() {
            return true;
        }
        caller.is_some_and(|c| {
            self.patterns
                .iter()
                .any(|(_, g)| g.is_match(&c.arn) || g.is_match(&c.principal))
        })
    }

    /// The patterns as configured (for messages).
    pub fn describe(&self) -> String {
        self.patterns
            .iter()
            .map(|(p, _)| p.as_str())
            .collect::<Vec<_>>()
            .join(", ")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn empty_is_open_to_everyone() {
        let o = Operators::parse(" , ").unwrap();
        assert!(o.is_open());
        assert!(o.allows(None));
    }

    #[test]
    fn only_matching_verified_callers_are_operators() {
        let o = Operators::parse(
            "arn:aws:iam::123456789012:user/ada, arn:aws:iam::123456789012:role/Deploy",
        )
        .unwrap();
        assert!(!o.is_open());
        assert!(o.allows(Some(&VerifiedCaller::new(
            "arn:aws:iam::123456789012:user/ada"
        ))));
        // an assumed role matches as its role
        assert!(o.allows(Some(&VerifiedCaller::new(
            "arn:aws:sts::123456789012:assumed-role/Deploy/grace"
        ))));
        assert!(!o.allows(Some(&VerifiedCaller::new(
            "arn:aws:iam::123456789012:user/bob"
        ))));
        // unverified (no identity proof): never an operator when patterns are set
        assert!(!o.allows(None));
        assert!(o.describe().contains("user/ada"));
    }

    #[test]
    fn globs_and_bad_patterns() {
        let o = Operators::parse("arn:aws:iam::123456789012:user/ops-*").unwrap();
        assert!(o.allows(Some(&VerifiedCaller::new(
            "arn:aws:iam::123456789012:user/ops-ada"
        ))));
        assert!(!o.allows(Some(&VerifiedCaller::new(
            "arn:aws:iam::123456789012:user/dev-ada"
        ))));
        assert!(Operators::parse("ada").unwrap_err().contains("not an ARN"));
        let many = vec!["arn:aws:iam::1:user/x"; 51].join(",");
        assert!(Operators::parse(&many).unwrap_err().contains("at most 50"));
    }
}
