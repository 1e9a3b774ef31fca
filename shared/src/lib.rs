//! shipgate core library.
//!
//! Layers (dependencies point inward only):
//! - [`domain`]: pure types and the execution state machine;
//! - [`ports`]: the async traits the use cases need;
//! - [`adapters`]: AWS SDK implementations of the ports (SDK types never leave them);
//! - [`app`]: the use cases, written against the ports only;
//! - [`protocol`]: the control requests and answers, shared by `shipgate-control` and the CLI.

pub mod adapters;
pub mod app;
pub mod domain;
pub mod ports;
pub mod protocol;
pub mod telemetry;

#[cfg(any(test, feature = "test-util"))]
pub mod fakes;

pub mod http;
#[cfg(feature = "local")]
pub mod local;
pub mod runtime;
