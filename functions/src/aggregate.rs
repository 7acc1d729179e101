//! The application layer every resource group shares, so a handler is a few lines: the write
//! extractor (caller, body, `If-Match`, `Idempotency-Key`, the context the domain records),
//! loading an aggregate (a draft, a draft with the order it completes into, an order) from
//! its partition, the optimistic write loop (apply the command, write conditioned on the
//! version read, on a lost race pause and re-read only what changed), idempotent replay,
//! and answering with the events the request asked for.

use crate::auth::{Access, Caller};
use crate::error::ApiError;
use crate::http::{if_match, json_with_etag, parse, Body, Params};
use crate::idempotency::{Idem, Replay};
use crate::partition::{self, Partition};
use crate::retry::Backoff;
use crate::state::{AppState, RandomIds};
use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::Uri;
use axum::response::Response;
use domain::change::{Ctx, Outcome};
use domain::draft::DraftRecord;
use domain::ids::Ids;
use domain::model::{Draft, Event, EventRequest, Order, OrderSession};
use domain::order::{OrderIdRecord, OrderRecord, OrderStub};
use domain::outbox::Timeline;
use domain::payment::OP_PREFIX;
use domain::table::{self, Key};
use infra::{query_all, Query, SkCond, StoreError};
use serde::de::DeserializeOwned;
use serde::Serialize;
use std::future::Future;

/// Which event types a response shows (`include_events`); `None` shows none.
pub(crate) type Kinds = Option<Vec<&'static str>>;

/// Everything a write needs, checked before the handler runs: the caller may write to the
/// account in the path (with `access`), the body is within the limit, `If-Match` and
/// `Idempotency-Key` are well-formed; and the context (actor, time, request) the domain
/// records.
pub(crate) struct Write {
    pub state: AppState,
    pub ctx: Ctx,
    pub uri: Uri,
    pub expected: Option<u64>,
    pub idem: Option<Idem>,
    pub body: Body,
}

impl Write {
    async fn extract(req: Request, state: &AppState, access: Access) -> Result<Self, ApiError> {
        let (mut parts, body) = req.into_parts();
        let caller = Caller::from_request_parts(&mut parts, state).await?;
        let Params(params) = Params::<Vec<(String, String)>>::from_request_parts(&mut parts, state).await?;
        let aid = params.into_iter().find(|(k, _)| k == "aid").map(|(_, v)| v).unwrap_or_default();
        caller.authorize(&aid, access)?;
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

    /// The raw query pairs of the request.
    pub fn query(&self) -> Vec<(String, String)> {
        crate::http::query_pairs(self.uri.query())
    }
}

impl FromRequest<AppState> for Write {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &AppState) -> Result<Self, Self::Rejection> {
        Self::extract(req, state, Access::Write).await
    }
}

/// A write to an order's events (`POST /orders/{id}/events`), which the fine-grained
/// `write:shopping:/orders/ANY/events` scope also grants.
pub(crate) struct EventWrite(pub Write);

impl FromRequest<AppState> for EventWrite {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &AppState) -> Result<Self, Self::Rejection> {
        Write::extract(req, state, Access::EventsWrite).await.map(Self)
    }
}

// ---------------------------------------------------------------- responses

/// A response a write answers with, and how it shows the event history.
pub(crate) trait Shown: Serialize + DeserializeOwned + Send {
    /// Takes the events the command added out of the response (`None`: it shows none).
    fn take_new(&mut self) -> Option<Vec<Event>> {
        None
    }
    /// Shows the history (`all`: every event up to the response's version) as asked;
    /// `had` tells whether the command's response showed events.
    fn present(&mut self, _had: bool, _all: Vec<Event>, _kinds: &Kinds) {}
    /// Whether a stored response re-reads its events on replay.
    fn replays_events(&self) -> bool {
        false
    }
}

impl Shown for Draft {
    fn take_new(&mut self) -> Option<Vec<Event>> {
        self.events.take()
    }
    fn present(&mut self, had: bool, all: Vec<Event>, _: &Kinds) {
        if had {
            self.events = Some(all);
        }
    }
    fn replays_events(&self) -> bool {
        // A completion answers with the draft envelope, which shows no events.
        self.orders.is_none()
    }
}

