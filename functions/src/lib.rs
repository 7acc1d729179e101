//! The HTTP edge: one axum Router per resource group over the shared domain, mounted one
//! group per Lambda on AWS and all together by `shopping-local`.
//!
//! No request path may panic: the release profile aborts on panic, which would take down the
//! local server or a Lambda execution environment. The lints below hold that line.
#![cfg_attr(not(test), deny(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing, clippy::panic))]

mod aggregate;
pub mod auth;
pub mod deliverer;
pub mod drafts;
pub mod error;
pub mod hooks;
pub mod http;
pub mod idempotency;
pub mod lambda;
mod listing;
pub mod local;
pub mod openapi;
pub mod orders;
mod partition;
pub mod payments;
pub mod publisher;
pub mod retry;
pub mod state;
pub mod tokens;
pub mod usage;
pub mod views;

use axum::Router;
use state::AppState;

/// A resource group's router with the edge behaviour every group shares: JSON 404/405, the
/// request log line.
pub fn finish(router: Router<AppState>, state: AppState) -> Router {
    router
        .fallback(http::not_found)
        .method_not_allowed_fallback(http::method_not_allowed)
        .layer(axum::middleware::from_fn_with_state(state.clone(), http::meter))
        .layer(axum::middleware::from_fn(http::log_request))
        .with_state(state)
}

/// Every resource group on one router (the local server, whole-API tests).
pub fn app(state: AppState) -> Router {
    finish(
        drafts::router()
            .merge(orders::router())
            .merge(payments::router())
            .merge(views::router())
            .merge(hooks::router()),
        state,
    )
}
