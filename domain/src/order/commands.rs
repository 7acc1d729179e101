//! Order commands: update, status changes, comments, service events and sessions.
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
use crate::model::{
    Comment, ContactObject, Customer, Event, ExternalId, ExternalLink, Itinerary, Link, Object, Order, OrderSession,
    OrderStatus, SessionItem,
};
use crate::outbox::{self, EventRecord};
use crate::table::{Condition, WriteOp};
use crate::validate::{self, Problems, MAX_COMMENT, MAX_RESOURCE_ID};
use crate::{events, money};
use serde::{Deserialize, Serialize};
use serde_json::Value;

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

fn bad(problems: Problems) -> Result<()> {
    problems.into_body_result()
}

fn required_text(p: &mut Problems, path: &str, v: &Option<String>, max: usize) {
    match v {
        None => p.push(path, "REQUIRED", "is required"),
        Some(s) if s.trim().is_empty() => p.push(path, "EMPTY", "must not be empty"),
        Some(_) => p.max_len(path, v, max),
    }
}

fn limits<T: Serialize>(p: &mut Problems, v: &T) {
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

// ---------------------------------------------------------------- comments

/// `POST /orders/{order_id}/comments` body. `id` is optional and client-chosen.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct CommentBody {
    #[serde(default)]
    pub id: Option<String>,
    #[cfg_attr(feature = "openapi", schema(required = true))]
    #[serde(default)]
    pub body: Option<String>,
    #[serde(default)]
    pub visibility: Option<String>,
}

pub fn check_comment(b: &CommentBody) -> Result<()> {
    let mut p = Problems::default();
    required_text(&mut p, "body", &b.body, MAX_COMMENT);
    if let Some(id) = &b.id {
        if id.is_empty() || id.chars().count() > MAX_RESOURCE_ID || !id.chars().all(|c| c.is_ascii_graphic()) {
            p.push("id", "INVALID", format!("must be 1..{MAX_RESOURCE_ID} visible ASCII characters"));
        }
    }
    p.max_len("visibility", &b.visibility, 40);
    bad(p)
}

/// `POST /orders/{order_id}/comments`. A repeated create with the same `id` and the same
/// content changes nothing; the same `id` with other content is a 409 `DUPLICATE_ID`.
pub fn add_comment(ctx: &Ctx, ids: &mut dyn Ids, mut rec: OrderRecord, b: CommentBody) -> Result<Outcome<Order>> {
    check_comment(&b)?;
    if let Some(id) = &b.id {
        if let Some(c) = rec.order.comments.iter().flatten().find(|c| c.id.as_ref() == Some(id)) {
            if c.body == b.body && c.visibility == b.visibility {
                return Ok(unchanged(rec.order.clone(), &rec.order));
            }
            return Err(DomainError::conflict("DUPLICATE_ID", format!("comment {id} exists with other content")));
        }
    }
    let comment = Comment {
        id: Some(b.id.unwrap_or_else(|| ids.uuid())),
        created_at: Some(ctx.now_str()),
        created_by: Some(ctx.actor.clone()),
        deleted_by: None,
        deleted_at: None,
        body: b.body,
        visibility: b.visibility,
    };
    rec.order.comments.get_or_insert_with(Vec::new).push(comment);
    commit(ctx, rec, api_event(ctx, ids), &[ORDER_UPDATE, ORDER_EVENT_ADD])
}

/// `DELETE /orders/{order_id}/comments/{comment_id}`: soft; a second delete changes nothing.
pub fn delete_comment(ctx: &Ctx, ids: &mut dyn Ids, mut rec: OrderRecord, comment_id: &str) -> Result<Outcome<Order>> {
    let Some(c) = rec.order.comments.iter_mut().flatten().find(|c| c.id.as_deref() == Some(comment_id)) else {
        return Err(DomainError::NotFound("comment"));
    };
    if c.deleted_at.is_some() {
        return Ok(unchanged(rec.order.clone(), &rec.order));
    }
    c.deleted_at = Some(ctx.now_str());
    c.deleted_by = Some(ctx.actor.clone());
    commit(ctx, rec, api_event(ctx, ids), &[ORDER_UPDATE, ORDER_EVENT_ADD])
}

// ---------------------------------------------------------------- service events

