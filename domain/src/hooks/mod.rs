//! Webhook subscriptions in the upstream Hooks API shape: the resources, their rules, the
//! envelope each subscription is sent; their delivery jobs and attempt records are in
//! [`delivery`], the guard that sends each at most once on AWS in [`guard`]. Their keys are in
//! [`crate::table`].
//!
//! A deleted subscription keeps its item (soft delete, `deleted_at`) and reads as absent.
//!
//! The secret is write-only: it is stored with the subscription and never shown or logged.

#[cfg(test)]
use crate::error::DomainError;
use crate::error::Result;
use crate::validate::Problems;
use crate::webhook;
use serde::{Deserialize, Serialize};
use serde_json::Value;

/// A failing subscription is disabled (`active: false`, not deleted) after this long.
pub const DISABLE_AFTER_SECONDS: i64 = 3 * 24 * 60 * 60;
/// Delivery records are kept this long.
pub const DELIVERY_RETENTION_SECONDS: i64 = 30 * 24 * 60 * 60;
/// Attempts before a delivery is dead on AWS: 8, spread over about 27.6 hours (see
/// [`aws_backoff_seconds`]). The queue's `maxReceiveCount` in the template is this number.
pub const AWS_MAX_ATTEMPTS: u32 = 8;
/// Attempts before a delivery is dead in `shopping-local` (1 s, 2 s, 4 s, 8 s apart), so a
/// developer sees a dead delivery within seconds.
pub const LOCAL_MAX_ATTEMPTS: u32 = 5;
/// The one signature scheme of the upstream's `config.secret`.
pub const SECRET_TYPE: &str = "HMAC-SHA1";
/// The one content type deliveries have.
pub const CONTENT_TYPE: &str = "application/json";
/// A recover call queues at most this many deliveries (call again from the last one's time
/// for more).
pub const RECOVER_MAX: usize = 100;
/// A recover call reads at most this many delivery records.
pub const RECOVER_SCAN_MAX: usize = 2000;

// The keys live with every other key, in `table`.
pub use crate::table::{
    deliveries_pk, delivery_key, delivery_sk_at, guard_key, hook_key, hooks_pk, queue_key, DELIVERY_SK_PREFIX, QUEUE_PK,
};

/// `config.secret` as a read shows it: its type only (the value is write-only).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct SecretShown {
    /// Always `HMAC-SHA1`.
    #[serde(rename = "type")]
    pub kind: String,
}

/// `config` as stored and shown (the upstream Hooks API's shape).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct HookConfig {
    pub url: String,
    /// Always `application/json`.
    #[serde(default = "content_type")]
    pub content_type: String,
    /// Always 0: receivers' certificates are verified.
    #[serde(default, deserialize_with = "zero")]
    pub insecure_ssl: u8,
    /// Present when deliveries are signed; shows the type, never the value.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub secret: Option<SecretShown>,
}

fn content_type() -> String {
    CONTENT_TYPE.into()
}

