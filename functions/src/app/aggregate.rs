//! Loading the aggregates commands change, each from its partition: a draft, a draft with
//! the order it completes into, an order (live, or the stub its retention left) — and, after a
//! lost race, re-reading only what changed.

use super::error::{parse, AppError, Result};
use super::partition::{self, Partition};
use super::shown::{show_order_events, Kinds};
use domain::draft::DraftRecord;
use domain::model::Order;
use domain::order::{OrderIdRecord, OrderRecord, OrderStub};
use domain::outbox::Timeline;
use domain::payment::OP_PREFIX;
use domain::table::{self, Item, Key};
use infra::{query_all, Query, SkCond, Store, StoreError};
use std::future::Future;

/// An aggregate as read: the record a command changes, its events, and its partition.
pub struct Loaded<R> {
    pub rec: R,
    pub timeline: Timeline,
    pub pk: String,
}

/// How a resource group reads the aggregate its commands change.
pub trait Aggregate {
    type Record: Send;
    /// Reads the aggregate `key` names, with its events; 404 when there is none.
    fn load(store: &dyn Store, aid: &str, key: &str) -> impl Future<Output = Result<Loaded<Self::Record>>> + Send;
    /// Re-reads after a lost race: the head, and only the events newer than `timeline`'s.
    fn reload(
        store: &dyn Store,
        aid: &str,
        pk: String,
        timeline: Timeline,
    ) -> impl Future<Output = Result<Loaded<Self::Record>>> + Send;
    fn version(rec: &Self::Record) -> u64;
}

fn draft_of(part: Partition, pk: String) -> Result<Loaded<DraftRecord>> {
    let head = part.head.ok_or_else(|| AppError::NotFound("draft"))?;
    let mut rec: DraftRecord = parse("draft or order", &head.doc)?;
    rec.unflushed = part.timeline.unflushed();
    Ok(Loaded { rec, timeline: part.timeline, pk })
}

/// A draft. Unknown, malformed and expired ids are all "not found".
pub struct DraftAgg;

impl Aggregate for DraftAgg {
    type Record = DraftRecord;

    async fn load(store: &dyn Store, aid: &str, id: &str) -> Result<Loaded<DraftRecord>> {
        if !domain::validate::is_uuid(id) {
            return Err(AppError::NotFound("draft"));
        }
        let pk = table::draft_pk(aid, id);
        let loaded = draft_of(partition::read(store, pk.clone(), SkCond::Any, table::DRAFT_SK).await?, pk)?;
        // An order's drafts go when its retention ends, even when the order's expiry moved
        // before theirs (a shorter `time_to_live` set later): one order item read per order.
        for order_id in &loaded.rec.order_ids {
            let key = table::order_key(aid, order_id);
            let stub = Key::new(key.pk.clone(), table::STUB_SK);
            if store.get(&key).await?.is_none() && store.get(&stub).await?.is_some() {
                return Err(AppError::NotFound("draft"));
            }
        }
        Ok(loaded)
    }

    async fn reload(store: &dyn Store, _: &str, pk: String, t: Timeline) -> Result<Loaded<DraftRecord>> {
        draft_of(partition::refresh(store, pk.clone(), table::DRAFT_SK, t).await?, pk)
    }

    fn version(rec: &DraftRecord) -> u64 {
        rec.version()
    }
}

/// A draft being completed, with the order it goes into (`options.order_id`), read afresh on
/// every attempt so that write is conditioned on that order's version too.
pub struct CompletingAgg;

async fn target_order(store: &dyn Store, aid: &str, rec: &DraftRecord) -> Result<Option<OrderRecord>> {
    if rec.draft.status != domain::model::DraftStatus::Open {
        return Ok(None);
    }
    let Some(key) = rec.draft.options.as_ref().and_then(|o| o.order_id.as_deref()) else { return Ok(None) };
    match load_order(store, aid, key, true).await {
        Ok(found) => Ok(found.record()),
        Err(AppError::NotFound(_)) => Ok(None),
        Err(e) => Err(e),
    }
}

impl Aggregate for CompletingAgg {
    type Record = (DraftRecord, Option<OrderRecord>);

    async fn load(store: &dyn Store, aid: &str, id: &str) -> Result<Loaded<Self::Record>> {
        let Loaded { rec, timeline, pk } = DraftAgg::load(store, aid, id).await?;
        let target = target_order(store, aid, &rec).await?;
        Ok(Loaded { rec: (rec, target), timeline, pk })
    }

    async fn reload(store: &dyn Store, aid: &str, pk: String, t: Timeline) -> Result<Loaded<Self::Record>> {
        let Loaded { rec, timeline, pk } = DraftAgg::reload(store, aid, pk, t).await?;
        let target = target_order(store, aid, &rec).await?;
        Ok(Loaded { rec: (rec, target), timeline, pk })
    }

    fn version(rec: &Self::Record) -> u64 {
        rec.0.version()
    }
}

/// What a read of an order's partition found: the order while it is live, else the stub
/// its retention left behind.
pub struct FoundOrder {
    pub order: Option<Order>,
    pub stub: Option<OrderStub>,
    pub timeline: Timeline,
    pub pk: String,
    /// The earliest `ttl` of the items read.
    pub expires: Option<i64>,
}

