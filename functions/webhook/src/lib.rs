//! `shipgate-webhook`: verifies GitHub push webhooks and starts executions.
pub mod handler;
