//! `shipgate-approvals`: the approval page (GET/HEAD) and decisions (POST).
pub mod handler;
pub mod pages;