/// Records written before the upstream shape stored `insecure_ssl` as `false`.
fn zero<'de, D: serde::Deserializer<'de>>(d: D) -> std::result::Result<u8, D::Error> {
    Value::deserialize(d).map(|_| 0)
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
    /// The field mask over the delivered resource (`a,b/c,d(e,f)`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fields: Option<String>,
    /// Fields left out of the delivered resource (`a/b` paths).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub exclude_fields: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub deleted_at: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub deleted_by: Option<String>,
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

impl SubscriptionRecord {
    /// Whether the subscription was deleted (it then reads as absent).
    pub fn deleted(&self) -> bool {
        self.sub.deleted_at.is_some()
    }
}

/// `config.secret` in a body: the upstream's `{type: "HMAC-SHA1", value}`, or (our earlier
/// form, still accepted) the value as a string.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(untagged)]
pub enum SecretBody {
    Typed {
        /// `HMAC-SHA1`.
        #[serde(rename = "type", default)]
        kind: Option<String>,
        value: String,
    },
    Plain(String),
}

impl SecretBody {
    pub fn value(&self) -> &str {
        match self {
            Self::Typed { value, .. } | Self::Plain(value) => value,
        }
    }
}

/// `config` in a create or update body.
#[derive(Debug, Clone, Default, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ConfigBody {
    #[serde(default)]
    pub url: Option<String>,
    #[serde(default)]
    pub secret: Option<SecretBody>,
    /// `application/json` (`json` is accepted too).
    #[serde(default)]
    pub content_type: Option<String>,
    /// `0` or `false`; `1`/`true` is refused (certificates are always verified).
    #[serde(default)]
    #[cfg_attr(feature = "openapi", schema(value_type = Option<u8>, minimum = 0, maximum = 0))]
    pub insecure_ssl: Option<Value>,
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
    /// A field mask over the delivered resource: `a,b` several fields, `a/b` a nested one,
    /// `a(b,c)` a sub-selection. The envelope's keys are always sent.
    #[serde(default)]
    pub fields: Option<String>,
    /// Fields (`a/b` paths) left out of the delivered resource.
    #[serde(default)]
    pub exclude_fields: Option<Vec<String>>,
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
        if let Some(secret) = &c.secret {
            let value = Some(secret.value().to_owned());
            p.max_len("config.secret.value", &value, 255);
            if secret.value().is_empty() {
                p.push("config.secret.value", "EMPTY", "must not be empty (leave the secret out for no signature)");
            }
            if let SecretBody::Typed { kind: Some(k), .. } = secret {
                if k != SECRET_TYPE {
                    p.push("config.secret.type", "INVALID", format!("must be {SECRET_TYPE}"));
                }
            }
        }
        if c.content_type.as_deref().is_some_and(|t| t != CONTENT_TYPE && t != "json") {
            p.push("config.content_type", "INVALID", format!("must be {CONTENT_TYPE}"));
        }
        match &c.insecure_ssl {
            None | Some(Value::Null) => {}
            Some(Value::Bool(false)) => {}
            Some(Value::Number(n)) if n.as_u64() == Some(0) => {}
            Some(Value::Bool(true)) => {
                p.push("config.insecure_ssl", "INVALID", "must be 0: deliveries always verify TLS certificates")
            }
            Some(Value::Number(n)) if n.as_u64() == Some(1) => {
                p.push("config.insecure_ssl", "INVALID", "must be 0: deliveries always verify TLS certificates")
            }
            Some(_) => p.push("config.insecure_ssl", "INVALID_TYPE", "must be 0 or false"),
        }
    }
    if let Some(f) = &b.fields {
        if let Err(why) = crate::mask::Mask::parse(f) {
            p.push("fields", "INVALID", why);
        }
    }
    if let Some(ex) = &b.exclude_fields {
        for (i, f) in ex.iter().enumerate() {
            if let Err(why) = crate::mask::parse_path(f) {
                p.push(format!("exclude_fields[{i}]"), "INVALID", why);
            }
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

fn config_of(url: String, secret: &Option<String>) -> HookConfig {
    HookConfig {
        url,
        content_type: content_type(),
        insecure_ssl: 0,
        secret: secret.as_ref().map(|_| SecretShown { kind: SECRET_TYPE.into() }),
    }
}

/// A new subscription from a checked body.
pub fn create(m: Made<'_>, b: SubscriptionBody) -> SubscriptionRecord {
    let config = b.config.unwrap_or_default();
    let secret = config.secret.map(|s| s.value().to_owned());
    SubscriptionRecord {
        sub: Subscription {
            id: m.id,
            account_id: m.aid.to_owned(),
            created_at: m.now.to_owned(),
            created_by: m.actor.to_owned(),
            updated_at: m.now.to_owned(),
            events: b.events.unwrap_or_default(),
            config: config_of(config.url.unwrap_or_default(), &secret),
            active: b.active.unwrap_or(true),
            fields: b.fields,
            exclude_fields: b.exclude_fields,
            deleted_at: None,
            deleted_by: None,
        },
        secret,
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
        if let Some(s) = c.secret {
            rec.secret = Some(s.value().to_owned());
        }
    }
    rec.sub.config = config_of(std::mem::take(&mut rec.sub.config.url), &rec.secret);
    if let Some(a) = b.active {
        rec.sub.active = a;
        if a {
            rec.failing_since = None;
        }
    }
    if b.fields.is_some() {
        rec.sub.fields = b.fields.filter(|f| !f.is_empty());
    }
    if b.exclude_fields.is_some() {
        rec.sub.exclude_fields = b.exclude_fields.filter(|f| !f.is_empty());
    }
    rec.sub.updated_at = now.to_owned();
    rec
}

/// Soft-deletes a subscription: it keeps its record (with `deleted_at`, `deleted_by`) but
/// reads as absent and receives nothing.
pub fn delete(mut rec: SubscriptionRecord, actor: &str, now: &str) -> SubscriptionRecord {
    rec.sub.active = false;
    rec.sub.deleted_at = Some(now.to_owned());
    rec.sub.deleted_by = Some(actor.to_owned());
    rec.sub.updated_at = now.to_owned();
    rec
}

/// Whether a subscription takes an event type now.
pub fn wants(rec: &SubscriptionRecord, event: &str) -> bool {
    !rec.deleted() && rec.sub.active && (event == webhook::PING || rec.sub.events.iter().any(|e| e == event))
}

/// `event` as `rec` receives it: its field masks applied to the resource (the envelope's
/// keys always stay) and its `event_delivery` set.
pub fn envelope_for(rec: &SubscriptionRecord, event: &webhook::WebhookEvent, event_delivery: &str) -> Value {
    let mut resource = Value::Object(event.resource.clone());
    if let Some(mask) = rec.sub.fields.as_deref().and_then(|f| crate::mask::Mask::parse(f).ok()) {
        resource = mask.select(&resource);
    }
    for path in rec.sub.exclude_fields.iter().flatten() {
        if let Ok(p) = crate::mask::parse_path(path) {
            crate::mask::exclude(&mut resource, &p);
        }
    }
    let ev = webhook::WebhookEvent {
        event_delivery: Some(event_delivery.to_owned()),
        resource: match resource {
            Value::Object(m) => m,
            _ => Default::default(),
        },
        ..event.clone()
    };
    serde_json::to_value(ev).unwrap_or(Value::Null)
}

/// A subscription's public view from its record.
pub fn shown(rec: &SubscriptionRecord) -> Value {
    serde_json::to_value(&rec.sub).unwrap_or(Value::Null)
}

mod delivery;
pub use delivery::*;
mod guard;
pub use guard::*;

#[cfg(test)]
mod tests;
