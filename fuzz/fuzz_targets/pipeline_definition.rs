//! Pipeline files: TOML, YAML or JSON; validation reports problems, never panics, and what it
//! accepts validates again after a round trip. Oversized or deeply nested documents are refused
//! by the linear pre-scan before a parser sees them (libFuzzer's -timeout and -rss_limit_mb catch
//! a parser that is slow or hungry on what passes it).
#![no_main]
use libfuzzer_sys::fuzz_target;
use shipgate_fuzz::domain::limits::{check_definition_text, MAX_DEFINITION_BYTES};
use shipgate_fuzz::domain::pipeline::{Format, PipelineDefinition};

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    // the input, and the input repeated as nesting (the quadratic-YAML shape), both formats
    let nested = if text.len() < 64 {
        let depth = 40_000 / (text.len() + 2);
        format!("a: {}{}{}", "[".repeat(depth), text, "]".repeat(depth))
    } else {
        String::new()
    };
    for candidate in [text, nested.as_str()] {
        for format in [Format::Toml, Format::Yaml, Format::Json] {
            match PipelineDefinition::parse(candidate, format) {
                Ok(p) => {
                    assert!(candidate.len() <= MAX_DEFINITION_BYTES);
                    assert!(check_definition_text(candidate, format == Format::Yaml).is_ok());
                    p.validate().expect("an accepted definition validates again");
                }
                Err(e) => assert!(!e.0.is_empty()),
            }
        }
    }
});
