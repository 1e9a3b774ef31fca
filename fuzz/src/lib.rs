//! The exact sources of `shared::domain` (pure: no I/O, no AWS types), compiled for fuzzing.
#[path = "../../shared/src/domain/mod.rs"]
pub mod domain;
