//! The Shopping API's functions, in role folders whose imports run one way (bin → platform →
//! api/workers → app/edge → domain/infra):
//! - `platform`: the hosts — a Lambda's configuration and run loop, the local server;
//! - `api`: one HTTP module per Lambda group, its parameter types, the OpenAPI document;
//! - `workers`: the stream publisher and the webhook deliverer;
//! - `edge`: auth, extractors, the error mapping, middleware, the shared state;
//! - `app`: the use cases over the store port (no HTTP): aggregates, the write loop,
//!   idempotency, list pages, subscriptions;
//! - `metering`: per-tenant usage.
//!
//! No request path may panic: the release profile aborts on panic, which would take down the
//! local server or a Lambda execution environment. The lints below hold that line.
#![cfg_attr(not(test), deny(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing, clippy::panic))]

pub mod api;
pub mod app;
pub mod edge;
pub mod metering;
pub mod platform;
pub mod workers;

use axum::Router;
use edge::http;
use edge::state::AppState;

/// A resource group's router with the edge behaviour every group shares: JSON 404/405, the
/// request log line, metering, per-account limits and the Lambda deadline ([`http::edge`]).
pub fn finish(router: Router<AppState>, state: AppState) -> Router {
    router
        .fallback(http::not_found)
        .method_not_allowed_fallback(http::method_not_allowed)
        .layer(axum::middleware::from_fn_with_state(state.clone(), http::edge))
        .with_state(state)
}

/// Every resource group on one router (the local server, whole-API tests).
pub fn app(state: AppState) -> Router {
    finish(
        api::drafts::router()
            .merge(api::orders::router())
            .merge(api::payments::router())
            .merge(api::views::router())
            .merge(api::hooks::router()),
        state,
    )
}
