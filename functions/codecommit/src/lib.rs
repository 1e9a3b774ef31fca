//! `shipgate-codecommit`: CodeCommit reference changes.
pub mod handler;
