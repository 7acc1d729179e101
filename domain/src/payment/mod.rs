//! Payment operations (authorizations, captures, refunds, cancellations): the records of what
//! a payment gateway did, and the ledger rules that make them add up.
//!
//! Per line (and so in total): authorized ≤ line net; captured + cancelled ≤ authorized (≤ line
//! net while the order has no authorization); refunded ≤ captured. With
//! `multiple_authorizations` the limits hold per authorization. Operations with
//! `success: false` are kept and shown but count for nothing. A new operation is checked against
//! every operation the order holds, in the same write, conditioned on the order's version, that
//! records it: a concurrent operation makes the write fail and the check run again.
//!
//! Each operation is an item of its own in the order's partition (`PAY#{kind}#{id}`), so an
//! order with hundreds of them stays small and a new one never rewrites the others.

pub mod payout;

use crate::change::{Ctx, Outcome};
use crate::error::{DomainError, FieldError, Result};
use crate::ids::Ids;
use crate::model::{
    Link, Object, OperationItem, OperationPaymentDetails, OperationPayout, Order, OrderStatus, PaymentOperation,
};
use crate::money;
use crate::order::{self, OrderRecord, ORDER_EVENT_ADD, ORDER_UPDATE};
use crate::table::{self, Condition, Item, Key, WriteOp};
use crate::validate::{self, Problems, MAX_RESOURCE_ID};
use serde::{Deserialize, Serialize};
use std::collections::HashMap;

pub use crate::table::OP_PREFIX;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Kind {
    Authorization,
    Capture,
    Refund,
    Cancellation,
}

impl Kind {
    pub const ALL: [Kind; 4] = [Kind::Authorization, Kind::Capture, Kind::Refund, Kind::Cancellation];

    /// The path segment and the list's field name.
    pub fn plural(self) -> &'static str {
        match self {
            Self::Authorization => "authorizations",
            Self::Capture => "captures",
            Self::Refund => "refunds",
            Self::Cancellation => "cancellations",
        }
    }

    /// The singular name (in sort keys and messages).
    pub fn name(self) -> &'static str {
        match self {
            Self::Authorization => "authorization",
            Self::Capture => "capture",
            Self::Refund => "refund",
            Self::Cancellation => "cancellation",
        }
    }

    pub fn from_plural(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|k| k.plural() == s)
    }

    /// The kind of an operation item's sort key.
    pub fn of_sk(sk: &str) -> Option<Self> {
        let rest = sk.strip_prefix(OP_PREFIX)?;
        let name = rest.split('#').next()?;
        Self::ALL.into_iter().find(|k| k.name() == name)
    }

    pub fn list(self, o: &Order) -> &Option<Vec<PaymentOperation>> {
        match self {
            Self::Authorization => &o.authorizations,
            Self::Capture => &o.captures,
            Self::Refund => &o.refunds,
            Self::Cancellation => &o.cancellations,
        }
    }

    pub fn list_mut(self, o: &mut Order) -> &mut Option<Vec<PaymentOperation>> {
        match self {
            Self::Authorization => &mut o.authorizations,
            Self::Capture => &mut o.captures,
            Self::Refund => &mut o.refunds,
            Self::Cancellation => &mut o.cancellations,
        }
    }
}

/// The key of an operation item.
pub fn op_key(aid: &str, order_id: &str, kind: Kind, id: &str) -> Key {
    table::op_key(aid, order_id, kind.name(), id)
}

/// `POST /orders/{order_id}/<kind>` body.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct OperationRequest {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    /// Read-only upstream; when sent it must equal Σ `items[].amount`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub amount: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub items: Option<Vec<OperationItem>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub processed_at: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub processed_by: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub payment_details: Option<OperationPaymentDetails>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub metadata: Option<Object>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub success: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub authorization_id: Option<String>,
}

fn is_id(id: &str) -> bool {
    !id.is_empty()
        && id.chars().count() <= MAX_RESOURCE_ID
        && id.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.' | ':'))
}

