//! Draft commands. Each takes the current state (as read), the request, the caller's context
//! and injected ids/time, and returns the new resource plus the writes that make it so: the
//! items to put with their conditions, each carrying the event it produces (see
//! [`crate::outbox`]), so a draft change is one single-item write.

use crate::error::FieldError;
use crate::error::{DomainError, Result};
use crate::ids::{timestamp, Ids};
use crate::list::Summary;
use crate::model::{
    Draft, DraftOptions, DraftStatus, Event, EventRequest, GenerateOrderId, ItemStore, Link, Order, OrderItem,
    OrderObject, OrderStatus, OrderStore, PaymentDetails, PaymentOperation, PaymentStatus,
};
use crate::table::{self, Condition, Item, Key, WriteOp};
use crate::{money, outbox, totals, validate};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use time::OffsetDateTime;

/// DynamoDB transactions hold at most 100 items; a split writes 3 items per order plus the
/// draft and at most [`outbox::MAX_RIDING`] history items.
pub const MAX_SPLIT_ORDERS: usize = 24;

/// Who acts, when, and through which request (recorded in the api-event).
#[derive(Debug, Clone)]
pub struct Ctx {
    pub aid: String,
    pub actor: String,
    pub now: OffsetDateTime,
    pub request: EventRequest,
}

impl Ctx {
    fn now_str(&self) -> String {
        timestamp(self.now)
    }
    fn href(&self, rest: &str) -> String {
        format!("/v1/accounts/{}/shopping/{rest}", self.aid)
    }
}

/// The create/replace body: `{options?, order}`.
#[derive(Debug, Clone, Deserialize)]
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

/// An order as read for a change: the order and its events still riding in its item.
#[derive(Debug, Clone)]
pub struct OrderRecord {
    pub order: Order,
    pub unflushed: Vec<EventRecord>,
}

/// What the unique `ORDERID` item holds: the order's id, or the draft that reserved it.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct OrderIdRecord {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reserved_by_draft: Option<String>,
}

/// The result of a command.
#[derive(Debug, Clone)]
pub struct Outcome<T> {
    pub resource: T,
    /// The version the change writes (the response's `ETag`), also when the response body
    /// does not show it (a completion).
    pub version: u64,
    pub ops: Vec<WriteOp>,
    /// `ORDERID` keys of client-chosen order ids: a failed condition on one of these is a
    /// `DUPLICATE_ORDER_ID`, not a race to retry.
    pub custom_order_ids: Vec<(Key, String)>,
}

fn to_doc<T: Serialize>(v: &T) -> String {
    // Serialising plain data structs to JSON cannot fail.
    serde_json::to_string(v).unwrap_or_default()
}

fn ttl_seconds(options: Option<&DraftOptions>, order: &OrderObject) -> Option<i64> {
    options.and_then(|o| o.order_time_to_live).or(order.time_to_live)
}

/// When a retention of `ttl` seconds from `now` ends. Validation bounds `time_to_live`, so
/// this fails only for data stored before the bound existed: still an error, never a panic.
fn expires_at(now: OffsetDateTime, ttl: Option<i64>) -> Result<Option<OffsetDateTime>> {
    match ttl {
        None => Ok(None),
        Some(s) => {
            now.checked_add(time::Duration::seconds(s)).filter(|t| t.year() <= 9999).map(Some).ok_or_else(|| {
                DomainError::invalid(
                    "order.time_to_live",
                    format!("must be at most {} seconds", validate::MAX_TIME_TO_LIVE),
                )
            })
        }
    }
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
    Event {
        event_type: Some("api-event".into()),
        id: Some(ids.uuid()),
        created_at: Some(ctx.now_str()),
        created_by: Some(ctx.actor.clone()),
        version: Some(version),
        request: Some(ctx.request.clone()),
        draft_id: Some(draft_id.to_owned()),
        ..Default::default()
    }
}

