//! The control protocol: what the CLI (or the console) sends `shipgate-control` and what it
//! answers, as types both ends (de)serialize. Pure serde types: no AWS SDK, no use case.
//!
//! A request is `{"command": "...", ...arguments}` ([`ControlRequest`], one variant per
//! command; an argument it does not know is refused). An answer is one struct per kind
//! ([`ControlResponse`]), or a refusal `{"error": {"code", "message", "details"?}}`
//! ([`ErrorAnswer`]). Adding a command is a line in [`ControlRequest`]'s list, its argument
//! struct, its answer in [`ControlResponse::decode`], and a sample in `events/control/`: the
//! compiler finds the handler's and the CLI's `match`es, a test the missing sample.

mod answer;
mod identity;
mod request;

pub use answer::*;
pub use identity::*;
pub use request::*;

#[cfg(test)]
mod tests;
