//! The drafts resource group: `/v1/accounts/{aid}/shopping/draft_orders...`.

use crate::auth::{Access, Caller};
use crate::error::ApiError;
use crate::http::{if_match, json_with_etag, parse, query_pairs, with_etag, Body, Params};
use crate::idempotency::{Idem, Replay};
use crate::partition::{self, Partition};
use crate::retry::Backoff;
use crate::state::{AppState, RandomIds};
use axum::extract::{FromRequest, FromRequestParts, RawQuery, Request, State};
use axum::http::Uri;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, put};
use axum::Router;
use domain::draft::{self, Ctx, DraftBody, DraftRecord, OrderRecord, Outcome};
use domain::ids::Ids;
use domain::list::{DraftFilter, Summary};
use domain::model::{Draft, Event, EventRequest, OrderItem};
use domain::outbox::Timeline;
use domain::table::{self, Index, Item, Key};
use infra::{Cursor, Query, SkCond, StoreError};
use std::collections::HashMap;

pub fn router() -> Router<AppState> {
    let base = "/v1/accounts/{aid}/shopping/draft_orders";
    Router::new()
        .route(base, get(list).post(create))
        .route(&format!("{base}/{{id}}"), get(fetch).put(replace).delete(remove))
        .route(&format!("{base}/{{id}}/complete"), put(complete))
        .route(&format!("{base}/{{id}}/items"), axum::routing::post(add_item))
        .route(&format!("{base}/{{id}}/items/{{line_id}}"), put(update_item).delete(remove_item))
}

/// Everything a draft write needs, checked before the handler runs: the caller may write to
/// the account in the path, the body is within the limit, `If-Match` and `Idempotency-Key`
/// are well-formed; and the context (actor, time, request) the domain records.
pub(crate) struct Write {
    state: AppState,
    ctx: Ctx,
    uri: Uri,
    expected: Option<u64>,
    idem: Option<Idem>,
    body: Body,
}

impl FromRequest<AppState> for Write {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &AppState) -> Result<Self, Self::Rejection> {
        let (mut parts, body) = req.into_parts();
        let caller = Caller::from_request_parts(&mut parts, state).await?;
        let Params(params) = Params::<Vec<(String, String)>>::from_request_parts(&mut parts, state).await?;
        let aid = params.into_iter().find(|(k, _)| k == "aid").map(|(_, v)| v).unwrap_or_default();
        caller.authorize(&aid, Access::Write)?;
        let (headers, method, uri) = (parts.headers.clone(), parts.method.clone(), parts.uri.clone());
        let body = Body::from_request(Request::from_parts(parts, body), state).await?;
        let expected = if_match(&headers)?;
        let idem = Idem::from_request(&aid, &headers, &method, &uri, &body.0)?;
        let ctx = Ctx {
            aid,
            actor: caller.sub,
            now: state.clock.now(),
            request: EventRequest {
                path: Some(uri.path().to_owned()),
                method: Some(method.as_str().to_owned()),
                body: Some(body.text()).filter(|b| !b.is_empty()),
            },
        };
        Ok(Self { state: state.clone(), ctx, uri, expected, idem, body })
    }
}

/// `apply_discounts=true` asks for the upstream discount engine (DealEngine), which this
/// service does not have: say so rather than silently return undiscounted totals.
fn no_discount_engine(w: &Write) -> Result<(), ApiError> {
    for (k, v) in query_pairs(w.uri.query()) {
        if k == "apply_discounts" && v != "false" {
            return Err(ApiError::bad(
                "apply_discounts",
                "discount calculation is not available; send discount_lines on the items instead",
            ));
        }
    }
    Ok(())
}

/// Reads a draft and its events with one partition query. Unknown, malformed and expired ids
/// are all "not found".
pub(crate) async fn load(state: &AppState, aid: &str, id: &str) -> Result<(DraftRecord, Timeline), ApiError> {
    if !domain::validate::is_uuid(id) {
        return Err(ApiError::NotFound("draft".into()));
    }
    draft_of(partition::read(state, table::draft_pk(aid, id), SkCond::Any, table::DRAFT_SK).await?)
}

fn draft_of(part: Partition) -> Result<(DraftRecord, Timeline), ApiError> {
    let head = part.head.ok_or_else(|| ApiError::NotFound("draft".into()))?;
    let mut rec: DraftRecord = parse(&head.doc)?;
    rec.unflushed = part.timeline.unflushed();
    Ok((rec, part.timeline))
}

/// Re-reads a draft after a lost race: the draft item, and only the history items added
/// since those already in `timeline`.
async fn reload(
    state: &AppState,
    aid: &str,
    id: &str,
    timeline: Timeline,
) -> Result<(DraftRecord, Timeline), ApiError> {
    draft_of(partition::refresh(state, table::draft_pk(aid, id), table::DRAFT_SK, timeline).await?)
}

