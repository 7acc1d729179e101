//! Draft commands. Each takes the current state (as read), the request, the caller's context
//! and injected ids/time, and returns the new resource plus the writes that make it so: the
//! items to put with their conditions, each carrying the event it produces (see
//! [`crate::outbox`]), so a draft change is one single-item write.

use crate::change::{expires_at, to_doc};
pub use crate::change::{Ctx, Outcome};
use crate::error::FieldError;
use crate::error::{DomainError, Result};
use crate::ids::Moment;
use crate::ids::{timestamp, Ids};
use crate::list::Summary;
use crate::model::{
    Draft, DraftOptions, DraftStatus, Event, GenerateOrderId, Link, OrderItem, OrderObject, OrderStore,
};
pub use crate::order::{OrderIdRecord, OrderRecord};
use crate::table::{self, Condition, Item, WriteOp};
use crate::{money, outbox, totals, validate};
use serde::{Deserialize, Serialize};

/// DynamoDB transactions hold at most 100 items; a split writes 3 items per order plus the
/// draft and at most [`outbox::MAX_RIDING`] history items.
pub const MAX_SPLIT_ORDERS: usize = 24;

/// The create/replace body: `{options?, order}`.
#[derive(Debug, Clone, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct DraftBody {
    #[serde(default)]
    pub options: Option<DraftOptions>,
    pub order: OrderObject,
}

/// A draft as stored: the public resource (without events) plus what only the server needs.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct DraftRecord {
    #[serde(flatten)]
    pub draft: Draft,
    /// Orders created by completing this draft.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub order_ids: Vec<String>,
    /// The `order_id` reserved by `ALPHANUMERIC_9_RESERVE`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reserved_order_id: Option<String>,
    /// The draft's events still riding in its item (set by the reader, not stored here).
    #[serde(skip)]
    pub unflushed: Vec<EventRecord>,
}

impl DraftRecord {
    pub fn version(&self) -> u64 {
        self.draft.version.unwrap_or(0)
    }
}

pub use crate::outbox::EventRecord;

fn ttl_seconds(options: Option<&DraftOptions>, order: &OrderObject) -> Option<i64> {
    options.and_then(|o| o.order_time_to_live).or(order.time_to_live)
}

fn invalid(e: FieldError) -> DomainError {
    DomainError::Validation(vec![e])
}

fn draft_item(aid: &str, rec: &DraftRecord, ttl_epoch: Option<i64>) -> Item {
    let d = &rec.draft;
    let mut item = Item::new(table::draft_key(aid, &d.id), rec.version(), to_doc(rec));
    item.gsi1pk = Some(table::drafts_index_pk(aid));
    item.gsi1sk = Some(table::list_sk(&d.created_at, &d.id));
    item.ttl = ttl_epoch;
    item.summary = Some(to_doc(&Summary::of_draft(d)));
    item
}

fn api_event(ctx: &Ctx, ids: &mut dyn Ids, version: u64, draft_id: &str) -> Event {
    Event { version: Some(version), draft_id: Some(draft_id.to_owned()), ..crate::order::api_event(ctx, ids) }
}

/// Assigns missing `line_id`s (next after the highest), stamps item versions, computes totals
/// and the list of sales locations.
fn normalize_order(order: &mut OrderObject, version: u64, now: Moment, ttl: Option<i64>) -> Result<()> {
    let items = order.items.get_or_insert_with(Vec::new);
    number_new_items(items, |i| format!("order.items[{i}].line_id"))?;
    for item in items.iter_mut() {
        if item.quantity.is_none() {
            item.quantity = Some(1.0);
        }
        if item.version.is_none() {
            item.version = Some(version);
        }
        // Read-only: set by the commands that change a line (DECISIONS.md, "is_changed").
        item.is_changed = Some(item.is_changed.unwrap_or(false));
    }
    totals::apply(order, "order")?;
    let mut stores: Vec<OrderStore> = Vec::new();
    for s in order.items.iter().flatten().filter_map(|i| i.store.as_ref()) {
        if !stores.iter().any(|x| x.id == s.id) {
            stores.push(OrderStore::from(s));
        }
    }
    order.stores = (!stores.is_empty()).then_some(stores);
    order.version = Some(version);
    order.time_to_live_expires_at = expires_at(now, ttl)?.map(timestamp);
    Ok(())
}

/// Gives items sent without a `line_id` the numbers after the highest in use, in order.
/// Running out of numbers is a 400 on the item's `line_id` (`path_of` its position).
fn number_new_items(items: &mut [OrderItem], path_of: impl Fn(usize) -> String) -> Result<()> {
    let highest = items.iter().filter_map(|it| it.line_id).max();
    let mut last: Option<i64> = None;
    for (i, it) in items.iter_mut().enumerate().filter(|(_, it)| it.line_id.is_none()) {
        let n = match last {
            None => money::next_line_id(highest, &path_of(i)),
            Some(prev) => money::following_line_id(prev, &path_of(i)),
        }
        .map_err(invalid)?;
        it.line_id = Some(n);
        last = Some(n);
    }
    Ok(())
}

