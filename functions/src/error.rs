//! The edge's one error type and its one mapping to HTTP: status plus the upstream error body
//! `{"error": {"code", "message", "errors"}}`.

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use domain::{DomainError, FieldError};
use infra::StoreError;
use serde_json::json;

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
    #[error("method not allowed")]
    MethodNotAllowed,
    #[error("the service is temporarily unavailable")]
    Unavailable,
}

impl ApiError {
    pub fn bad(path: &str, message: impl Into<String>) -> Self {
        let message = message.into();
        Self::BadRequest {
            message: format!("{path}: {message}"),
            errors: vec![FieldError::new(path, "INVALID", message)],
        }
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

impl From<StoreError> for ApiError {
    fn from(e: StoreError) -> Self {
        tracing::error!(error = %e, "store failure");
        Self::Unavailable
    }
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
            Self::MethodNotAllowed => (StatusCode::METHOD_NOT_ALLOWED, "METHOD_NOT_ALLOWED", vec![]),
            Self::Unavailable => (StatusCode::SERVICE_UNAVAILABLE, "SERVICE_UNAVAILABLE", vec![]),
        };
        let mut body = json!({"error": {"code": code, "message": self.to_string()}});
        if !errors.is_empty() {
            body["error"]["errors"] = json!(errors);
        }
        (status, axum::Json(body)).into_response()
    }
}
