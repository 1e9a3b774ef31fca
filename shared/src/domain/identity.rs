//! Verified caller identity for control commands: the pure part (no I/O).
//!
//! The mechanism is the one HashiCorp Vault's AWS IAM auth and aws-iam-authenticator use: the
//! CLI signs (SigV4, with its own credentials) an `sts:GetCallerIdentity` request and sends the
//! signature headers with the command ([`IdentityProof`]); `control` rebuilds that request for
//! the STS endpoint of its *own* configuration, with two headers it computes itself and the
//! signature must cover:
//!
//! - `x-shipgate-request`: the SHA-256 of the command ([`request_binding`]), so a proof is good
//!   for one command only (a proof taken from another command fails STS's signature check);
//! - `x-shipgate-server-id`: the control function's name, so a proof made for another service
//!   (or another shipgate) is useless here (Vault's `X-Vault-AWS-IAM-Server-ID`).
//!
//! STS checks the signature and answers the ARN of the credentials' owner; that ARN, never a
//! payload `actor`, is who acts. `control` needs no IAM permission for this: the request is
//! authorised by the caller's credentials (GetCallerIdentity needs none).

use chrono::{DateTime, Duration, NaiveDateTime, Utc};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

/// Header carrying the SHA-256 (hex) of the command a proof is for.
pub const REQUEST_HEADER: &str = "x-shipgate-request";
/// Header carrying the name of the control function a proof is for.
pub const SERVER_ID_HEADER: &str = "x-shipgate-server-id";
/// The only body `control` sends to STS.
pub const GET_CALLER_IDENTITY_BODY: &str = "Action=GetCallerIdentity&Version=2011-06-15";
/// The content type of that body.
pub const FORM_CONTENT_TYPE: &str = "application/x-www-form-urlencoded; charset=utf-8";
/// A proof signed longer ago (or further in the future) than this is refused, as STS does.
pub const PROOF_VALIDITY: Duration = Duration::minutes(15);
/// Longest header value of a proof (a session token is about 1-2 KB).
pub const MAX_PROOF_HEADER_BYTES: usize = 4096;
/// The headers the signature must cover.
pub const REQUIRED_SIGNED_HEADERS: [&str; 4] =
    ["host", "x-amz-date", REQUEST_HEADER, SERVER_ID_HEADER];

/// Recorded when a command carries no proof (Lambda console, `aws lambda invoke`).
pub const UNVERIFIED_CONSOLE: &str = "console (unverified)";

/// The label of a decision through the shared e-mail link (a pipeline without approvers): the
/// link proves no one, so the name typed on the form is kept but marked as unverified.
pub const UNVERIFIED_EMAIL_LINK: &str = "email link (unverified name)";

/// The actor recorded for a shared-link decision: `Grace Hopper — email link (unverified name)`,
/// or `anonymous — email link (unverified name)` when no name was typed.
pub fn email_link_actor(typed_name: Option<&str>) -> String {
    format!(
        "{} — {UNVERIFIED_EMAIL_LINK}",
        typed_name.unwrap_or("anonymous")
    )
}

/// What the CLI sends with a command (`"identity_proof": {...}` beside `"command"`): the
/// SigV4 headers of a signed `sts:GetCallerIdentity` POST. No URL, no body: `control` uses its own.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct IdentityProof {
    /// `AWS4-HMAC-SHA256 Credential=…, SignedHeaders=…, Signature=…`
    pub authorization: String,
    /// `x-amz-date` (`20261201T193000Z`).
    pub amz_date: String,
    /// `x-amz-security-token` of temporary credentials.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub security_token: Option<String>,
}

/// Why a proof was refused (the message is the answer's; no secret is in it).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum IdentityError {
    #[error("identity proof is malformed: {0}")]
    Malformed(String),
    #[error("identity proof expired or not yet valid (signed at {signed}, now {now}; proofs are good for 15 minutes: run the command again)")]
    Expired { signed: String, now: String },
    #[error("identity proof was refused by STS: {0} (it was signed for another command or another control function, or the credentials are not valid)")]
    Refused(String),
    #[error("identity proof could not be checked: {0}")]
    Unavailable(String),
}

