//! The HTTP edge: what every request passes through before and after a use case — who is
//! calling (auth), the extractors (body, path, `If-Match`, the write request), the one
//! mapping of errors to the upstream error shape (where faults are logged, once), the
//! middleware (request log, metering), the routed path of a request from API Gateway, and the
//! shared state.

pub mod auth;
pub mod error;
pub mod http;
pub mod limit;
pub mod route_path;
pub mod state;
pub(crate) mod write;
