//! The hooks resource group: webhook subscriptions under `/v1/accounts/{aid}/hooks/subscriptions`
//! (create, list, get, update, soft delete, ping, deliveries and one delivery's detail,
//! redeliver, recover), in the upstream Hooks API shape. Scopes `admin:hooks`, `write:hooks`, `read:hooks`; `admin:shopping` alone does not
//! manage hooks. The secret is write-only.

use crate::app::subscriptions::{self, job};
use crate::edge::auth::{Access, Caller};
use crate::edge::error::ApiError;
use crate::edge::http::{parse, Body, Params};
use crate::edge::state::AppState;
use axum::extract::State;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use domain::hooks::{self, Delivery, Pending, RecoverBody, SubscriptionBody, SubscriptionRecord};
use domain::webhook;
use infra::queue::QueueError;
use infra::{Query, SkCond};

pub fn router() -> Router<AppState> {
    let base = "/v1/accounts/{aid}/hooks/subscriptions";
    Router::new()
        .route(base, get(list).post(create))
        .route(&format!("{base}/{{hid}}"), get(fetch).put(update).delete(remove))
        .route(&format!("{base}/{{hid}}/ping"), post(ping))
        .route(&format!("{base}/{{hid}}/deliveries"), get(deliveries))
        .route(&format!("{base}/{{hid}}/deliveries/{{delivery_id}}"), get(delivery))
        .route(&format!("{base}/{{hid}}/deliveries/{{delivery_id}}/redeliver"), post(redeliver))
        .route(&format!("{base}/{{hid}}/recover"), post(recover))
}

fn check(state: &AppState, creating: bool) -> impl Fn(&SubscriptionBody) -> domain::error::Result<()> + '_ {
    move |b| hooks::check_body(b, creating, &|u| infra::webhook::check_url(u, state.webhook_loopback))
}

/// A subscription of the account and its version; 404 when there is none.
async fn load(state: &AppState, aid: &str, hid: &str) -> Result<(SubscriptionRecord, u64), ApiError> {
    Ok(subscriptions::get(state.store.as_ref(), aid, hid).await?)
}

/// Queues a ping for a subscription.
async fn send_ping(state: &AppState, aid: &str, rec: &SubscriptionRecord) -> Result<(), QueueError> {
    let now = state.clock.now();
    let id = format!("evt_ping_{}", uuid::Uuid::new_v4().simple());
    let ev = webhook::ping(aid, id, domain::ids::timestamp(now), &rec.sub.id);
    state.jobs.submit(&[job(rec, &ev, state.clock.epoch_ms())]).await
}

#[utoipa::path(
    post,
    path = "/v1/accounts/{aid}/hooks/subscriptions",
    tag = "hooks",
    operation_id = "create_subscription",
    summary = "Subscribe a URL to events",
    params(crate::api::params::Aid),
    request_body(content = domain::hooks::SubscriptionBody, example = json!({"events": ["shopping_draft_complete", "shopping_order_update"], "config": {"url": "https://hooks.example.com/shopping", "content_type": "application/json", "insecure_ssl": 0, "secret": {"type": "HMAC-SHA1", "value": "a-long-random-secret"}}, "active": true, "fields": "order(id,order_id,status,amount)"})),
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
    subscriptions::insert(state.store.as_ref(), &aid, &rec).await?;
    if rec.sub.active {
        // The subscription exists whatever happens to its first ping (which can be sent
        // again with `POST …/ping`).
        if let Err(e) = send_ping(&state, &aid, &rec).await {
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
    params(crate::api::params::Aid),
    responses((status = 200, description = "Every subscription", body = Vec<domain::hooks::Subscription>))
)]
pub(crate) async fn list(
    State(state): State<AppState>,
    Params(aid): Params<String>,
    caller: Caller,
) -> Result<Response, ApiError> {
    caller.authorize_hooks(&aid, Access::Read)?;
    let subs = subscriptions::all(state.store.as_ref(), &aid).await?;
    Ok(Json(subs.iter().map(hooks::shown).collect::<Vec<_>>()).into_response())
}

#[utoipa::path(
    get,
    path = "/v1/accounts/{aid}/hooks/subscriptions/{hid}",
    tag = "hooks",
    operation_id = "get_subscription",
    summary = "Get a subscription",
    params(crate::api::params::Aid, ("hid" = String, Path, description = "The subscription's id.")),
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
    params(crate::api::params::Aid, ("hid" = String, Path, description = "The subscription's id.")),
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
    let next = change(&state, &aid, &hid, |rec, now| hooks::update(rec, b.clone(), now)).await?;
    Ok(Json(hooks::shown(&next)).into_response())
}

