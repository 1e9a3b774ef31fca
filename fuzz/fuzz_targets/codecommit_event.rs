//! EventBridge decoder `decode_reference_change`: any JSON (or not JSON) in, a value or a typed error out.
#![no_main]
use libfuzzer_sys::fuzz_target;
use shipgate_fuzz::domain::aws_events::decode_reference_change;

fuzz_target!(|data: &[u8]| {
    if let Ok(value) = serde_json::from_slice::<serde_json::Value>(data) {
        let _ = decode_reference_change(&value);
    }
});