impl Shown for Order {
    fn take_new(&mut self) -> Option<Vec<Event>> {
        self.state = None;
        self.events.take()
    }
    fn present(&mut self, _: bool, all: Vec<Event>, kinds: &Kinds) {
        show_order_events(self, all, kinds);
    }
    fn replays_events(&self) -> bool {
        true
    }
}

impl Shown for Event {}
impl Shown for OrderSession {}
impl Shown for domain::model::PaymentOperation {}

/// Puts the events `kinds` asks for, and their combined `state`, on an order.
pub(crate) fn show_order_events(order: &mut Order, all: Vec<Event>, kinds: &Kinds) {
    if let Some(kinds) = kinds {
        let events: Vec<Event> =
            all.into_iter().filter(|e| kinds.contains(&e.event_type.as_deref().unwrap_or(""))).collect();
        order.state = Some(domain::events::combined_state(&events).to_owned());
        order.events = Some(events);
    }
}

// ---------------------------------------------------------------- aggregates

/// An aggregate as read: the record a command changes, its events, and its partition.
pub(crate) struct Loaded<R> {
    pub rec: R,
    pub timeline: Timeline,
    pub pk: String,
}

/// How a resource group reads the aggregate its commands change.
pub(crate) trait Aggregate {
    type Record: Send;
    /// Reads the aggregate `key` names, with its events; 404 when there is none.
    fn load(
        state: &AppState,
        aid: &str,
        key: &str,
    ) -> impl Future<Output = Result<Loaded<Self::Record>, ApiError>> + Send;
    /// Re-reads after a lost race: the head, and only the events newer than `timeline`'s.
    fn reload(
        state: &AppState,
        aid: &str,
        pk: String,
        timeline: Timeline,
    ) -> impl Future<Output = Result<Loaded<Self::Record>, ApiError>> + Send;
    fn version(rec: &Self::Record) -> u64;
}

fn draft_of(part: Partition, pk: String) -> Result<Loaded<DraftRecord>, ApiError> {
    let head = part.head.ok_or_else(|| ApiError::NotFound("draft".into()))?;
    let mut rec: DraftRecord = parse(&head.doc)?;
    rec.unflushed = part.timeline.unflushed();
    Ok(Loaded { rec, timeline: part.timeline, pk })
}

/// A draft. Unknown, malformed and expired ids are all "not found".
pub(crate) struct DraftAgg;

impl Aggregate for DraftAgg {
    type Record = DraftRecord;

    async fn load(state: &AppState, aid: &str, id: &str) -> Result<Loaded<DraftRecord>, ApiError> {
        if !domain::validate::is_uuid(id) {
            return Err(ApiError::NotFound("draft".into()));
        }
        let pk = table::draft_pk(aid, id);
        let loaded = draft_of(partition::read(state, pk.clone(), SkCond::Any, table::DRAFT_SK).await?, pk)?;
        // An order's drafts go when its retention ends, even when the order's expiry moved
        // before theirs (a shorter `time_to_live` set later): one order item read per order.
        for order_id in &loaded.rec.order_ids {
            let key = table::order_key(aid, order_id);
            let stub = Key::new(key.pk.clone(), table::STUB_SK);
            if state.store.get(&key).await?.is_none() && state.store.get(&stub).await?.is_some() {
                return Err(ApiError::NotFound("draft".into()));
            }
        }
        Ok(loaded)
    }

    async fn reload(state: &AppState, _: &str, pk: String, t: Timeline) -> Result<Loaded<DraftRecord>, ApiError> {
        draft_of(partition::refresh(state, pk.clone(), table::DRAFT_SK, t).await?, pk)
    }

    fn version(rec: &DraftRecord) -> u64 {
        rec.version()
    }
}

/// A draft being completed, with the order it goes into (`options.order_id`), read afresh on
/// every attempt so that write is conditioned on that order's version too.
pub(crate) struct CompletingAgg;

