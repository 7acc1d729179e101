//! The drafts resource group: `/v1/accounts/{aid}/shopping/draft_orders...`.

use crate::aggregate::{apply, mutate, replayed, Aggregate, CompletingAgg, DraftAgg, Write};
use crate::auth::{Access, Caller};
use crate::error::ApiError;
use crate::http::{parse, query_pairs, with_etag, Params};
use crate::listing::{self, Scan};
use crate::retry::Backoff;
use crate::state::{AppState, RandomIds};
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

async fn create(w: Write) -> Result<Response, ApiError> {
    no_discount_engine(&w)?;
    if let Some(done) = replayed::<Draft>(&w, &None).await? {
        return Ok(done);
    }
    let parsed: DraftBody = w.body.decode(draft_rules)?;
    let mut backoff = Backoff::new();
    loop {
        let out = draft::create(&w.ctx, &mut RandomIds, parsed.clone())?;
        let pk = out.ops.first().map(|op| op.key().pk);
        if let Some(done) = apply(&w, out, &[], pk.as_deref(), &None).await? {
            return Ok(done);
        }
        // Only a freshly drawn id can collide here (a reserved order_id): draw again.
        if !backoff.pause().await {
            return Err(ApiError::Internal);
        }
    }
}

fn draft_rules(b: &DraftBody) -> domain::error::Result<()> {
    domain::validate::draft_body(&b.options.clone().unwrap_or_default(), &b.order)
}

async fn fetch(
    State(state): State<AppState>,
    Params((aid, id)): Params<(String, String)>,
    caller: Caller,
) -> Result<Response, ApiError> {
    caller.authorize(&aid, Access::Read)?;
    let loaded = DraftAgg::load(&state, &aid, &id).await?;
    let version = loaded.rec.version();
    let mut d = loaded.rec.draft;
    d.events = Some(loaded.timeline.events());
    Ok(with_etag(version, d))
}

async fn replace(Params((_, id)): Params<(String, String)>, w: Write) -> Result<Response, ApiError> {
    no_discount_engine(&w)?;
    let parsed: DraftBody = w.body.decode(draft_rules)?;
    mutate::<DraftAgg, _>(&w, &id, None, |c, ids, rec| draft::replace(c, ids, rec, parsed.clone())).await
}

async fn remove(Params((_, id)): Params<(String, String)>, w: Write) -> Result<Response, ApiError> {
    mutate::<DraftAgg, _>(&w, &id, None, draft::delete).await
}

async fn complete(Params((_, id)): Params<(String, String)>, w: Write) -> Result<Response, ApiError> {
    mutate::<CompletingAgg, _>(&w, &id, None, |c, ids, (rec, target)| draft::complete(c, ids, rec, target)).await
}

async fn add_item(Params((_, id)): Params<(String, String)>, w: Write) -> Result<Response, ApiError> {
    no_discount_engine(&w)?;
    let item: OrderItem = w.body.decode(domain::validate::item_body)?;
    mutate::<DraftAgg, _>(&w, &id, None, |c, ids, rec| draft::add_item(c, ids, rec, item.clone())).await
}

fn line_id(raw: &str) -> Result<i64, ApiError> {
    raw.parse().map_err(|_| ApiError::bad("line_id", "must be an integer"))
}

async fn update_item(Params((_, id, line)): Params<(String, String, String)>, w: Write) -> Result<Response, ApiError> {
    let line = line_id(&line)?;
    no_discount_engine(&w)?;
    let item: OrderItem = w.body.decode(domain::validate::item_body)?;
    mutate::<DraftAgg, _>(&w, &id, None, |c, ids, rec| draft::update_item(c, ids, rec, line, item.clone())).await
}

async fn remove_item(Params((_, id, line)): Params<(String, String, String)>, w: Write) -> Result<Response, ApiError> {
    let line = line_id(&line)?;
    no_discount_engine(&w)?;
    mutate::<DraftAgg, _>(&w, &id, None, |c, ids, rec| draft::remove_item(c, ids, rec, line)).await
}

#[derive(serde::Serialize)]
struct DraftList {
    draft_orders: Vec<Draft>,
}

/// GET /draft_orders: newest first, filtered, paged by `starting_after`.
async fn list(
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
        &state,
        scan,
        |s| filter.admits(s),
        |item, _| {
            let rec: DraftRecord = parse(&item.doc)?;
            Ok(filter.matches(&rec.draft).then_some(rec.draft))
        },
    )
    .await?;
    let drafts = found.into_iter().map(|(_, d)| d).collect();
    Ok(axum::Json(DraftList { draft_orders: drafts }).into_response())
}