/// The identity STS answered for a proof.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct VerifiedCaller {
    /// The ARN as STS answered it (`arn:aws:sts::1:assumed-role/Deploy/alice`): recorded.
    pub arn: String,
    /// The principal it belongs to ([`normalise_arn`]): what ARN patterns are matched against
    /// (as well as [`VerifiedCaller::arn`]).
    pub principal: String,
}

impl VerifiedCaller {
    pub fn new(arn: &str) -> VerifiedCaller {
        VerifiedCaller {
            arn: arn.to_string(),
            principal: normalise_arn(arn),
        }
    }

    /// Whether `actor` names this caller (its ARN or its principal).
    pub fn is(&self, actor: &str) -> bool {
        let actor = actor.trim();
        actor == self.arn || actor == self.principal
    }
}

/// The SHA-256 (hex) that binds a proof to one command: of the command's JSON as the typed
/// protocol serializes it (both ends serialize the same typed value the same way).
pub fn request_binding(canonical_json: &[u8]) -> String {
    hex::encode(Sha256::digest(canonical_json))
}

/// The principal of an STS ARN: an assumed-role session
/// `arn:aws:sts::123:assumed-role/Deploy/alice` is the role `arn:aws:iam::123:role/Deploy`
/// (the role's path is not in the session ARN: a pattern should not rely on it); every other
/// ARN is itself.
pub fn normalise_arn(arn: &str) -> String {
    let parts: Vec<&str> = arn.splitn(6, ':').collect();
    if let [prefix, partition, "sts", "", account, resource] = parts[..] {
        if let Some(rest) = resource.strip_prefix("assumed-role/") {
            if let Some((role, _session)) = rest.split_once('/') {
                return format!("{prefix}:{partition}:iam::{account}:role/{role}");
            }
        }
    }
    arn.to_string()
}

/// What a proof's `Authorization` header says (checked before anything is sent to STS).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SignatureScope {
    pub access_key_id: String,
    pub region: String,
    pub signed_headers: Vec<String>,
}

