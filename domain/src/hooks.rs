//! Webhook subscriptions (the upstream Hooks API shape) and their delivery records: the
//! resources, their rules, and where they are stored.
//!
//! | item | pk | sk |
//! |---|---|---|
//! | subscription | `A#{aid}#HOOKS` | `HOOK#{id}` |
//! | delivery attempt (30 days) | `A#{aid}#HOOK#{id}` | `DLV#{delivery_id}` (sortable by time) |
//!
//! A deleted subscription keeps its item (soft delete, `deleted_at`) and reads as absent.
//! | pending delivery (local deliverer; SQS on AWS) | `WEBHOOK_QUEUE` | `{aid}#{hook_id}#{event_id}` |
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
    deliveries_pk, delivery_key, delivery_sk_at, hook_key, hooks_pk, queue_key, DELIVERY_SK_PREFIX, QUEUE_PK,
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

/// A delivery waiting for its next attempt.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Pending {
    pub aid: String,
    pub hook_id: String,
    pub event_id: String,
    pub event: String,
    /// One id per event and subscription: the `event-delivery` header and the body's
    /// `event_delivery`.
    #[serde(default)]
    pub event_delivery: String,
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
    /// `event` waiting for its first attempt to subscription `rec`, from `now_ms`, as the
    /// delivery `event_delivery`.
    pub fn new(rec: &SubscriptionRecord, event: &webhook::WebhookEvent, event_delivery: &str, now_ms: i64) -> Self {
        Self {
            aid: event.account_id.clone(),
            hook_id: rec.sub.id.clone(),
            event_id: event.id.clone(),
            event: event.event.clone(),
            event_delivery: event_delivery.to_owned(),
            // Serialising a JSON value cannot fail.
            body: serde_json::to_string(&envelope_for(rec, event, event_delivery)).unwrap_or_default(),
            attempts: 0,
            timestamp: now_ms.div_euclid(1000),
            due_ms: now_ms,
        }
    }

    /// An earlier delivery's exact bytes, queued again (redelivery, recovery).
    pub fn again(d: &Delivery, aid: &str, now_ms: i64) -> Self {
        Self {
            aid: aid.to_owned(),
            hook_id: d.hook_id.clone(),
            event_id: d.event_id.clone(),
            event: d.event.clone(),
            event_delivery: d.event_delivery.clone(),
            body: d.request.body.clone(),
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

/// The pauses between attempts on AWS, through the queue's visibility timeout (at most
/// SQS's 12 hours): 1 min, 5 min, 30 min, 2 h, 5 h, 10 h, 10 h — 8 attempts over 27.6 h.
pub const AWS_BACKOFF_SECONDS: [i32; 7] = [60, 300, 1800, 7200, 18_000, 36_000, 36_000];

/// The pause before attempt `n + 1` after `n` failed ones on AWS.
pub fn aws_backoff_seconds(failed: u32) -> i32 {
    let i = usize::try_from(failed.saturating_sub(1)).unwrap_or(usize::MAX);
    AWS_BACKOFF_SECONDS.get(i).or(AWS_BACKOFF_SECONDS.last()).copied().unwrap_or(36_000)
}

/// The pause before attempt `n + 1` after `n` failed ones, locally: 1 s, 2 s, 4 s, 8 s.
pub fn local_backoff_ms(failed: u32) -> i64 {
    1000i64.saturating_mul(1i64 << failed.saturating_sub(1).min(20))
}

/// What became of one attempt.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "lowercase")]
pub enum Outcome {
    /// The receiver answered 2xx.
    #[default]
    Delivered,
    /// It failed and will be tried again.
    Failed,
    /// The receiver's address is not allowed; tried again (DNS may change).
    Blocked,
    /// It failed and no attempt is left: recover or redeliver it.
    Dead,
}

impl Outcome {
    /// Whether the delivery is to be attempted again.
    pub fn retried(self) -> bool {
        matches!(self, Self::Failed | Self::Blocked)
    }
}

/// One delivery attempt as stored: everything the list and the detail show.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Delivery {
    pub id: String,
    pub hook_id: String,
    pub event_id: String,
    pub event: String,
    #[serde(default)]
    pub event_delivery: String,
    pub attempt: u32,
    pub created_at: String,
    pub request: DeliveryRequest,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub response: Option<DeliveryResponse>,
    pub duration_ms: u64,
    pub outcome: Outcome,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct DeliveryRequest {
    pub url: String,
    pub headers: std::collections::BTreeMap<String, String>,
    pub body: String,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct DeliveryResponse {
    pub status: u16,
    #[serde(default)]
    pub headers: std::collections::BTreeMap<String, String>,
    pub body: String,
}

/// An attempt in the deliveries list (the upstream's four fields, plus our `event`,
/// `attempt` and `outcome`).
#[derive(Debug, Clone, PartialEq, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct DeliverySummary {
    pub id: String,
    pub event_delivery: String,
    pub created_at: String,
    /// The receiver's HTTP status; null when it gave none (unreachable, timed out, blocked).
    pub status: Option<u16>,
    pub event: String,
    pub attempt: u32,
    pub outcome: Outcome,
}

/// The request of an attempt as the detail shows it.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct RequestShown {
    /// `event`, `event-delivery`, `event-signature` and the Standard Webhooks headers.
    pub headers: std::collections::BTreeMap<String, String>,
    /// The JSON body sent.
    pub body: Value,
}

/// The receiver's answer as the detail shows it.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ResponseShown {
    pub headers: std::collections::BTreeMap<String, String>,
    /// The start of the body.
    pub body: String,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct DeliveryDetails {
    pub delivery_at: String,
    /// Milliseconds.
    pub delivery_duration: u64,
    pub delivery_success: bool,
    /// Why the attempt failed, when it did.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

/// One attempt in detail (the upstream's delivery details).
#[derive(Debug, Clone, PartialEq, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct DeliveryDetail {
    #[serde(flatten)]
    pub summary: DeliverySummary,
    pub url: String,
    pub request: RequestShown,
    /// Null when the receiver gave no answer.
    pub response: Option<ResponseShown>,
    pub details: DeliveryDetails,
}

impl Delivery {
    pub fn summary(&self) -> DeliverySummary {
        DeliverySummary {
            id: self.id.clone(),
            event_delivery: self.event_delivery.clone(),
            created_at: self.created_at.clone(),
            status: self.response.as_ref().map(|r| r.status),
            event: self.event.clone(),
            attempt: self.attempt,
            outcome: self.outcome,
        }
    }

    pub fn detail(&self) -> DeliveryDetail {
        DeliveryDetail {
            summary: self.summary(),
            url: self.request.url.clone(),
            request: RequestShown {
                headers: self.request.headers.clone(),
                body: serde_json::from_str(&self.request.body).unwrap_or(Value::Null),
            },
            response: self
                .response
                .as_ref()
                .map(|r| ResponseShown { headers: r.headers.clone(), body: r.body.clone() }),
            details: DeliveryDetails {
                delivery_at: self.created_at.clone(),
                delivery_duration: self.duration_ms,
                delivery_success: self.outcome == Outcome::Delivered,
                reason: self.reason.clone(),
            },
        }
    }
}

/// What recovery queues again from a window of delivery records (newest first or not):
/// each `event_delivery` whose latest attempt in the window is dead or failed, once, at
/// most [`RECOVER_MAX`].
pub fn to_recover(records: &[Delivery]) -> Vec<&Delivery> {
    let mut latest: std::collections::BTreeMap<&str, &Delivery> = Default::default();
    for d in records {
        let key = if d.event_delivery.is_empty() { d.event_id.as_str() } else { d.event_delivery.as_str() };
        match latest.get(key) {
            Some(seen) if seen.id >= d.id => {}
            _ => {
                latest.insert(key, d);
            }
        }
    }
    let mut out: Vec<&Delivery> =
        latest.into_values().filter(|d| matches!(d.outcome, Outcome::Dead | Outcome::Failed)).collect();
    out.sort_by(|a, b| a.id.cmp(&b.id));
    out.truncate(RECOVER_MAX);
    out
}

/// The body of `POST …/subscriptions/{hid}/recover`: the window of deliveries to queue again.
#[derive(Debug, Clone, Default, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct RecoverBody {
    /// Deliveries attempted at or after this moment (RFC 3339).
    pub since: Option<String>,
    /// … and before this one (RFC 3339; default: now).
    #[serde(default)]
    pub until: Option<String>,
}