/// `POST /orders/{order_id}/events` body (an OrderStatusEvent).
#[derive(Debug, Clone, Default, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ServiceEventBody {
    #[cfg_attr(feature = "openapi", schema(required = true))]
    #[serde(default)]
    pub state: Option<String>,
    #[cfg_attr(feature = "openapi", schema(required = true))]
    #[serde(default)]
    pub service: Option<String>,
    #[cfg_attr(feature = "openapi", schema(required = true))]
    #[serde(default)]
    pub service_status: Option<String>,
    #[serde(default)]
    pub description: Option<String>,
    #[serde(default)]
    pub metadata: Option<Object>,
}

pub const EVENT_STATES: [&str; 4] = ["error", "failure", "success", "pending"];

pub fn check_service_event(b: &ServiceEventBody) -> Result<()> {
    let mut p = Problems::default();
    match b.state.as_deref() {
        None => p.push("state", "REQUIRED", "is required (error, failure, success or pending)"),
        Some(s) if !EVENT_STATES.contains(&s) => {
            p.push("state", "INVALID", "must be one of error, failure, success, pending")
        }
        Some(_) => {}
    }
    required_text(&mut p, "service", &b.service, 255);
    required_text(&mut p, "service_status", &b.service_status, 255);
    p.max_len("description", &b.description, validate::MAX_TEXT);
    if let Some(m) = &b.metadata {
        let mut l = Problems::default();
        validate::check_limits(&mut l, "", &serde_json::json!({ "metadata": m }));
        p.merge_new(l);
    }
    bad(p)
}

/// `POST /orders/{order_id}/events`: appends a service-event. It changes the order's events
/// only, so its webhook is `shopping_order_event_add`.
pub fn add_event(ctx: &Ctx, ids: &mut dyn Ids, rec: OrderRecord, b: ServiceEventBody) -> Result<Outcome<Event>> {
    check_service_event(&b)?;
    let event = Event {
        event_type: Some(events::SERVICE_EVENT.into()),
        id: Some(ids.uuid()),
        created_at: Some(ctx.now_str()),
        created_by: Some(ctx.actor.clone()),
        state: b.state,
        service: b.service,
        service_status: b.service_status,
        description: b.description,
        metadata: b.metadata,
        ..Default::default()
    };
    let out = commit(ctx, rec, event, &[ORDER_EVENT_ADD])?;
    let event = out.resource.events.iter().flatten().last().cloned().unwrap_or_default();
    Ok(out.with(event))
}

// ---------------------------------------------------------------- sessions

/// `POST /orders/{order_id}/sessions` body. Only `items` and the amounts they select are
/// kept on the session (as upstream shows it); the rest is recorded in the session's event.
#[derive(Debug, Clone, Default, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct SessionBody {
    #[cfg_attr(feature = "openapi", schema(required = true))]
    #[serde(default)]
    pub items: Option<Vec<SessionItemRequest>>,
    #[cfg_attr(feature = "openapi", schema(required = true))]
    #[serde(default)]
    pub profile_id: Option<String>,
    #[cfg_attr(feature = "openapi", schema(required = true))]
    #[serde(default)]
    pub url: Option<SessionUrls>,
    #[serde(default)]
    pub express: Option<Object>,
    #[serde(default)]
    pub merchant_reference: Option<String>,
    #[serde(default)]
    pub shipping_option: Option<Object>,
    #[serde(default)]
    pub processed_at: Option<String>,
    #[serde(default)]
    pub metadata: Option<Object>,
}

#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct SessionItemRequest {
    /// A string on the session schema, an integer on order items: both are accepted.
    #[cfg_attr(feature = "openapi", schema(required = true))]
    #[serde(default)]
    pub line_id: Option<Value>,
}

#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct SessionUrls {
    #[cfg_attr(feature = "openapi", schema(required = true))]
    #[serde(default)]
    pub return_url: Option<String>,
    #[serde(default)]
    pub callback_url: Option<String>,
    #[serde(default)]
    pub merchant_terms_url: Option<String>,
}

fn line_of(v: &Value) -> Option<i64> {
    match v {
        Value::Number(n) => n.as_i64(),
        Value::String(s) => s.trim().parse().ok(),
        _ => None,
    }
    .filter(|l| (0..=money::MAX_SAFE).contains(l))
}