/// Assigns missing `line_id`s (next after the highest), stamps item versions, computes totals
/// and the list of sales locations.
fn normalize_order(order: &mut OrderObject, version: u64, now: OffsetDateTime, ttl: Option<i64>) -> Result<()> {
    let items = order.items.get_or_insert_with(Vec::new);
    number_new_items(items, |i| format!("order.items[{i}].line_id"))?;
    for item in items.iter_mut() {
        if item.quantity.is_none() {
            item.quantity = Some(1.0);
        }
        if item.version.is_none() {
            item.version = Some(version);
        }
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
    }
    let ttl_epoch = expires_at(ctx.now, ttl)?.map(|t| t.unix_timestamp());
    let event = api_event(ctx, ids, version, &rec.draft.id);
    let cond = prev.map_or(Condition::NotExists, Condition::VersionIs);
    let unflushed = std::mem::take(&mut rec.unflushed);
    let mut item = draft_item(&ctx.aid, &rec, ttl_epoch);
    outbox::attach(&mut item, unflushed, EventRecord::new(event.clone(), &[webhook]), &mut ops);
    ops.insert(0, WriteOp::Put { item, cond: Some(cond) });
    let mut draft = rec.draft;
    draft.events = Some(vec![event]);
    Ok(Outcome { resource: draft, version, ops, custom_order_ids: Vec::new() })
}

/// POST /draft_orders
pub fn create(ctx: &Ctx, ids: &mut dyn Ids, body: DraftBody) -> Result<Outcome<Draft>> {
    let options = body.options.unwrap_or_default();
    validate::draft_body(&options, &body.order)?;
    let id = ids.uuid();
    let now = ctx.now_str();
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
            order: Some(body.order),
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
    let options = body.options.unwrap_or_default();
    validate::draft_body(&options, &body.order)?;
    check_against_stored(&rec, &options)?;
    let prev = rec.version();
    rec.draft.options = Some(options);
    rec.draft.order = Some(body.order);
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

/// The fields an order keeps after its retention expires.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct OrderStub {
    pub id: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub order_number: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub order_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub external_ids: Option<Vec<crate::model::ExternalId>>,
    pub created_at: String,
    /// When the order's retention ends (it is emptied then).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expires_at: Option<String>,
}

/// The items that hold an order: its header (the whole order, indexed, expiring) and, when
/// it expires at all, its stub (what remains after expiry).
pub struct OrderItems {
    pub header: Item,
    pub stub: Option<Item>,
}

pub fn order_items(aid: &str, order: &Order, ttl_epoch: Option<i64>) -> OrderItems {
    let pk = table::order_pk(aid, &order.id);
    let version = order.content.version.unwrap_or(0);
    let mut header = Item::new(table::order_key(aid, &order.id), version, to_doc(order));
    header.gsi1pk = Some(table::orders_index_pk(aid));
    header.gsi1sk = Some(table::list_sk(&order.created_at, &order.id));
    if let Some(cid) = order.content.customer.as_ref().and_then(|c| c.id.as_deref()) {
        header.gsi2pk = Some(table::customer_index_pk(aid, cid));
        header.gsi2sk = header.gsi1sk.clone();
    }
    header.ttl = ttl_epoch;
    header.summary = Some(to_doc(&Summary::of_order(order)));
    let stub = OrderStub {
        id: order.id.clone(),
        order_number: order.content.order_number.clone(),
        order_id: order.content.order_id.clone(),
        external_ids: order.content.external_ids.clone(),
        created_at: order.created_at.clone(),
        expires_at: order.content.time_to_live_expires_at.clone(),
    };
    let stub = ttl_epoch.map(|_| Item::new(Key::new(pk, table::STUB_SK), 0, to_doc(&stub)));
    OrderItems { header, stub }
}

/// The complete response: the draft envelope with the orders, as the upstream shows it.
fn completion_response(mut out: Outcome<Draft>, orders: Vec<Order>) -> Outcome<Draft> {
    out.resource =
        Draft { version: None, events: None, options: None, order: None, orders: Some(orders), ..out.resource };
    out
}

