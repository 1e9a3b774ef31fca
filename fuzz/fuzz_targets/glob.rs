//! Branch, tag and path globs: compiling and matching any pattern against any text never
//! panics, the matching work is linear in the text (at most `cost() × (n + 1)` counted steps,
//! `cost()` bounded), and on ASCII input the answers are globset's (literal separator on), the
//! crate shipgate's matcher replaced (except where shipgate refuses a pattern for its size:
//! length, `{...}` nesting, combinations or expanded tokens). Input: pattern, a NUL byte, then
//! texts separated by NUL.
#![no_main]
use libfuzzer_sys::fuzz_target;
use shipgate_fuzz::domain::glob::{Glob, GlobError, MAX_EXPANDED_TOKENS};

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    let mut parts = text.split('\0');
    let pattern = parts.next().unwrap_or_default();
    let ours = Glob::new(pattern);
    // shipgate bounds patterns (globset has no caps): not a disagreement
    let bounded = matches!(
        ours,
        Err(GlobError::TooManyAlternatives
            | GlobError::TooLong(_)
            | GlobError::TooDeep
            | GlobError::TooComplex)
    );
    // the reference itself recurses on nesting: only ask it about patterns shipgate accepts
    let reference = (!bounded).then(|| {
        globset::GlobBuilder::new(pattern)
            .literal_separator(true)
            .build()
            .map(|g| g.compile_matcher())
    });
    let ascii = text.is_ascii() && !bounded;
    if let (true, Some(reference)) = (ascii, &reference) {
        assert_eq!(ours.is_ok(), reference.is_ok(), "accepts {pattern:?}: {ours:?}");
    }
    if let Ok(glob) = ours {
        assert!(glob.cost() <= MAX_EXPANDED_TOKENS);
        for candidate in parts {
            let mut steps = 0;
            let answer = glob.is_match_counting(candidate, &mut steps);
            let n = candidate.chars().count();
            assert!(steps <= glob.cost() * (n + 1), "{steps} steps on {n} chars");
            if let (true, Some(Ok(r))) = (ascii, &reference) {
                assert_eq!(answer, r.is_match(candidate), "{pattern:?} on {candidate:?}");
            }
        }
    }
});
