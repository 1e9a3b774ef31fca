//! GitHub webhooks: `X-Hub-Signature-256` verification and push payload decoding.

use hmac::{Hmac, KeyInit, Mac};
use serde::Deserialize;
use sha2::Sha256;

use crate::RefKind;

type HmacSha256 = Hmac<Sha256>;

/// The all-zero SHA GitHub sends as `after` when a ref is deleted.
pub const ZERO_SHA: &str = "0000000000000000000000000000000000000000";

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SignatureError {
    #[error("missing X-Hub-Signature-256 header")]
    Missing,
    #[error("malformed X-Hub-Signature-256 header (expected sha256=<64 hex digits>)")]
    Malformed,
    #[error("signature does not match")]
    Mismatch,
}

/// Verify `X-Hub-Signature-256` against each active secret (current and, during rotation,
/// previous). Each comparison is constant-time.
pub fn verify_signature(
    secrets: &[&[u8]],
    body: &[u8],
    header: Option<&str>,
) -> Result<(), SignatureError> {
    let header = header.ok_or(SignatureError::Missing)?.trim();
    let hex_sig = header
        .strip_prefix("sha256=")
        .ok_or(SignatureError::Malformed)?;
    if hex_sig.len() != 64 {
        return Err(SignatureError::Malformed);
    }
    let expected = hex::decode(hex_sig).map_err(|_| SignatureError::Malformed)?;
    // every secret is tried, no early exit: timing reveals neither the match nor which secret
    if crate::mac_matches_any(secrets, body, &expected) {
        Ok(())
    } else {
        Err(SignatureError::Mismatch)
    }
}

/// SHA-256 of a body, hex: what the signature covers, so what replay protection keys on.
pub fn body_digest(body: &[u8]) -> String {
    use sha2::Digest;
    hex::encode(Sha256::digest(body))
}

/// `sha256=<hex>` for a body (used by `shipgate dev push` and tests).
pub fn sign_body(secret: &[u8], body: &[u8]) -> String {
    let mut mac = HmacSha256::new_from_slice(secret).expect("HMAC accepts any key length");
    mac.update(body);
    format!("sha256={}", hex::encode(mac.finalize().into_bytes()))
}

/// A decoded push event (only what shipgate uses).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Push {
    /// `refs/heads/main` or `refs/tags/v1`.
    pub full_ref: String,
    pub kind: RefKind,
    /// `main` or `v1`.
    pub ref_name: String,
    pub after: String,
    pub deleted: bool,
    /// `owner/repo`.
    pub repository: String,
    pub compare_url: Option<String>,
    pub head_commit: Option<HeadCommit>,
    pub pusher: Option<String>,
    /// `pusher.email`.
    pub pusher_email: Option<String>,
    /// `sender.login`: the GitHub account the event is for.
    pub sender: Option<String>,
    /// Files added/modified/removed by the commits in the payload; `None` when GitHub did not
    /// list them all (no commits in the payload, or 20+ commits where the list is truncated).
    pub changed_files: Option<Vec<String>>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HeadCommit {
    pub id: String,
    pub message: String,
    pub author: Option<String>,
    /// `author.email` (the git author e-mail).
    pub author_email: Option<String>,
    /// `author.username` (the GitHub login, when GitHub matched the author to an account).
    pub author_username: Option<String>,
    pub url: Option<String>,
}

impl Push {
    /// Deleted refs and all-zero `after` start nothing.
    pub fn is_deletion(&self) -> bool {
        self.deleted || self.after == ZERO_SHA
    }
}

/// Why a push payload could not be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PushError {
    #[error("body is not valid JSON: {0}")]
    Json(String),
    #[error("field `{path}`: {message}")]
    Field { path: String, message: String },
}

#[derive(Deserialize)]
struct RawPush<'a> {
    #[serde(rename = "ref")]
    full_ref: String,
    after: String,
    #[serde(default)]
    deleted: bool,
    repository: RawRepository,
    #[serde(default)]
    compare: Option<String>,
    #[serde(default)]
    head_commit: Option<RawCommit>,
    #[serde(default)]
    pusher: Option<RawPusher>,
    #[serde(default)]
    sender: Option<RawSender>,
    #[serde(default, borrow)]
    commits: Option<Vec<RawCommitFiles<'a>>>,
}

