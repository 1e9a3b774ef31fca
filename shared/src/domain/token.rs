//! Approval tokens: `base64url(execution id "." nonce "." expiry) "." base64url(HMAC-SHA256)`.
//!
//! The MAC also covers the image digest that ran in test, which is not in the token: a token is
//! valid only for that execution, that approval round (nonce) and that digest. Verification is in
//! constant time.
//!
//! **Personal tokens** (a pipeline that lists approvers, issue 15) bind one approver's e-mail:
//! `base64url(execution id "." nonce "." expiry "." approver ref) "." base64url(HMAC-SHA256)`,
//! where the approver ref ([`approver_ref`], 12 characters) is a truncated SHA-256 of the
//! address — it finds the approver in the pipeline's list without putting the address in the
//! link — and the MAC (under its own context, [`PERSONAL_CONTEXT`]) covers the full address. So
//! a personal token verifies only as that approver's, never as another approver's or as a
//! shared token, and a shared token never verifies as a personal one.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use chrono::{DateTime, TimeZone, Utc};
use hmac::{Hmac, KeyInit, Mac};
use sha2::Sha256;

use super::execution::ExecutionId;

type HmacSha256 = Hmac<Sha256>;

const CONTEXT: &[u8] = b"shipgate-approval-v1";
/// The MAC context of personal tokens (distinct from shared ones).
pub const PERSONAL_CONTEXT: &[u8] = b"shipgate-approval-personal-v1";
/// Length of an approver ref in a personal token.
pub const APPROVER_REF_LEN: usize = 12;
/// Longer than any token we issue; anything larger is rejected before decoding.
pub const MAX_TOKEN_LEN: usize = 256;

/// What a token claims (before its MAC is checked against the execution).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TokenClaims {
    pub execution_id: ExecutionId,
    pub nonce: String,
    pub expires_at: DateTime<Utc>,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TokenError {
    #[error("the approval link is malformed")]
    Malformed,
    #[error("the approval link is not valid (it was altered or signed with another key)")]
    BadSignature,
    #[error("the approval link expired at {0}")]
    Expired(DateTime<Utc>),
}

/// Create a (shared) token.
pub fn sign(key: &[u8], claims: &TokenClaims, digest: &str) -> String {
    sign_as(key, claims, digest, None)
}

/// Create the personal token of the approver with e-mail `approver` (compared in lower case).
pub fn sign_personal(key: &[u8], claims: &TokenClaims, digest: &str, approver: &str) -> String {
    sign_as(key, claims, digest, Some(approver))
}

fn sign_as(key: &[u8], claims: &TokenClaims, digest: &str, approver: Option<&str>) -> String {
    let mut payload = format!(
        "{}.{}.{}",
        claims.execution_id,
        claims.nonce,
        claims.expires_at.timestamp()
    );
    if let Some(email) = approver {
        payload.push('.');
        payload.push_str(&approver_ref(email));
    }
    let mut m = HmacSha256::new_from_slice(key).expect("HMAC accepts any key length");
    m.update(&mac_input(payload.as_bytes(), digest, approver));
    format!(
        "{}.{}",
        URL_SAFE_NO_PAD.encode(payload.as_bytes()),
        URL_SAFE_NO_PAD.encode(m.finalize().into_bytes())
    )
}

/// The short, non-reversible reference to an approver a personal token carries: base64url of
/// the first 9 bytes of SHA-256(`shipgate-approver\n` + the lower-case address).
pub fn approver_ref(email: &str) -> String {
    use sha2::Digest;
    let mut h = Sha256::new();
    h.update(b"shipgate-approver\n");
    h.update(super::audience::approver(email).as_bytes());
    URL_SAFE_NO_PAD.encode(&h.finalize()[..9])
}

/// Decode a token's claims without checking its MAC (to find the execution it names).
pub fn decode(token: &str) -> Result<TokenClaims, TokenError> {
    decode_parts(token).map(|(claims, _, _, _)| claims)
}

