//! Webhook subscriptions (the upstream Hooks API shape) and their delivery records: the
//! resources, their rules, and where they are stored.
//!
//! | item | pk | sk |
//! |---|---|---|
//! | subscription | `A#{aid}#HOOKS` | `HOOK#{id}` |
//! | delivery attempt (30 days) | `A#{aid}#HOOK#{id}` | `DLV#{delivery_id}` (sortable by time) |
//! | pending delivery (local deliverer; SQS on AWS) | `WEBHOOK_QUEUE` | `{aid}#{hook_id}#{event_id}` |
//!
//! The secret is write-only: it is stored with the subscription and never shown or logged.

#[cfg(test)]
use crate::error::DomainError;
use crate::error::Result;
use crate::table::Key;
use crate::validate::Problems;
use crate::webhook;
use serde::{Deserialize, Serialize};
use serde_json::Value;

/// A failing subscription is disabled (`active: false`, not deleted) after this long.
pub const DISABLE_AFTER_SECONDS: i64 = 3 * 24 * 60 * 60;
/// Delivery records are kept this long.
pub const DELIVERY_RETENTION_SECONDS: i64 = 30 * 24 * 60 * 60;
/// Attempts before a delivery is dead-lettered.
pub const MAX_ATTEMPTS: u32 = 5;

pub fn hooks_pk(aid: &str) -> String {
    format!("A#{aid}#HOOKS")
}
pub fn hook_key(aid: &str, id: &str) -> Key {
    Key::new(hooks_pk(aid), format!("HOOK#{id}"))
}
pub fn deliveries_pk(aid: &str, hook_id: &str) -> String {
    format!("A#{aid}#HOOK#{hook_id}")
}
pub fn delivery_key(aid: &str, hook_id: &str, delivery_id: &str) -> Key {
    Key::new(deliveries_pk(aid, hook_id), format!("DLV#{delivery_id}"))
}
pub const QUEUE_PK: &str = "WEBHOOK_QUEUE";
pub fn queue_key(aid: &str, hook_id: &str, event_id: &str) -> Key {
    Key::new(QUEUE_PK, format!("{aid}#{hook_id}#{event_id}"))
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct HookConfig {
    pub url: String,
    #[serde(default = "json")]
    pub content_type: String,
    #[serde(default)]
    pub insecure_ssl: bool,
}

fn json() -> String {
    "json".into()
}

/// A subscription as the API shows it.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Subscription {
    pub id: String,
    pub account_id: String,
    pub created_at: String,
    pub created_by: String,
    pub updated_at: String,
    pub events: Vec<String>,
    pub config: HookConfig,
    pub active: bool,
}

/// A subscription as stored: with its secret and its failure streak.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct SubscriptionRecord {
    #[serde(flatten)]
    pub sub: Subscription,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub secret: Option<String>,
    /// Since when every attempt failed (cleared by a success).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub failing_since: Option<i64>,
}

/// `config` in a create or update body.
#[derive(Debug, Clone, Default, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ConfigBody {
    #[serde(default)]
    pub url: Option<String>,
    #[serde(default)]
    pub secret: Option<String>,
    #[serde(default)]
    pub content_type: Option<String>,
    #[serde(default)]
    pub insecure_ssl: Option<bool>,
}

/// A create or update body; on update, what is absent is unchanged.
#[derive(Debug, Clone, Default, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct SubscriptionBody {
    #[serde(default)]
    pub events: Option<Vec<String>>,
    #[serde(default)]
    pub config: Option<ConfigBody>,
    #[serde(default)]
    pub active: Option<bool>,
}

