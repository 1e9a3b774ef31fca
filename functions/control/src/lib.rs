//! `shipgate-control`: operator commands by direct invoke.
pub mod handler;
