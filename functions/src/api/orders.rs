//! The orders resource group: one order and its children,
//! `/v1/accounts/{aid}/shopping/orders/{order_id}...` (update, status, comments, events,
//! sessions). The `{order_id}` path segment accepts either the order's `id` or its
//! `order_id`. Lists and the customer and store views are the `views` group.

use super::mutate;
use crate::app::aggregate::{load_order, OrderAgg};
use crate::app::shown::Kinds;
use crate::edge::auth::{Access, Caller};
use crate::edge::error::ApiError;
use crate::edge::http::{json_bytes, query_pairs, Params};
use crate::edge::state::AppState;
use crate::edge::write::{EventWrite, Write};
use axum::extract::{RawQuery, State};
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, get, post};
use axum::{Json, Router};
use domain::model::{Event, OrderSession};
use domain::order::{self, CancelBody};

pub fn router() -> Router<AppState> {
    let base = "/v1/accounts/{aid}/shopping/orders/{order_id}";
    Router::new()
        .route(base, get(fetch).put(update))
        .route(&format!("{base}/close"), post(close))
        .route(&format!("{base}/open"), post(open))
        .route(&format!("{base}/cancel"), post(cancel))
        .route(&format!("{base}/comments"), post(add_comment))
        .route(&format!("{base}/comments/{{comment_id}}"), delete(delete_comment))
        .route(&format!("{base}/events"), get(list_events).post(add_event))
        .route(&format!("{base}/sessions"), get(list_sessions).post(create_session))
        .route(&format!("{base}/sessions/{{session_id}}"), get(get_session))
}

type Key = Params<(String, String)>;

/// `include_events` of a write's query.
fn kinds(w: &Write) -> Result<Kinds, ApiError> {
    Ok(domain::events::include_events(&w.query(), true)?)
}

#[utoipa::path(
    get,
    path = "/v1/accounts/{aid}/shopping/orders/{order_id}",
    tag = "orders",
    operation_id = "get_order",
    summary = "Get an order",
    params(crate::api::params::Aid, ("order_id" = String, Path, description = "The order's `id` or `order_id`."), crate::api::params::IncludeEvents),
    responses((status = 200, description = "The order; `ETag` carries its version", body = domain::model::Order, headers(("ETag" = String, description = "The version, `W/\"<version>\"`: send it back in `If-Match`"))))
)]
pub(crate) async fn fetch(
    State(state): State<AppState>,
    Params((aid, key)): Key,
    caller: Caller,
    RawQuery(raw): RawQuery,
) -> Result<Response, ApiError> {
    caller.authorize(&aid, Access::Read)?;
    let kinds = domain::events::include_events(&query_pairs(raw.as_deref()), true)?;
    let (store, answers, now) = (state.store.as_ref(), state.answers.as_deref(), state.clock.epoch());
    let answer = crate::app::answer::order(store, answers, now, &aid, &key, &kinds).await?;
    Ok(json_bytes(answer.version, answer.body))
}

#[utoipa::path(
    put,
    path = "/v1/accounts/{aid}/shopping/orders/{order_id}",
    tag = "orders",
    operation_id = "update_order",
    summary = "Update an order (partial)",
    params(crate::api::params::Aid, ("order_id" = String, Path, description = "The order's `id` or `order_id`."), crate::api::params::IncludeEvents),
    request_body(content = domain::order::OrderUpdate, example = json!({"comment": "Leave at the door", "items": [{"line_id": 1, "status": "delivered"}]})),
    responses((status = 200, description = "The order", body = domain::model::Order))
)]
pub(crate) async fn update(Params((_, key)): Key, w: Write) -> Result<Response, ApiError> {
    let body: order::OrderUpdate = w.body.decode(order::check_update)?;
    mutate::<OrderAgg, _>(&w, &key, &kinds(&w)?, |c, ids, rec| order::update(c, ids, rec, body.clone())).await
}

#[utoipa::path(
    post,
    path = "/v1/accounts/{aid}/shopping/orders/{order_id}/close",
    tag = "orders",
    operation_id = "close_order",
    summary = "Close an open order",
    params(crate::api::params::Aid, ("order_id" = String, Path, description = "The order's `id` or `order_id`."), crate::api::params::IncludeEvents),
    responses((status = 200, description = "The order", body = domain::model::Order))
)]
pub(crate) async fn close(Params((_, key)): Key, w: Write) -> Result<Response, ApiError> {
    mutate::<OrderAgg, _>(&w, &key, &kinds(&w)?, order::close).await
}

