//! Payment sessions of an order: the request, its checks, and the session stored in the
//! order item.

use super::commands::{api_event, bad, commit, required_text, ORDER_EVENT_ADD, ORDER_UPDATE};
use super::OrderRecord;
use crate::change::{Ctx, Outcome};
use crate::error::{DomainError, FieldError, Result};
use crate::ids::Ids;
use crate::model::{Link, Object, OrderSession, OrderStatus, SessionItem};
use crate::money;
use crate::validate::{self, Problems};
use serde::{Deserialize, Serialize};
use serde_json::Value;

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
