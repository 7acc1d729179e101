//! Order commands: what every order change shares (the api-event, the commit), update and
//! status changes; comments and service events are in `notes`, sessions in `sessions`.
//!
//! Each takes the order as read, the request and the caller's context, and returns the new
//! order plus one put of its header conditioned on the version read, with the event the
//! change records riding in it (see [`crate::outbox`]): an order change is one single-item
//! write (two, in one transaction, for an order with a retention, whose stub moves along).
//! Comments and sessions live in the order item, so a read of the order is one item.

use super::{order_items, payment_details, payment_status, OrderItems, OrderRecord};
use crate::change::{expires_at, Ctx, Outcome};
use crate::error::{DomainError, FieldError, Result};
use crate::ids::{timestamp, Ids};
use crate::model::{ContactObject, Customer, Event, ExternalId, ExternalLink, Itinerary, Object, Order, OrderStatus};
use crate::outbox::{self, EventRecord};
use crate::table::{Condition, WriteOp};
use crate::validate::{self, Problems};
use crate::{events, money};
use serde::{Deserialize, Serialize};

/// Webhook events: every change of an order, and every event added to it.
pub const ORDER_UPDATE: &str = "shopping_order_update";
pub const ORDER_EVENT_ADD: &str = "shopping_order_event_add";

/// The api-event recording the request (its version is set by the write that carries it).
pub(crate) fn api_event(ctx: &Ctx, ids: &mut dyn Ids) -> Event {
    Event {
        event_type: Some(events::API_EVENT.into()),
        id: Some(ids.uuid()),
        created_at: Some(ctx.now_str()),
        created_by: Some(ctx.actor.clone()),
        request: Some(ctx.request.clone()),
        ..Default::default()
    }
}

/// Finishes a change: the next version, `updated_at`, the expiry counted from this change,
/// the payment figures; one put of the header conditioned on the version read, carrying
/// `event` (stamped with the new version) for `webhooks`.
pub(crate) fn commit(ctx: &Ctx, rec: OrderRecord, mut event: Event, webhooks: &[&str]) -> Result<Outcome<Order>> {
    let OrderRecord { mut order, unflushed } = rec;
    let prev = order.content.version.unwrap_or(0);
    let version = money::next_version(prev);
    order.content.version = Some(version);
    order.updated_at = ctx.now_str();
    let expiry = expires_at(ctx.now, order.content.time_to_live)?;
    order.content.time_to_live_expires_at = expiry.map(timestamp);
    order.payment_details = Some(payment_details(&order));
    order.payment_status = Some(payment_status(&order));
    order.events = None;
    order.state = None;
    event.version = Some(version);
    let OrderItems { mut header, stub } = order_items(&ctx.aid, &order, expiry.map(|t| t.timestamp()));
    let mut history = Vec::new();
    outbox::attach(&mut header, unflushed, EventRecord::new(event.clone(), webhooks), &mut history);
    let pinned = Some(header.key());
    let mut ops = vec![WriteOp::Put { item: header, cond: Some(Condition::VersionIs(prev)) }];
    // The stub carries the (moved) expiry.
    ops.extend(stub.map(|item| WriteOp::Put { item, cond: None }));
    ops.extend(history);
    order.events = Some(vec![event]);
    Ok(Outcome { resource: order, version, ops, pinned, custom_order_ids: Vec::new() })
}

/// An answer that changes nothing (a repeated create with a client-chosen id, a second
/// delete): no write, the current version.
pub(crate) fn unchanged<T>(resource: T, order: &Order) -> Outcome<T> {
    let version = order.content.version.unwrap_or(0);
    Outcome { resource, version, ops: Vec::new(), pinned: None, custom_order_ids: Vec::new() }
}

pub(crate) fn bad(problems: Problems) -> Result<()> {
    problems.into_body_result()
}

pub(crate) fn required_text(p: &mut Problems, path: &str, v: &Option<String>, max: usize) {
    match v {
        None => p.push(path, "REQUIRED", "is required"),
        Some(s) if s.trim().is_empty() => p.push(path, "EMPTY", "must not be empty"),
        Some(_) => p.max_len(path, v, max),
    }
}

