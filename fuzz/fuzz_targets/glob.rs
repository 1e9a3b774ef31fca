//! Branch, tag and path globs: compiling and matching any pattern against any text never
//! panics, and on ASCII input the answers are globset's (literal separator on), the crate
//! shipgate's matcher replaced (except that shipgate refuses more than
//! `MAX_ALTERNATIVES` combinations of `{...}` groups). Input: pattern, a NUL byte, then texts separated by NUL.
#![no_main]
use libfuzzer_sys::fuzz_target;
use shipgate_fuzz::domain::glob::{Glob, GlobError};

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    let mut parts = text.split('\0');
    let pattern = parts.next().unwrap_or_default();
    let ours = Glob::new(pattern);
    let reference = globset::GlobBuilder::new(pattern)
        .literal_separator(true)
        .build()
        .map(|g| g.compile_matcher());
    // shipgate caps the combinations of {...} groups (globset has no cap): not a disagreement
    let ascii = text.is_ascii() && ours != Err(GlobError::TooManyAlternatives);
    if ascii {
        assert_eq!(ours.is_ok(), reference.is_ok(), "accepts {pattern:?}: {ours:?}");
    }
    if let Ok(glob) = ours {
        for candidate in parts {
            let answer = glob.is_match(candidate);
            if let (true, Ok(r)) = (ascii, &reference) {
                assert_eq!(answer, r.is_match(candidate), "{pattern:?} on {candidate:?}");
            }
        }
    }
});
