//! The webhook's hot path, in a crate of its own so that release builds compile only it at
//! opt-level 3 while `shared` (application services, adapters, notices, pages: most of every
//! function's own code) is optimized for size (the workspace Cargo.toml, `[profile.release]`).
//!
//! Pure, no I/O: the `X-Hub-Signature-256` check, the SHA-256 that replay protection keys on,
//! push payload decoding, and the constant-time MAC comparison the approval and status tokens
//! share. `shared::domain` re-exports all of it (`shared::domain::github`,
//! `shared::domain::RefKind`), so callers use those paths.
//!
//! Generic code (serde's derived decoders of the push, `Hmac<Sha256>`) is compiled with the
//! optimization level of the crate that instantiates it, which is why these functions live here
//! and not in `shared`: see bench/README.md for the criterion medians at each level.

use hmac::{Hmac, KeyInit, Mac};
use sha2::Sha256;

pub mod github;

type HmacSha256 = Hmac<Sha256>;

/// What kind of git reference a push updated.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RefKind {
    Branch,
    Tag,
}

/// Whether `given` is the HMAC-SHA256 of `input` under any of `keys` (current and previous,
/// during a rotation). Every key is tried, without an early exit, and `verify_slice` compares in
/// constant time, so timing reveals neither the match nor which key matched. Shared by the
/// approval and the status tokens and the webhook signature.
pub fn mac_matches_any(keys: &[&[u8]], input: &[u8], given: &[u8]) -> bool {
    let mut valid = false;
    for key in keys {
        let mut m = HmacSha256::new_from_slice(key).expect("HMAC accepts any key length");
        m.update(input);
        valid |= m.verify_slice(given).is_ok();
    }
    valid
}
