//! The hooks resource group: webhook subscriptions under `/v1/accounts/{aid}/hooks/subscriptions`
//! (create, list, get, update, delete, ping, deliveries, redeliver), in the upstream Hooks API
//! shape. Scopes `admin:hooks`, `write:hooks`, `read:hooks`; `admin:shopping` alone does not
//! manage hooks. The secret is write-only.

use crate::auth::{Access, Caller};
use crate::deliverer::{now_ms, subscription, subscription_item};
use crate::error::ApiError;
use crate::http::{parse, Body, Params};
use crate::state::AppState;
use axum::extract::State;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use domain::hooks::{self, Delivery, Pending, SubscriptionBody, SubscriptionRecord};
use domain::table::{Condition, WriteOp};
use domain::webhook;
use infra::{Query, SkCond, StoreError};

pub fn router() -> Router<AppState> {
    let base = "/v1/accounts/{aid}/hooks/subscriptions";
    Router::new()
        .route(base, get(list).post(create))
        .route(&format!("{base}/{{hid}}"), get(fetch).put(update).delete(remove))
        .route(&format!("{base}/{{hid}}/ping"), post(ping))
        .route(&format!("{base}/{{hid}}/deliveries"), get(deliveries))
        .route(&format!("{base}/{{hid}}/deliveries/{{delivery_id}}/redeliver"), post(redeliver))
}

fn check(state: &AppState, creating: bool) -> impl Fn(&SubscriptionBody) -> domain::error::Result<()> + '_ {
    move |b| hooks::check_body(b, creating, &|u| infra::webhook::check_url(u, state.webhook_loopback))
}

/// A subscription of the account and its version; 404 when there is none.
async fn load(state: &AppState, aid: &str, hid: &str) -> Result<(SubscriptionRecord, u64), ApiError> {
    subscription(state.store.as_ref(), aid, hid).await?.ok_or_else(|| ApiError::NotFound("subscription".into()))
}

/// Queues a ping for a subscription.
async fn send_ping(state: &AppState, aid: &str, hid: &str) -> Result<(), StoreError> {
    let now = state.clock.now();
    let id = format!("evt_ping_{}", uuid::Uuid::new_v4().simple());
    let ev = webhook::ping(aid, id, domain::ids::timestamp(now), hid);
    state.jobs.submit(&[Pending::new(hid, &ev, now_ms(state.clock.as_ref()))]).await
}

#[utoipa::path(
    post,
    path = "/v1/accounts/{aid}/hooks/subscriptions",
    tag = "hooks",
    operation_id = "create_subscription",
    summary = "Subscribe a URL to events",
    params(crate::openapi::Aid),
    request_body(content = domain::hooks::SubscriptionBody, example = json!({"events": ["shopping_draft_complete", "shopping_order_update"], "config": {"url": "https://hooks.example.com/shopping", "secret": "a-long-random-secret", "content_type": "json"}, "active": true})),
    responses((status = 200, description = "The subscription", body = domain::hooks::Subscription))
)]
pub(crate) async fn create(
    State(state): State<AppState>,
    Params(aid): Params<String>,
    caller: Caller,
    body: Body,
) -> Result<Response, ApiError> {
    caller.authorize_hooks(&aid, Access::Write)?;
    let rules = check(&state, true);
    let b: SubscriptionBody = body.decode(&rules)?;
    rules(&b)?;
    let made = hooks::Made {
        aid: &aid,
        actor: &caller.sub,
        now: &domain::ids::timestamp(state.clock.now()),
        id: uuid::Uuid::new_v4().to_string(),
    };
    let rec = hooks::create(made, b);
    let put = WriteOp::Put { item: subscription_item(&aid, &rec, 0), cond: Some(Condition::NotExists) };
    state.store.write(vec![put]).await?;
    if rec.sub.active {
        // The subscription exists whatever happens to its first ping (which can be sent
        // again with `POST …/ping`).
        if let Err(e) = send_ping(&state, &aid, &rec.sub.id).await {
            tracing::error!(error = %e, hook = %rec.sub.id, "the new subscription's ping could not be queued");
        }
    }
    Ok(Json(hooks::shown(&rec)).into_response())
}

