//! `shipgate-approvals`: the approval page (GET/HEAD) and decisions (POST), and the read-only
//! status page of a pipeline (GET/HEAD `/status/{token}`).
pub mod handler;
pub mod pages;
pub mod status_page;