#[derive(Deserialize)]
struct RawRepository {
    full_name: String,
}

#[derive(Deserialize)]
struct RawCommit {
    id: String,
    #[serde(default)]
    message: String,
    #[serde(default)]
    author: Option<RawAuthor>,
    #[serde(default)]
    url: Option<String>,
}

#[derive(Deserialize)]
struct RawAuthor {
    #[serde(default)]
    name: Option<String>,
    #[serde(default)]
    email: Option<String>,
    #[serde(default)]
    username: Option<String>,
}

#[derive(Deserialize)]
struct RawPusher {
    #[serde(default)]
    name: Option<String>,
    #[serde(default)]
    email: Option<String>,
}

#[derive(Deserialize)]
struct RawSender {
    #[serde(default)]
    login: Option<String>,
}

/// File lists are only used for short pushes (see [`GITHUB_COMMIT_LIST_LIMIT`]): they borrow from
/// the body, so a long push does not allocate a string per file it never looks at.
#[derive(Deserialize)]
struct RawCommitFiles<'a> {
    #[serde(default, borrow)]
    added: Vec<BorrowedStr<'a>>,
    #[serde(default, borrow)]
    removed: Vec<BorrowedStr<'a>>,
    #[serde(default, borrow)]
    modified: Vec<BorrowedStr<'a>>,
}

/// A JSON string borrowed from the body (copied only when it holds escapes).
#[derive(Deserialize)]
struct BorrowedStr<'a>(#[serde(borrow)] std::borrow::Cow<'a, str>);

/// GitHub lists at most 20 commits in a push payload.
const GITHUB_COMMIT_LIST_LIMIT: usize = 20;

/// Decode a push payload, naming the field that is missing or wrong.
pub fn decode_push(body: &[u8]) -> Result<Push, PushError> {
    // the fast path; only a failure is decoded again to find the field's path
    let raw: RawPush<'_> = match serde_json::from_slice(body) {
        Ok(raw) => raw,
        Err(_) => return Err(locate_push_error(body)),
    };
    build_push(raw)
}

/// Decode again, tracking the path, to say which field is wrong.
fn locate_push_error(body: &[u8]) -> PushError {
    let de = &mut serde_json::Deserializer::from_slice(body);
    match serde_path_to_error::deserialize::<_, RawPush<'_>>(de) {
        Ok(_) => PushError::Json("the payload could not be decoded".into()),
        Err(e) => {
            let path = e.path().to_string();
            let inner = e.into_inner();
            if inner.is_syntax() || inner.is_eof() {
                PushError::Json(inner.to_string())
            } else {
                PushError::Field {
                    path: if path == "." { "(body)".into() } else { path },
                    message: strip_position(&inner.to_string()),
                }
            }
        }
    }
}

fn build_push(raw: RawPush<'_>) -> Result<Push, PushError> {
    let (kind, ref_name) = if let Some(b) = raw.full_ref.strip_prefix("refs/heads/") {
        (RefKind::Branch, b.to_string())
    } else if let Some(t) = raw.full_ref.strip_prefix("refs/tags/") {
        (RefKind::Tag, t.to_string())
    } else {
        return Err(PushError::Field {
            path: "ref".into(),
            message: format!(
                "expected refs/heads/... or refs/tags/..., got {:?}",
                raw.full_ref
            ),
        });
    };
    if ref_name.is_empty() {
        return Err(PushError::Field {
            path: "ref".into(),
            message: "empty reference name".into(),
        });
    }
    if raw.after.len() != 40 || !raw.after.chars().all(|c| c.is_ascii_hexdigit()) {
        return Err(PushError::Field {
            path: "after".into(),
            message: "expected a 40-character commit SHA".into(),
        });
    }
    if !raw.repository.full_name.contains('/') {
        return Err(PushError::Field {
            path: "repository.full_name".into(),
            message: "expected owner/repo".into(),
        });
    }
    let changed_files = match &raw.commits {
        Some(commits) if !commits.is_empty() && commits.len() < GITHUB_COMMIT_LIST_LIMIT => {
            let mut files: Vec<String> = commits
                .iter()
                .flat_map(|c| c.added.iter().chain(&c.removed).chain(&c.modified))
                .map(|f| f.0.to_string())
                .collect();
            files.sort();
            files.dedup();
            Some(files)
        }
        _ => None,
    };
    Ok(Push {
        full_ref: raw.full_ref,
        kind,
        ref_name,
        after: raw.after.to_ascii_lowercase(),
        deleted: raw.deleted,
        repository: raw.repository.full_name,
        compare_url: raw.compare,
        head_commit: raw.head_commit.map(|c| {
            let (name, email, username) = match c.author {
                Some(a) => (a.name, a.email, a.username),
                None => (None, None, None),
            };
            HeadCommit {
                id: c.id,
                message: c.message,
                author: name.or(username.clone()),
                author_email: email,
                author_username: username,
                url: c.url,
            }
        }),
        pusher_email: raw.pusher.as_ref().and_then(|p| p.email.clone()),
        pusher: raw.pusher.and_then(|p| p.name),
        sender: raw.sender.and_then(|s| s.login),
        changed_files,
    })
}