/// The order's payment figures from its net total and its successful payment operations.
pub fn payment_details(order: &Order) -> PaymentDetails {
    let sum = |ops: &Option<Vec<PaymentOperation>>| -> i64 {
        money::total(ops.iter().flatten().filter(|o| o.success != Some(false)).filter_map(|o| o.amount))
    };
    let net = order.content.net_amount.unwrap_or(0);
    let authorized = sum(&order.authorizations);
    let has_authorizations = order.authorizations.iter().flatten().any(|o| o.success != Some(false));
    let (captured, refunded, cancelled) = (sum(&order.captures), sum(&order.refunds), sum(&order.cancellations));
    let capturable = if has_authorizations { authorized } else { net };
    let settled = money::total([captured, cancelled]);
    PaymentDetails {
        remaining_capture_amount: Some(money::remaining(capturable, settled)),
        remaining_refund_amount: Some(money::remaining(captured, refunded)),
        remaining_cancellation_amount: Some(money::remaining(authorized, settled)),
        amount_due: Some(money::remaining(net, money::remaining(captured, refunded))),
        remaining_authorization_amount: Some(money::remaining(net, authorized)),
    }
}

fn has_payments(order: &Order) -> bool {
    [&order.authorizations, &order.captures, &order.refunds, &order.cancellations]
        .iter()
        .any(|ops| ops.as_ref().is_some_and(|v| !v.is_empty()))
}

/// Completion into an existing order: append the draft's items, or replace the content.
fn complete_into(
    ctx: &Ctx,
    ids: &mut dyn Ids,
    mut rec: DraftRecord,
    target: OrderRecord,
    replace: bool,
) -> Result<Outcome<Draft>> {
    let OrderRecord { mut order, unflushed } = target;
    if order.status == Some(OrderStatus::Cancelled) {
        return Err(DomainError::conflict("ORDER_CANCELLED", "the order is cancelled and cannot take new items"));
    }
    let options = rec.draft.options.clone().unwrap_or_default();
    let draft_order = rec.draft.order.clone().unwrap_or_default();
    let prev = order.content.version.unwrap_or(0);
    let version = money::next_version(prev);
    let mut new_items = draft_order.items.clone().unwrap_or_default();
    for it in &mut new_items {
        it.version = Some(version);
    }
    if replace {
        if has_payments(&order) {
            return Err(DomainError::conflict(
                "ORDER_HAS_PAYMENTS",
                "an order with payment operations cannot be replaced",
            ));
        }
        let keep = order.content.clone();
        order.content = OrderObject {
            items: Some(new_items),
            order_id: keep.order_id,
            order_number: draft_order.order_number.clone().or(keep.order_number),
            time_to_live: options.order_time_to_live.or(draft_order.time_to_live).or(keep.time_to_live),
            multiple_authorizations: keep.multiple_authorizations,
            ..draft_order
        };
    } else {
        let existing = order.content.items.get_or_insert_with(Vec::new);
        for it in &new_items {
            if let Some(l) = it.line_id.filter(|l| existing.iter().any(|e| e.line_id == Some(*l))) {
                return Err(DomainError::conflict(
                    "DUPLICATE_LINE_ID",
                    format!("line_id {l} already exists in order {}", order.id),
                ));
            }
        }
        let first_new = existing.len();
        existing.extend(new_items);
        number_new_items(existing, |i| format!("order.items[{}].line_id", i.saturating_sub(first_new)))?;
        if let Some(ttl) = options.order_time_to_live {
            order.content.time_to_live = Some(ttl);
        }
    }
    let ttl = order.content.time_to_live;
    normalize_order(&mut order.content, version, ctx.now, ttl)?;
    order.content.stores = None;
    order.updated_at = ctx.now_str();
    order.payment_details = Some(payment_details(&order));
    let ttl_epoch = expires_at(ctx.now, ttl)?.map(|t| t.unix_timestamp());
    let event = api_event(ctx, ids, version, &rec.draft.id);
    let OrderItems { mut header, stub } = order_items(&ctx.aid, &order, ttl_epoch);
    let mut history = Vec::new();
    let new = EventRecord::new(event, &["shopping_order_update", "shopping_order_event_add"]);
    outbox::attach(&mut header, unflushed, new, &mut history);
    let mut ops = vec![WriteOp::Put { item: header, cond: Some(Condition::VersionIs(prev)) }];
    // The stub is rewritten: it carries the (moved) expiry.
    ops.extend(stub.map(|item| WriteOp::Put { item, cond: None }));
    ops.extend(history);
    rec.order_ids.push(order.id.clone());
    let draft_version = rec.version();
    rec.draft.status = DraftStatus::Completed;
    let out = commit(ctx, ids, Some(draft_version), rec, "shopping_draft_complete", ops)?;
    Ok(completion_response(out, vec![order]))
}