impl IdentityProof {
    /// Check the proof's shape and age before it is sent anywhere: bounded printable headers,
    /// SigV4 for the `sts` service, every [`REQUIRED_SIGNED_HEADERS`] signed, signed within
    /// [`PROOF_VALIDITY`] of `now`.
    pub fn check(&self, now: DateTime<Utc>) -> Result<SignatureScope, IdentityError> {
        let bad = |m: &str| IdentityError::Malformed(m.to_string());
        for (name, value) in [
            ("authorization", Some(&self.authorization)),
            ("amz_date", Some(&self.amz_date)),
            ("security_token", self.security_token.as_ref()),
        ] {
            let Some(value) = value else { continue };
            if value.is_empty() || value.len() > MAX_PROOF_HEADER_BYTES {
                return Err(IdentityError::Malformed(format!(
                    "`{name}` must be 1 to {MAX_PROOF_HEADER_BYTES} bytes"
                )));
            }
            if !value.bytes().all(|b| (0x20..0x7f).contains(&b)) {
                return Err(IdentityError::Malformed(format!(
                    "`{name}` has characters a header cannot carry"
                )));
            }
        }
        let signed = NaiveDateTime::parse_from_str(&self.amz_date, "%Y%m%dT%H%M%SZ")
            .map_err(|_| bad("`amz_date` is not like 20261201T193000Z"))?
            .and_utc();
        if (now - signed).abs() > PROOF_VALIDITY {
            return Err(IdentityError::Expired {
                signed: signed.to_rfc3339(),
                now: now.to_rfc3339(),
            });
        }
        let rest = self
            .authorization
            .strip_prefix("AWS4-HMAC-SHA256 ")
            .ok_or_else(|| bad("`authorization` is not AWS4-HMAC-SHA256"))?;
        let mut credential = None;
        let mut signed_headers = None;
        let mut signature = None;
        for part in rest.split(',') {
            let (k, v) = part.trim().split_once('=').ok_or_else(|| {
                bad("`authorization` is not Credential=…, SignedHeaders=…, Signature=…")
            })?;
            match k {
                "Credential" => credential = Some(v),
                "SignedHeaders" => signed_headers = Some(v),
                "Signature" => signature = Some(v),
                _ => return Err(bad("`authorization` has an unknown part")),
            }
        }
        let (Some(credential), Some(signed_headers), Some(signature)) =
            (credential, signed_headers, signature)
        else {
            return Err(bad(
                "`authorization` lacks Credential, SignedHeaders or Signature",
            ));
        };
        if signature.len() != 64 || !signature.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err(bad("the signature is not 64 hex digits"));
        }
        // AKID/20261201/eu-west-1/sts/aws4_request
        let scope: Vec<&str> = credential.split('/').collect();
        let [key, date, region, service, "aws4_request"] = scope[..] else {
            return Err(bad(
                "the credential scope is not KEY/DATE/REGION/sts/aws4_request",
            ));
        };
        if service != "sts" {
            return Err(bad("the proof is not signed for sts"));
        }
        if !self.amz_date.starts_with(date) {
            return Err(bad("the credential scope's date is not the signing date"));
        }
        let signed_headers: Vec<String> = signed_headers.split(';').map(str::to_string).collect();
        if let Some(missing) = REQUIRED_SIGNED_HEADERS
            .iter()
            .find(|h| !signed_headers.iter().any(|s| s == *h))
        {
            return Err(IdentityError::Malformed(format!(
                "the signature does not cover `{missing}` (sign with the shipgate CLI)"
            )));
        }
        if let Some(extra) = signed_headers.iter().find(|h| {
            !REQUIRED_SIGNED_HEADERS.contains(&h.as_str())
                && ![
                    "content-type",
                    "x-amz-security-token",
                    "x-amz-content-sha256",
                ]
                .contains(&h.as_str())
        }) {
            return Err(IdentityError::Malformed(format!(
                "the signature covers `{}`, which control does not send",
                crate::domain::limits::excerpt(extra, 40)
            )));
        }
        if signed_headers.iter().any(|h| h == "x-amz-security-token")
            != self.security_token.is_some()
        {
            return Err(bad("`security_token` and the signed headers disagree"));
        }
        Ok(SignatureScope {
            access_key_id: key.to_string(),
            region: region.to_string(),
            signed_headers,
        })
    }
}

