//! The drafts resource group: `/v1/accounts/{aid}/shopping/draft_orders...`.

use super::{created, mutate};
use crate::app::aggregate::{Aggregate, CompletingAgg, DraftAgg};
use crate::app::listing::{self, Scan};
use crate::edge::auth::{Access, Caller};
use crate::edge::error::ApiError;
use crate::edge::http::{query_pairs, with_etag, Params};
use crate::edge::state::AppState;
use crate::edge::write::Write;
use axum::extract::{RawQuery, State};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, put};
use axum::Router;
use domain::draft::{self, DraftBody, DraftRecord};
use domain::list::DraftFilter;
use domain::model::{Draft, OrderItem};
use domain::table::{self, Index};
use infra::{Cursor, SkCond};

pub fn router() -> Router<AppState> {
    let base = "/v1/accounts/{aid}/shopping/draft_orders";
    Router::new()
        .route(base, get(list).post(create))
        .route(&format!("{base}/{{id}}"), get(fetch).put(replace).delete(remove))
        .route(&format!("{base}/{{id}}/complete"), put(complete))
        .route(&format!("{base}/{{id}}/items"), axum::routing::post(add_item))
        .route(&format!("{base}/{{id}}/items/{{line_id}}"), put(update_item).delete(remove_item))
}

/// `apply_discounts=true` asks for the upstream discount engine (DealEngine), which this
/// service does not have: say so rather than silently return undiscounted totals.
fn no_discount_engine(w: &Write) -> Result<(), ApiError> {
    for (k, v) in w.query() {
        if k == "apply_discounts" && v != "false" {
            return Err(ApiError::bad(
                "apply_discounts",
                "discount calculation is not available; send discount_lines on the items instead",
            ));
        }
    }
    Ok(())
}

#[utoipa::path(
    post,
    path = "/v1/accounts/{aid}/shopping/draft_orders",
    tag = "drafts",
    operation_id = "create_draft_order",
    summary = "Create a draft",
    params(crate::api::params::Aid, ("apply_discounts" = Option<bool>, Query, description = "Only `false`: this service has no discount engine; send `discount_lines` on the items.")),
    request_body(content = domain::draft::DraftBody, example = json!({"order": {"currency": "NOK", "items": [{"id": "sku-1", "line_id": 1, "description": "Coffee", "quantity": 2, "gross_amount": 5000, "tax_lines": [{"percentage": 25, "amount": 1000}]}]}})),
    responses((status = 200, description = "The draft", body = Draft))
)]
pub(crate) async fn create(w: Write) -> Result<Response, ApiError> {
    no_discount_engine(&w)?;
    let parsed: DraftBody = w.body.decode(draft_rules)?;
    created::<Draft>(&w, |c, ids| draft::create(c, ids, parsed.clone())).await
}

fn draft_rules(b: &DraftBody) -> domain::error::Result<()> {
    domain::validate::draft_body(&b.options.clone().unwrap_or_default(), &b.order)
}

#[utoipa::path(
    get,
    path = "/v1/accounts/{aid}/shopping/draft_orders/{id}",
    tag = "drafts",
    operation_id = "get_draft_order",
    summary = "Get a draft with its events",
    params(crate::api::params::Aid, ("id" = String, Path, description = "The draft's id.")),
    responses((status = 200, description = "The draft; `ETag` carries its version", body = Draft, headers(("ETag" = String, description = "The version, `W/\"<version>\"`: send it back in `If-Match`"))))
)]
pub(crate) async fn fetch(
    State(state): State<AppState>,
    Params((aid, id)): Params<(String, String)>,
    caller: Caller,
) -> Result<Response, ApiError> {
    caller.authorize(&aid, Access::Read)?;
    let loaded = DraftAgg::load(state.store.as_ref(), &aid, &id).await?;
    let version = loaded.rec.version();
    let mut d = loaded.rec.draft;
    d.events = Some(loaded.timeline.events());
    Ok(with_etag(version, d))
}