async fn target_order(state: &AppState, aid: &str, rec: &DraftRecord) -> Result<Option<OrderRecord>, ApiError> {
    if rec.draft.status != domain::model::DraftStatus::Open {
        return Ok(None);
    }
    let Some(key) = rec.draft.options.as_ref().and_then(|o| o.order_id.as_deref()) else { return Ok(None) };
    match load_order(state, aid, key, true).await {
        Ok(found) => Ok(found.record()),
        Err(ApiError::NotFound(_)) => Ok(None),
        Err(e) => Err(e),
    }
}

impl Aggregate for CompletingAgg {
    type Record = (DraftRecord, Option<OrderRecord>);

    async fn load(state: &AppState, aid: &str, id: &str) -> Result<Loaded<Self::Record>, ApiError> {
        let Loaded { rec, timeline, pk } = DraftAgg::load(state, aid, id).await?;
        let target = target_order(state, aid, &rec).await?;
        Ok(Loaded { rec: (rec, target), timeline, pk })
    }

    async fn reload(state: &AppState, aid: &str, pk: String, t: Timeline) -> Result<Loaded<Self::Record>, ApiError> {
        let Loaded { rec, timeline, pk } = DraftAgg::reload(state, aid, pk, t).await?;
        let target = target_order(state, aid, &rec).await?;
        Ok(Loaded { rec: (rec, target), timeline, pk })
    }

    fn version(rec: &Self::Record) -> u64 {
        rec.0.version()
    }
}

/// What a read of an order's partition found: the order while it is live, else the stub
/// its retention left behind.
pub(crate) struct FoundOrder {
    pub order: Option<Order>,
    pub stub: Option<OrderStub>,
    pub timeline: Timeline,
    pub pk: String,
}

impl FoundOrder {
    /// The order as a command changes it: with the events still riding in its item. Exact
    /// only when the history was read too (`events`), else every rider counts as unflushed.
    pub fn record(self) -> Option<OrderRecord> {
        let unflushed = self.timeline.unflushed();
        self.order.map(|order| OrderRecord { order, unflushed })
    }
}

fn order_of(part: Partition, pk: String) -> Result<FoundOrder, ApiError> {
    let mut found = FoundOrder { order: None, stub: None, timeline: part.timeline, pk };
    if let Some(head) = part.head {
        let mut order: Order = parse(&head.doc)?;
        attach_operations(&mut order, &part.others)?;
        found.order = Some(order);
    }
    for item in part.others.iter().filter(|i| i.sk == table::STUB_SK) {
        found.stub = Some(parse(&item.doc)?);
    }
    Ok(found)
}

/// Reads an order's partition; without `events` only the header and the stub (whose sort
/// keys follow every `EVENT#` key), so a plain read does not pay for the event history.
async fn read_order(state: &AppState, aid: &str, id: &str, events: bool) -> Result<FoundOrder, ApiError> {
    let sk = if events { SkCond::Any } else { SkCond::Ge(table::ORDER_SK.to_owned()) };
    let pk = table::order_pk(aid, id);
    order_of(partition::read(state, pk.clone(), sk, table::ORDER_SK).await?, pk)
}

/// Puts an order's payment operation items into its lists.
pub(crate) fn attach_operations(order: &mut Order, items: &[domain::table::Item]) -> Result<(), ApiError> {
    domain::payment::attach_operations(order, items).map_err(|e| {
        tracing::error!(error = %e, "unreadable payment operation");
        ApiError::Internal
    })
}

/// Finds an order, live or emptied by its retention, by `id` or by `order_id`. Ids are
/// UUIDs, so a key that is not one is looked up as an `order_id` first, saving a round trip.
pub(crate) async fn load_order(state: &AppState, aid: &str, key: &str, events: bool) -> Result<FoundOrder, ApiError> {
    let found = |l: &FoundOrder| l.order.is_some() || l.stub.is_some();
    if domain::validate::is_uuid(key) {
        let direct = read_order(state, aid, key, events).await?;
        if found(&direct) {
            return Ok(direct);
        }
    }
    if let Some(item) = state.store.get(&table::order_id_key(aid, key)).await? {
        if let Some(id) = parse::<OrderIdRecord>(&item.doc)?.id {
            let by_order_id = read_order(state, aid, &id, events).await?;
            if found(&by_order_id) {
                return Ok(by_order_id);
            }
        }
    }
    Err(ApiError::NotFound("order".into()))
}