fn epoch_ms(s: &str) -> Option<i64> {
    chrono::DateTime::parse_from_rfc3339(s).ok().map(|t| t.timestamp_millis())
}

/// The window of a recover body as epoch milliseconds `[since, until)`, `until` defaulting
/// to just after `now_ms` (so what was attempted this millisecond is in it).
pub fn recover_window(b: &RecoverBody, now_ms: i64) -> Result<(i64, i64)> {
    let mut p = Problems::default();
    let since = match b.since.as_deref() {
        None => {
            p.push("since", "REQUIRED", "is required: the start of the window (RFC 3339)");
            None
        }
        Some(s) => {
            let t = epoch_ms(s);
            if t.is_none() {
                p.push("since", "INVALID", "must be an RFC 3339 date-time such as 2026-12-01T00:00:00Z");
            }
            t
        }
    };
    let until = match b.until.as_deref() {
        None => Some(now_ms.saturating_add(1)),
        Some(s) => {
            let t = epoch_ms(s);
            if t.is_none() {
                p.push("until", "INVALID", "must be an RFC 3339 date-time such as 2026-12-02T00:00:00Z");
            }
            t
        }
    };
    if let (Some(a), Some(b)) = (since, until) {
        if a >= b {
            p.push("until", "INVALID", "must be after since");
        }
    }
    p.into_body_result()?;
    Ok((since.unwrap_or_default(), until.unwrap_or_default()))
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
        let aws: Vec<i32> = (1..AWS_MAX_ATTEMPTS).map(aws_backoff_seconds).collect();
        assert_eq!(aws, AWS_BACKOFF_SECONDS);
        assert!(aws.iter().map(|s| i64::from(*s)).sum::<i64>() >= 24 * 60 * 60, "a day at least");
        assert!(aws.iter().all(|s| *s <= 12 * 60 * 60), "within SQS's visibility limit");
        assert_eq!(aws_backoff_seconds(40), 36_000);
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
            ..Default::default()
        };
        assert!(check_body(&b, true, &bad_url).is_err());
        assert!(check_body(&b, true, &ok).is_ok());
    }

    #[test]
    fn backoff_grows() {
        assert_eq!([1, 2, 3, 4].map(local_backoff_ms), [1000, 2000, 4000, 8000]);
    }
}
