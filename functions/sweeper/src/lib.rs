//! `shipgate-sweeper`: expiry, reconciliation of lost events, resumption, ECR pruning.
pub mod handler;