/// An order as `GET` answers it: live with the events asked for, or emptied by retention.
pub(crate) async fn read_order_view(
    state: &AppState,
    aid: &str,
    key: &str,
    kinds: &Kinds,
) -> Result<(u64, Order), ApiError> {
    let found = load_order(state, aid, key, kinds.is_some()).await?;
    let Some(mut order) = found.order else {
        let stub = found.stub.ok_or_else(|| ApiError::NotFound("order".into()))?;
        return Ok((0, stub.emptied()));
    };
    show_order_events(&mut order, found.timeline.events(), kinds);
    Ok((order.content.version.unwrap_or(0), order))
}

/// A live order. One whose retention expired takes no change: its content is gone.
pub(crate) struct OrderAgg;

fn live(found: FoundOrder) -> Result<Loaded<OrderRecord>, ApiError> {
    let (timeline, pk) = (found.timeline.clone(), found.pk.clone());
    let rec = found.record().ok_or_else(|| ApiError::NotFound("order".into()))?;
    Ok(Loaded { rec, timeline, pk })
}

impl Aggregate for OrderAgg {
    type Record = OrderRecord;

    async fn load(state: &AppState, aid: &str, key: &str) -> Result<Loaded<OrderRecord>, ApiError> {
        live(load_order(state, aid, key, true).await?)
    }

    async fn reload(state: &AppState, _: &str, pk: String, t: Timeline) -> Result<Loaded<OrderRecord>, ApiError> {
        let mut part = partition::refresh(state, pk.clone(), table::ORDER_SK, t).await?;
        // The payment operations too: a new one may have come with the race lost.
        let ops = Query { sk: SkCond::BeginsWith(OP_PREFIX.to_owned()), ..Query::partition(pk.clone()) };
        part.others.extend(query_all(state.store.as_ref(), ops).await?);
        live(order_of(part, pk)?)
    }

    fn version(rec: &OrderRecord) -> u64 {
        rec.order.content.version.unwrap_or(0)
    }
}

// ---------------------------------------------------------------- the write loop

/// Answers with a stored response. One stored without its events gets those up to its
/// version from the resource's partition, shown as this request asks.
async fn respond<T: Shown>(state: &AppState, replay: Replay, kinds: &Kinds) -> Result<Response, ApiError> {
    let Some(pk) = replay.events_pk else { return Ok(json_with_etag(replay.version, replay.body)) };
    let mut shown: T = parse(&replay.body)?;
    let head = table::head_sk(&pk);
    let part = partition::read(state, pk, SkCond::Any, head).await?;
    let upto = |e: &Event| e.version.is_some_and(|v| v <= replay.version);
    shown.present(true, part.timeline.events().into_iter().filter(upto).collect(), kinds);
    let body = serde_json::to_string(&shown).map_err(|_| ApiError::Internal)?;
    Ok(json_with_etag(replay.version, body))
}

/// The stored response for the request's `Idempotency-Key`, when it has one that was used.
pub(crate) async fn replayed<T: Shown>(w: &Write, kinds: &Kinds) -> Result<Option<Response>, ApiError> {
    match Idem::lookup_if(w.idem.as_ref(), &w.state).await? {
        Some(r) => respond::<T>(&w.state, r, kinds).await.map(Some),
        None => Ok(None),
    }
}

fn too_many_races() -> ApiError {
    ApiError::Conflict { code: "VERSION_CONFLICT", message: "too many concurrent changes; try again".into() }
}