fn ensure_open(rec: &DraftRecord) -> Result<()> {
    if rec.draft.status != DraftStatus::Open {
        return Err(DomainError::conflict(
            "DRAFT_NOT_OPEN",
            format!("the draft is {} and can no longer be changed", rec.draft.status.as_str()),
        ));
    }
    Ok(())
}

fn reserve_if_needed(ctx: &Ctx, ids: &mut dyn Ids, rec: &mut DraftRecord, ops: &mut Vec<WriteOp>) {
    let wants =
        rec.draft.options.as_ref().and_then(|o| o.generate_order_id) == Some(GenerateOrderId::Alphanumeric9Reserve);
    if wants && rec.reserved_order_id.is_none() {
        let oid = ids.alphanumeric9();
        let doc = OrderIdRecord { id: None, reserved_by_draft: Some(rec.draft.id.clone()) };
        ops.push(WriteOp::Put {
            item: Item::new(table::order_id_key(&ctx.aid, &oid), 0, to_doc(&doc)),
            cond: Some(Condition::NotExists),
        });
        rec.reserved_order_id = Some(oid);
    }
    if let (Some(oid), Some(order)) = (&rec.reserved_order_id, rec.draft.order.as_mut()) {
        order.order_id = Some(oid.clone());
    }
}

/// Finishes a change to an existing draft: bumps the version, stamps, and writes it
/// conditioned on the version that was read, with its api-event.
fn commit(
    ctx: &Ctx,
    ids: &mut dyn Ids,
    prev: Option<u64>,
    mut rec: DraftRecord,
    webhook: &str,
    mut ops: Vec<WriteOp>,
) -> Result<Outcome<Draft>> {
    let version = prev.map_or(0, money::next_version);
    rec.draft.version = Some(version);
    rec.draft.updated_at = ctx.now_str();
    let ttl = rec.draft.order.as_ref().and_then(|o| ttl_seconds(rec.draft.options.as_ref(), o));
    if let Some(order) = rec.draft.order.as_mut() {
        normalize_order(order, version, ctx.now, ttl)?;
        // Draft items show their payout as the order's will (a sent one is not kept).
        for item in order.items.iter_mut().flatten() {
            item.payout = None;
        }
        if let Some(options) = rec.draft.options.as_ref() {
            crate::payment::payout::resolve_items(options, order.items.iter_mut().flatten());
        }
    }
    let ttl_epoch = expires_at(ctx.now, ttl)?.map(|t| t.timestamp());
    let event = api_event(ctx, ids, version, &rec.draft.id);
    let cond = prev.map_or(Condition::NotExists, Condition::VersionIs);
    let unflushed = std::mem::take(&mut rec.unflushed);
    let mut item = draft_item(&ctx.aid, &rec, ttl_epoch);
    outbox::attach(&mut item, unflushed, EventRecord::new(event.clone(), &[webhook]), &mut ops);
    let pinned = Some(item.key());
    ops.insert(0, WriteOp::Put { item, cond: Some(cond) });
    let mut draft = rec.draft;
    draft.events = Some(vec![event]);
    Ok(Outcome { resource: draft, version, ops, pinned, custom_order_ids: Vec::new() })
}

/// POST /draft_orders
pub fn create(ctx: &Ctx, ids: &mut dyn Ids, body: DraftBody) -> Result<Outcome<Draft>> {
    let mut options = body.options.unwrap_or_default();
    validate::draft_body(&options, &body.order)?;
    let id = ids.uuid();
    let now = ctx.now_str();
    let mut body_order = body.order;
    server_set(&mut body_order, &mut options, None, ctx);
    let mut rec = DraftRecord {
        draft: Draft {
            id: id.clone(),
            created_at: now.clone(),
            created_by: ctx.actor.clone(),
            updated_at: now,
            deleted_by: None,
            deleted_at: None,
            status: DraftStatus::Open,
            links: vec![Link::new("self", ctx.href(&format!("draft_orders/{id}")))],
            version: None,
            events: None,
            options: Some(options),
            order: Some(body_order),
            orders: None,
        },
        order_ids: Vec::new(),
        reserved_order_id: None,
        unflushed: Vec::new(),
    };
    let mut ops = Vec::new();
    reserve_if_needed(ctx, ids, &mut rec, &mut ops);
    commit(ctx, ids, None, rec, "shopping_draft_add", ops)
}

/// What a create or replace sets that a client cannot: rule stamps, consent stamps, and
/// `is_changed` (a replace gives new lines).
fn server_set(order: &mut OrderObject, options: &mut DraftOptions, before: Option<&Draft>, ctx: &Ctx) {
    crate::payment::payout::stamp_rules(options, before.and_then(|d| d.options.as_ref()), &ctx.aid);
    let old_customer = before.and_then(|d| d.order.as_ref()).and_then(|o| o.customer.as_ref());
    if let Some(c) = order.customer.as_mut() {
        c.stamp_consents(old_customer, &ctx.now_str());
    }
    for item in order.items.iter_mut().flatten() {
        item.is_changed = None;
    }
}