pub fn check_session(b: &SessionBody) -> Result<()> {
    let mut p = Problems::default();
    match &b.items {
        None => p.push("items", "REQUIRED", "is required: the order lines the session pays for"),
        Some(items) if items.is_empty() => p.push("items", "EMPTY", "must select at least one order line"),
        Some(items) => {
            let mut seen = std::collections::HashSet::new();
            for (i, it) in items.iter().enumerate() {
                match it.line_id.as_ref().map(line_of) {
                    None => p.push(format!("items[{i}].line_id"), "REQUIRED", "is required"),
                    Some(None) => p.push(format!("items[{i}].line_id"), "INVALID", "must be a line_id of the order"),
                    Some(Some(l)) if !seen.insert(l) => p.push(
                        format!("items[{i}].line_id"),
                        "DUPLICATE_LINE_ID",
                        format!("line {l} is selected twice"),
                    ),
                    Some(Some(_)) => {}
                }
            }
        }
    }
    required_text(&mut p, "profile_id", &b.profile_id, 255);
    match &b.url {
        None => p.push("url", "REQUIRED", "is required (return_url, callback_url, merchant_terms_url)"),
        Some(u) => required_text(&mut p, "url.return_url", &u.return_url, validate::MAX_TEXT),
    }
    p.max_len("merchant_reference", &b.merchant_reference, 255);
    if let Some(t) = &b.processed_at {
        if !validate::is_date_time(t) {
            p.push("processed_at", "INVALID_DATE_TIME", "must be an RFC 3339 date-time");
        }
    }
    let mut l = Problems::default();
    let fields = serde_json::json!({
        "url": b.url, "express": b.express, "shipping_option": b.shipping_option, "metadata": b.metadata,
    });
    validate::check_limits(&mut l, "", &fields);
    p.merge_new(l);
    bad(p)
}