#[utoipa::path(
    get,
    path = "/v1/accounts/{aid}/hooks/subscriptions",
    tag = "hooks",
    operation_id = "list_subscriptions",
    summary = "List webhook subscriptions",
    params(crate::openapi::Aid),
    responses((status = 200, description = "Every subscription", body = Vec<domain::hooks::Subscription>))
)]
pub(crate) async fn list(
    State(state): State<AppState>,
    Params(aid): Params<String>,
    caller: Caller,
) -> Result<Response, ApiError> {
    caller.authorize_hooks(&aid, Access::Read)?;
    let subs = crate::deliverer::subscriptions(state.store.as_ref(), &aid).await?;
    Ok(Json(subs.iter().map(hooks::shown).collect::<Vec<_>>()).into_response())
}

#[utoipa::path(
    get,
    path = "/v1/accounts/{aid}/hooks/subscriptions/{hid}",
    tag = "hooks",
    operation_id = "get_subscription",
    summary = "Get a subscription",
    params(crate::openapi::Aid, ("hid" = String, Path, description = "The subscription's id.")),
    responses((status = 200, description = "The subscription", body = domain::hooks::Subscription))
)]
pub(crate) async fn fetch(
    State(state): State<AppState>,
    Params((aid, hid)): Params<(String, String)>,
    caller: Caller,
) -> Result<Response, ApiError> {
    caller.authorize_hooks(&aid, Access::Read)?;
    Ok(Json(hooks::shown(&load(&state, &aid, &hid).await?.0)).into_response())
}

#[utoipa::path(
    put,
    path = "/v1/accounts/{aid}/hooks/subscriptions/{hid}",
    tag = "hooks",
    operation_id = "update_subscription",
    summary = "Update a subscription (absent fields unchanged)",
    params(crate::openapi::Aid, ("hid" = String, Path, description = "The subscription's id.")),
    request_body(content = domain::hooks::SubscriptionBody, example = json!({"active": false})),
    responses((status = 200, description = "The subscription", body = domain::hooks::Subscription))
)]
pub(crate) async fn update(
    State(state): State<AppState>,
    Params((aid, hid)): Params<(String, String)>,
    caller: Caller,
    body: Body,
) -> Result<Response, ApiError> {
    caller.authorize_hooks(&aid, Access::Write)?;
    let rules = check(&state, false);
    let b: SubscriptionBody = body.decode(&rules)?;
    rules(&b)?;
    let mut backoff = crate::retry::Backoff::new();
    loop {
        let (rec, prev) = load(&state, &aid, &hid).await?;
        let next = hooks::update(rec, b.clone(), &domain::ids::timestamp(state.clock.now()));
        let put = WriteOp::Put {
            item: subscription_item(&aid, &next, prev.saturating_add(1)),
            cond: Some(Condition::VersionIs(prev)),
        };
        match state.store.write(vec![put]).await {
            Ok(()) => return Ok(Json(hooks::shown(&next)).into_response()),
            Err(StoreError::ConditionFailed { .. } | StoreError::Contention) if backoff.pause().await => {}
            Err(e) => return Err(e.into()),
        }
    }
}

#[utoipa::path(
    delete,
    path = "/v1/accounts/{aid}/hooks/subscriptions/{hid}",
    tag = "hooks",
    operation_id = "delete_subscription",
    summary = "Delete a subscription",
    params(crate::openapi::Aid, ("hid" = String, Path, description = "The subscription's id.")),
    responses((status = 200, description = "The deleted subscription", body = domain::hooks::Subscription))
)]
pub(crate) async fn remove(
    State(state): State<AppState>,
    Params((aid, hid)): Params<(String, String)>,
    caller: Caller,
) -> Result<Response, ApiError> {
    caller.authorize_hooks(&aid, Access::Write)?;
    let (rec, _) = load(&state, &aid, &hid).await?;
    state
        .store
        .write(vec![WriteOp::Delete { key: hooks::hook_key(&aid, &hid), cond: Some(Condition::Exists) }])
        .await?;
    Ok(Json(hooks::shown(&rec)).into_response())
}