/// Answers with a stored response. A draft response stored without its events gets those up
/// to its version from the draft's partition, so the bytes are those first sent.
async fn respond(state: &AppState, replay: Replay) -> Result<Response, ApiError> {
    let Some(pk) = replay.events_pk else { return Ok(json_with_etag(replay.version, replay.body)) };
    let mut draft: Draft = parse(&replay.body)?;
    let part = partition::read(state, pk, SkCond::Any, table::DRAFT_SK).await?;
    let upto = |e: &Event| e.version.is_some_and(|v| v <= replay.version);
    draft.events = Some(part.timeline.events().into_iter().filter(upto).collect());
    let body = serde_json::to_string(&draft).map_err(|_| ApiError::Internal)?;
    Ok(json_with_etag(replay.version, body))
}

/// The stored response for the request's `Idempotency-Key`, when it has one that was used.
async fn replayed(w: &Write) -> Result<Option<Response>, ApiError> {
    match Idem::lookup_if(w.idem.as_ref(), &w.state).await? {
        Some(r) => respond(&w.state, r).await.map(Some),
        None => Ok(None),
    }
}

/// The order a completion goes into (`options.order_id`), read afresh on every attempt.
async fn target_order(state: &AppState, aid: &str, rec: &DraftRecord) -> Result<Option<OrderRecord>, ApiError> {
    let Some(key) = rec.draft.options.as_ref().and_then(|o| o.order_id.as_deref()) else { return Ok(None) };
    match crate::orders::load(state, aid, key, true).await {
        Ok(loaded) => Ok(loaded.record()),
        Err(ApiError::NotFound(_)) => Ok(None),
        Err(e) => Err(e),
    }
}

fn too_many_races() -> ApiError {
    ApiError::Conflict { code: "VERSION_CONFLICT", message: "too many concurrent changes; try again".into() }
}

/// Runs a draft command with optimistic concurrency: read, apply, write conditioned on the
/// version read; on a lost race pause (jittered exponential back-off), re-read what changed
/// and re-apply, so no write is lost. Completion also reads the order it goes into, and its
/// write is conditioned on that version too.
async fn mutate(
    w: &Write,
    id: &str,
    completes: bool,
    command: impl Fn(&Ctx, &mut dyn Ids, DraftRecord, Option<OrderRecord>) -> domain::error::Result<Outcome<Draft>>,
) -> Result<Response, ApiError> {
    let (state, ctx, idem) = (&w.state, &w.ctx, w.idem.as_ref());
    if let Some(done) = replayed(w).await? {
        return Ok(done);
    }
    let mut backoff = Backoff::new();
    let (mut rec, mut timeline) = load(state, &ctx.aid, id).await?;
    loop {
        if let Some(v) = w.expected {
            if v != rec.version() {
                return Err(ApiError::PreconditionFailed { current: rec.version() });
            }
        }
        let target = if completes && rec.draft.status == domain::model::DraftStatus::Open {
            target_order(state, &ctx.aid, &rec).await?
        } else {
            None
        };
        let out = command(ctx, &mut RandomIds, rec, target)?;
        if let Some(done) = apply(state, out, &timeline.events(), w.expected.is_some(), idem).await? {
            return Ok(done);
        }
        if !backoff.pause().await {
            return Err(too_many_races());
        }
        (rec, timeline) = reload(state, &ctx.aid, id, timeline).await?;
    }
}

/// Writes an outcome. `Ok(None)` means a race was lost and the command should be re-applied.
async fn apply(
    state: &AppState,
    out: Outcome<Draft>,
    known: &[Event],
    pinned: bool,
    idem: Option<&Idem>,
) -> Result<Option<Response>, ApiError> {
    // The response is known before the write, so an idempotency record can join it.
    let mut draft = out.resource;
    let version = out.version;
    let mut ops = out.ops;
    if let Some(idem) = idem {
        // Stored without the event history, which the replay re-reads (see `respond`) from
        // the draft's partition: that of the first op, the draft itself.
        let events_pk = draft.events.as_ref().and(ops.first()).map(|op| op.key().pk);
        let lean = Draft { events: None, ..draft.clone() };
        let stored = serde_json::to_string(&lean).map_err(|_| ApiError::Internal)?;
        ops.push(idem.record(state.clock.epoch(), version, stored, events_pk));
    }
    if let Some(new) = draft.events.take() {
        let mut all = known.to_vec();
        all.extend(new);
        draft.events = Some(all);
    }
    let body = serde_json::to_string(&draft).map_err(|_| ApiError::Internal)?;
    let keys: Vec<Key> = ops.iter().map(|o| o.key()).collect();
    match state.store.write(ops).await {
        Ok(()) => Ok(Some(json_with_etag(version, body))),
        Err(StoreError::ConditionFailed { index, current }) => {
            let failed = keys.get(index);
            if let (Some(idem), Some(k)) = (idem, failed) {
                if k == idem.key() {
                    // The same request raced itself: answer with what the winner stored.
                    let replay = idem.lookup(state).await?.ok_or(ApiError::Internal)?;
                    return respond(state, replay).await.map(Some);
                }
            }
            if let Some((_, oid)) = out.custom_order_ids.iter().find(|(k, _)| Some(k) == failed) {
                return Err(ApiError::Conflict {
                    code: "DUPLICATE_ORDER_ID",
                    message: format!("an order with order_id `{oid}` already exists"),
                });
            }
            if pinned && index == 0 {
                // The draft moved on after If-Match was checked; the failed write returned it.
                let current = current.map_or(0, |c| c.version);
                return Err(ApiError::PreconditionFailed { current });
            }
            Ok(None)
        }
        Err(StoreError::Contention) => Ok(None),
        Err(e) => Err(e.into()),
    }
}

