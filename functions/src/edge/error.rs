//! The edge's one error type and its one mapping to HTTP: status plus the upstream error body
//! `{"error": {"code", "message", "errors"}}`.
//!
//! A 503 (with `Retry-After`) means only that the store is unavailable or throttling, so a
//! client's retry can succeed. A request that breaks a store limit is a 4xx naming the cause
//! (retrying it cannot help); a fault of this service is a 500. Faults and outages are logged
//! here, once, with their source, when the response is made — nowhere else.

use crate::app::AppError;
use axum::http::{HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use domain::{DomainError, FieldError};
use infra::queue::QueueError;
use infra::{BoxError, Limit, StoreError};
use serde::Serialize;

/// Seconds a client should wait before retrying a 503.
pub const RETRY_AFTER_SECONDS: u32 = 1;

/// The upstream error body: `{"error": {"code", "message", "errors"?}}`.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct ErrorBody {
    pub error: ErrorDetail,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct ErrorDetail {
    /// A stable SCREAMING_SNAKE word, e.g. `VALIDATION_ERROR`, `NOT_FOUND`, `VERSION_CONFLICT`.
    pub code: String,
    pub message: String,
    /// Every problem found in the request, each located by its JSON path (400 only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub errors: Option<Vec<FieldError>>,
}

#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    #[error("{message}")]
    BadRequest { message: String, errors: Vec<FieldError> },
    #[error("{0}")]
    Unauthorized(String),
    #[error("{0}")]
    Forbidden(String),
    #[error("{0} not found")]
    NotFound(String),
    #[error("{message}")]
    Conflict { code: &'static str, message: String },
    #[error("the resource is at version {current}, not the version in If-Match")]
    PreconditionFailed { current: u64 },
    #[error("the request body exceeds {0} bytes")]
    TooLarge(usize),
    /// The body stalled: nothing arrived for longer than the server's body-read timeout.
    #[error("the request body did not arrive in time; nothing was applied")]
    BodyTimeout,
    /// The change would make a stored item larger than the store allows.
    #[error("{what} would be {size} bytes as stored; the limit is {limit} bytes: send less data")]
    ItemTooLarge { what: &'static str, size: usize, limit: usize },
    #[error("method not allowed")]
    MethodNotAllowed,
    /// The account is over its request limit (`RateLimit-Policy` says which).
    #[error("the account's request rate is over its limit; retry after {retry_after} s")]
    RateLimited { retry_after: u64 },
    /// The store or the queue is unavailable or throttling (the source is logged).
    #[error("the service is temporarily unavailable; retry after {RETRY_AFTER_SECONDS} s")]
    Unavailable(BoxError),
    /// A fault of this service (the source is logged, never shown).
    #[error("internal error")]
    Internal(BoxError),
}

impl ApiError {
    pub fn bad(path: &str, message: impl Into<String>) -> Self {
        let message = message.into();
        Self::BadRequest {
            message: format!("{path}: {message}"),
            errors: vec![FieldError::new(path, "INVALID", message)],
        }
    }

    pub fn internal(e: impl Into<BoxError>) -> Self {
        Self::Internal(e.into())
    }

    fn limit(path: &str, code: &'static str, message: String) -> Self {
        Self::BadRequest { message: format!("{path}: {message}"), errors: vec![FieldError::new(path, code, message)] }
    }
}

impl From<DomainError> for ApiError {
    fn from(e: DomainError) -> Self {
        match e {
            DomainError::Validation(errors) => {
                let message = match errors.as_slice() {
                    [one] => format!("{}: {}", one.path, one.message),
                    many => format!("{} fields are invalid", many.len()),
                };
                Self::BadRequest { message, errors }
            }
            DomainError::NotFound(what) => Self::NotFound(what.to_owned()),
            DomainError::Conflict { code, message } => Self::Conflict { code, message },
        }
    }
}

/// What a stored item is, for messages: its sort key says which resource it holds.
fn describe(sk: &str) -> &'static str {
    match sk {
        "DRAFT" => "the draft",
        "ORDER" => "the order",
        "IDEM" => "the stored response for this Idempotency-Key",
        sk if sk.starts_with("EVENT#") => "the event recording this request",
        _ => "a stored item",
    }
}

/// The request field behind a key attribute (validation caps these; this is the backstop).
fn key_field(attribute: &str) -> &'static str {
    match attribute {
        "gsi2pk" => "order.customer.id",
        _ => "path",
    }
}

