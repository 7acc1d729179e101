//! The application layer's one error type: how a use case can end other than as planned,
//! before anything is said in HTTP (the edge maps each to a status, once, and logs the
//! faults there).

use domain::DomainError;
use infra::queue::QueueError;
use infra::{BoxError, StoreError};

#[derive(Debug, thiserror::Error)]
pub enum AppError {
    /// The domain refused the change (validation, a rule, a missing part).
    #[error(transparent)]
    Domain(#[from] DomainError),
    /// The resource the request names does not exist (or may not be seen).
    #[error("{0} not found")]
    NotFound(&'static str),
    /// `If-Match` named another version than the stored one.
    #[error("the resource is at version {current}, not the version in If-Match")]
    PreconditionFailed { current: u64 },
    /// The request conflicts with the stored state (a taken `order_id`, a reused key, a write
    /// that kept losing races).
    #[error("{message}")]
    Conflict { code: &'static str, message: String },
    /// A request part the handler passed on is malformed.
    #[error("{path}: {message}")]
    Invalid { path: &'static str, message: String },
    /// A stored document that does not read back: a fault of this service.
    #[error("unreadable stored {what}")]
    Corrupt {
        what: &'static str,
        #[source]
        source: BoxError,
    },
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Queue(#[from] QueueError),
}

impl AppError {
    pub fn corrupt(what: &'static str, source: impl Into<BoxError>) -> Self {
        Self::Corrupt { what, source: source.into() }
    }

    /// A write that lost every race of its retry budget.
    pub fn too_many_races() -> Self {
        Self::Conflict { code: "VERSION_CONFLICT", message: "too many concurrent changes; try again".into() }
    }
}

pub type Result<T, E = AppError> = std::result::Result<T, E>;

/// Reads a stored document; one that does not parse is a fault of this service.
pub fn parse<T: serde::de::DeserializeOwned>(what: &'static str, doc: &str) -> Result<T> {
    serde_json::from_str(doc).map_err(|e| AppError::corrupt(what, e))
}