/// Groups items for a split: one group per store id in ascending order; items without a
/// store form the last group.
fn split_groups(items: Vec<OrderItem>) -> Vec<(Option<ItemStore>, Vec<OrderItem>)> {
    let mut by_store: BTreeMap<String, (ItemStore, Vec<OrderItem>)> = BTreeMap::new();
    let mut no_store = Vec::new();
    for item in items {
        match item.store.clone().filter(|s| s.id.is_some()) {
            Some(s) => by_store.entry(s.id.clone().unwrap_or_default()).or_insert_with(|| (s, Vec::new())).1.push(item),
            None => no_store.push(item),
        }
    }
    let mut groups: Vec<_> = by_store.into_values().map(|(s, items)| (Some(s), items)).collect();
    if !no_store.is_empty() {
        groups.push((None, no_store));
    }
    groups
}

/// PUT /draft_orders/{id}/complete: turns the draft into one order, or one per store with
/// `split_draft`. The response is the draft envelope with `orders`.
///
/// With `options.order_id` the draft goes into `existing` (the order that id names, read by the
/// caller) instead: its items are appended, or with `options.replace = "order"` they replace
/// the order's content.
pub fn complete(
    ctx: &Ctx,
    ids: &mut dyn Ids,
    mut rec: DraftRecord,
    existing: Option<OrderRecord>,
) -> Result<Outcome<Draft>> {
    ensure_open(&rec)?;
    let options = rec.draft.options.clone().unwrap_or_default();
    let draft_order = rec.draft.order.clone().unwrap_or_default();
    let items = draft_order.items.clone().unwrap_or_default();
    if items.is_empty() {
        return Err(DomainError::invalid("order.items", "a draft needs at least one item to be completed"));
    }
    if options.order_id.is_some() {
        let order = existing
            .ok_or_else(|| DomainError::invalid("options.order_id", "does not name an order of this account"))?;
        return complete_into(ctx, ids, rec, order, options.replace.is_some());
    }
    let split = options.split_draft == Some(true);
    // A draft stored before this rule existed may hold both; refuse it clearly.
    check_against_stored(&rec, &options)?;
    let groups = if split { split_groups(items) } else { vec![(None, items)] };
    if groups.len() > MAX_SPLIT_ORDERS {
        return Err(DomainError::invalid(
            "order.items",
            format!("a split creates at most {MAX_SPLIT_ORDERS} orders; this draft has {} stores", groups.len()),
        ));
    }
    let ttl = ttl_seconds(Some(&options), &draft_order);
    let ttl_epoch = expires_at(ctx.now, ttl)?.map(|t| t.unix_timestamp());
    let now = ctx.now_str();
    let serial = options.serial_order_number_suffix == Some(true) && split;
    let mode = options.generate_order_id.unwrap_or_default();
    let mut ops = Vec::new();
    let mut custom_order_ids = Vec::new();
    let mut orders = Vec::new();
    let mut base_number: Option<String> = draft_order.order_number.clone();
    for (n, (store, items)) in (1..).zip(groups) {
        let id = ids.uuid();
        let (order_id, id_cond, custom) = match (&rec.reserved_order_id, mode, &draft_order.order_id) {
            (Some(reserved), _, _) => (reserved.clone(), Condition::VersionIs(0), false),
            (None, _, Some(custom)) if !split => (custom.clone(), Condition::NotExists, true),
            (None, GenerateOrderId::Uuid, _) => (id.clone(), Condition::NotExists, false),
            (None, _, _) => (ids.alphanumeric9(), Condition::NotExists, false),
        };
        let order_number = match (&base_number, serial) {
            (Some(base), true) => format!("{base}-{n}"),
            (None, true) => {
                // Without a draft order_number the first order's id numbers the whole split.
                let base = order_id.clone();
                base_number = Some(base.clone());
                format!("{base}-{n}")
            }
            (Some(base), false) => base.clone(),
            (None, false) => order_id.clone(),
        };
        let mut content = OrderObject {
            items: Some(
                items
                    .into_iter()
                    .map(|mut it| {
                        it.version = Some(0);
                        it
                    })
                    .collect(),
            ),
            order_id: Some(order_id.clone()),
            order_number: Some(order_number),
            time_to_live: ttl,
            multiple_authorizations: options.multiple_authorizations.or(draft_order.multiple_authorizations),
            ..draft_order.clone()
        };
        if content.store.is_none() {
            content.store = store.as_ref().map(OrderStore::from);
        }
        normalize_order(&mut content, 0, ctx.now, ttl)?;
        content.stores = None;
        let event = api_event(ctx, ids, 0, &rec.draft.id);
        let order = Order {
            id: id.clone(),
            created_at: now.clone(),
            created_by: Some(ctx.actor.clone()),
            updated_at: now.clone(),
            status: Some(OrderStatus::Open),
            payment_status: Some(PaymentStatus::Pending),
            payment_details: None,
            links: Some(vec![
                Link::new("self", ctx.href(&format!("orders/{id}"))),
                Link::new("draft", ctx.href(&format!("draft_orders/{}", rec.draft.id))),
                Link::new("events", ctx.href(&format!("orders/{id}/events"))),
            ]),
            content,
            ..Default::default()
        };
        let order = Order { payment_details: Some(payment_details(&order)), ..order };
        let OrderItems { mut header, stub } = order_items(&ctx.aid, &order, ttl_epoch);
        let mut no_history = Vec::new();
        outbox::attach(
            &mut header,
            Vec::new(),
            EventRecord::new(event, &["shopping_order_event_add"]),
            &mut no_history,
        );
        ops.push(WriteOp::Put { item: header, cond: Some(Condition::NotExists) });
        ops.extend(stub.map(|item| WriteOp::Put { item, cond: Some(Condition::NotExists) }));
        // An order whose order_id is its own (random) id needs no `ORDERID` item: the id is
        // unique, and a lookup of a UUID reads the order directly.
        if order_id != id {
            let id_key = table::order_id_key(&ctx.aid, &order_id);
            let id_version = if id_cond == Condition::NotExists { 0 } else { 1 };
            let id_doc = OrderIdRecord { id: Some(id.clone()), reserved_by_draft: None };
            ops.push(WriteOp::Put {
                item: Item::new(id_key.clone(), id_version, to_doc(&id_doc)),
                cond: Some(id_cond),
            });
            if custom {
                custom_order_ids.push((id_key, order_id.clone()));
            }
        }
        if custom && validate::is_uuid(&order_id) {
            // A chosen order_id shaped like an id must not be another order's own id.
            let taken = table::order_key(&ctx.aid, &order_id);
            ops.push(WriteOp::Check { key: taken.clone(), cond: Condition::NotExists });
            custom_order_ids.push((taken, order_id.clone()));
        }
        rec.order_ids.push(id);
        orders.push(order);
    }
    let prev = rec.version();
    rec.draft.status = DraftStatus::Completed;
    let mut out = commit(ctx, ids, Some(prev), rec, "shopping_draft_complete", ops)?;
    out.custom_order_ids = custom_order_ids;
    Ok(completion_response(out, orders))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ids::SequentialIds;
    use crate::model::TaxLine;

    fn ctx() -> Ctx {
        Ctx {
            aid: "T12345678".into(),
            actor: "client-1".into(),
            now: time::macros::datetime!(2026-11-22 10:00:00 UTC),
            request: EventRequest::default(),
        }
    }

    fn item(line: i64, gross: i64, store: Option<&str>) -> OrderItem {
        OrderItem {
            line_id: Some(line),
            gross_amount: Some(gross),
            tax_lines: Some(vec![TaxLine { percentage: Some(25.0), ..Default::default() }]),
            store: store.map(|s| ItemStore { id: Some(s.into()), ..Default::default() }),
            ..Default::default()
        }
    }

    fn new_draft(ids: &mut SequentialIds, options: DraftOptions, items: Vec<OrderItem>) -> DraftRecord {
        let body = DraftBody {
            options: Some(options),
            order: OrderObject { currency: Some("NOK".into()), items: Some(items), ..Default::default() },
        };
        let out = create(&ctx(), ids, body).expect("create");
        record_of(&out)
    }

    fn record_of(out: &Outcome<Draft>) -> DraftRecord {
        let WriteOp::Put { item, .. } = &out.ops[0] else { panic!("draft put first") };
        serde_json::from_str(&item.doc).expect("doc")
    }

    #[test]
    fn create_starts_at_version_zero_with_totals_and_an_add_event() {
        let mut ids = SequentialIds::default();
        let out = create(
            &ctx(),
            &mut ids,
            DraftBody {
                options: None,
                order: OrderObject {
                    currency: Some("NOK".into()),
                    items: Some(vec![item(1, 100, None), OrderItem { line_id: None, ..item(0, 50, None) }]),
                    ..Default::default()
                },
            },
        )
        .expect("create");
        assert_eq!(out.resource.version, Some(0));
        let order = out.resource.order.as_ref().unwrap();
        assert_eq!(order.gross_amount, Some(150));
        assert_eq!(order.items.as_ref().unwrap()[1].line_id, Some(2));
        // One single-item write: the draft, with its event riding inside.
        assert_eq!(out.ops.len(), 1);
        let WriteOp::Put { item, .. } = &out.ops[0] else { panic!() };
        let riding = crate::outbox::fresh(item).unwrap();
        assert_eq!(riding.len(), 1);
        assert_eq!(riding[0].webhooks, ["shopping_draft_add"]);
    }

    #[test]
    fn split_orders_follow_store_ids_with_serial_numbers() {
        let mut ids = SequentialIds::default();
        let opts =
            DraftOptions { split_draft: Some(true), serial_order_number_suffix: Some(true), ..Default::default() };
        let mut rec =
            new_draft(&mut ids, opts, vec![item(1, 10, Some("s2")), item(2, 20, Some("s1")), item(3, 30, None)]);
        rec.draft.order.as_mut().unwrap().order_number = Some("N".into());
        let out = complete(&ctx(), &mut ids, rec, None).expect("complete");
        let orders = out.resource.orders.unwrap();
        let numbers: Vec<_> = orders.iter().map(|o| o.content.order_number.clone().unwrap()).collect();
        assert_eq!(numbers, ["N-1", "N-2", "N-3"]);
        assert_eq!(orders[0].content.store.as_ref().unwrap().id.as_deref(), Some("s1"));
        assert_eq!(orders[1].content.net_amount, Some(10));
        assert_eq!(orders[2].content.store, None);
    }

    #[test]
    fn completed_drafts_refuse_changes() {
        let mut ids = SequentialIds::default();
        let rec = new_draft(&mut ids, DraftOptions::default(), vec![item(1, 10, None)]);
        let out = complete(&ctx(), &mut ids, rec, None).expect("complete");
        let done = record_of(&out);
        let err = add_item(&ctx(), &mut ids, done, item(2, 1, None)).unwrap_err();
        assert!(matches!(err, DomainError::Conflict { code: "DRAFT_NOT_OPEN", .. }));
    }

    #[test]
    fn reserve_mode_shows_the_order_id_on_the_draft_and_uses_it() {
        let mut ids = SequentialIds::default();
        let opts =
            DraftOptions { generate_order_id: Some(GenerateOrderId::Alphanumeric9Reserve), ..Default::default() };
        let rec = new_draft(&mut ids, opts, vec![item(1, 10, None)]);
        let reserved = rec.draft.order.as_ref().unwrap().order_id.clone().unwrap();
        assert_eq!(reserved.len(), 9);
        let out = complete(&ctx(), &mut ids, rec, None).expect("complete");
        assert_eq!(out.resource.orders.unwrap()[0].content.order_id.as_deref(), Some(reserved.as_str()));
    }
}

