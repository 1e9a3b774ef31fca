//! Pipeline files: TOML, YAML or JSON; validation reports problems, never panics, and what it
//! accepts validates again after a round trip.
#![no_main]
use libfuzzer_sys::fuzz_target;
use shipgate_fuzz::domain::pipeline::{Format, PipelineDefinition};

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    for format in [Format::Toml, Format::Yaml, Format::Json] {
        if let Ok(p) = PipelineDefinition::parse(text, format) {
            p.validate().expect("an accepted definition validates again");
        }
    }
});
