//! Pure domain: types, the execution state machine, validation and decoding.
//! No AWS SDK types, no I/O, no async.

pub mod approval_policy;
pub mod audience;
pub mod aws_events;
pub mod execution;
pub mod feedback;
pub mod github;
pub mod glob;
pub mod identity;
pub mod limits;
pub mod links;
pub mod metrics;
pub mod operators;
pub mod pipeline;
pub mod pushed_by;
pub mod revisions;
pub mod status_token;
pub mod strip;
pub mod token;
pub mod verify;

pub use execution::*;
pub use pipeline::*;
pub use revisions::*;
