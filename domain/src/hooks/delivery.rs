//! Deliveries: a job waiting for its next attempt, the back-off on each engine, an attempt's
//! typed outcome and its record, the upstream's list and detail views of it, and which
//! records a recovery queues again.

use super::*;

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
    /// The id of the guard that sends this job at most once on AWS (see [`Guard`]) when it
    /// is not `event_delivery`: a redelivery or recovery starts a round of its own, which
    /// the first round's guard must not swallow.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub guard: Option<String>,
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
            guard: None,
        }
    }

    /// An earlier delivery's exact bytes, queued again (redelivery, recovery) as the round
    /// `guard` (a fresh id: the earlier round may have been delivered already).
    pub fn again(d: &Delivery, aid: &str, now_ms: i64, guard: String) -> Self {
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
            guard: Some(guard),
        }
    }

    /// The id of this job's guard: its round's own, else its `event_delivery` (one per event
    /// and subscription), else — a job queued before `event_delivery` existed — the event and
    /// the subscription.
    pub fn guard_id(&self) -> String {
        match (&self.guard, self.event_delivery.is_empty()) {
            (Some(g), _) if !g.is_empty() => g.clone(),
            (_, false) => self.event_delivery.clone(),
            _ => format!("{}/{}", self.hook_id, self.event_id),
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
    /// The receiver's HTTP status; 0 when it gave none (unreachable, timed out, blocked:
    /// `details.reason` says which).
    pub status: u16,
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
    /// Empty headers and body when the receiver gave no answer (`status` 0).
    pub response: ResponseShown,
    pub details: DeliveryDetails,
}

impl Delivery {
    pub fn summary(&self) -> DeliverySummary {
        DeliverySummary {
            id: self.id.clone(),
            event_delivery: self.event_delivery.clone(),
            created_at: self.created_at.clone(),
            status: self.response.as_ref().map_or(0, |r| r.status),
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
            response: self.response.as_ref().map_or_else(
                || ResponseShown { headers: Default::default(), body: String::new() },
                |r| ResponseShown { headers: r.headers.clone(), body: r.body.clone() },
            ),
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