#[utoipa::path(
    post,
    path = "/v1/accounts/{aid}/shopping/orders/{order_id}/open",
    tag = "orders",
    operation_id = "open_order",
    summary = "Reopen a closed order",
    params(crate::api::params::Aid, ("order_id" = String, Path, description = "The order's `id` or `order_id`."), crate::api::params::IncludeEvents),
    responses((status = 200, description = "The order", body = domain::model::Order))
)]
pub(crate) async fn open(Params((_, key)): Key, w: Write) -> Result<Response, ApiError> {
    mutate::<OrderAgg, _>(&w, &key, &kinds(&w)?, order::open).await
}

#[utoipa::path(
    post,
    path = "/v1/accounts/{aid}/shopping/orders/{order_id}/cancel",
    tag = "orders",
    operation_id = "cancel_order",
    summary = "Cancel an order (nothing captured net of refunds)",
    params(crate::api::params::Aid, ("order_id" = String, Path, description = "The order's `id` or `order_id`."), crate::api::params::IncludeEvents),
    request_body(content = Option<domain::order::CancelBody>, example = json!({"cancelled_reason": "customer"})),
    responses((status = 200, description = "The order", body = domain::model::Order))
)]
pub(crate) async fn cancel(Params((_, key)): Key, w: Write) -> Result<Response, ApiError> {
    // The body is optional: an empty one cancels without a reason.
    let body: CancelBody = if w.body.0.iter().all(u8::is_ascii_whitespace) {
        CancelBody::default()
    } else {
        w.body.decode(order::check_cancel)?
    };
    mutate::<OrderAgg, _>(&w, &key, &kinds(&w)?, |c, ids, rec| order::cancel(c, ids, rec, body.clone())).await
}

#[utoipa::path(
    post,
    path = "/v1/accounts/{aid}/shopping/orders/{order_id}/comments",
    tag = "orders",
    operation_id = "add_order_comment",
    summary = "Add a comment",
    params(crate::api::params::Aid, ("order_id" = String, Path, description = "The order's `id` or `order_id`."), crate::api::params::IncludeEvents),
    request_body(content = domain::order::CommentBody, example = json!({"body": "Called the customer", "visibility": "internal"})),
    responses((status = 200, description = "The order", body = domain::model::Order))
)]
pub(crate) async fn add_comment(Params((_, key)): Key, w: Write) -> Result<Response, ApiError> {
    let body: order::CommentBody = w.body.decode(order::check_comment)?;
    mutate::<OrderAgg, _>(&w, &key, &kinds(&w)?, |c, ids, rec| order::add_comment(c, ids, rec, body.clone())).await
}

#[utoipa::path(
    delete,
    path = "/v1/accounts/{aid}/shopping/orders/{order_id}/comments/{comment_id}",
    tag = "orders",
    operation_id = "delete_order_comment",
    summary = "Delete a comment",
    params(crate::api::params::Aid, ("order_id" = String, Path, description = "The order's `id` or `order_id`."), crate::api::params::IncludeEvents, ("comment_id" = String, Path, description = "The comment's id.")),
    responses((status = 200, description = "The order", body = domain::model::Order))
)]
pub(crate) async fn delete_comment(
    Params((_, key, comment)): Params<(String, String, String)>,
    w: Write,
) -> Result<Response, ApiError> {
    mutate::<OrderAgg, _>(&w, &key, &kinds(&w)?, |c, ids, rec| order::delete_comment(c, ids, rec, &comment)).await
}

#[utoipa::path(
    post,
    path = "/v1/accounts/{aid}/shopping/orders/{order_id}/events",
    tag = "orders",
    operation_id = "add_order_event",
    summary = "Record a service event",
    params(crate::api::params::Aid, ("order_id" = String, Path, description = "The order's `id` or `order_id`.")),
    request_body(content = domain::order::ServiceEventBody, example = json!({"state": "success", "service": "delivery", "service_status": "DELIVERED"})),
    responses((status = 200, description = "The recorded event", body = domain::model::Event))
)]
pub(crate) async fn add_event(Params((_, key)): Key, EventWrite(w): EventWrite) -> Result<Response, ApiError> {
    let body: order::ServiceEventBody = w.body.decode(order::check_service_event)?;
    mutate::<OrderAgg, Event>(&w, &key, &None, |c, ids, rec| order::add_event(c, ids, rec, body.clone())).await
}

