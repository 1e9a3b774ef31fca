//! Pure domain: types, the execution state machine, validation and decoding.
//! No AWS SDK types, no I/O, no async.

pub mod alarm_events;
pub mod approval_policy;
pub mod audience;
pub mod aws_events;
pub mod ecs_hook;
pub mod execution;
pub mod feedback;
/// The webhook hot path lives in its own crate (compiled at opt-level 3 in release; see it).
pub use shipgate_hotpath::github;
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