#[cfg(test)]
mod into_existing {
    use super::*;
    use crate::ids::SequentialIds;
    use crate::model::TaxLine;

    fn ctx() -> Ctx {
        Ctx {
            aid: "T12345678".into(),
            actor: "a".into(),
            now: time::macros::datetime!(2026-11-22 10:00 UTC),
            request: EventRequest::default(),
        }
    }

    fn draft_into(ids: &mut SequentialIds, order_id: &str, replace: bool, line: i64) -> DraftRecord {
        let body = DraftBody {
            options: Some(DraftOptions {
                order_id: Some(order_id.into()),
                replace: replace.then_some(crate::model::ReplaceMode::Order),
                ..Default::default()
            }),
            order: OrderObject {
                currency: Some("NOK".into()),
                items: Some(vec![OrderItem {
                    line_id: Some(line),
                    gross_amount: Some(500),
                    tax_lines: Some(vec![TaxLine { percentage: Some(25.0), ..Default::default() }]),
                    ..Default::default()
                }]),
                ..Default::default()
            },
        };
        let out = create(&ctx(), ids, body).expect("create");
        let WriteOp::Put { item, .. } = &out.ops[0] else { panic!() };
        serde_json::from_str(&item.doc).expect("doc")
    }

    fn existing(net: i64) -> Order {
        let mut o = Order { id: "o1".into(), status: Some(OrderStatus::Open), ..Default::default() };
        o.content.items = Some(vec![OrderItem { line_id: Some(1), gross_amount: Some(net), ..Default::default() }]);
        o.content.net_amount = Some(net);
        o.content.version = Some(3);
        o
    }