async fn create(w: Write) -> Result<Response, ApiError> {
    no_discount_engine(&w)?;
    if let Some(done) = replayed(&w).await? {
        return Ok(done);
    }
    let parsed: DraftBody = w.body.decode(draft_rules)?;
    let mut backoff = Backoff::new();
    loop {
        let out = draft::create(&w.ctx, &mut RandomIds, parsed.clone())?;
        if let Some(done) = apply(&w.state, out, &[], false, w.idem.as_ref()).await? {
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
    let (rec, timeline) = load(&state, &aid, &id).await?;
    let version = rec.version();
    let mut d = rec.draft;
    d.events = Some(timeline.events());
    Ok(with_etag(version, d))
}

async fn replace(Params((_, id)): Params<(String, String)>, w: Write) -> Result<Response, ApiError> {
    no_discount_engine(&w)?;
    let parsed: DraftBody = w.body.decode(draft_rules)?;
    mutate(&w, &id, false, |c, ids, rec, _| draft::replace(c, ids, rec, parsed.clone())).await
}

async fn remove(Params((_, id)): Params<(String, String)>, w: Write) -> Result<Response, ApiError> {
    mutate(&w, &id, false, |c, ids, rec, _| draft::delete(c, ids, rec)).await
}

async fn complete(Params((_, id)): Params<(String, String)>, w: Write) -> Result<Response, ApiError> {
    mutate(&w, &id, true, draft::complete).await
}

async fn add_item(Params((_, id)): Params<(String, String)>, w: Write) -> Result<Response, ApiError> {
    no_discount_engine(&w)?;
    let item: OrderItem = w.body.decode(domain::validate::item_body)?;
    mutate(&w, &id, false, |c, ids, rec, _| draft::add_item(c, ids, rec, item.clone())).await
}

fn line_id(raw: &str) -> Result<i64, ApiError> {
    raw.parse().map_err(|_| ApiError::bad("line_id", "must be an integer"))
}

async fn update_item(Params((_, id, line)): Params<(String, String, String)>, w: Write) -> Result<Response, ApiError> {
    let line = line_id(&line)?;
    no_discount_engine(&w)?;
    let item: OrderItem = w.body.decode(domain::validate::item_body)?;
    mutate(&w, &id, false, |c, ids, rec, _| draft::update_item(c, ids, rec, line, item.clone())).await
}

async fn remove_item(Params((_, id, line)): Params<(String, String, String)>, w: Write) -> Result<Response, ApiError> {
    let line = line_id(&line)?;
    no_discount_engine(&w)?;
    mutate(&w, &id, false, |c, ids, rec, _| draft::remove_item(c, ids, rec, line)).await
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
    let index_pk = table::drafts_index_pk(&aid);
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
    let want = filter.paging.limit;
    let mut drafts = Vec::with_capacity(want);
    loop {
        let q = Query {
            index: Some(Index::Gsi1),
            pk: index_pk.clone(),
            sk: SkCond::Any,
            forward: false,
            limit: want.max(25),
            start_after: start.take(),
        };
        let page = state.store.query(&q).await?;
        // The index holds summaries: fetch only the documents they admit, then filter fully.
        let mut admitted = Vec::new();
        for entry in &page.items {
            let summary: Summary = entry.summary.as_deref().map(parse).transpose()?.unwrap_or_default();
            if entry.summary.is_none() || filter.admits(&summary) {
                admitted.push(entry.key());
            }
        }
        let mut docs: HashMap<Key, Item> =
            state.store.get_many(&admitted).await?.into_iter().map(|i| (i.key(), i)).collect();
        for key in &admitted {
            let Some(item) = docs.remove(key) else { continue };
            let rec: DraftRecord = parse(&item.doc)?;
            if filter.matches(&rec.draft) {
                drafts.push(rec.draft);
                if drafts.len() == want {
                    break;
                }
            }
        }
        match page.next {
            Some(c) if drafts.len() < want => start = Some(c),
            _ => break,
        }
    }
    Ok(axum::Json(DraftList { draft_orders: drafts }).into_response())
}