/// Decode a token's claims and, for a personal token, its approver ref (see [`approver_ref`]),
/// without checking its MAC.
pub fn decode_link(token: &str) -> Result<(TokenClaims, Option<String>), TokenError> {
    decode_parts(token).map(|(claims, approver, _, _)| (claims, approver))
}

type Parts = (TokenClaims, Option<String>, String, Vec<u8>);

fn decode_parts(token: &str) -> Result<Parts, TokenError> {
    if token.is_empty() || token.len() > MAX_TOKEN_LEN {
        return Err(TokenError::Malformed);
    }
    let (payload_b64, mac_b64) = token.split_once('.').ok_or(TokenError::Malformed)?;
    let payload = URL_SAFE_NO_PAD
        .decode(payload_b64)
        .map_err(|_| TokenError::Malformed)?;
    let mac = URL_SAFE_NO_PAD
        .decode(mac_b64)
        .map_err(|_| TokenError::Malformed)?;
    if mac.len() != 32 {
        return Err(TokenError::Malformed);
    }
    let payload = String::from_utf8(payload).map_err(|_| TokenError::Malformed)?;
    let mut parts = payload.split('.');
    let (Some(id), Some(nonce), Some(expiry), approver, None) = (
        parts.next(),
        parts.next(),
        parts.next(),
        parts.next(),
        parts.next(),
    ) else {
        return Err(TokenError::Malformed);
    };
    if let Some(r) = approver {
        if r.len() != APPROVER_REF_LEN
            || !r
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
        {
            return Err(TokenError::Malformed);
        }
    }
    let execution_id: ExecutionId = id.parse().map_err(|_| TokenError::Malformed)?;
    if execution_id.as_str() != id
        || nonce.is_empty()
        || nonce.len() > 64
        || !nonce
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
    {
        return Err(TokenError::Malformed);
    }
    let secs: i64 = expiry.parse().map_err(|_| TokenError::Malformed)?;
    if expiry != secs.to_string() {
        return Err(TokenError::Malformed);
    }
    let expires_at = Utc
        .timestamp_opt(secs, 0)
        .single()
        .ok_or(TokenError::Malformed)?;
    Ok((
        TokenClaims {
            execution_id,
            nonce: nonce.to_string(),
            expires_at,
        },
        approver.map(str::to_string),
        payload,
        mac,
    ))
}

/// Verify a token against the key and the digest that ran in test, at time `now`.
pub fn verify(
    key: &[u8],
    token: &str,
    digest: &str,
    now: DateTime<Utc>,
) -> Result<TokenClaims, TokenError> {
    verify_any(&[key], token, digest, now)
}

/// Verify a shared token signed with any of `keys` (during a key rotation: the current and the
/// previous key), at time `now`. Every key is tried, each in constant time; no key → a bad
/// signature. A personal token is a bad signature here.
pub fn verify_any(
    keys: &[&[u8]],
    token: &str,
    digest: &str,
    now: DateTime<Utc>,
) -> Result<TokenClaims, TokenError> {
    verify_any_as(keys, token, digest, None, now)
}

/// Verify a token as the personal token of `approver` (an e-mail address) or, with `None`, as a
/// shared token: a token of another kind or of another approver is a bad signature.
pub fn verify_any_as(
    keys: &[&[u8]],
    token: &str,
    digest: &str,
    approver: Option<&str>,
    now: DateTime<Utc>,
) -> Result<TokenClaims, TokenError> {
    let (claims, given_ref, payload, given) = decode_parts(token)?;
    let expected_ref = approver.map(approver_ref);
    let input = mac_input(payload.as_bytes(), digest, approver);
    // the MAC is checked whatever the refs say (no early exit on a mismatch)
    let mac_ok = mac_matches_any(keys, &input, &given);
    if !mac_ok || given_ref != expected_ref {
        return Err(TokenError::BadSignature);
    }
    if now >= claims.expires_at {
        return Err(TokenError::Expired(claims.expires_at));
    }
    Ok(claims)
}