/// The rules of an operation body that need no order.
pub fn check_request(r: &OperationRequest) -> Result<()> {
    let mut p = Problems::default();
    if r.id.as_deref().is_some_and(|id| !is_id(id)) {
        p.push("id", "INVALID", format!("must be 1..{MAX_RESOURCE_ID} characters of A-Z a-z 0-9 - _ . :"));
    }
    if r.authorization_id.as_deref().is_some_and(|id| !is_id(id)) {
        p.push(
            "authorization_id",
            "INVALID",
            format!("must be 1..{MAX_RESOURCE_ID} characters of A-Z a-z 0-9 - _ . :"),
        );
    }
    match r.items.as_deref() {
        None => p.push("items", "REQUIRED", "is required: the order lines and amounts of the operation"),
        Some([]) => p.push("items", "EMPTY", "must hold at least one line"),
        Some(items) => {
            let mut seen = std::collections::HashSet::new();
            let mut sum: Option<i64> = Some(0);
            for (i, it) in items.iter().enumerate() {
                match it.line_id {
                    None => p.push(format!("items[{i}].line_id"), "REQUIRED", "is required"),
                    Some(l) if !seen.insert(l) => {
                        p.push(format!("items[{i}].line_id"), "DUPLICATE_LINE_ID", format!("line {l} is named twice"))
                    }
                    Some(_) => {}
                }
                match it.amount {
                    None => p.push(format!("items[{i}].amount"), "REQUIRED", "is required"),
                    Some(a) if a <= 0 || !money::in_range(a) => p.push(
                        format!("items[{i}].amount"),
                        "OUT_OF_RANGE",
                        format!("must be a positive integer of at most {}", money::MAX_SAFE),
                    ),
                    Some(a) => sum = sum.and_then(|s| money::add(s, a, "amount").ok()),
                }
                if let Some(c) = &it.original_currency {
                    if !(c.len() == 3 && c.bytes().all(|b| b.is_ascii_uppercase())) {
                        p.push(
                            format!("items[{i}].original_currency"),
                            "INVALID_CURRENCY",
                            "must be a three-letter ISO-4217 code",
                        );
                    }
                }
                if it.conversion_rate_timestamp.as_deref().is_some_and(|t| !validate::is_date_time(t)) {
                    p.push(
                        format!("items[{i}].conversion_rate_timestamp"),
                        "INVALID_DATE_TIME",
                        "must be an RFC 3339 date-time",
                    );
                }
            }
            match (sum, r.amount) {
                (None, _) => p.push("amount", "OUT_OF_RANGE", "the items' amounts add up beyond the safe range"),
                (Some(s), Some(a)) if s != a => p.push(
                    "amount",
                    "AMOUNT_MISMATCH",
                    format!("must equal the sum of items[].amount ({s}), or be left out"),
                ),
                _ => {}
            }
        }
    }
    if r.processed_at.as_deref().is_some_and(|t| !validate::is_date_time(t)) {
        p.push("processed_at", "INVALID_DATE_TIME", "must be an RFC 3339 date-time");
    }
    p.max_len("processed_by", &r.processed_by, 255);
    if let Ok(json) = serde_json::to_value(r) {
        let mut l = Problems::default();
        validate::check_limits(&mut l, "", &json);
        p.merge_new(l);
    }
    p.into_body_result()
}

/// What one key (an authorization, or the whole order) holds on one line.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Sums {
    pub authorized: i64,
    pub captured: i64,
    pub cancelled: i64,
    pub refunded: i64,
}

/// The sums per (authorization key, line) of an order's successful operations. The key is the
/// authorization's id with `multiple_authorizations`, else empty (one pool).
pub fn ledger(o: &Order) -> HashMap<(String, i64), Sums> {
    let multiple = o.content.multiple_authorizations == Some(true);
    let mut sums: HashMap<(String, i64), Sums> = HashMap::new();
    for kind in Kind::ALL {
        for op in kind.list(o).iter().flatten().filter(|op| op.success != Some(false)) {
            let key = match (multiple, kind) {
                (false, _) => String::new(),
                (true, Kind::Authorization) => op.id.clone().unwrap_or_default(),
                (true, _) => op.authorization_id.clone().unwrap_or_default(),
            };
            for it in op.items.iter().flatten() {
                let s = sums.entry((key.clone(), it.line_id.unwrap_or_default())).or_default();
                let a = it.amount.unwrap_or(0);
                let slot = match kind {
                    Kind::Authorization => &mut s.authorized,
                    Kind::Capture => &mut s.captured,
                    Kind::Refund => &mut s.refunded,
                    Kind::Cancellation => &mut s.cancelled,
                };
                *slot = slot.saturating_add(a);
            }
        }
    }
    sums
}

