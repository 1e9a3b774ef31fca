//! Approval tokens: decoding and verification never panic, and nothing but a token signed with
//! the key verifies.
#![no_main]
use chrono::{TimeZone, Utc};
use libfuzzer_sys::fuzz_target;
use shipgate_fuzz::domain::token::{decode, sign, verify};

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    let now = Utc.timestamp_opt(1_800_000_000, 0).unwrap();
    let _ = decode(text);
    if let Ok(claims) = verify(b"fuzz-key", text, "sha256:abc", now) {
        // a verified token is exactly what the key would have signed
        assert_eq!(sign(b"fuzz-key", &claims, "sha256:abc"), text);
    }
});