impl FoundOrder {
    /// The order as a command changes it: with the events still riding in its item. Exact
    /// only when the history was read too (`events`), else every rider counts as unflushed.
    pub fn record(self) -> Option<OrderRecord> {
        let unflushed = self.timeline.unflushed();
        self.order.map(|order| OrderRecord { order, unflushed })
    }
}

fn order_of(part: Partition, pk: String) -> Result<FoundOrder> {
    let mut found = FoundOrder { order: None, stub: None, timeline: part.timeline, pk, expires: part.expires };
    if let Some(head) = part.head {
        let mut order: Order = parse("draft or order", &head.doc)?;
        attach_operations(&mut order, &part.others)?;
        found.order = Some(order);
    }
    for item in part.others.iter().filter(|i| i.sk == table::STUB_SK) {
        found.stub = Some(parse("order stub", &item.doc)?);
    }
    Ok(found)
}

/// Reads an order's partition; without `events` only the header and the stub (whose sort
/// keys follow every `EVENT#` key), so a plain read does not pay for the event history.
async fn read_order(store: &dyn Store, aid: &str, id: &str, events: bool) -> Result<FoundOrder> {
    let sk = if events { SkCond::Any } else { SkCond::Ge(table::ORDER_SK.to_owned()) };
    let pk = table::order_pk(aid, id);
    order_of(partition::read(store, pk.clone(), sk, table::ORDER_SK).await?, pk)
}

/// Puts an order's payment operation items into its lists.
pub fn attach_operations(order: &mut Order, items: &[domain::table::Item]) -> Result<()> {
    domain::payment::attach_operations(order, items).map_err(|e| AppError::corrupt("payment operation", e))
}

/// Finds an order, live or emptied by its retention, by `id` or by `order_id`. Ids are
/// UUIDs, so a key that is not one is looked up as an `order_id` first, saving a round trip.
pub async fn load_order(store: &dyn Store, aid: &str, key: &str, events: bool) -> Result<FoundOrder> {
    let found = |l: &FoundOrder| l.order.is_some() || l.stub.is_some();
    if domain::validate::is_uuid(key) {
        let direct = read_order(store, aid, key, events).await?;
        if found(&direct) {
            return Ok(direct);
        }
    }
    if let Some(item) = store.get(&table::order_id_key(aid, key)).await? {
        if let Some(id) = parse::<OrderIdRecord>("order_id record", &item.doc)?.id {
            let by_order_id = read_order(store, aid, &id, events).await?;
            if found(&by_order_id) {
                return Ok(by_order_id);
            }
        }
    }
    Err(AppError::NotFound("order"))
}

/// An order as `GET` answers it: live with the events asked for, or emptied by retention.
pub async fn read_order_view(store: &dyn Store, aid: &str, key: &str, kinds: &Kinds) -> Result<(u64, Order)> {
    order_view(store, aid, key, kinds).await.map(|v| (v.version, v.order))
}

/// An order as `GET` answers it, with where it came from: a view of a live order holds until
/// its partition `pk` changes or `expires` (the earliest `ttl` of the items read) passes.
pub struct OrderView {
    pub version: u64,
    pub order: Order,
    /// Live: read from its own item, not emptied by retention.
    pub live: bool,
    pub pk: String,
    pub expires: Option<i64>,
}

/// [`read_order_view`], saying where the view came from.
pub async fn order_view(store: &dyn Store, aid: &str, key: &str, kinds: &Kinds) -> Result<OrderView> {
    let found = load_order(store, aid, key, kinds.is_some()).await?;
    let Some(mut order) = found.order else {
        let stub = found.stub.ok_or_else(|| AppError::NotFound("order"))?;
        return Ok(OrderView { version: 0, order: stub.emptied(), live: false, pk: found.pk, expires: found.expires });
    };
    show_order_events(&mut order, found.timeline.events(), kinds);
    let version = order.content.version.unwrap_or(0);
    Ok(OrderView { version, order, live: true, pk: found.pk, expires: found.expires })
}

/// The payment operation items of the order partition `pk` (see `domain::payment`).
pub async fn operation_items(store: &dyn Store, pk: &str) -> std::result::Result<Vec<Item>, StoreError> {
    query_all(store, Query { sk: SkCond::BeginsWith(OP_PREFIX.to_owned()), ..Query::partition(pk.to_owned()) }).await
}

/// A live order. One whose retention expired takes no change: its content is gone.
pub struct OrderAgg;

fn live(found: FoundOrder) -> Result<Loaded<OrderRecord>> {
    let (timeline, pk) = (found.timeline.clone(), found.pk.clone());
    let rec = found.record().ok_or_else(|| AppError::NotFound("order"))?;
    Ok(Loaded { rec, timeline, pk })
}

impl Aggregate for OrderAgg {
    type Record = OrderRecord;

    async fn load(store: &dyn Store, aid: &str, key: &str) -> Result<Loaded<OrderRecord>> {
        live(load_order(store, aid, key, true).await?)
    }

    async fn reload(store: &dyn Store, _: &str, pk: String, t: Timeline) -> Result<Loaded<OrderRecord>> {
        let mut part = partition::refresh(store, pk.clone(), table::ORDER_SK, t).await?;
        // The payment operations too: a new one may have come with the race lost.
        part.others.extend(operation_items(store, &pk).await?);
        live(order_of(part, pk)?)
    }

    fn version(rec: &OrderRecord) -> u64 {
        rec.order.content.version.unwrap_or(0)
    }
}
