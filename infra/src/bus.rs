//! The EventBridge adapter: webhook events onto the bus, `source` = `shopping.{account}` and
//! `detail-type` = the event type, so a rule selects by account, by type, or both; the
//! `detail` is the event exactly as a webhook receiver gets it.

use crate::aws::resend_failed;
use async_trait::async_trait;
use aws_sdk_eventbridge::types::PutEventsRequestEntry;
use domain::webhook::WebhookEvent;

/// At most this many entries go in one `PutEvents` call (the service's limit).
pub const PUT_EVENTS_MAX: usize = 10;
/// And at most this many bytes of entries (the request's limit, 1 MB like an entry's).
const PUT_EVENTS_LIMIT: crate::aws::CallLimit = crate::aws::CallLimit { entries: PUT_EVENTS_MAX, bytes: 1_000_000 };
/// Rounds of re-sending the entries that failed before the caller hears of them.
const ROUNDS: u32 = 4;
/// The largest entry (source, detail-type, detail and resources) this publisher puts whole.
/// EventBridge takes entries up to 1 MB since January 2026 (256 KiB before; AWS Compute
/// Blog, "serverless services now support payloads up to 1 MB"); the rule hands each event
/// whole to the SQS delivery queue (1 MiB) with about 0.5 KB of envelope, and the deliverer
/// wraps the body as an escaped JSON string in each job message, so 900 KiB leaves room for
/// both. EventBridge bills each started 64 KB of an entry as one event: a 900 KiB order event
/// costs 15 (DECISIONS.md, "Webhooks").
const ENTRY_MAX_BYTES: usize = 900 * 1024;

/// The `source` of an account's events.
pub fn source(account_id: &str) -> String {
    format!("shopping.{account_id}")
}

/// The `detail` of `ev`. An event too large for an EventBridge entry (a very large order)
/// travels with its resource cut to its id (`"order": {"id": …}`) and `"truncated": true`:
/// subscribers read the resource by that id (see domain/DECISIONS.md, "Webhooks").
pub fn detail(ev: &WebhookEvent) -> String {
    let full = serde_json::to_string(ev).unwrap_or_default();
    let overhead = source(&ev.account_id).len() + ev.event.len() + 64;
    if full.len() + overhead <= ENTRY_MAX_BYTES {
        return full;
    }
    tracing::warn!(event = %ev.id, bytes = full.len(), "event over the EventBridge entry limit: payload left out");
    let mut resource = serde_json::Map::new();
    for (k, v) in &ev.resource {
        if let Some(id) = v.get("id") {
            resource.insert(k.clone(), serde_json::json!({ "id": id }));
        } else if v.as_array().is_some_and(|ids| ids.iter().all(serde_json::Value::is_string)) {
            // `order_ids`: small, and what a subscriber reads the orders by.
            resource.insert(k.clone(), v.clone());
        }
    }
    resource.insert("truncated".into(), serde_json::Value::Bool(true));
    let slim = WebhookEvent { resource, ..ev.clone() };
    serde_json::to_string(&slim).unwrap_or_default()
}

/// The entry's one resource: the account.
fn resource(account_id: &str) -> String {
    format!("shopping:account/{account_id}")
}

/// An entry's size as EventBridge counts it: source, detail-type, detail and resources.
fn entry_size(ev: &WebhookEvent, detail: &str) -> usize {
    source(&ev.account_id).len() + ev.event.len() + detail.len() + resource(&ev.account_id).len()
}

/// Where the publisher sends events.
#[async_trait]
pub trait EventSink: Send + Sync {
    /// Publishes `events`; answers the indices of those that could not be published (after
    /// re-sending them).
    async fn publish(&self, events: &[WebhookEvent]) -> Vec<usize>;
}

/// An EventBridge bus.
pub struct EventBus {
    client: crate::aws::LazyClient<aws_sdk_eventbridge::Client>,
    bus: String,
}