/// How much of `line` the operation `kind` may still take under `key`.
fn remaining(o: &Order, sums: &HashMap<(String, i64), Sums>, kind: Kind, key: &str, line: i64, net: i64) -> i64 {
    let at = sums.get(&(key.to_owned(), line)).copied().unwrap_or_default();
    let authorized_anywhere = money::total(sums.iter().filter(|((_, l), _)| *l == line).map(|(_, s)| s.authorized));
    let has_authorization = Kind::Authorization.list(o).iter().flatten().any(|a| a.success != Some(false));
    match kind {
        Kind::Authorization => money::remaining(net, authorized_anywhere),
        Kind::Capture if !has_authorization => money::remaining(net, money::total([at.captured, at.cancelled])),
        Kind::Capture | Kind::Cancellation => {
            money::remaining(at.authorized, money::total([at.captured, at.cancelled]))
        }
        Kind::Refund => money::remaining(at.captured, at.refunded),
    }
}

fn verb(kind: Kind) -> &'static str {
    match kind {
        Kind::Authorization => "authorize",
        Kind::Capture => "capture",
        Kind::Refund => "refund",
        Kind::Cancellation => "cancel",
    }
}

/// Whether a repeated create (same client id) asks for what is stored.
fn same_request(stored: &PaymentOperation, r: &OperationRequest) -> bool {
    let lines = |items: &Option<Vec<OperationItem>>| -> Vec<(Option<i64>, Option<i64>)> {
        items.iter().flatten().map(|i| (i.line_id, i.amount)).collect()
    };
    lines(&stored.items) == lines(&r.items)
        && stored.processed_at == r.processed_at
        && stored.processed_by == r.processed_by
        && stored.payment_details == r.payment_details
        && stored.metadata == r.metadata
        && stored.success.unwrap_or(true) == r.success.unwrap_or(true)
        // An authorization's own id is its `authorization_id`; a sent one is not kept.
        && (stored.authorization_id == r.authorization_id || stored.authorization_id == stored.id)
}