impl From<StoreError> for ApiError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::Limit(Limit::ItemTooLarge { key, size }) => {
                Self::ItemTooLarge { what: describe(&key.sk), size, limit: infra::limits::MAX_ITEM_BYTES }
            }
            StoreError::Limit(Limit::WriteTooLarge { bytes }) => {
                Self::ItemTooLarge { what: "this change", size: bytes, limit: infra::limits::MAX_WRITE_BYTES }
            }
            StoreError::Limit(Limit::KeyTooLong { attribute, max, .. }) => Self::limit(
                key_field(attribute),
                "TOO_LONG",
                format!("is too long to be stored as a key (at most {max} bytes)"),
            ),
            StoreError::Limit(Limit::TooManyItems { count }) => Self::limit(
                "body",
                "TOO_MANY_CHANGES",
                format!("this request would change {count} stored items at once; the limit is 100"),
            ),
            // The store's own words stay out of the answer.
            StoreError::Limit(Limit::Refused(_)) => {
                Self::limit("body", "STORE_LIMIT", "the request exceeds a limit of the store".into())
            }
            StoreError::ConditionFailed { .. } | StoreError::Contention => Self::Conflict {
                code: "VERSION_CONFLICT",
                message: "the resource changed concurrently; try again".into(),
            },
            e @ (StoreError::Throttled(_) | StoreError::Unavailable(_)) => Self::Unavailable(e.into()),
            e @ (StoreError::Invalid(_) | StoreError::Corrupt(_)) => Self::Internal(e.into()),
        }
    }
}

impl From<infra::kms::KeyError> for ApiError {
    fn from(e: infra::kms::KeyError) -> Self {
        match e {
            e @ infra::kms::KeyError::Unavailable(_) => Self::Unavailable(e.into()),
            e @ infra::kms::KeyError::Malformed(_) => Self::Internal(e.into()),
        }
    }
}

impl From<QueueError> for ApiError {
    fn from(e: QueueError) -> Self {
        match e {
            QueueError::Store(e) => e.into(),
            e @ QueueError::Unavailable(_) => Self::Unavailable(e.into()),
            e @ QueueError::NotConfigured => Self::Internal(e.into()),
        }
    }
}

impl From<AppError> for ApiError {
    fn from(e: AppError) -> Self {
        match e {
            AppError::Domain(e) => e.into(),
            AppError::NotFound(what) => Self::NotFound(what.to_owned()),
            AppError::PreconditionFailed { current } => Self::PreconditionFailed { current },
            AppError::Conflict { code, message } => Self::Conflict { code, message },
            AppError::Invalid { path, message } => Self::bad(path, message),
            e @ AppError::Corrupt { .. } => Self::Internal(e.into()),
            AppError::Store(e) => e.into(),
            AppError::Queue(e) => e.into(),
        }
    }
}

/// An error and its sources, for the log line.
fn chain(e: &(dyn std::error::Error + 'static)) -> String {
    let mut out = e.to_string();
    let mut next = e.source();
    while let Some(s) = next {
        out.push_str(": ");
        out.push_str(&s.to_string());
        next = s.source();
    }
    out
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let (status, code, errors) = match &self {
            Self::BadRequest { errors, .. } => (StatusCode::BAD_REQUEST, "VALIDATION_ERROR", errors.clone()),
            Self::Unauthorized(_) => (StatusCode::UNAUTHORIZED, "UNAUTHORIZED", vec![]),
            Self::Forbidden(_) => (StatusCode::FORBIDDEN, "FORBIDDEN", vec![]),
            Self::NotFound(_) => (StatusCode::NOT_FOUND, "NOT_FOUND", vec![]),
            Self::Conflict { code, .. } => (StatusCode::CONFLICT, *code, vec![]),
            Self::PreconditionFailed { .. } => (StatusCode::PRECONDITION_FAILED, "VERSION_CONFLICT", vec![]),
            Self::TooLarge(_) => (StatusCode::PAYLOAD_TOO_LARGE, "PAYLOAD_TOO_LARGE", vec![]),
            Self::BodyTimeout => (StatusCode::REQUEST_TIMEOUT, "REQUEST_TIMEOUT", vec![]),
            Self::ItemTooLarge { .. } => (StatusCode::PAYLOAD_TOO_LARGE, "ITEM_TOO_LARGE", vec![]),
            Self::MethodNotAllowed => (StatusCode::METHOD_NOT_ALLOWED, "METHOD_NOT_ALLOWED", vec![]),
            Self::RateLimited { .. } => (StatusCode::TOO_MANY_REQUESTS, "RATE_LIMITED", vec![]),
            Self::Unavailable(source) => {
                tracing::error!(error = %chain(source.as_ref()), "unavailable");
                (StatusCode::SERVICE_UNAVAILABLE, "SERVICE_UNAVAILABLE", vec![])
            }
            Self::Internal(source) => {
                tracing::error!(error = %chain(source.as_ref()), "internal error");
                (StatusCode::INTERNAL_SERVER_ERROR, "INTERNAL_ERROR", vec![])
            }
        };
        let errors = (!errors.is_empty()).then_some(errors);
        let body = ErrorBody { error: ErrorDetail { code: code.to_owned(), message: self.to_string(), errors } };
        let mut res = (status, axum::Json(body)).into_response();
        if status == StatusCode::SERVICE_UNAVAILABLE {
            res.headers_mut().insert(axum::http::header::RETRY_AFTER, HeaderValue::from(RETRY_AFTER_SECONDS));
        }
        if let Self::RateLimited { retry_after } = self {
            res.headers_mut().insert(axum::http::header::RETRY_AFTER, HeaderValue::from(retry_after.max(1)));
        }
        res
    }
}
