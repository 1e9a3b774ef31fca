//! `shipgate-deploy-events`: ECS deployment state changes.
pub mod handler;
