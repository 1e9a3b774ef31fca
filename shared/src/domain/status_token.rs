//! Read-only status page links: `base64url("status." pipeline "." expiry) "." base64url(HMAC)`.
//!
//! Signed with the approval signing key, but under its own domain-separation context
//! (`shipgate-status-v1`, where approval tokens use `shipgate-approval-v1`) and with a payload of
//! another shape (it starts with `status.`, names a pipeline, has no nonce and no digest): a status
//! token never verifies as an approval token nor the other way round, so a status link can never
//! approve anything. It expires; rotating the signing key twice (current → previous → gone)
//! revokes every status link issued before. Verification is in constant time.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use chrono::{DateTime, Duration, TimeZone, Utc};
use hmac::{Hmac, KeyInit, Mac};
use sha2::Sha256;

type HmacSha256 = Hmac<Sha256>;

const CONTEXT: &[u8] = b"shipgate-status-v1";
const KIND: &str = "status";
/// Longer than any status token we issue (a 64-character pipeline name); anything larger is
/// rejected before decoding.
pub const MAX_STATUS_TOKEN_LEN: usize = 256;
/// How long a status link in a notice stays valid.
pub const NOTICE_LINK_VALIDITY: Duration = Duration::days(14);
/// Longest validity `shipgate status --link` may ask for.
pub const MAX_LINK_VALIDITY: Duration = Duration::days(90);

/// `n` days (for a link validity asked for in days).
pub fn days(n: i64) -> Duration {
    Duration::days(n)
}

/// What a status token grants: reading one pipeline's status page until `expires_at`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StatusClaims {
    pub pipeline: String,
    pub expires_at: DateTime<Utc>,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum StatusTokenError {
    #[error("the status link is malformed")]
    Malformed,
    #[error("the status link is not valid (it was altered or signed with a key no longer in use)")]
    BadSignature,
    #[error("the status link expired at {0}")]
    Expired(DateTime<Utc>),
}

/// A pipeline name as pipelines allow them (1-64 letters, digits, `-`, `_`).
fn valid_pipeline(name: &str) -> bool {
    (1..=64).contains(&name.len())
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
}

/// Create a status token.
pub fn sign(key: &[u8], claims: &StatusClaims) -> String {
    let payload = format!(
        "{KIND}.{}.{}",
        claims.pipeline,
        claims.expires_at.timestamp()
    );
    let mut m = HmacSha256::new_from_slice(key).expect("HMAC accepts any key length");
    m.update(&mac_input(payload.as_bytes()));
    format!(
        "{}.{}",
        URL_SAFE_NO_PAD.encode(payload.as_bytes()),
        URL_SAFE_NO_PAD.encode(m.finalize().into_bytes())
    )
}

fn mac_input(payload: &[u8]) -> Vec<u8> {
    let mut input = Vec::with_capacity(CONTEXT.len() + payload.len() + 1);
    input.extend_from_slice(CONTEXT);
    input.push(b'\n');
    input.extend_from_slice(payload);
    input
}

fn decode_parts(token: &str) -> Result<(StatusClaims, String, Vec<u8>), StatusTokenError> {
    use StatusTokenError::Malformed;
    if token.is_empty() || token.len() > MAX_STATUS_TOKEN_LEN {
        return Err(Malformed);
    }
    let (payload_b64, mac_b64) = token.split_once('.').ok_or(Malformed)?;
    let payload = URL_SAFE_NO_PAD.decode(payload_b64).map_err(|_| Malformed)?;
    let mac = URL_SAFE_NO_PAD.decode(mac_b64).map_err(|_| Malformed)?;
    if mac.len() != 32 {
        return Err(Malformed);
    }
    let payload = String::from_utf8(payload).map_err(|_| Malformed)?;
    let mut parts = payload.split('.');
    let (Some(KIND), Some(pipeline), Some(expiry), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(Malformed);
    };
    if !valid_pipeline(pipeline) {
        return Err(Malformed);
    }
    let secs: i64 = expiry.parse().map_err(|_| Malformed)?;
    if expiry != secs.to_string() {
        return Err(Malformed);
    }
    let expires_at = Utc.timestamp_opt(secs, 0).single().ok_or(Malformed)?;
    Ok((
        StatusClaims {
            pipeline: pipeline.to_string(),
            expires_at,
        },
        payload,
        mac,
    ))
}