#[utoipa::path(
    put,
    path = "/v1/accounts/{aid}/shopping/draft_orders/{id}",
    tag = "drafts",
    operation_id = "replace_draft_order",
    summary = "Replace an open draft",
    params(crate::api::params::Aid, ("id" = String, Path, description = "The draft's id."), ("apply_discounts" = Option<bool>, Query, description = "Only `false`: this service has no discount engine; send `discount_lines` on the items.")),
    request_body(content = domain::draft::DraftBody, example = json!({"order": {"currency": "NOK", "items": [{"id": "sku-1", "line_id": 1, "description": "Coffee", "quantity": 2, "gross_amount": 5000, "tax_lines": [{"percentage": 25, "amount": 1000}]}]}})),
    responses((status = 200, description = "The draft", body = Draft))
)]
pub(crate) async fn replace(Params((_, id)): Params<(String, String)>, w: Write) -> Result<Response, ApiError> {
    no_discount_engine(&w)?;
    let parsed: DraftBody = w.body.decode(draft_rules)?;
    mutate::<DraftAgg, _>(&w, &id, &None, |c, ids, rec| draft::replace(c, ids, rec, parsed.clone())).await
}

#[utoipa::path(
    delete,
    path = "/v1/accounts/{aid}/shopping/draft_orders/{id}",
    tag = "drafts",
    operation_id = "delete_draft_order",
    summary = "Delete an open draft",
    params(crate::api::params::Aid, ("id" = String, Path, description = "The draft's id.")),
    responses((status = 200, description = "The deleted draft", body = Draft))
)]
pub(crate) async fn remove(Params((_, id)): Params<(String, String)>, w: Write) -> Result<Response, ApiError> {
    mutate::<DraftAgg, _>(&w, &id, &None, draft::delete).await
}

#[utoipa::path(
    put,
    path = "/v1/accounts/{aid}/shopping/draft_orders/{id}/complete",
    tag = "drafts",
    operation_id = "complete_draft_order",
    summary = "Complete a draft into its order(s)",
    params(crate::api::params::Aid, ("id" = String, Path, description = "The draft's id.")),
    responses((status = 200, description = "The completed draft with `orders`", body = Draft))
)]
pub(crate) async fn complete(Params((_, id)): Params<(String, String)>, w: Write) -> Result<Response, ApiError> {
    mutate::<CompletingAgg, _>(&w, &id, &None, |c, ids, (rec, target)| draft::complete(c, ids, rec, target)).await
}

#[utoipa::path(
    post,
    path = "/v1/accounts/{aid}/shopping/draft_orders/{id}/items",
    tag = "drafts",
    operation_id = "add_draft_item",
    summary = "Add an item to a draft",
    params(crate::api::params::Aid, ("id" = String, Path, description = "The draft's id."), ("apply_discounts" = Option<bool>, Query, description = "Only `false`: this service has no discount engine; send `discount_lines` on the items.")),
    request_body(content = domain::model::OrderItem, example = json!({"id": "sku-2", "line_id": 2, "description": "Cake", "quantity": 1, "gross_amount": 4500})),
    responses((status = 200, description = "The draft", body = Draft))
)]
pub(crate) async fn add_item(Params((_, id)): Params<(String, String)>, w: Write) -> Result<Response, ApiError> {
    no_discount_engine(&w)?;
    let item: OrderItem = w.body.decode(domain::validate::item_body)?;
    mutate::<DraftAgg, _>(&w, &id, &None, |c, ids, rec| draft::add_item(c, ids, rec, item.clone())).await
}

fn line_id(raw: &str) -> Result<i64, ApiError> {
    raw.parse().map_err(|_| ApiError::bad("line_id", "must be an integer"))
}