/// serde_json appends " at line X column Y"; the path already says where.
fn strip_position(message: &str) -> String {
    match message.rfind(" at line ") {
        Some(i) => message[..i].to_string(),
        None => message.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// GitHub's documented test vector.
    #[test]
    fn github_documented_vector() {
        let secret = b"It's a Secret to Everybody";
        let body = b"Hello, World!";
        let header = "sha256=757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17";
        assert_eq!(sign_body(secret, body), header);
        assert_eq!(verify_signature(&[secret], body, Some(header)), Ok(()));
    }

    #[test]
    fn any_flipped_byte_is_rejected() {
        let secret = b"It's a Secret to Everybody";
        let body = b"Hello, World!".to_vec();
        let header = sign_body(secret, &body);
        for i in 0..body.len() {
            for bit in 0..8 {
                let mut b = body.clone();
                b[i] ^= 1 << bit;
                assert_eq!(
                    verify_signature(&[secret], &b, Some(&header)),
                    Err(SignatureError::Mismatch)
                );
            }
        }
        let hex_part = &header[7..];
        for i in 0..hex_part.len() {
            let mut chars: Vec<char> = hex_part.chars().collect();
            chars[i] = if chars[i] == '0' { '1' } else { '0' };
            let flipped = format!("sha256={}", chars.into_iter().collect::<String>());
            assert_eq!(
                verify_signature(&[secret], &body, Some(&flipped)),
                Err(SignatureError::Mismatch)
            );
        }
    }

    #[test]
    fn hex_case_does_not_matter() {
        // found by the fuzzer: upper-case hex is the same MAC, so it verifies too
        let secret = b"It's a Secret to Everybody";
        let header = sign_body(secret, b"Hello, World!")
            .to_ascii_uppercase()
            .replace("SHA256=", "sha256=");
        assert_eq!(
            verify_signature(&[secret], b"Hello, World!", Some(&header)),
            Ok(())
        );
    }

    #[test]
    fn rotation_accepts_either_secret() {
        let body = b"{}";
        let old = sign_body(b"old", body);
        let new = sign_body(b"new", body);
        let secrets: [&[u8]; 2] = [b"new", b"old"];
        assert_eq!(verify_signature(&secrets, body, Some(&old)), Ok(()));
        assert_eq!(verify_signature(&secrets, body, Some(&new)), Ok(()));
        assert_eq!(
            verify_signature(&[b"new"], body, Some(&old)),
            Err(SignatureError::Mismatch)
        );
    }

    #[test]
    fn malformed_headers() {
        assert_eq!(
            verify_signature(&[b"k"], b"", None),
            Err(SignatureError::Missing)
        );
        for h in [
            "",
            "sha1=abc",
            "sha256=",
            "sha256=zz",
            &format!("sha256={}", "g".repeat(64)),
        ] {
            assert_eq!(
                verify_signature(&[b"k"], b"", Some(h)),
                Err(SignatureError::Malformed),
                "{h}"
            );
        }
    }

    const PUSH: &str = include_str!("../../events/github/push.json");

    #[test]
    fn decodes_sample_push() {
        let p = decode_push(PUSH.as_bytes()).unwrap();
        assert_eq!(p.kind, RefKind::Branch);
        assert_eq!(p.ref_name, "main");
        assert_eq!(p.repository, "shipgate-demo/hello");
        assert_eq!(p.after.len(), 40);
        assert!(!p.is_deletion());
        let head = p.head_commit.unwrap();
        assert_eq!(head.id, p.after);
        assert!(head.author.is_some());
        assert!(p
            .changed_files
            .unwrap()
            .contains(&"src/main.py".to_string()));
    }

    #[test]
    fn tags_and_deletions() {
        let mut v: serde_json::Value = serde_json::from_str(PUSH).unwrap();
        v["ref"] = "refs/tags/v1.2.0".into();
        let p = decode_push(v.to_string().as_bytes()).unwrap();
        assert_eq!((p.kind, p.ref_name.as_str()), (RefKind::Tag, "v1.2.0"));
        v["ref"] = "refs/heads/main".into();
        v["deleted"] = true.into();
        v["after"] = ZERO_SHA.into();
        assert!(decode_push(v.to_string().as_bytes()).unwrap().is_deletion());
    }

    #[test]
    fn errors_name_the_field() {
        let mut v: serde_json::Value = serde_json::from_str(PUSH).unwrap();
        v["repository"].as_object_mut().unwrap().remove("full_name");
        match decode_push(v.to_string().as_bytes()) {
            Err(PushError::Field { path, message }) => {
                assert_eq!(path, "repository");
                assert!(message.contains("full_name"), "{message}");
            }
            other => panic!("{other:?}"),
        }
        let mut v: serde_json::Value = serde_json::from_str(PUSH).unwrap();
        v["after"] = 42.into();
        assert!(
            matches!(decode_push(v.to_string().as_bytes()), Err(PushError::Field { path, .. }) if path == "after")
        );
        let mut v: serde_json::Value = serde_json::from_str(PUSH).unwrap();
        v["ref"] = "refs/pull/1/head".into();
        assert!(
            matches!(decode_push(v.to_string().as_bytes()), Err(PushError::Field { path, .. }) if path == "ref")
        );
        v["ref"] = "refs/heads/main".into();
        v["after"] = "abc".into();
        assert!(
            matches!(decode_push(v.to_string().as_bytes()), Err(PushError::Field { path, .. }) if path == "after")
        );
        assert!(matches!(decode_push(b"{not json"), Err(PushError::Json(_))));
        assert!(matches!(decode_push(b""), Err(PushError::Json(_))));
        assert!(matches!(decode_push(b"[]"), Err(PushError::Field { .. })));
    }

    #[test]
    fn file_names_with_escapes_decode() {
        let mut v: serde_json::Value = serde_json::from_str(PUSH).unwrap();
        v["commits"][0]["added"] = serde_json::json!(["docs/caf\u{e9} \"menu\".md", "plain.txt"]);
        v["commits"][0]["removed"] = serde_json::json!([]);
        v["commits"][0]["modified"] = serde_json::json!(["a\\b"]);
        // serde_json writes the quote and backslash escaped; \u00e9 as UTF-8
        let body = v.to_string().replace('\u{e9}', "\\u00e9");
        let files = decode_push(body.as_bytes()).unwrap().changed_files.unwrap();
        assert!(
            files.contains(&"docs/caf\u{e9} \"menu\".md".to_string()),
            "{files:?}"
        );
        assert!(files.contains(&"a\\b".to_string()));
        assert!(files.contains(&"plain.txt".to_string()));
        v["commits"][0]["added"] = serde_json::json!([7]);
        assert!(
            matches!(decode_push(v.to_string().as_bytes()), Err(PushError::Field { path, .. }) if path.starts_with("commits[0].added"))
        );
    }

    #[test]
    fn truncated_commit_lists_disable_path_filters() {
        let mut v: serde_json::Value = serde_json::from_str(PUSH).unwrap();
        let commit = v["commits"][0].clone();
        v["commits"] = serde_json::Value::Array(vec![commit; 20]);
        assert_eq!(
            decode_push(v.to_string().as_bytes()).unwrap().changed_files,
            None
        );
        v["commits"] = serde_json::Value::Array(vec![]);
        assert_eq!(
            decode_push(v.to_string().as_bytes()).unwrap().changed_files,
            None
        );
    }
}