/// Rules that depend on what the draft already holds, not only on the request: a reserved
/// `order_id` stays with the draft across replaces, and one id cannot name several orders.
fn check_against_stored(rec: &DraftRecord, options: &DraftOptions) -> Result<()> {
    if let (Some(reserved), Some(true)) = (&rec.reserved_order_id, options.split_draft) {
        return Err(DomainError::Validation(vec![FieldError::new(
            "options.split_draft",
            "NOT_ALLOWED_WITH_RESERVED_ORDER_ID",
            format!("this draft reserved order_id {reserved}, which can name only one order; a split is not possible"),
        )]));
    }
    Ok(())
}

/// PUT /draft_orders/{id}: replaces options and order; the reserved order_id stays.
pub fn replace(ctx: &Ctx, ids: &mut dyn Ids, mut rec: DraftRecord, body: DraftBody) -> Result<Outcome<Draft>> {
    ensure_open(&rec)?;
    let mut options = body.options.unwrap_or_default();
    validate::draft_body(&options, &body.order)?;
    check_against_stored(&rec, &options)?;
    let prev = rec.version();
    let mut order = body.order;
    server_set(&mut order, &mut options, Some(&rec.draft), ctx);
    rec.draft.options = Some(options);
    rec.draft.order = Some(order);
    let mut ops = Vec::new();
    reserve_if_needed(ctx, ids, &mut rec, &mut ops);
    commit(ctx, ids, Some(prev), rec, "shopping_draft_update", ops)
}

/// POST /draft_orders/{id}/items
pub fn add_item(ctx: &Ctx, ids: &mut dyn Ids, mut rec: DraftRecord, item: OrderItem) -> Result<Outcome<Draft>> {
    ensure_open(&rec)?;
    validate::item_body(&item)?;
    let prev = rec.version();
    let order = rec.draft.order.get_or_insert_with(Default::default);
    let items = order.items.get_or_insert_with(Vec::new);
    if let Some(l) = item.line_id {
        if items.iter().any(|i| i.line_id == Some(l)) {
            return Err(DomainError::conflict("DUPLICATE_LINE_ID", format!("line_id {l} already exists in the draft")));
        }
    }
    let mut item = item;
    if item.line_id.is_none() {
        item.line_id = Some(money::next_line_id(items.iter().filter_map(|i| i.line_id), "line_id").map_err(invalid)?);
    }
    item.version = Some(money::next_version(prev));
    item.is_changed = Some(false);
    items.push(item);
    commit(ctx, ids, Some(prev), rec, "shopping_draft_update", Vec::new())
}

fn position(rec: &DraftRecord, line_id: i64) -> Result<usize> {
    rec.draft
        .order
        .as_ref()
        .and_then(|o| o.items.as_ref())
        .and_then(|items| items.iter().position(|i| i.line_id == Some(line_id)))
        .ok_or(DomainError::NotFound("item"))
}

/// PUT /draft_orders/{id}/items/{line_id}: the body replaces the item.
pub fn update_item(
    ctx: &Ctx,
    ids: &mut dyn Ids,
    mut rec: DraftRecord,
    line_id: i64,
    mut item: OrderItem,
) -> Result<Outcome<Draft>> {
    ensure_open(&rec)?;
    let at = position(&rec, line_id)?;
    validate::item_body(&item)?;
    if item.line_id.is_some_and(|l| l != line_id) {
        return Err(DomainError::invalid("line_id", format!("must match the line_id in the path ({line_id})")));
    }
    let prev = rec.version();
    item.line_id = Some(line_id);
    item.version = Some(money::next_version(prev));
    item.is_changed = Some(true);
    if let Some(slot) = rec.draft.order.as_mut().and_then(|o| o.items.as_mut()).and_then(|items| items.get_mut(at)) {
        *slot = item;
    }
    commit(ctx, ids, Some(prev), rec, "shopping_draft_update", Vec::new())
}

/// DELETE /draft_orders/{id}/items/{line_id}
pub fn remove_item(ctx: &Ctx, ids: &mut dyn Ids, mut rec: DraftRecord, line_id: i64) -> Result<Outcome<Draft>> {
    ensure_open(&rec)?;
    let at = position(&rec, line_id)?;
    let prev = rec.version();
    if let Some(items) = rec.draft.order.as_mut().and_then(|o| o.items.as_mut()) {
        if at < items.len() {
            items.remove(at);
        }
    }
    commit(ctx, ids, Some(prev), rec, "shopping_draft_update", Vec::new())
}

/// DELETE /draft_orders/{id}: soft delete.
pub fn delete(ctx: &Ctx, ids: &mut dyn Ids, mut rec: DraftRecord) -> Result<Outcome<Draft>> {
    ensure_open(&rec)?;
    let prev = rec.version();
    rec.draft.status = DraftStatus::Deleted;
    rec.draft.deleted_at = Some(ctx.now_str());
    rec.draft.deleted_by = Some(ctx.actor.clone());
    commit(ctx, ids, Some(prev), rec, "shopping_draft_update", Vec::new())
}

mod complete;
pub use complete::*;