impl EventBus {
    pub fn new(client: aws_sdk_eventbridge::Client, bus: impl Into<String>) -> Self {
        Self::lazy(crate::aws::LazyClient::ready(client), bus)
    }

    fn lazy(client: crate::aws::LazyClient<aws_sdk_eventbridge::Client>, bus: impl Into<String>) -> Self {
        Self { client, bus: bus.into() }
    }

    /// The bus named `bus`, with a client from the Lambda environment.
    pub fn from_env(bus: &str) -> Result<Self, String> {
        Ok(Self::lazy(
            crate::lazy_sdk_client!(aws_sdk_eventbridge, crate::aws::SdkParts::from_env("EVENTBRIDGE")?),
            bus,
        ))
    }

    /// The bus named `bus` on a local emulator.
    pub fn emulator(endpoint: &str, bus: &str) -> Self {
        Self::new(crate::sdk_client!(aws_sdk_eventbridge, crate::aws::SdkParts::emulator(endpoint)), bus)
    }

    pub fn client(&self) -> &aws_sdk_eventbridge::Client {
        self.client.get()
    }

    fn entry(&self, ev: &WebhookEvent, detail: &str) -> PutEventsRequestEntry {
        PutEventsRequestEntry::builder()
            .event_bus_name(&self.bus)
            .source(source(&ev.account_id))
            .detail_type(&ev.event)
            .detail(detail)
            .resources(resource(&ev.account_id))
            .build()
    }

    /// One `PutEvents` call of `events` with their `details`; answers the failed ones among `ids`.
    async fn put(&self, events: &[WebhookEvent], details: &[String], ids: Vec<usize>) -> Vec<usize> {
        let entries = ids.iter().filter_map(|i| Some(self.entry(events.get(*i)?, details.get(*i)?))).collect();
        match self.client.get().put_events().set_entries(Some(entries)).send().await {
            Ok(out) if out.failed_entry_count() == 0 => Vec::new(),
            Ok(out) => {
                // Result entries are in request order; one with an error code failed.
                let results = out.entries();
                ids.into_iter()
                    .enumerate()
                    .filter(|(n, _)| results.get(*n).is_none_or(|r| r.error_code().is_some()))
                    .map(|(_, id)| id)
                    .collect()
            }
            Err(e) => {
                tracing::warn!(error = %aws_sdk_eventbridge::error::DisplayErrorContext(&e), "PutEvents failed");
                ids
            }
        }
    }
}

#[async_trait]
impl EventSink for EventBus {
    async fn publish(&self, events: &[WebhookEvent]) -> Vec<usize> {
        // Each detail once: its size cuts the calls, and every (re)sent entry carries it.
        let details: Vec<String> = events.iter().map(detail).collect();
        let sizes: Vec<usize> = events.iter().zip(&details).map(|(ev, d)| entry_size(ev, d)).collect();
        resend_failed(&sizes, PUT_EVENTS_LIMIT, ROUNDS, |ids| self.put(events, &details, ids)).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_event_too_large_for_an_entry_travels_without_its_payload() {
        let ev = WebhookEvent {
            id: "evt_1".into(),
            event: "shopping_order_update".into(),
            account_id: "T12345678".into(),
            event_delivery: None,
            created_at: "t".into(),
            version: 2,
            schema_version: domain::webhook::SCHEMA_VERSION.into(),
            resource: serde_json::json!({ "order": { "id": "o-1", "note": "x".repeat(ENTRY_MAX_BYTES) } })
                .as_object()
                .cloned()
                .unwrap(),
        };
        let slim: WebhookEvent = serde_json::from_str(&detail(&ev)).unwrap();
        assert_eq!(
            serde_json::Value::Object(slim.resource.clone()),
            serde_json::json!({ "order": { "id": "o-1" }, "truncated": true })
        );
        assert_eq!((slim.id.as_str(), slim.resource_id()), ("evt_1", Some("o-1")));
        let small = WebhookEvent { resource: Default::default(), ..ev };
        assert_eq!(detail(&small), serde_json::to_string(&small).unwrap());
    }
}