/// The constant-time check against every key, shared with the webhook signature (whose crate
/// defines it).
pub(crate) use shipgate_hotpath::mac_matches_any;

/// What the MAC covers: the context, the payload, the digest and, for a personal token, the
/// approver's full (lower-case) address.
fn mac_input(payload: &[u8], digest: &str, approver: Option<&str>) -> Vec<u8> {
    let approver = approver.map(super::audience::approver);
    let context = if approver.is_some() {
        PERSONAL_CONTEXT
    } else {
        CONTEXT
    };
    let mut input = Vec::with_capacity(context.len() + payload.len() + digest.len() + 300);
    input.extend_from_slice(context);
    input.push(b'\n');
    input.extend_from_slice(payload);
    input.push(b'\n');
    input.extend_from_slice(digest.as_bytes());
    if let Some(email) = approver {
        input.push(b'\n');
        input.extend_from_slice(email.as_bytes());
    }
    input
}

/// A random nonce for a new approval round (16 bytes, base64url).
pub fn new_nonce() -> String {
    let mut bytes = [0u8; 16];
    if getrandom::fill(&mut bytes).is_err() {
        // No OS entropy: fall back to the clock; the MAC still protects the token.
        let nanos = Utc::now().timestamp_nanos_opt().unwrap_or_default();
        bytes[..8].copy_from_slice(&nanos.to_be_bytes());
    }
    URL_SAFE_NO_PAD.encode(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn claims() -> TokenClaims {
        TokenClaims {
            execution_id: "01JD3V5X8Q2M4N6P7R9S0T1V2W".parse().unwrap(),
            nonce: "abcDEF-_123".into(),
            expires_at: Utc.timestamp_opt(1_900_000_000, 0).unwrap(),
        }
    }

    fn now() -> DateTime<Utc> {
        Utc.timestamp_opt(1_899_999_000, 0).unwrap()
    }

    #[test]
    fn round_trip() {
        let token = sign(b"key", &claims(), "sha256:abc");
        assert!(token.len() < MAX_TOKEN_LEN);
        assert!(token
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c)));
        assert_eq!(verify(b"key", &token, "sha256:abc", now()), Ok(claims()));
        assert_eq!(decode(&token), Ok(claims()));
    }

    #[test]
    fn wrong_key_digest_or_expiry() {
        let token = sign(b"key", &claims(), "sha256:abc");
        assert_eq!(
            verify(b"other", &token, "sha256:abc", now()),
            Err(TokenError::BadSignature)
        );
        assert_eq!(
            verify(b"key", &token, "sha256:abd", now()),
            Err(TokenError::BadSignature)
        );
        assert_eq!(
            verify(b"key", &token, "sha256:abc", claims().expires_at),
            Err(TokenError::Expired(claims().expires_at))
        );
    }

    #[test]
    fn either_key_of_a_rotation_verifies() {
        let old = sign(b"previous", &claims(), "sha256:abc");
        let new = sign(b"current", &claims(), "sha256:abc");
        let keys: [&[u8]; 2] = [b"current", b"previous"];
        assert_eq!(verify_any(&keys, &old, "sha256:abc", now()), Ok(claims()));
        assert_eq!(verify_any(&keys, &new, "sha256:abc", now()), Ok(claims()));
        let other = sign(b"other", &claims(), "sha256:abc");
        assert_eq!(
            verify_any(&keys, &other, "sha256:abc", now()),
            Err(TokenError::BadSignature)
        );
        assert_eq!(
            verify_any(&[], &new, "sha256:abc", now()),
            Err(TokenError::BadSignature)
        );
        assert_eq!(
            verify_any(&keys, &old, "sha256:abd", now()),
            Err(TokenError::BadSignature)
        );
    }

    #[test]
    fn altered_claims_are_bad_signatures() {
        let token = sign(b"key", &claims(), "sha256:abc");
        let mut later = claims();
        later.expires_at = Utc.timestamp_opt(2_000_000_000, 0).unwrap();
        let forged_payload = sign(b"key", &later, "sha256:abc");
        // graft the later payload onto the original MAC
        let forged = format!(
            "{}.{}",
            forged_payload.split('.').next().unwrap(),
            token.split('.').nth(1).unwrap()
        );
        assert_eq!(
            verify(b"key", &forged, "sha256:abc", now()),
            Err(TokenError::BadSignature)
        );
    }

    #[test]
    fn malformed_tokens() {
        for bad in [
            "",
            ".",
            "abc",
            "a.b",
            "!!!.???",
            &"a".repeat(300),
            "aGVsbG8.aGVsbG8",
        ] {
            assert_eq!(
                verify(b"key", bad, "d", now()),
                Err(TokenError::Malformed),
                "{bad}"
            );
        }
        let short_mac = format!(
            "{}.{}",
            URL_SAFE_NO_PAD.encode("01JD3V5X8Q2M4N6P7R9S0T1V2W.n.1"),
            URL_SAFE_NO_PAD.encode([0u8; 31])
        );
        assert_eq!(decode(&short_mac), Err(TokenError::Malformed));
        let bad_expiry = format!(
            "{}.{}",
            URL_SAFE_NO_PAD.encode("01JD3V5X8Q2M4N6P7R9S0T1V2W.n.+1"),
            URL_SAFE_NO_PAD.encode([0u8; 32])
        );
        assert_eq!(decode(&bad_expiry), Err(TokenError::Malformed));
        let extra = format!(
            "{}.{}",
            URL_SAFE_NO_PAD.encode("01JD3V5X8Q2M4N6P7R9S0T1V2W.n.1.aaaaaaaaaaaa.x"),
            URL_SAFE_NO_PAD.encode([0u8; 32])
        );
        assert_eq!(decode(&extra), Err(TokenError::Malformed));
    }

    #[test]
    fn personal_tokens_bind_their_approver() {
        let keys: [&[u8]; 2] = [b"current", b"previous"];
        let alice = sign_personal(b"current", &claims(), "sha256:abc", "Alice@Example.com");
        assert!(alice.len() < MAX_TOKEN_LEN, "{}", alice.len());
        assert!(!alice.to_ascii_lowercase().contains("alice"));
        let v = |t: &str, who: Option<&str>| verify_any_as(&keys, t, "sha256:abc", who, now());
        // its owner, in any case
        assert_eq!(v(&alice, Some("alice@example.com")), Ok(claims()));
        assert_eq!(v(&alice, Some(" ALICE@example.com ")), Ok(claims()));
        // never as another approver, nor as a shared token
        assert_eq!(
            v(&alice, Some("bob@example.com")),
            Err(TokenError::BadSignature)
        );
        assert_eq!(v(&alice, None), Err(TokenError::BadSignature));
        assert_eq!(
            verify_any(&keys, &alice, "sha256:abc", now()),
            Err(TokenError::BadSignature)
        );
        // a shared token is no personal one
        let shared = sign(b"current", &claims(), "sha256:abc");
        assert_eq!(v(&shared, None), Ok(claims()));
        assert_eq!(
            v(&shared, Some("alice@example.com")),
            Err(TokenError::BadSignature)
        );
        // the ref says whose it is (to find the approver), the MAC proves it
        let (c, r) = decode_link(&alice).unwrap();
        assert_eq!(c, claims());
        assert_eq!(
            r.as_deref(),
            Some(approver_ref("alice@example.com").as_str())
        );
        assert_eq!(decode_link(&shared).unwrap().1, None);
        // bob's ref grafted onto alice's MAC, or alice's payload signed as a shared token
        let bob = sign_personal(b"current", &claims(), "sha256:abc", "bob@example.com");
        let graft = format!(
            "{}.{}",
            bob.split('.').next().unwrap(),
            alice.split('.').nth(1).unwrap()
        );
        assert_eq!(
            v(&graft, Some("bob@example.com")),
            Err(TokenError::BadSignature)
        );
        let (payload, _) = alice.split_once('.').unwrap();
        let mut m = HmacSha256::new_from_slice(b"current").unwrap();
        m.update(&mac_input(
            &URL_SAFE_NO_PAD.decode(payload).unwrap(),
            "sha256:abc",
            None,
        ));
        let as_shared = format!(
            "{payload}.{}",
            URL_SAFE_NO_PAD.encode(m.finalize().into_bytes())
        );
        assert_eq!(
            v(&as_shared, Some("alice@example.com")),
            Err(TokenError::BadSignature)
        );
        assert_eq!(v(&as_shared, None), Err(TokenError::BadSignature));
        // key rotation: signed with the previous key still verifies; the digest is covered
        let old = sign_personal(b"previous", &claims(), "sha256:abc", "alice@example.com");
        assert_eq!(v(&old, Some("alice@example.com")), Ok(claims()));
        assert_eq!(
            verify_any_as(
                &keys,
                &alice,
                "sha256:abd",
                Some("alice@example.com"),
                now()
            ),
            Err(TokenError::BadSignature)
        );
        assert_eq!(
            verify_any_as(
                &keys,
                &alice,
                "sha256:abc",
                Some("alice@example.com"),
                claims().expires_at
            ),
            Err(TokenError::Expired(claims().expires_at))
        );
        // a malformed ref
        let bad_ref = format!(
            "{}.{}",
            URL_SAFE_NO_PAD.encode("01JD3V5X8Q2M4N6P7R9S0T1V2W.n.1.short"),
            URL_SAFE_NO_PAD.encode([0u8; 32])
        );
        assert_eq!(decode_link(&bad_ref), Err(TokenError::Malformed));
        // the longest address still fits a token
        let long = format!("{}@example.com", "a".repeat(240));
        assert!(sign_personal(b"k", &claims(), "d", &long).len() < MAX_TOKEN_LEN);
    }

    #[test]
    fn nonces_are_unique() {
        let a = new_nonce();
        assert_eq!(a.len(), 22);
        assert_ne!(a, new_nonce());
    }

    proptest! {
        #[test]
        fn prop_round_trip(key in proptest::collection::vec(any::<u8>(), 1..64),
                           nonce in "[A-Za-z0-9_-]{1,32}",
                           expiry in 1_000_000_000i64..4_000_000_000i64,
                           digest in "sha256:[0-9a-f]{64}") {
            let c = TokenClaims { execution_id: "01JD3V5X8Q2M4N6P7R9S0T1V2W".parse().unwrap(), nonce, expires_at: Utc.timestamp_opt(expiry, 0).unwrap() };
            let token = sign(&key, &c, &digest);
            let before = Utc.timestamp_opt(expiry - 1, 0).unwrap();
            prop_assert_eq!(verify(&key, &token, &digest, before), Ok(c));
        }

        #[test]
        fn prop_any_flipped_byte_is_rejected(pos in 0usize..200, bit in 0u8..8) {
            let token = sign(b"key", &claims(), "sha256:abc");
            let mut bytes = token.into_bytes();
            let pos = pos % bytes.len();
            bytes[pos] ^= 1 << bit;
            if let Ok(tampered) = String::from_utf8(bytes) {
                prop_assert!(verify(b"key", &tampered, "sha256:abc", now()).is_err());
            }
        }

        #[test]
        fn prop_decode_never_panics(s in "\\PC{0,300}") {
            let _ = decode(&s);
            let _ = verify(b"k", &s, "d", now());
        }
    }
}
