//! The views resource group: order lists. `GET /orders` with every documented filter, and
//! the customer and store views `GET /customers/{customer_id}/orders[/{order_id}]`,
//! `GET /stores/{store_id}/orders[/{order_id}]`.
//!
//! A page reads the list index newest first (`created_at.*` bound the index range), tests
//! each entry's compact summary, fetches only the orders it admits with one batch read,
//! and applies every filter to them; see the README's table section for what a page costs.

use crate::app::listing::{self, Scan};
use crate::app::partition;
use crate::edge::auth::{Access, Caller};
use crate::edge::error::ApiError;
use crate::edge::http::{query_pairs, Params};
use crate::edge::state::AppState;
use axum::extract::{RawQuery, State};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use domain::list::{OrderFilter, Scope, Summary};
use domain::model::Order;
use domain::outbox::Timeline;
use domain::table::{self, Index, Item};
use infra::{query_all, Cursor, Query, SkCond};
use std::collections::HashMap;

pub fn router() -> Router<AppState> {
    let base = "/v1/accounts/{aid}/shopping";
    Router::new()
        .route(&format!("{base}/orders"), get(list))
        .route(&format!("{base}/customers/{{customer_id}}/orders"), get(customer_list))
        .route(&format!("{base}/customers/{{customer_id}}/orders/{{order_id}}"), get(customer_order))
        .route(&format!("{base}/stores/{{store_id}}/orders"), get(store_list))
        .route(&format!("{base}/stores/{{store_id}}/orders/{{order_id}}"), get(store_order))
}

#[derive(serde::Serialize, utoipa::ToSchema)]
pub(crate) struct OrderList {
    orders: Vec<Order>,
}

#[utoipa::path(
    get,
    path = "/v1/accounts/{aid}/shopping/orders",
    tag = "lists",
    operation_id = "list_orders",
    summary = "List orders, newest first",
    params(crate::api::params::Aid, crate::api::params::ViewQuery, crate::api::params::OrderQuery),
    responses((status = 200, description = "A page of orders", body = OrderList))
)]
pub(crate) async fn list(
    State(state): State<AppState>,
    Params(aid): Params<String>,
    caller: Caller,
    RawQuery(raw): RawQuery,
) -> Result<Response, ApiError> {
    answer(&state, &caller, &aid, Scope::Account, raw.as_deref()).await
}

#[utoipa::path(
    get,
    path = "/v1/accounts/{aid}/shopping/customers/{customer_id}/orders",
    tag = "lists",
    operation_id = "list_customer_orders",
    summary = "A customer's orders",
    params(crate::api::params::Aid, ("customer_id" = String, Path, description = "The customer's id."), crate::api::params::ViewQuery),
    responses((status = 200, description = "A page of orders", body = OrderList))
)]
pub(crate) async fn customer_list(
    State(state): State<AppState>,
    Params((aid, customer)): Params<(String, String)>,
    caller: Caller,
    RawQuery(raw): RawQuery,
) -> Result<Response, ApiError> {
    answer(&state, &caller, &aid, Scope::Customer(customer), raw.as_deref()).await
}

#[utoipa::path(
    get,
    path = "/v1/accounts/{aid}/shopping/stores/{store_id}/orders",
    tag = "lists",
    operation_id = "list_store_orders",
    summary = "A store's orders",
    params(crate::api::params::Aid, ("store_id" = String, Path, description = "The store's id."), crate::api::params::ViewQuery),
    responses((status = 200, description = "A page of orders", body = OrderList))
)]
pub(crate) async fn store_list(
    State(state): State<AppState>,
    Params((aid, store)): Params<(String, String)>,
    caller: Caller,
    RawQuery(raw): RawQuery,
) -> Result<Response, ApiError> {
    answer(&state, &caller, &aid, Scope::Store(store), raw.as_deref()).await
}