/// Runs a command on the aggregate `key` names with optimistic concurrency: read, apply,
/// write conditioned on the version read; on a lost race pause (jittered exponential
/// back-off), re-read what changed and re-apply, so no write is lost.
pub(crate) async fn mutate<A: Aggregate, T: Shown>(
    w: &Write,
    key: &str,
    kinds: Kinds,
    command: impl Fn(&Ctx, &mut dyn Ids, A::Record) -> domain::error::Result<Outcome<T>> + Send + Sync,
) -> Result<Response, ApiError> {
    if let Some(done) = replayed::<T>(w, &kinds).await? {
        return Ok(done);
    }
    let mut backoff = Backoff::new();
    let mut loaded = A::load(&w.state, &w.ctx.aid, key).await?;
    loop {
        let current = A::version(&loaded.rec);
        if w.expected.is_some_and(|v| v != current) {
            return Err(ApiError::PreconditionFailed { current });
        }
        let Loaded { rec, timeline, pk } = loaded;
        let out = command(&w.ctx, &mut RandomIds, rec)?;
        if let Some(done) = apply(w, out, &timeline.events(), Some(&pk), &kinds).await? {
            return Ok(done);
        }
        if !backoff.pause().await {
            return Err(too_many_races());
        }
        loaded = A::reload(&w.state, &w.ctx.aid, pk, timeline).await?;
    }
}

/// Writes an outcome (with the idempotency record, when the request has a key) and answers
/// with its resource. `Ok(None)` means a race was lost and the command should be re-applied.
/// `events_pk` is the partition the response's events live in.
pub(crate) async fn apply<T: Shown>(
    w: &Write,
    out: Outcome<T>,
    known: &[Event],
    events_pk: Option<&str>,
    kinds: &Kinds,
) -> Result<Option<Response>, ApiError> {
    let (state, idem, pinned) = (&w.state, w.idem.as_ref(), w.expected.is_some());
    let mut shown = out.resource;
    let version = out.version;
    let mut ops = out.ops;
    let new = shown.take_new();
    // Stored without the history, which the replay re-reads (see `respond`).
    let lean = if idem.is_some() && !ops.is_empty() {
        Some(serde_json::to_string(&shown).map_err(|_| ApiError::Internal)?)
    } else {
        None
    };
    let history_pk = events_pk.filter(|_| shown.replays_events()).map(str::to_owned);
    let had = new.is_some();
    let mut all = known.to_vec();
    all.extend(new.unwrap_or_default());
    shown.present(had, all, kinds);
    let body = serde_json::to_string(&shown).map_err(|_| ApiError::Internal)?;
    if ops.is_empty() {
        // Nothing changes (e.g. a repeated create with a client-chosen id).
        return Ok(Some(json_with_etag(version, body)));
    }
    if let (Some(idem), Some(lean)) = (idem, lean) {
        ops.push(idem.record(state.clock.epoch(), version, lean, history_pk));
    }
    let keys: Vec<Key> = ops.iter().map(|o| o.key()).collect();
    match state.store.write(ops).await {
        Ok(()) => Ok(Some(json_with_etag(version, body))),
        Err(StoreError::ConditionFailed { index, current }) => {
            let failed = keys.get(index);
            if let (Some(idem), Some(k)) = (idem, failed) {
                if k == idem.key() {
                    // The same request raced itself: answer with what the winner stored.
                    let replay = idem.lookup(state).await?.ok_or(ApiError::Internal)?;
                    return respond::<T>(state, replay, kinds).await.map(Some);
                }
            }
            if let Some((_, oid)) = out.custom_order_ids.iter().find(|(k, _)| Some(k) == failed) {
                return Err(ApiError::Conflict {
                    code: "DUPLICATE_ORDER_ID",
                    message: format!("an order with order_id `{oid}` already exists"),
                });
            }
            if pinned && index == 0 {
                // The resource moved on after If-Match was checked; the failed write returned it.
                let current = current.map_or(0, |c| c.version);
                return Err(ApiError::PreconditionFailed { current });
            }
            Ok(None)
        }
        Err(StoreError::Contention) => Ok(None),
        Err(e) => Err(e.into()),
    }
}