#[utoipa::path(
    delete,
    path = "/v1/accounts/{aid}/hooks/subscriptions/{hid}",
    tag = "hooks",
    operation_id = "delete_subscription",
    summary = "Delete a subscription (it then reads as absent and receives nothing)",
    params(crate::api::params::Aid, ("hid" = String, Path, description = "The subscription's id.")),
    responses((status = 200, description = "The deleted subscription, with deleted_at and deleted_by", body = domain::hooks::Subscription))
)]
pub(crate) async fn remove(
    State(state): State<AppState>,
    Params((aid, hid)): Params<(String, String)>,
    caller: Caller,
) -> Result<Response, ApiError> {
    caller.authorize_hooks(&aid, Access::Write)?;
    let next = change(&state, &aid, &hid, |rec, now| hooks::delete(rec, &caller.sub, now)).await?;
    Ok(Json(hooks::shown(&next)).into_response())
}

/// Changes a subscription through the write loop, stamped with the time of the attempt.
async fn change(
    state: &AppState,
    aid: &str,
    hid: &str,
    f: impl Fn(SubscriptionRecord, &str) -> SubscriptionRecord,
) -> Result<SubscriptionRecord, ApiError> {
    let clock = state.clock.as_ref();
    Ok(subscriptions::change(state.store.as_ref(), aid, hid, |rec| f(rec, &domain::ids::timestamp(clock.now())))
        .await?)
}

#[utoipa::path(
    post,
    path = "/v1/accounts/{aid}/hooks/subscriptions/{hid}/ping",
    tag = "hooks",
    operation_id = "ping_subscription",
    summary = "Send a ping event to the subscription",
    params(crate::api::params::Aid, ("hid" = String, Path, description = "The subscription's id.")),
    responses((status = 200, description = "The subscription", body = domain::hooks::Subscription))
)]
pub(crate) async fn ping(
    State(state): State<AppState>,
    Params((aid, hid)): Params<(String, String)>,
    caller: Caller,
) -> Result<Response, ApiError> {
    caller.authorize_hooks(&aid, Access::Write)?;
    let (rec, _) = load(&state, &aid, &hid).await?;
    send_ping(&state, &aid, &rec).await?;
    Ok(Json(hooks::shown(&rec)).into_response())
}

/// `GET …/deliveries`: every attempt, newest first (the last 100), as the upstream's bare
/// array.
#[utoipa::path(
    get,
    path = "/v1/accounts/{aid}/hooks/subscriptions/{hid}/deliveries",
    tag = "hooks",
    operation_id = "list_deliveries",
    summary = "Delivery attempts, newest first (the last 100)",
    params(crate::api::params::Aid, ("hid" = String, Path, description = "The subscription's id.")),
    responses((status = 200, description = "The attempts", body = Vec<domain::hooks::DeliverySummary>))
)]
pub(crate) async fn deliveries(
    State(state): State<AppState>,
    Params((aid, hid)): Params<(String, String)>,
    caller: Caller,
) -> Result<Response, ApiError> {
    caller.authorize_hooks(&aid, Access::Read)?;
    load(&state, &aid, &hid).await?;
    let q = Query {
        sk: SkCond::BeginsWith(hooks::DELIVERY_SK_PREFIX.into()),
        forward: false,
        limit: 100,
        ..Query::partition(hooks::deliveries_pk(&aid, &hid))
    };
    let page = state.store.query(&q).await?;
    let list =
        page.items.iter().map(|i| parse::<Delivery>(&i.doc).map(|d| d.summary())).collect::<Result<Vec<_>, _>>()?;
    Ok(Json(list).into_response())
}

/// A delivery record of the subscription; 404 when there is none.
async fn load_delivery(state: &AppState, aid: &str, hid: &str, did: &str) -> Result<Delivery, ApiError> {
    let item = state.store.get(&hooks::delivery_key(aid, hid, did)).await?;
    parse(&item.ok_or_else(|| ApiError::NotFound("delivery".into()))?.doc)
}

/// `GET …/deliveries/{delivery_id}`: one attempt with its request, the receiver's answer and
/// timing (the upstream's delivery details).
#[utoipa::path(
    get,
    path = "/v1/accounts/{aid}/hooks/subscriptions/{hid}/deliveries/{delivery_id}",
    tag = "hooks",
    operation_id = "get_delivery",
    summary = "One delivery attempt in detail",
    params(crate::api::params::Aid, ("hid" = String, Path, description = "The subscription's id."), ("delivery_id" = String, Path, description = "The attempt's id.")),
    responses((status = 200, description = "The attempt", body = domain::hooks::DeliveryDetail))
)]
pub(crate) async fn delivery(
    State(state): State<AppState>,
    Params((aid, hid, did)): Params<(String, String, String)>,
    caller: Caller,
) -> Result<Response, ApiError> {
    caller.authorize_hooks(&aid, Access::Read)?;
    load(&state, &aid, &hid).await?;
    Ok(Json(load_delivery(&state, &aid, &hid, &did).await?.detail()).into_response())
}