#[utoipa::path(
    get,
    path = "/v1/accounts/{aid}/shopping/customers/{customer_id}/orders/{order_id}",
    tag = "lists",
    operation_id = "get_customer_order",
    summary = "One order of a customer",
    params(crate::api::params::Aid, ("customer_id" = String, Path, description = "The customer's id."), ("order_id" = String, Path, description = "The order's `id` or `order_id`."), crate::api::params::IncludeEvents),
    responses((status = 200, description = "The order", body = domain::model::Order))
)]
pub(crate) async fn customer_order(
    State(state): State<AppState>,
    Params((aid, customer, key)): Params<(String, String, String)>,
    caller: Caller,
    RawQuery(raw): RawQuery,
) -> Result<Response, ApiError> {
    one(&state, &caller, &aid, Scope::Customer(customer), &key, raw.as_deref()).await
}

#[utoipa::path(
    get,
    path = "/v1/accounts/{aid}/shopping/stores/{store_id}/orders/{order_id}",
    tag = "lists",
    operation_id = "get_store_order",
    summary = "One order of a store",
    params(crate::api::params::Aid, ("store_id" = String, Path, description = "The store's id."), ("order_id" = String, Path, description = "The order's `id` or `order_id`."), crate::api::params::IncludeEvents),
    responses((status = 200, description = "The order", body = domain::model::Order))
)]
pub(crate) async fn store_order(
    State(state): State<AppState>,
    Params((aid, store, key)): Params<(String, String, String)>,
    caller: Caller,
    RawQuery(raw): RawQuery,
) -> Result<Response, ApiError> {
    one(&state, &caller, &aid, Scope::Store(store), &key, raw.as_deref()).await
}

/// One order through a view: a 404 unless it belongs to the view's customer or store.
async fn one(
    state: &AppState,
    caller: &Caller,
    aid: &str,
    scope: Scope,
    key: &str,
    raw: Option<&str>,
) -> Result<Response, ApiError> {
    caller.authorize(aid, Access::Read)?;
    let kinds = domain::events::include_events(&query_pairs(raw), false)?;
    let (version, order) = crate::app::aggregate::read_order_view(state.store.as_ref(), aid, key, &kinds).await?;
    let belongs = match &scope {
        Scope::Customer(c) => order.content.customer.as_ref().and_then(|x| x.id.as_ref()) == Some(c),
        Scope::Store(s) => domain::list::store_ids(&order).contains(s),
        Scope::Account => true,
    };
    if !belongs {
        return Err(ApiError::NotFound("order".into()));
    }
    Ok(crate::http::with_etag(version, order))
}

/// The index partition a scope reads.
fn index_of(aid: &str, scope: &Scope) -> (Index, String) {
    match scope {
        Scope::Customer(c) => (Index::Gsi2, table::customer_index_pk(aid, c)),
        Scope::Account | Scope::Store(_) => (Index::Gsi1, table::orders_index_pk(aid)),
    }
}

/// The index sort-key range of the `created_at` bounds (sort keys are `{created_at}#{id}`).
fn created_range(f: &OrderFilter) -> (SkCond, Option<String>, Option<String>) {
    let lo = f.created_gte.clone();
    let hi = f.created_lte.as_ref().map(|b| format!("{b}#~"));
    let cond = match (&lo, &hi) {
        (Some(l), Some(h)) if l <= h => SkCond::Between(l.clone(), h.clone()),
        (Some(_), Some(_)) => SkCond::Eq(String::new()),
        (Some(l), None) => SkCond::Ge(l.clone()),
        (None, Some(h)) => SkCond::Le(h.clone()),
        (None, None) => SkCond::Any,
    };
    (cond, lo, hi)
}

async fn answer(
    state: &AppState,
    caller: &Caller,
    aid: &str,
    scope: Scope,
    raw: Option<&str>,
) -> Result<Response, ApiError> {
    caller.authorize(aid, Access::Read)?;
    let filter = OrderFilter::parse(&query_pairs(raw), scope)?;
    let orders = page(state, aid, &filter).await?;
    Ok(Json(OrderList { orders }).into_response())
}

