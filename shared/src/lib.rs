//! shipgate core library.
//!
//! Layers (dependencies point inward only):
//! - [`domain`]: pure types and the execution state machine;
//! - [`ports`]: the async traits the use cases need;
//! - [`adapters`]: AWS SDK implementations of the ports (SDK types never leave them);
//! - [`app`]: the use cases, written against the ports only;
//! - [`wiring`]: the composition root (what each function is made of).
//! - [`protocol`]: the control requests and answers, shared by `shipgate-control` and the CLI.
//!
//! Test support (feature `test-util`): [`fakes`] of every port (domain and ports only), and
//! [`fake_world`], the fakes wired into the use cases' `Services`. The local sandbox (moto,
//! provisioning, API Gateway requests) is the `shipgate-sandbox` crate, which no Lambda links.

pub mod adapters;
pub mod app;
pub mod domain;
pub mod ports;
pub mod protocol;
pub mod telemetry;

#[cfg(any(test, feature = "test-util"))]
pub mod fake_world;
#[cfg(any(test, feature = "test-util"))]
pub mod fakes;

pub mod http;
pub mod runtime;
pub mod wiring;