/// The rules of a body; `creating` requires `events` and `config.url`. `url_check` is the
/// SSRF guard's check of a URL (an adapter's, so the domain stays pure).
pub fn check_body(
    b: &SubscriptionBody,
    creating: bool,
    url_check: &dyn Fn(&str) -> std::result::Result<(), String>,
) -> Result<()> {
    let mut p = Problems::default();
    match &b.events {
        None if creating => p.push("events", "REQUIRED", "is required: the event types to receive"),
        Some(e) if e.is_empty() => p.push("events", "EMPTY", "must name at least one event type"),
        Some(e) => {
            for (i, t) in e.iter().enumerate() {
                if !webhook::TYPES.contains(&t.as_str()) {
                    p.push(
                        format!("events[{i}]"),
                        "INVALID",
                        format!("unknown event type `{t}`; use {}", webhook::TYPES.join(", ")),
                    );
                }
            }
        }
        None => {}
    }
    let url = b.config.as_ref().and_then(|c| c.url.as_deref());
    match url {
        None if creating => p.push("config.url", "REQUIRED", "is required"),
        Some(u) if u.chars().count() > 2048 => p.push("config.url", "TOO_LONG", "must be at most 2048 characters"),
        Some(u) => {
            if let Err(why) = url_check(u) {
                p.push("config.url", "INVALID_URL", why);
            }
        }
        None => {}
    }
    if let Some(c) = &b.config {
        p.max_len("config.secret", &c.secret, 255);
        if c.secret.as_deref().is_some_and(str::is_empty) {
            p.push("config.secret", "EMPTY", "must not be empty (leave it out for no signature)");
        }
        if c.content_type.as_deref().is_some_and(|t| t != "json") {
            p.push("config.content_type", "INVALID", "only json is supported");
        }
        if c.insecure_ssl == Some(true) {
            p.push("config.insecure_ssl", "INVALID", "deliveries always verify TLS certificates");
        }
    }
    p.into_body_result()
}

/// Who creates, when, with which id.
pub struct Made<'a> {
    pub aid: &'a str,
    pub actor: &'a str,
    pub now: &'a str,
    pub id: String,
}

/// A new subscription from a checked body.
pub fn create(m: Made<'_>, b: SubscriptionBody) -> SubscriptionRecord {
    let config = b.config.unwrap_or_default();
    SubscriptionRecord {
        sub: Subscription {
            id: m.id,
            account_id: m.aid.to_owned(),
            created_at: m.now.to_owned(),
            created_by: m.actor.to_owned(),
            updated_at: m.now.to_owned(),
            events: b.events.unwrap_or_default(),
            config: HookConfig { url: config.url.unwrap_or_default(), content_type: json(), insecure_ssl: false },
            active: b.active.unwrap_or(true),
        },
        secret: config.secret,
        failing_since: None,
    }
}

/// Applies a checked update body.
pub fn update(mut rec: SubscriptionRecord, b: SubscriptionBody, now: &str) -> SubscriptionRecord {
    if let Some(e) = b.events {
        rec.sub.events = e;
    }
    if let Some(c) = b.config {
        if let Some(u) = c.url {
            rec.sub.config.url = u;
        }
        if c.secret.is_some() {
            rec.secret = c.secret;
        }
    }
    if let Some(a) = b.active {
        rec.sub.active = a;
        if a {
            rec.failing_since = None;
        }
    }
    rec.sub.updated_at = now.to_owned();
    rec
}

/// Whether a subscription takes an event type now.
pub fn wants(rec: &SubscriptionRecord, event: &str) -> bool {
    rec.sub.active && (event == webhook::PING || rec.sub.events.iter().any(|e| e == event))
}

/// A delivery waiting for its next attempt.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Pending {
    pub aid: String,
    pub hook_id: String,
    pub event_id: String,
    pub event: String,
    /// The exact body bytes every attempt sends (so a retry is identical).
    pub body: String,
    /// Attempts made so far.
    pub attempts: u32,
    /// Epoch seconds of the first attempt (the `webhook-timestamp` of every attempt).
    pub timestamp: i64,
    /// Epoch milliseconds before which no attempt is made.
    pub due_ms: i64,
}