/// Where a page starts: after the order `starting_after` names, which must be an order of the
/// list (400 otherwise). `None` inside `Ok` when the cursor lies past the range (empty page).
async fn start(
    state: &AppState,
    aid: &str,
    filter: &OrderFilter,
    index: Index,
    range: (&Option<String>, &Option<String>),
) -> Result<Option<Option<Cursor>>, ApiError> {
    let Some(after) = &filter.paging.starting_after else { return Ok(Some(None)) };
    let item =
        if domain::validate::is_uuid(after) { state.store.get(&table::order_key(aid, after)).await? } else { None };
    let cursor = item.as_ref().and_then(|i| i.index_key(index).map(|_| Cursor::after(i, Some(index))));
    let cursor = cursor.ok_or_else(|| ApiError::bad("starting_after", "is not the id of an order in this list"))?;
    let sk = cursor.index_sk.clone().unwrap_or_default();
    if range.0.as_ref().is_some_and(|lo| sk.as_str() < lo.as_str()) {
        return Ok(None);
    }
    if range.1.as_ref().is_some_and(|hi| sk.as_str() > hi.as_str()) {
        // Newer than the range: the page starts at its top.
        return Ok(Some(None));
    }
    Ok(Some(Some(cursor)))
}

/// One page of a list: newest first, every filter applied, at most `limit` orders.
async fn page(state: &AppState, aid: &str, filter: &OrderFilter) -> Result<Vec<Order>, ApiError> {
    let (index, pk) = index_of(aid, &filter.scope);
    let (sk, lo, hi) = created_range(filter);
    let Some(start) = start(state, aid, filter, index, (&lo, &hi)).await? else { return Ok(Vec::new()) };
    let scan = Scan { index, pk, sk, start, limit: filter.paging.limit };
    let found = listing::page(
        state.store.as_ref(),
        scan,
        |s| filter.admits(s),
        |item, summary| {
            let order: Order = crate::app::error::parse("order", &item.doc)?;
            Ok(filter.matches(&order, summary).then_some(order))
        },
    )
    .await?;
    complete(state, found, &filter.kinds).await
}

/// Completes each listed order from its partition, concurrently, where it needs it: its
/// payment operations (items of their own, read only for orders whose summary counts any)
/// and, when asked, its events (history items merged with those riding in the order item).
async fn complete(
    state: &AppState,
    found: Vec<(Item, Order)>,
    kinds: &crate::app::shown::Kinds,
) -> Result<Vec<Order>, ApiError> {
    let mut reads = tokio::task::JoinSet::new();
    for (n, (item, _)) in found.iter().enumerate() {
        let has_ops =
            item.summary.as_deref().and_then(|s| serde_json::from_str::<Summary>(s).ok()).is_some_and(|s| s.ops);
        let sk = match (kinds.is_some(), has_ops) {
            (false, false) => continue,
            (false, true) => SkCond::BeginsWith(domain::payment::OP_PREFIX.to_owned()),
            (true, false) => SkCond::BeginsWith(table::EVENT_PREFIX.to_owned()),
            (true, true) => SkCond::Any,
        };
        let (state, pk) = (state.clone(), item.pk.clone());
        reads.spawn(async move { (n, query_all(state.store.as_ref(), Query { sk, ..Query::partition(pk) }).await) });
    }
    let mut read: HashMap<usize, Vec<Item>> = HashMap::new();
    while let Some(done) = reads.join_next().await {
        let (n, items) = done.map_err(ApiError::internal)?;
        read.insert(n, items?);
    }
    let mut out = Vec::with_capacity(found.len());
    for (n, (item, mut order)) in found.into_iter().enumerate() {
        if let Some(mut items) = read.remove(&n) {
            // The order item as listed is the version shown; drop any newer copy read since.
            items.retain(|i| i.sk != table::ORDER_SK);
            items.push(item);
            let part = partition::sort(items, table::ORDER_SK, &mut Timeline::default())?;
            crate::app::aggregate::attach_operations(&mut order, &part.others)?;
            crate::app::shown::show_order_events(&mut order, part.timeline.events(), kinds);
        }
        out.push(order);
    }
    Ok(out)
}