/// Verify a token signed with any of `keys` (during a rotation: current and previous), at `now`.
/// Every key is tried, each in constant time.
pub fn verify_any(
    keys: &[&[u8]],
    token: &str,
    now: DateTime<Utc>,
) -> Result<StatusClaims, StatusTokenError> {
    let (claims, payload, given) = decode_parts(token)?;
    let input = mac_input(payload.as_bytes());
    if !super::token::mac_matches_any(keys, &input, &given) {
        return Err(StatusTokenError::BadSignature);
    }
    if now >= claims.expires_at {
        return Err(StatusTokenError::Expired(claims.expires_at));
    }
    Ok(claims)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::token::{self, TokenClaims};
    use proptest::prelude::*;

    fn now() -> DateTime<Utc> {
        Utc.timestamp_opt(1_800_000_000, 0).unwrap()
    }

    fn claims() -> StatusClaims {
        StatusClaims {
            pipeline: "hello".into(),
            expires_at: now() + Duration::days(1),
        }
    }

    #[test]
    fn round_trip_expiry_and_rotation() {
        let t = sign(b"key", &claims());
        assert_eq!(verify_any(&[b"key"], &t, now()), Ok(claims()));
        assert_eq!(verify_any(&[b"new", b"key"], &t, now()), Ok(claims()));
        // rotated twice: the key is gone, and so is the link
        assert_eq!(
            verify_any(&[b"newer", b"new"], &t, now()),
            Err(StatusTokenError::BadSignature)
        );
        assert_eq!(
            verify_any(&[b"key"], &t, now() + Duration::days(1)),
            Err(StatusTokenError::Expired(claims().expires_at))
        );
    }

    #[test]
    fn approval_and_status_tokens_never_cross() {
        let key = b"key";
        let status = sign(key, &claims());
        // a status token is no approval token, whatever digest it is checked against
        assert!(token::verify(key, &status, "", now()).is_err());
        assert!(token::verify(key, &status, "sha256:abc", now()).is_err());
        // and an approval token is no status token
        let approval = token::sign(
            key,
            &TokenClaims {
                execution_id: "01JD3V5X8Q2M4N6P7R9S0T1V2W".parse().unwrap(),
                nonce: "n".into(),
                expires_at: now() + Duration::days(1),
            },
            "sha256:abc",
        );
        assert!(verify_any(&[key], &approval, now()).is_err());
        // the same payload under the approval context is not accepted either
        let (payload, _) = status.split_once('.').unwrap();
        let mut m = HmacSha256::new_from_slice(key).unwrap();
        m.update(b"shipgate-approval-v1\n");
        m.update(&URL_SAFE_NO_PAD.decode(payload).unwrap());
        let cross = format!(
            "{payload}.{}",
            URL_SAFE_NO_PAD.encode(m.finalize().into_bytes())
        );
        assert_eq!(
            verify_any(&[key], &cross, now()),
            Err(StatusTokenError::BadSignature)
        );
    }

    #[test]
    fn malformed_tokens() {
        let enc = |p: &str| {
            format!(
                "{}.{}",
                URL_SAFE_NO_PAD.encode(p),
                URL_SAFE_NO_PAD.encode([0u8; 32])
            )
        };
        for bad in [
            String::new(),
            ".".into(),
            "abc".into(),
            "a".repeat(300),
            enc("status.hello"),
            enc("status.hel.lo.1"),
            enc("status.he/llo.1"),
            enc("approval.hello.1"),
            enc("status.hello.+1"),
            enc(&format!("status.{}.1", "x".repeat(65))),
        ] {
            assert_eq!(
                verify_any(&[b"key"], &bad, now()),
                Err(StatusTokenError::Malformed),
                "{bad}"
            );
        }
    }

    proptest! {
        #[test]
        fn prop_any_flipped_byte_is_rejected(pos in 0usize..200, bit in 0u8..8) {
            let token = sign(b"key", &claims());
            let mut bytes = token.into_bytes();
            let pos = pos % bytes.len();
            bytes[pos] ^= 1 << bit;
            if let Ok(tampered) = String::from_utf8(bytes) {
                prop_assert!(verify_any(&[b"key"], &tampered, now()).is_err());
            }
        }

        #[test]
        fn prop_verify_never_panics(s in "\\PC{0,300}") {
            let _ = verify_any(&[b"k"], &s, now());
        }
    }
}