/// `POST /orders/{order_id}/<kind>`: records an operation if the ledger allows it.
pub fn create(
    ctx: &Ctx,
    ids: &mut dyn Ids,
    mut rec: OrderRecord,
    kind: Kind,
    r: OperationRequest,
) -> Result<Outcome<PaymentOperation>> {
    check_request(&r)?;
    let o = &rec.order;
    if let Some(id) = &r.id {
        if let Some(stored) = kind.list(o).iter().flatten().find(|op| op.id.as_ref() == Some(id)) {
            if same_request(stored, &r) {
                return Ok(order::unchanged(stored.clone(), o));
            }
            return Err(DomainError::conflict(
                "DUPLICATE_ID",
                format!("{} {id} exists with another body", kind.name()),
            ));
        }
    }
    if o.status == Some(OrderStatus::Cancelled) {
        return Err(DomainError::conflict("ORDER_CANCELLED", "the order is cancelled and takes no payment operation"));
    }
    let multiple = o.content.multiple_authorizations == Some(true);
    if kind != Kind::Authorization {
        match &r.authorization_id {
            None if multiple => {
                return Err(DomainError::Validation(vec![FieldError::new(
                    "authorization_id",
                    "REQUIRED",
                    "is required: the order allows multiple authorizations",
                )]))
            }
            Some(a) if !Kind::Authorization.list(o).iter().flatten().any(|x| x.id.as_ref() == Some(a)) => {
                return Err(DomainError::conflict(
                    "UNKNOWN_AUTHORIZATION",
                    format!("the order has no authorization {a}"),
                ))
            }
            _ => {}
        }
    }
    let mut unknown = Vec::new();
    for (i, it) in r.items.iter().flatten().enumerate() {
        let line = it.line_id.unwrap_or_default();
        if !o.content.items.iter().flatten().any(|x| x.line_id == Some(line)) {
            unknown.push(FieldError::new(
                format!("items[{i}].line_id"),
                "UNKNOWN_LINE_ID",
                format!("the order has no line {line}"),
            ));
        }
    }
    if !unknown.is_empty() {
        return Err(DomainError::Validation(unknown));
    }
    let id = r.id.clone().unwrap_or_else(|| ids.uuid());
    if r.success != Some(false) {
        let sums = ledger(o);
        let key = match (multiple, kind) {
            (false, _) => String::new(),
            (true, Kind::Authorization) => id.clone(),
            (true, _) => r.authorization_id.clone().unwrap_or_default(),
        };
        for it in r.items.iter().flatten() {
            let line = it.line_id.unwrap_or_default();
            let net = o
                .content
                .items
                .iter()
                .flatten()
                .find(|x| x.line_id == Some(line))
                .and_then(|x| x.net_amount.or(x.gross_amount))
                .unwrap_or(0);
            let left = remaining(o, &sums, kind, &key, line, net);
            if it.amount.unwrap_or(0) > left {
                return Err(DomainError::conflict(
                    "AMOUNT_EXCEEDS_REMAINING",
                    format!("line {line}: {left} remains to {}, not {}", verb(kind), it.amount.unwrap_or(0)),
                ));
            }
        }
    }
    let amount = money::sum(r.items.iter().flatten().filter_map(|i| i.amount), "amount")
        .map_err(|e| DomainError::Validation(vec![e]))?;
    let items = r
        .items
        .unwrap_or_default()
        .into_iter()
        .map(|mut it| {
            let rule =
                o.content.items.iter().flatten().find(|x| x.line_id == it.line_id).and_then(|x| x.payout.as_ref());
            it.payout = rule.map(|p| OperationPayout {
                account_id: p.account_id.clone(),
                rule_id: p.rule_id.clone(),
                rule_type: p.rule_type.clone(),
                rule_version: p.rule_version,
                destinations: Some(payout::split(it.amount.unwrap_or(0), &payout::rule_destinations(p))),
                metadata: Some(p.metadata.clone().unwrap_or_default()),
            });
            it
        })
        .collect();
    let order_href = ctx.href(&format!("orders/{}", o.id));
    let op = PaymentOperation {
        id: Some(id.clone()),
        created_at: Some(ctx.now_str()),
        created_by: Some(ctx.actor.clone()),
        amount: Some(amount),
        items: Some(items),
        processed_at: r.processed_at,
        processed_by: r.processed_by,
        payment_details: r.payment_details,
        metadata: r.metadata,
        success: Some(r.success.unwrap_or(true)),
        authorization_id: match kind {
            Kind::Authorization => Some(id.clone()),
            _ => r.authorization_id,
        },
        links: Some(vec![
            Link::new("self", format!("{order_href}/{}/{id}", kind.plural())),
            Link::new("order", order_href),
        ]),
    };
    kind.list_mut(&mut rec.order).get_or_insert_with(Vec::new).push(op.clone());
    let event = order::api_event(ctx, ids);
    let order_id = rec.order.id.clone();
    let mut changed = order::commit(ctx, rec, event, &[ORDER_UPDATE, ORDER_EVENT_ADD])?;
    let mut ops = std::mem::take(&mut changed.ops);
    let doc = crate::change::to_doc(&op);
    // The item's version is the order's at creation: it orders operations made the same instant.
    let item = Item::new(op_key(&ctx.aid, &order_id, kind, &id), changed.version, doc);
    ops.push(WriteOp::Put { item, cond: Some(Condition::NotExists) });
    changed.ops = ops;
    Ok(changed.with(op))
}

/// Puts each stored operation item of an order's partition into the order's lists, in the
/// order they were made.
pub fn attach_operations(order: &mut Order, items: &[Item]) -> std::result::Result<(), serde_json::Error> {
    let mut made: Vec<(u64, Kind, PaymentOperation)> = Vec::new();
    for item in items {
        let Some(kind) = Kind::of_sk(&item.sk) else { continue };
        let mut op: PaymentOperation = serde_json::from_str(&item.doc)?;
        // Operations stored before these were always set read as they would be made now.
        op.success = Some(op.success.unwrap_or(true));
        if kind == Kind::Authorization {
            op.authorization_id = op.id.clone();
        }
        made.push((item.version, kind, op));
    }
    made.sort_by_key(|(version, _, _)| *version);
    for (_, kind, op) in made {
        kind.list_mut(order).get_or_insert_with(Vec::new).push(op);
    }
    Ok(())
}
