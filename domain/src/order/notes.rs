//! Order notes: comments (added and deleted in the order item) and service events (appended
//! to the order's history).

use super::commands::{api_event, bad, commit, required_text, unchanged, ORDER_EVENT_ADD, ORDER_UPDATE};
use super::OrderRecord;
use crate::change::{Ctx, Outcome};
use crate::error::{DomainError, Result};
use crate::events;
use crate::ids::Ids;
use crate::model::{Comment, Event, Object, Order};
use crate::validate::{self, Problems, MAX_COMMENT, MAX_RESOURCE_ID};
use serde::Deserialize;

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