#[utoipa::path(
    post,
    path = "/v1/accounts/{aid}/hooks/subscriptions/{hid}/ping",
    tag = "hooks",
    operation_id = "ping_subscription",
    summary = "Send a ping event to the subscription",
    params(crate::openapi::Aid, ("hid" = String, Path, description = "The subscription's id.")),
    responses((status = 200, description = "The subscription", body = domain::hooks::Subscription))
)]
pub(crate) async fn ping(
    State(state): State<AppState>,
    Params((aid, hid)): Params<(String, String)>,
    caller: Caller,
) -> Result<Response, ApiError> {
    caller.authorize_hooks(&aid, Access::Write)?;
    let (rec, _) = load(&state, &aid, &hid).await?;
    send_ping(&state, &aid, &hid).await?;
    Ok(Json(hooks::shown(&rec)).into_response())
}

#[derive(serde::Serialize, utoipa::ToSchema)]
pub(crate) struct DeliveryList {
    deliveries: Vec<Delivery>,
}

/// `GET …/deliveries`: every attempt, newest first (the last 100).
#[utoipa::path(
    get,
    path = "/v1/accounts/{aid}/hooks/subscriptions/{hid}/deliveries",
    tag = "hooks",
    operation_id = "list_deliveries",
    summary = "Delivery attempts, newest first (the last 100)",
    params(crate::openapi::Aid, ("hid" = String, Path, description = "The subscription's id.")),
    responses((status = 200, description = "The attempts", body = DeliveryList))
)]
pub(crate) async fn deliveries(
    State(state): State<AppState>,
    Params((aid, hid)): Params<(String, String)>,
    caller: Caller,
) -> Result<Response, ApiError> {
    caller.authorize_hooks(&aid, Access::Read)?;
    load(&state, &aid, &hid).await?;
    let q = Query {
        sk: SkCond::BeginsWith("DLV#".into()),
        forward: false,
        limit: 100,
        ..Query::partition(hooks::deliveries_pk(&aid, &hid))
    };
    let page = state.store.query(&q).await?;
    let deliveries = page.items.iter().map(|i| parse(&i.doc)).collect::<Result<Vec<Delivery>, _>>()?;
    Ok(Json(DeliveryList { deliveries }).into_response())
}

/// `POST …/deliveries/{delivery_id}/redeliver`: the same event (same bytes, same
/// `webhook-id`) queued again, attempts counted afresh.
#[utoipa::path(
    post,
    path = "/v1/accounts/{aid}/hooks/subscriptions/{hid}/deliveries/{delivery_id}/redeliver",
    tag = "hooks",
    operation_id = "redeliver",
    summary = "Queue a delivered event again",
    params(crate::openapi::Aid, ("hid" = String, Path, description = "The subscription's id."), ("delivery_id" = String, Path, description = "The attempt's id.")),
    responses((status = 200, description = "The attempt whose event is queued again", body = domain::hooks::Delivery))
)]
pub(crate) async fn redeliver(
    State(state): State<AppState>,
    Params((aid, hid, did)): Params<(String, String, String)>,
    caller: Caller,
) -> Result<Response, ApiError> {
    caller.authorize_hooks(&aid, Access::Write)?;
    load(&state, &aid, &hid).await?;
    let item = state.store.get(&hooks::delivery_key(&aid, &hid, &did)).await?;
    let d: Delivery = parse(&item.ok_or_else(|| ApiError::NotFound("delivery".into()))?.doc)?;
    let ev: webhook::WebhookEvent = parse(&d.request.body)?;
    state.jobs.submit(&[Pending::new(&hid, &ev, now_ms(state.clock.as_ref()))]).await?;
    Ok(Json(d).into_response())
}
