//! Pure domain: types, the execution state machine, validation and decoding.
//! No AWS SDK types, no I/O, no async.

pub mod aws_events;
pub mod execution;
pub mod github;
pub mod glob;
pub mod limits;
pub mod pipeline;
pub mod revisions;
pub mod token;
pub mod verify;

pub use execution::*;
pub use pipeline::*;
pub use revisions::*;