#[utoipa::path(
    put,
    path = "/v1/accounts/{aid}/shopping/draft_orders/{id}/items/{line_id}",
    tag = "drafts",
    operation_id = "update_draft_item",
    summary = "Replace an item of a draft",
    params(crate::api::params::Aid, ("id" = String, Path, description = "The draft's id."), ("line_id" = i64, Path, description = "The item's `line_id`."), ("apply_discounts" = Option<bool>, Query, description = "Only `false`: this service has no discount engine; send `discount_lines` on the items.")),
    request_body(content = domain::model::OrderItem, example = json!({"id": "sku-2", "line_id": 2, "description": "Cake", "quantity": 1, "gross_amount": 4500})),
    responses((status = 200, description = "The draft", body = Draft))
)]
pub(crate) async fn update_item(
    Params((_, id, line)): Params<(String, String, String)>,
    w: Write,
) -> Result<Response, ApiError> {
    let line = line_id(&line)?;
    no_discount_engine(&w)?;
    let item: OrderItem = w.body.decode(domain::validate::item_body)?;
    mutate::<DraftAgg, _>(&w, &id, &None, |c, ids, rec| draft::update_item(c, ids, rec, line, item.clone())).await
}

#[utoipa::path(
    delete,
    path = "/v1/accounts/{aid}/shopping/draft_orders/{id}/items/{line_id}",
    tag = "drafts",
    operation_id = "delete_draft_item",
    summary = "Remove an item from a draft",
    params(crate::api::params::Aid, ("id" = String, Path, description = "The draft's id."), ("line_id" = i64, Path, description = "The item's `line_id`."), ("apply_discounts" = Option<bool>, Query, description = "Only `false`: this service has no discount engine; send `discount_lines` on the items.")),
    responses((status = 200, description = "The draft", body = Draft))
)]
pub(crate) async fn remove_item(
    Params((_, id, line)): Params<(String, String, String)>,
    w: Write,
) -> Result<Response, ApiError> {
    let line = line_id(&line)?;
    no_discount_engine(&w)?;
    mutate::<DraftAgg, _>(&w, &id, &None, |c, ids, rec| draft::remove_item(c, ids, rec, line)).await
}

#[derive(serde::Serialize, utoipa::ToSchema)]
pub(crate) struct DraftList {
    draft_orders: Vec<Draft>,
}

/// GET /draft_orders: newest first, filtered, paged by `starting_after`.
#[utoipa::path(
    get,
    path = "/v1/accounts/{aid}/shopping/draft_orders",
    tag = "drafts",
    operation_id = "list_draft_orders",
    summary = "List drafts, newest first",
    params(crate::api::params::Aid, crate::api::params::DraftQuery),
    responses((status = 200, description = "A page of drafts", body = DraftList))
)]
pub(crate) async fn list(
    State(state): State<AppState>,
    Params(aid): Params<String>,
    caller: Caller,
    RawQuery(raw): RawQuery,
) -> Result<Response, ApiError> {
    caller.authorize(&aid, Access::Read)?;
    let filter = DraftFilter::parse(&query_pairs(raw.as_deref()))?;
    let mut start = None;
    if let Some(after) = &filter.paging.starting_after {
        let item = if domain::validate::is_uuid(after) {
            state.store.get(&table::draft_key(&aid, after)).await?
        } else {
            None
        };
        let item = item.ok_or_else(|| ApiError::bad("starting_after", "is not the id of a draft in this account"))?;
        start = Some(Cursor::after(&item, Some(Index::Gsi1)));
    }
    let scan = Scan {
        index: Index::Gsi1,
        pk: table::drafts_index_pk(&aid),
        sk: SkCond::Any,
        start,
        limit: filter.paging.limit,
    };
    let found = listing::page(
        state.store.as_ref(),
        scan,
        |s| filter.admits(s),
        |item, _| {
            let rec: DraftRecord = crate::app::error::parse("draft", &item.doc)?;
            Ok(filter.matches(&rec.draft).then_some(rec.draft))
        },
    )
    .await?;
    let drafts = found.into_iter().map(|(_, d)| d).collect();
    Ok(axum::Json(DraftList { draft_orders: drafts }).into_response())
}
