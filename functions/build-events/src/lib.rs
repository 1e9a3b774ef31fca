//! `shipgate-build-events`: CodeBuild build state changes.
pub mod handler;