    #[test]
    fn replace_is_refused_once_the_order_has_payments() {
        let mut ids = SequentialIds::default();
        let rec = draft_into(&mut ids, "o1", true, 1);
        let mut order = existing(1000);
        order.captures = Some(vec![PaymentOperation { amount: Some(100), ..Default::default() }]);
        let err = complete(&ctx(), &mut ids, rec, Some(OrderRecord { order, unflushed: Vec::new() })).unwrap_err();
        assert!(matches!(err, DomainError::Conflict { code: "ORDER_HAS_PAYMENTS", .. }));
    }

    #[test]
    fn append_bumps_the_order_version_and_is_conditioned_on_it() {
        let mut ids = SequentialIds::default();
        let rec = draft_into(&mut ids, "o1", false, 2);
        let target = OrderRecord { order: existing(1000), unflushed: Vec::new() };
        let out = complete(&ctx(), &mut ids, rec, Some(target)).expect("append");
        let order = &out.resource.orders.as_ref().unwrap()[0];
        assert_eq!(order.content.version, Some(4));
        assert_eq!(order.content.net_amount, Some(1500));
        assert_eq!(order.payment_details.as_ref().unwrap().amount_due, Some(1500));
        assert!(out
            .ops
            .iter()
            .any(|op| matches!(op, WriteOp::Put { item, cond: Some(Condition::VersionIs(3)) } if item.sk == "ORDER")));
    }

    #[test]
    fn payment_details_follow_the_decided_formulas() {
        let op = |amount, success| PaymentOperation { amount: Some(amount), success, ..Default::default() };
        let mut o = existing(1000);
        o.authorizations = Some(vec![op(800, None), op(100, Some(false))]);
        o.captures = Some(vec![op(500, Some(true))]);
        o.refunds = Some(vec![op(200, None)]);
        o.cancellations = Some(vec![op(100, None)]);
        let d = payment_details(&o);
        assert_eq!(d.remaining_authorization_amount, Some(200));
        assert_eq!(d.remaining_capture_amount, Some(200));
        assert_eq!(d.remaining_refund_amount, Some(300));
        assert_eq!(d.remaining_cancellation_amount, Some(200));
        assert_eq!(d.amount_due, Some(700));
    }
}
