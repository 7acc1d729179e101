//! The Shopping business, pure: the upstream wire model, validation, money rules, the draft
//! commands and the single-table key design. No AWS, no HTTP, no clock or random globals —
//! time and ids are injected so every command is exact under test.

pub mod draft;
pub mod error;
pub mod events;
pub mod ids;
pub mod list;
pub mod model;
pub mod table;
pub mod totals;
pub mod validate;

pub use error::{DomainError, FieldError};