/// The `<Arn>` of a GetCallerIdentity answer, or the `<Code>: <Message>` of an error answer
/// (bounded: both are short).
pub fn parse_sts_answer(status: u16, body: &str) -> Result<VerifiedCaller, IdentityError> {
    let tag = |name: &str| {
        let open = format!("<{name}>");
        let close = format!("</{name}>");
        let start = body.find(&open)? + open.len();
        let len = body[start..].find(&close)?;
        Some(body[start..start + len].trim().to_string())
    };
    if (200..300).contains(&status) {
        let arn = tag("Arn").filter(|a| a.starts_with("arn:") && a.len() <= 2048);
        return arn
            .map(|a| VerifiedCaller::new(&a))
            .ok_or_else(|| IdentityError::Unavailable("STS answered without an ARN".into()));
    }
    let code = tag("Code").unwrap_or_else(|| format!("HTTP {status}"));
    let message = tag("Message").unwrap_or_default();
    let said = crate::domain::limits::excerpt(&format!("{code}: {message}"), 300).to_string();
    if status >= 500 || code == "Throttling" {
        Err(IdentityError::Unavailable(said))
    } else {
        Err(IdentityError::Refused(said))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn now() -> DateTime<Utc> {
        "2026-12-01T19:30:00Z".parse().unwrap()
    }

    fn proof() -> IdentityProof {
        IdentityProof {
            authorization: format!(
                "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20261201/eu-west-1/sts/aws4_request, SignedHeaders=content-type;host;x-amz-date;x-shipgate-request;x-shipgate-server-id, Signature={}",
                "a".repeat(64)
            ),
            amz_date: "20261201T192900Z".into(),
            security_token: None,
        }
    }

    #[test]
    fn shared_link_names_are_marked_unverified() {
        assert_eq!(
            email_link_actor(Some("Grace Hopper")),
            "Grace Hopper — email link (unverified name)"
        );
        assert_eq!(
            email_link_actor(None),
            "anonymous — email link (unverified name)"
        );
    }

    #[test]
    fn a_well_formed_proof_names_its_key_and_region() {
        let scope = proof().check(now()).unwrap();
        assert_eq!(scope.access_key_id, "AKIDEXAMPLE");
        assert_eq!(scope.region, "eu-west-1");
    }

    #[test]
    fn old_or_future_proofs_are_expired() {
        let mut p = proof();
        p.amz_date = "20261201T190000Z".into();
        assert!(matches!(p.check(now()), Err(IdentityError::Expired { .. })));
        p.amz_date = "20261201T200000Z".into();
        assert!(matches!(p.check(now()), Err(IdentityError::Expired { .. })));
    }

    #[test]
    fn garbled_proofs_are_refused_before_any_call() {
        type Garble = Box<dyn Fn(&mut IdentityProof)>;
        let cases: Vec<Garble> = vec![
            Box::new(|p| p.authorization = "Bearer x".into()),
            Box::new(|p| p.authorization = p.authorization.replace("x-shipgate-request;", "")),
            Box::new(|p| p.authorization = p.authorization.replace("/sts/", "/s3/")),
            Box::new(|p| p.authorization = p.authorization.replace(&"a".repeat(64), "zz")),
            Box::new(|p| p.authorization = p.authorization.replace("host;", "host;x-evil;")),
            Box::new(|p| p.authorization.push('\n')),
            Box::new(|p| p.amz_date = "yesterday".into()),
            Box::new(|p| p.security_token = Some("t".into())),
            Box::new(|p| p.authorization = "x".repeat(MAX_PROOF_HEADER_BYTES + 1)),
        ];
        for (i, garble) in cases.iter().enumerate() {
            let mut p = proof();
            garble(&mut p);
            let err = p.check(now()).unwrap_err();
            assert!(
                matches!(err, IdentityError::Malformed(_)),
                "case {i}: {err}"
            );
        }
    }

    #[test]
    fn assumed_roles_are_normalised_to_their_role() {
        assert_eq!(
            normalise_arn("arn:aws:sts::123456789012:assumed-role/Deploy/alice@example.com"),
            "arn:aws:iam::123456789012:role/Deploy"
        );
        assert_eq!(
            normalise_arn("arn:aws:iam::123456789012:user/alice"),
            "arn:aws:iam::123456789012:user/alice"
        );
        let c = VerifiedCaller::new("arn:aws:sts::1:assumed-role/R/s");
        assert!(c.is("arn:aws:iam::1:role/R") && c.is("arn:aws:sts::1:assumed-role/R/s"));
        assert!(!c.is("alice"));
    }

    #[test]
    fn sts_answers_are_read() {
        let ok = r#"<GetCallerIdentityResponse><GetCallerIdentityResult><Arn>arn:aws:iam::1:user/alice</Arn><UserId>X</UserId></GetCallerIdentityResult></GetCallerIdentityResponse>"#;
        assert_eq!(
            parse_sts_answer(200, ok).unwrap().arn,
            "arn:aws:iam::1:user/alice"
        );
        let denied = "<ErrorResponse><Error><Code>SignatureDoesNotMatch</Code><Message>nope</Message></Error></ErrorResponse>";
        assert!(matches!(
            parse_sts_answer(403, denied),
            Err(IdentityError::Refused(m)) if m.contains("SignatureDoesNotMatch")
        ));
        assert!(matches!(
            parse_sts_answer(200, "<x/>"),
            Err(IdentityError::Unavailable(_))
        ));
        assert!(matches!(
            parse_sts_answer(503, ""),
            Err(IdentityError::Unavailable(_))
        ));
    }

    #[test]
    fn the_binding_is_the_sha256_of_the_command() {
        assert_eq!(
            request_binding(b"{}"),
            "44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a"
        );
    }
}