/// `POST …/deliveries/{delivery_id}/redeliver`: the same event (same bytes, same
/// `event-delivery` and `webhook-id`) queued again, attempts counted afresh, as a round of
/// its own: its fresh guard id lets it be sent although the event was delivered before,
/// while copies of this one job still send at most once.
#[utoipa::path(
    post,
    path = "/v1/accounts/{aid}/hooks/subscriptions/{hid}/deliveries/{delivery_id}/redeliver",
    tag = "hooks",
    operation_id = "redeliver",
    summary = "Queue a delivered event again",
    params(crate::api::params::Aid, ("hid" = String, Path, description = "The subscription's id."), ("delivery_id" = String, Path, description = "The attempt's id.")),
    responses((status = 200, description = "The attempt whose event is queued again", body = domain::hooks::DeliveryDetail))
)]
pub(crate) async fn redeliver(
    State(state): State<AppState>,
    Params((aid, hid, did)): Params<(String, String, String)>,
    caller: Caller,
) -> Result<Response, ApiError> {
    caller.authorize_hooks(&aid, Access::Write)?;
    load(&state, &aid, &hid).await?;
    let d = load_delivery(&state, &aid, &hid, &did).await?;
    state.jobs.submit(&[Pending::again(&d, &aid, state.clock.epoch_ms(), fresh_round())]).await?;
    Ok(Json(d.detail()).into_response())
}

/// The guard id of a round of deliveries a merchant asked for (redeliver, recover): its own,
/// so the guard of an earlier round, delivered or not, neither swallows nor joins it.
fn fresh_round() -> String {
    uuid::Uuid::new_v4().to_string()
}

/// What a recover call did.
#[derive(serde::Serialize, utoipa::ToSchema)]
pub(crate) struct Recovered {
    /// Deliveries queued again (each `event_delivery` once).
    queued: usize,
    /// When the window held more than one call recovers: call again with `since` = this.
    #[serde(skip_serializing_if = "Option::is_none")]
    next_since: Option<String>,
}

/// `POST …/recover`: every delivery of the window whose latest attempt failed or is dead,
/// queued again once (the same bytes and `event-delivery`), at most 100 a call.
#[utoipa::path(
    post,
    path = "/v1/accounts/{aid}/hooks/subscriptions/{hid}/recover",
    tag = "hooks",
    operation_id = "recover_deliveries",
    summary = "Queue again every failed or dead delivery of a time window",
    params(crate::api::params::Aid, ("hid" = String, Path, description = "The subscription's id.")),
    request_body(content = domain::hooks::RecoverBody, example = json!({"since": "2026-12-01T00:00:00Z"})),
    responses((status = 200, description = "How many were queued", body = Recovered))
)]
pub(crate) async fn recover(
    State(state): State<AppState>,
    Params((aid, hid)): Params<(String, String)>,
    caller: Caller,
    body: Body,
) -> Result<Response, ApiError> {
    caller.authorize_hooks(&aid, Access::Write)?;
    let now_ms = state.clock.epoch_ms();
    let b: RecoverBody = body.decode(|b: &RecoverBody| hooks::recover_window(b, now_ms).map(|_| ()))?;
    let (since, until) = hooks::recover_window(&b, now_ms)?;
    load(&state, &aid, &hid).await?;
    let mut q = Query {
        sk: SkCond::Between(hooks::delivery_sk_at(since), hooks::delivery_sk_at(until)),
        forward: true,
        limit: 100,
        ..Query::partition(hooks::deliveries_pk(&aid, &hid))
    };
    let mut records = Vec::new();
    let mut truncated = false;
    loop {
        let page = state.store.query(&q).await?;
        // The end stays exclusive: the bound `DLV#{until}` sorts before every key of that
        // millisecond (`DLV#{until}-…`).
        for i in &page.items {
            records.push(parse::<Delivery>(&i.doc)?);
        }
        match page.next {
            Some(next) if records.len() < hooks::RECOVER_SCAN_MAX => q.start_after = Some(next),
            Some(_) => {
                truncated = true;
                break;
            }
            None => break,
        }
    }
    let chosen = hooks::to_recover(&records);
    let full = chosen.len() == hooks::RECOVER_MAX;
    let jobs: Vec<Pending> = chosen.iter().map(|d| Pending::again(d, &aid, now_ms, fresh_round())).collect();
    state.jobs.submit(&jobs).await?;
    // A window holding more than one call recovers continues where this call stopped.
    let next_since = if full {
        chosen.last().map(|d| d.created_at.clone())
    } else if truncated {
        records.last().map(|d| d.created_at.clone())
    } else {
        None
    };
    Ok(Json(Recovered { queued: jobs.len(), next_since }).into_response())
}