impl Pending {
    /// `event` waiting for its first attempt to subscription `hook_id`, from `now_ms`.
    pub fn new(hook_id: &str, event: &webhook::WebhookEvent, now_ms: i64) -> Self {
        Self {
            aid: event.account_id.clone(),
            hook_id: hook_id.to_owned(),
            event_id: event.id.clone(),
            event: event.event.clone(),
            // Serialising a plain struct to JSON cannot fail.
            body: serde_json::to_string(event).unwrap_or_default(),
            attempts: 0,
            timestamp: now_ms.div_euclid(1000),
            due_ms: now_ms,
        }
    }

    /// The item that keeps it in the local queue, at `version`.
    pub fn item(&self, version: u64) -> crate::table::Item {
        let doc = serde_json::to_string(self).unwrap_or_default();
        crate::table::Item::new(queue_key(&self.aid, &self.hook_id, &self.event_id), version, doc)
    }
}

/// The pause before attempt `n + 1` after `n` failed ones on AWS, through the queue's
/// visibility timeout: 1, 4, 16, 64 minutes (at most SQS's 12 hours).
pub fn aws_backoff_seconds(failed: u32) -> i32 {
    60i32.saturating_mul(4i32.saturating_pow(failed.saturating_sub(1).min(8))).min(12 * 60 * 60)
}

/// The pause before attempt `n + 1` after `n` failed ones, locally: 1 s, 2 s, 4 s, 8 s.
pub fn local_backoff_ms(failed: u32) -> i64 {
    1000i64.saturating_mul(1i64 << failed.saturating_sub(1).min(20))
}

/// One delivery attempt as the deliveries list shows it.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Delivery {
    pub id: String,
    pub hook_id: String,
    pub event_id: String,
    pub event: String,
    pub attempt: u32,
    pub created_at: String,
    pub request: DeliveryRequest,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub response: Option<DeliveryResponse>,
    pub duration_ms: u64,
    /// `delivered`, `failed` (will be retried), `dead` (no attempt left) or `blocked`.
    pub outcome: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct DeliveryRequest {
    pub url: String,
    pub headers: Vec<(String, String)>,
    pub body: String,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct DeliveryResponse {
    pub status: u16,
    pub body: String,
}

/// A subscription's public view from its record.
pub fn shown(rec: &SubscriptionRecord) -> Value {
    serde_json::to_value(&rec.sub).unwrap_or(Value::Null)
}

#[cfg(test)]
mod tests {
    #[test]
    fn back_off_grows_on_both_engines() {
        assert_eq!((1..=4).map(local_backoff_ms).collect::<Vec<_>>(), [1000, 2000, 4000, 8000]);
        assert_eq!((1..=4).map(aws_backoff_seconds).collect::<Vec<_>>(), [60, 240, 960, 3840]);
        assert_eq!(aws_backoff_seconds(40), 12 * 60 * 60);
    }

    use super::*;

    fn ok(_: &str) -> std::result::Result<(), String> {
        Ok(())
    }

    #[test]
    fn bodies_are_checked() {
        let b = SubscriptionBody { events: Some(vec!["nope".into()]), ..Default::default() };
        let Err(DomainError::Validation(errs)) = check_body(&b, true, &ok) else { panic!() };
        let paths: Vec<_> = errs.iter().map(|e| e.path.as_str()).collect();
        assert_eq!(paths, ["events[0]", "config.url"]);
        let bad_url = |_: &str| Err("must not point at a private address".to_owned());
        let b = SubscriptionBody {
            events: Some(vec![webhook::ORDER_UPDATE.into()]),
            config: Some(ConfigBody { url: Some("http://10.0.0.1/".into()), ..Default::default() }),
            active: None,
        };
        assert!(check_body(&b, true, &bad_url).is_err());
        assert!(check_body(&b, true, &ok).is_ok());
    }

    #[test]
    fn backoff_grows() {
        assert_eq!([1, 2, 3, 4].map(local_backoff_ms), [1000, 2000, 4000, 8000]);
    }
}