pub(crate) fn limits<T: Serialize>(p: &mut Problems, v: &T) {
    if let Ok(json) = serde_json::to_value(v) {
        let mut l = Problems::default();
        validate::check_limits(&mut l, "", &json);
        p.merge_new(l);
    }
}

// ---------------------------------------------------------------- update

/// `PUT /orders/{order_id}`: a partial update. Absent fields keep their value; `items` set
/// the `status` of the lines they name.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct OrderUpdate {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub customer: Option<Customer>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub shipping_address: Option<ContactObject>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub billing_address: Option<ContactObject>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub metadata: Option<Object>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub comment: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub salesperson_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub salesperson_name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub delivery_at: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pickup_at: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub courier_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub delivery_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pre_order: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub time_to_live: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub itinerary: Option<Vec<Itinerary>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub external_ids: Option<Vec<ExternalId>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub items: Option<Vec<ItemStatus>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub external_links: Option<Vec<ExternalLink>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub multiple_authorizations: Option<bool>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ItemStatus {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub line_id: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<String>,
}

impl OrderUpdate {
    /// The update's fields as order content, for the rules order content shares.
    fn as_content(&self) -> crate::model::OrderObject {
        crate::model::OrderObject {
            customer: self.customer.clone(),
            shipping_address: self.shipping_address.clone(),
            billing_address: self.billing_address.clone(),
            metadata: self.metadata.clone(),
            comment: self.comment.clone(),
            salesperson_id: self.salesperson_id.clone(),
            salesperson_name: self.salesperson_name.clone(),
            delivery_at: self.delivery_at.clone(),
            pickup_at: self.pickup_at.clone(),
            courier_id: self.courier_id.clone(),
            delivery_id: self.delivery_id.clone(),
            pre_order: self.pre_order,
            time_to_live: self.time_to_live,
            itinerary: self.itinerary.clone(),
            external_ids: self.external_ids.clone(),
            external_links: self.external_links.clone(),
            multiple_authorizations: self.multiple_authorizations,
            ..Default::default()
        }
    }
}

/// The rules of an update body that need no order.
pub fn check_update(u: &OrderUpdate) -> Result<()> {
    let mut p = Problems::default();
    validate::check_order(&mut p, "", &u.as_content(), false);
    for (i, it) in u.items.iter().flatten().enumerate() {
        if it.line_id.is_none() {
            p.push(format!("items[{i}].line_id"), "REQUIRED", "is required to name the item");
        }
    }
    limits(&mut p, &u.items);
    bad(p)
}

/// `PUT /orders/{order_id}`.
pub fn update(ctx: &Ctx, ids: &mut dyn Ids, mut rec: OrderRecord, u: OrderUpdate) -> Result<Outcome<Order>> {
    check_update(&u)?;
    let order = &mut rec.order;
    let next = money::next_version(order.content.version.unwrap_or(0));
    let mut unknown = Vec::new();
    for (i, change) in u.items.iter().flatten().enumerate() {
        let line = change.line_id.unwrap_or_default();
        match order.content.items.iter_mut().flatten().find(|it| it.line_id == Some(line)) {
            Some(item) => {
                if change.status.is_some() {
                    item.status = change.status.clone();
                }
                item.version = Some(next);
                item.is_changed = Some(true);
            }
            None => unknown.push(FieldError::new(
                format!("items[{i}].line_id"),
                "UNKNOWN_LINE_ID",
                format!("the order has no item with line_id {line}"),
            )),
        }
    }
    if !unknown.is_empty() {
        return Err(DomainError::Validation(unknown));
    }
    if u.multiple_authorizations.is_some_and(|m| Some(m) != order.content.multiple_authorizations)
        && order.authorizations.as_ref().is_some_and(|a| !a.is_empty())
    {
        return Err(DomainError::conflict(
            "ORDER_HAS_PAYMENTS",
            "multiple_authorizations cannot change once the order has authorizations",
        ));
    }
    let c = &mut order.content;
    let customer_before = c.customer.clone();
    macro_rules! set {
        ($($f:ident),*) => { $( if u.$f.is_some() { c.$f = u.$f.clone(); } )* };
    }
    set!(
        customer,
        shipping_address,
        billing_address,
        metadata,
        comment,
        salesperson_id,
        salesperson_name,
        delivery_at,
        pickup_at,
        courier_id,
        delivery_id,
        pre_order,
        time_to_live,
        itinerary,
        external_ids,
        external_links,
        multiple_authorizations
    );
    if let Some(customer) = c.customer.as_mut() {
        customer.stamp_consents(customer_before.as_ref(), &ctx.now_str());
    }
    commit(ctx, rec, api_event(ctx, ids), &[ORDER_UPDATE, ORDER_EVENT_ADD])
}

