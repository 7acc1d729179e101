//! The Shopping business, pure: the upstream wire model, validation, money rules, the draft
//! commands and the single-table key design. No AWS, no HTTP, no clock or random globals —
//! time and ids are injected so every command is exact under test.
//!
//! Nothing here may panic on request data (the release profile aborts on panic, which on
//! Lambda kills the whole execution environment), and amounts are only ever combined in the
//! audited [`money`] module: the lints below hold that line outside tests.
#![cfg_attr(
    not(test),
    deny(
        clippy::unwrap_used,
        clippy::expect_used,
        clippy::indexing_slicing,
        clippy::panic,
        clippy::arithmetic_side_effects
    )
)]

pub mod change;
pub mod decode;
pub mod draft;
pub mod error;
pub mod events;
pub mod hooks;
pub mod ids;
pub mod list;
pub mod mask;
pub mod model;
pub mod money;
pub mod order;
pub mod outbox;
pub mod payment;
pub mod ratelimit;
pub mod table;
pub mod totals;
pub mod validate;
pub mod webhook;

pub use error::{DomainError, FieldError};