/// `POST /orders/{order_id}/sessions`: a payment session for selected lines; its `amount`
/// is what those lines come to (their `net_amount`). Refused on a cancelled order.
pub fn create_session(
    ctx: &Ctx,
    ids: &mut dyn Ids,
    mut rec: OrderRecord,
    b: SessionBody,
) -> Result<Outcome<OrderSession>> {
    check_session(&b)?;
    if rec.order.status == Some(OrderStatus::Cancelled) {
        return Err(DomainError::conflict("ORDER_CANCELLED", "the order is cancelled and takes no payment session"));
    }
    let mut items = Vec::new();
    let mut unknown = Vec::new();
    let mut amount = 0i64;
    for (i, it) in b.items.iter().flatten().enumerate() {
        let line = it.line_id.as_ref().and_then(line_of).unwrap_or_default();
        let path = format!("items[{i}].line_id");
        match rec.order.content.items.iter().flatten().find(|x| x.line_id == Some(line)) {
            Some(x) => {
                let a = x.net_amount.or(x.gross_amount).unwrap_or(0);
                amount = money::add(amount, a, "amount").map_err(|e| DomainError::Validation(vec![e]))?;
                items.push(SessionItem { line_id: Some(line.to_string()), amount: Some(a) });
            }
            None => unknown.push(FieldError::new(path, "UNKNOWN_LINE_ID", format!("the order has no line {line}"))),
        }
    }
    if !unknown.is_empty() {
        return Err(DomainError::Validation(unknown));
    }
    let id = ids.uuid();
    let session = OrderSession {
        id: Some(id.clone()),
        created_at: Some(ctx.now_str()),
        created_by: Some(ctx.actor.clone()),
        amount: Some(amount),
        items: Some(items),
        processed_at: b.processed_at,
        metadata: b.metadata,
        success: None,
        links: Some(vec![Link::new("self", ctx.href(&format!("orders/{}/sessions/{id}", rec.order.id)))]),
    };
    rec.order.sessions.get_or_insert_with(Vec::new).push(session.clone());
    Ok(commit(ctx, rec, api_event(ctx, ids), &[ORDER_UPDATE, ORDER_EVENT_ADD])?.with(session))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ids::SequentialIds;
    use crate::model::{EventRequest, OrderItem, OrderObject, PaymentOperation};
    use crate::table::Condition;

    fn ctx() -> Ctx {
        Ctx {
            aid: "T12345678".into(),
            actor: "client-1".into(),
            now: crate::ids::parse_rfc3339("2026-11-22T10:00:00Z").unwrap(),
            request: EventRequest::default(),
        }
    }

    fn rec() -> OrderRecord {
        let item = |l: i64, net: i64| OrderItem {
            line_id: Some(l),
            gross_amount: Some(net),
            net_amount: Some(net),
            ..Default::default()
        };
        let order = Order {
            id: "00000000-0000-4000-8000-000000000999".into(),
            created_at: "2026-11-21T10:00:00.000Z".into(),
            updated_at: "2026-11-21T10:00:00.000Z".into(),
            status: Some(OrderStatus::Open),
            content: OrderObject {
                version: Some(3),
                net_amount: Some(300),
                currency: Some("NOK".into()),
                items: Some(vec![item(1, 100), item(2, 200)]),
                ..Default::default()
            },
            ..Default::default()
        };
        OrderRecord { order, unflushed: Vec::new() }
    }

    fn conflict_code(e: DomainError) -> &'static str {
        match e {
            DomainError::Conflict { code, .. } => code,
            other => panic!("expected a conflict, got {other:?}"),
        }
    }

    #[test]
    fn update_is_partial_bumps_the_version_and_is_conditioned_on_it() {
        let mut r = rec();
        r.order.content.comment = Some("keep me".into());
        let u = OrderUpdate {
            courier_id: Some("c-7".into()),
            items: Some(vec![ItemStatus { line_id: Some(2), status: Some("picked".into()) }]),
            ..Default::default()
        };
        let out = update(&ctx(), &mut SequentialIds::default(), r, u).unwrap();
        let o = &out.resource;
        assert_eq!(out.version, 4);
        assert_eq!(o.content.courier_id.as_deref(), Some("c-7"));
        assert_eq!(o.content.comment.as_deref(), Some("keep me"));
        let items = o.content.items.as_ref().unwrap();
        assert_eq!(items[1].status.as_deref(), Some("picked"));
        assert_eq!(items[1].version, Some(4));
        assert_eq!(items[0].status, None);
        assert!(matches!(out.ops[0], WriteOp::Put { cond: Some(Condition::VersionIs(3)), .. }));
        assert_eq!(o.events.as_ref().unwrap()[0].version, Some(4));
    }

    #[test]
    fn update_of_an_unknown_line_names_it() {
        let u = OrderUpdate { items: Some(vec![ItemStatus { line_id: Some(9), status: None }]), ..Default::default() };
        let Err(DomainError::Validation(errs)) = update(&ctx(), &mut SequentialIds::default(), rec(), u) else {
            panic!("expected a 400")
        };
        assert_eq!(errs[0].path, "items[0].line_id");
    }

    #[test]
    fn status_transitions_follow_the_matrix() {
        let ids = &mut SequentialIds::default();
        let closed = close(&ctx(), ids, rec()).unwrap().resource;
        assert_eq!(closed.status, Some(OrderStatus::Closed));
        assert!(closed.closed_at.is_some());
        let again = OrderRecord { order: closed.clone(), unflushed: Vec::new() };
        assert_eq!(conflict_code(close(&ctx(), ids, again).unwrap_err()), "INVALID_STATUS_TRANSITION");
        assert_eq!(conflict_code(open(&ctx(), ids, rec()).unwrap_err()), "INVALID_STATUS_TRANSITION");
        let reopened = open(&ctx(), ids, OrderRecord { order: closed.clone(), unflushed: Vec::new() }).unwrap();
        assert_eq!(reopened.resource.closed_at, None);
        let body = CancelBody { cancelled_reason: Some("customer".into()) };
        let cancelled = cancel(&ctx(), ids, OrderRecord { order: closed, unflushed: Vec::new() }, body).unwrap();
        assert_eq!(cancelled.resource.cancelled_reason.as_deref(), Some("customer"));
        let done = OrderRecord { order: cancelled.resource, unflushed: Vec::new() };
        for f in [close, open] {
            assert_eq!(conflict_code(f(&ctx(), ids, done.clone()).unwrap_err()), "INVALID_STATUS_TRANSITION");
        }
        let body = CancelBody::default();
        assert_eq!(conflict_code(cancel(&ctx(), ids, done, body).unwrap_err()), "INVALID_STATUS_TRANSITION");
    }

    #[test]
    fn cancel_needs_nothing_captured_net_of_refunds() {
        let ids = &mut SequentialIds::default();
        let op = |amount| PaymentOperation { amount: Some(amount), ..Default::default() };
        let mut r = rec();
        r.order.captures = Some(vec![op(100)]);
        let err = cancel(&ctx(), ids, r.clone(), CancelBody::default()).unwrap_err();
        assert_eq!(conflict_code(err), "INVALID_STATUS_TRANSITION");
        r.order.refunds = Some(vec![op(100)]);
        assert!(cancel(&ctx(), ids, r, CancelBody::default()).is_ok());
        let bad = CancelBody { cancelled_reason: Some("bored".into()) };
        assert!(matches!(cancel(&ctx(), ids, rec(), bad), Err(DomainError::Validation(_))));
    }

    #[test]
    fn comments_with_a_client_id_are_idempotent_and_deletes_are_soft() {
        let ids = &mut SequentialIds::default();
        let body = CommentBody { id: Some("c1".into()), body: Some("hello".into()), visibility: None };
        let first = add_comment(&ctx(), ids, rec(), body.clone()).unwrap();
        assert_eq!(first.ops.len(), 1);
        let stored = OrderRecord { order: first.resource.clone(), unflushed: Vec::new() };
        let repeat = add_comment(&ctx(), ids, stored.clone(), body).unwrap();
        assert!(repeat.ops.is_empty());
        assert_eq!(repeat.version, first.version);
        let other = CommentBody { id: Some("c1".into()), body: Some("changed".into()), visibility: None };
        assert_eq!(conflict_code(add_comment(&ctx(), ids, stored.clone(), other).unwrap_err()), "DUPLICATE_ID");
        let deleted = delete_comment(&ctx(), ids, stored, "c1").unwrap().resource;
        let c = &deleted.comments.as_ref().unwrap()[0];
        assert!(c.deleted_at.is_some());
        let twice = delete_comment(&ctx(), ids, OrderRecord { order: deleted, unflushed: Vec::new() }, "c1").unwrap();
        assert!(twice.ops.is_empty());
        assert!(matches!(delete_comment(&ctx(), ids, rec(), "nope"), Err(DomainError::NotFound("comment"))));
        let empty = CommentBody { body: Some(" ".into()), ..Default::default() };
        assert!(matches!(add_comment(&ctx(), ids, rec(), empty), Err(DomainError::Validation(_))));
    }

    #[test]
    fn service_events_need_state_service_and_status() {
        let ids = &mut SequentialIds::default();
        let Err(DomainError::Validation(errs)) = add_event(&ctx(), ids, rec(), ServiceEventBody::default()) else {
            panic!("expected a 400")
        };
        let paths: Vec<_> = errs.iter().map(|e| e.path.as_str()).collect();
        assert_eq!(paths, ["state", "service", "service_status"]);
        let body = ServiceEventBody {
            state: Some("pending".into()),
            service: Some("kitchen".into()),
            service_status: Some("cooking".into()),
            ..Default::default()
        };
        let out = add_event(&ctx(), ids, rec(), body).unwrap();
        assert_eq!(out.resource.event_type.as_deref(), Some("service-event"));
        assert_eq!(out.resource.version, Some(4));
    }

    #[test]
    fn sessions_sum_the_selected_lines_and_refuse_cancelled_orders() {
        let ids = &mut SequentialIds::default();
        let body = |lines: Vec<Value>| SessionBody {
            items: Some(lines.into_iter().map(|l| SessionItemRequest { line_id: Some(l) }).collect()),
            profile_id: Some("P1".into()),
            url: Some(SessionUrls { return_url: Some("https://example.com/r".into()), ..Default::default() }),
            ..Default::default()
        };
        let out = create_session(&ctx(), ids, rec(), body(vec![Value::from("1"), Value::from(2)])).unwrap();
        assert_eq!(out.resource.amount, Some(300));
        assert_eq!(out.resource.items.as_ref().unwrap()[0].line_id.as_deref(), Some("1"));
        let err = create_session(&ctx(), ids, rec(), body(vec![Value::from(7)])).unwrap_err();
        assert!(matches!(err, DomainError::Validation(ref e) if e[0].path == "items[0].line_id"));
        let mut cancelled = rec();
        cancelled.order.status = Some(OrderStatus::Cancelled);
        let err = create_session(&ctx(), ids, cancelled, body(vec![Value::from(1)])).unwrap_err();
        assert_eq!(conflict_code(err), "ORDER_CANCELLED");
    }
}