// ---------------------------------------------------------------- status

fn transition(order: &Order, to: OrderStatus, allowed: &[OrderStatus]) -> Result<()> {
    let from = order.status.unwrap_or_default();
    if allowed.contains(&from) {
        return Ok(());
    }
    let name = |s: OrderStatus| serde_json::to_value(s).ok().and_then(|v| v.as_str().map(str::to_owned));
    Err(DomainError::conflict(
        "INVALID_STATUS_TRANSITION",
        format!("an order that is {} cannot become {}", name(from).unwrap_or_default(), name(to).unwrap_or_default()),
    ))
}

/// `POST /orders/{order_id}/close`: open → closed.
pub fn close(ctx: &Ctx, ids: &mut dyn Ids, mut rec: OrderRecord) -> Result<Outcome<Order>> {
    transition(&rec.order, OrderStatus::Closed, &[OrderStatus::Open])?;
    rec.order.status = Some(OrderStatus::Closed);
    rec.order.closed_at = Some(ctx.now_str());
    rec.order.closed_by = Some(ctx.actor.clone());
    commit(ctx, rec, api_event(ctx, ids), &[ORDER_UPDATE, ORDER_EVENT_ADD])
}

/// `POST /orders/{order_id}/open`: closed → open. The closure it undoes is cleared.
pub fn open(ctx: &Ctx, ids: &mut dyn Ids, mut rec: OrderRecord) -> Result<Outcome<Order>> {
    transition(&rec.order, OrderStatus::Open, &[OrderStatus::Closed])?;
    rec.order.status = Some(OrderStatus::Open);
    rec.order.closed_at = None;
    rec.order.closed_by = None;
    commit(ctx, rec, api_event(ctx, ids), &[ORDER_UPDATE, ORDER_EVENT_ADD])
}

/// `POST /orders/{order_id}/cancel` body: `{cancelled_reason?}`.
#[derive(Debug, Clone, Default, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct CancelBody {
    #[serde(default)]
    pub cancelled_reason: Option<String>,
}

pub const CANCELLED_REASONS: [&str; 3] = ["customer", "declined", "other"];

pub fn check_cancel(b: &CancelBody) -> Result<()> {
    match b.cancelled_reason.as_deref() {
        Some(r) if !CANCELLED_REASONS.contains(&r) => {
            Err(DomainError::invalid("cancelled_reason", "must be one of customer, declined, other"))
        }
        _ => Ok(()),
    }
}

/// `POST /orders/{order_id}/cancel`: open or closed → cancelled, only while nothing is
/// captured net of refunds.
pub fn cancel(ctx: &Ctx, ids: &mut dyn Ids, mut rec: OrderRecord, body: CancelBody) -> Result<Outcome<Order>> {
    check_cancel(&body)?;
    transition(&rec.order, OrderStatus::Cancelled, &[OrderStatus::Open, OrderStatus::Closed])?;
    let kept =
        money::remaining(super::successful_total(&rec.order.captures), super::successful_total(&rec.order.refunds));
    if kept > 0 {
        return Err(DomainError::conflict(
            "INVALID_STATUS_TRANSITION",
            format!("{kept} is captured and not refunded; refund it before cancelling the order"),
        ));
    }
    rec.order.status = Some(OrderStatus::Cancelled);
    rec.order.cancelled_at = Some(ctx.now_str());
    rec.order.cancelled_by = Some(ctx.actor.clone());
    rec.order.cancelled_reason = body.cancelled_reason;
    commit(ctx, rec, api_event(ctx, ids), &[ORDER_UPDATE, ORDER_EVENT_ADD])
}