#[derive(serde::Serialize, utoipa::ToSchema)]
pub(crate) struct EventList {
    state: &'static str,
    events: Vec<Event>,
}

/// `GET /orders/{order_id}/events`: every event, oldest first, with the combined state. An
/// order emptied by retention has none left.
#[utoipa::path(
    get,
    path = "/v1/accounts/{aid}/shopping/orders/{order_id}/events",
    tag = "orders",
    operation_id = "list_order_events",
    summary = "The order's events with their combined state",
    params(crate::api::params::Aid, ("order_id" = String, Path, description = "The order's `id` or `order_id`.")),
    responses((status = 200, description = "Every event, oldest first", body = EventList))
)]
pub(crate) async fn list_events(
    State(state): State<AppState>,
    Params((aid, key)): Key,
    caller: Caller,
) -> Result<Response, ApiError> {
    caller.authorize(&aid, Access::EventsRead)?;
    let found = load_order(state.store.as_ref(), &aid, &key, true).await?;
    let events = if found.order.is_some() { found.timeline.events() } else { Vec::new() };
    Ok(Json(EventList { state: domain::events::combined_state(&events), events }).into_response())
}

#[utoipa::path(
    post,
    path = "/v1/accounts/{aid}/shopping/orders/{order_id}/sessions",
    tag = "orders",
    operation_id = "create_order_session",
    summary = "Create a payment session for the order",
    params(crate::api::params::Aid, ("order_id" = String, Path, description = "The order's `id` or `order_id`.")),
    request_body(content = domain::order::SessionBody, example = json!({"items": [{"line_id": 1}], "profile_id": "P12345678.default", "url": {"return_url": "https://shop.example.com/done"}})),
    responses((status = 200, description = "The session", body = domain::model::OrderSession))
)]
pub(crate) async fn create_session(Params((_, key)): Key, w: Write) -> Result<Response, ApiError> {
    let body: order::SessionBody = w.body.decode(order::check_session)?;
    mutate::<OrderAgg, OrderSession>(&w, &key, &None, |c, ids, rec| order::create_session(c, ids, rec, body.clone()))
        .await
}

#[derive(serde::Serialize, utoipa::ToSchema)]
pub(crate) struct SessionList {
    sessions: Vec<OrderSession>,
}

async fn sessions_of(state: &AppState, aid: &str, key: &str) -> Result<Vec<OrderSession>, ApiError> {
    let found = load_order(state.store.as_ref(), aid, key, false).await?;
    Ok(found.order.and_then(|o| o.sessions).unwrap_or_default())
}

#[utoipa::path(
    get,
    path = "/v1/accounts/{aid}/shopping/orders/{order_id}/sessions",
    tag = "orders",
    operation_id = "list_order_sessions",
    summary = "The order's payment sessions",
    params(crate::api::params::Aid, ("order_id" = String, Path, description = "The order's `id` or `order_id`.")),
    responses((status = 200, description = "The sessions", body = SessionList))
)]
pub(crate) async fn list_sessions(
    State(state): State<AppState>,
    Params((aid, key)): Key,
    caller: Caller,
) -> Result<Response, ApiError> {
    caller.authorize(&aid, Access::Read)?;
    Ok(Json(SessionList { sessions: sessions_of(&state, &aid, &key).await? }).into_response())
}

#[utoipa::path(
    get,
    path = "/v1/accounts/{aid}/shopping/orders/{order_id}/sessions/{session_id}",
    tag = "orders",
    operation_id = "get_order_session",
    summary = "One payment session",
    params(crate::api::params::Aid, ("order_id" = String, Path, description = "The order's `id` or `order_id`."), ("session_id" = String, Path, description = "The session's id.")),
    responses((status = 200, description = "The session", body = domain::model::OrderSession))
)]
pub(crate) async fn get_session(
    State(state): State<AppState>,
    Params((aid, key, sid)): Params<(String, String, String)>,
    caller: Caller,
) -> Result<Response, ApiError> {
    caller.authorize(&aid, Access::Read)?;
    let session = sessions_of(&state, &aid, &key)
        .await?
        .into_iter()
        .find(|s| s.id.as_deref() == Some(sid.as_str()))
        .ok_or_else(|| ApiError::NotFound("session".into()))?;
    Ok(Json(session).into_response())
}
