//! The event contract: what webhook subscribers and EventBridge rules receive for each event
//! a change produced. One outbox record (see [`crate::outbox`]) names the webhook events its
//! change produces; each becomes one [`WebhookEvent`], built from the item image the change
//! wrote, so it shows the resource exactly at that version.
//!
//! Every event has an id that is the same however often it is built (from the record's event
//! id and its type), so receivers de-duplicate redeliveries by it, and the resource `version`,
//! so they can order them. JSON Schemas of every type live in `events/schemas/`.

use crate::draft::DraftRecord;
use crate::model::{Draft, Order};
use crate::outbox::EventRecord;
use crate::table::{self, Item};
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

pub const DRAFT_ADD: &str = "shopping_draft_add";
pub const DRAFT_UPDATE: &str = "shopping_draft_update";
pub const DRAFT_COMPLETE: &str = "shopping_draft_complete";
pub const ORDER_UPDATE: &str = "shopping_order_update";
pub const ORDER_EVENT_ADD: &str = "shopping_order_event_add";
/// Sent once when an order's retention ends, after its expiry `shopping_order_update`.
pub const ORDER_DELETE: &str = "shopping_order_delete";
/// Sent to a new subscription (and on request) to check the receiver.
pub const PING: &str = "ping";

/// Every event type a subscription can ask for.
pub const TYPES: [&str; 6] = [DRAFT_ADD, DRAFT_UPDATE, DRAFT_COMPLETE, ORDER_UPDATE, ORDER_EVENT_ADD, ORDER_DELETE];

/// The keys of the envelope itself; every other top-level key is the resource, which a
/// subscription's field masks may trim.
pub const ENVELOPE_KEYS: [&str; 7] =
    ["id", "event", "account_id", "event_delivery", "created_at", "version", "schema_version"];

/// The version of the envelope and resource shapes every event carries (`schema_version`):
/// one more on a change that could break a receiver (a field removed, renamed or retyped);
/// additions keep it (DECISIONS.md, "Webhooks").
pub const SCHEMA_VERSION: &str = "1";

fn schema_version() -> String {
    SCHEMA_VERSION.to_owned()
}

/// One event as subscribers receive it: the upstream Hooks API envelope (`account_id`,
/// `event`, `event_delivery` and the resource at the top level, under `order` or `draft`),
/// plus our `id`, `version` and `created_at`. The `detail` of an EventBridge event is the
/// same object without `event_delivery` (which names one event sent to one subscription).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct WebhookEvent {
    /// Unique per event, identical on every redelivery.
    pub id: String,
    /// The event type (`shopping_order_update`, …, or `ping`).
    pub event: String,
    pub account_id: String,
    /// One id per event and subscription, the same on every retry (set when the event is
    /// queued for a subscription).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub event_delivery: Option<String>,
    pub created_at: String,
    /// The resource's version after the change (0 for a ping).
    pub version: u64,
    /// [`SCHEMA_VERSION`] (an event published before it existed reads as version 1).
    #[serde(default = "schema_version")]
    pub schema_version: String,
    /// The resource at the top level: `{"draft": …}` (with `order_ids` on completion),
    /// `{"order": …}`, `{"order": …, "order_event": …}` for an appended event, `{"hook": …}`
    /// for a ping.
    #[serde(flatten)]
    pub resource: serde_json::Map<String, Value>,
}

impl WebhookEvent {
    /// The draft's or the order's id, read from the resource.
    pub fn resource_id(&self) -> Option<&str> {
        ["order", "draft", "hook"].iter().find_map(|k| self.resource.get(*k)?.get("id")?.as_str())
    }
}

fn resource(v: Value) -> serde_json::Map<String, Value> {
    match v {
        Value::Object(m) => m,
        _ => Default::default(),
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ContractError {
    #[error("the item {0} is not a draft or an order of an account")]
    NotAResource(String),
    #[error("unreadable document: {0}")]
    Document(#[from] serde_json::Error),
}

/// The account and resource id of a draft's or an order's partition key
/// (`A#{aid}#D#{id}` / `A#{aid}#O#{id}`).
fn owner(pk: &str) -> Option<(&str, &str)> {
    let rest = pk.strip_prefix("A#")?;
    let (aid, rest) = rest.split_once('#')?;
    let id = rest.strip_prefix("D#").or_else(|| rest.strip_prefix("O#"))?;
    Some((aid, id))
}

/// The id of the `n`th webhook event of the change whose api- or service-event is `event_id`.
pub fn event_id(event_id: &str, event_type: &str) -> String {
    format!("evt_{}_{}", event_id.replace('-', ""), event_type.trim_start_matches("shopping_"))
}

/// What an event shows besides the item its change wrote, read by the publisher (see
/// [`needs`]): an order's payment operations (items of their own, so not in its image), and
/// the orders a completion created.
#[derive(Debug, Clone, Default)]
pub struct Related {
    /// The order's operation items as of the image's version (see [`operations_as_of`]).
    pub operations: Vec<Item>,
    /// On `shopping_draft_complete`: the orders the completion created, in `order_ids` order.
    pub orders: Vec<Order>,
}

/// What [`events_of`] needs read for one record: whether the order's operations (an order
/// header whose summary says it has some), and which orders (a completion's).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Needs {
    pub operations: bool,
    pub orders: Vec<String>,
}

pub fn needs(image: &Item, rec: &EventRecord) -> Needs {
    let operations = image.sk == table::ORDER_SK
        && image
            .summary
            .as_deref()
            .and_then(|s| serde_json::from_str::<crate::list::Summary>(s).ok())
            .is_some_and(|s| s.ops);
    let orders = if image.sk == table::DRAFT_SK && rec.webhooks.iter().any(|w| w == DRAFT_COMPLETE) {
        serde_json::from_str::<DraftRecord>(&image.doc).map(|d| d.order_ids).unwrap_or_default()
    } else {
        Vec::new()
    };
    Needs { operations, orders }
}

/// The operation items of an order's partition that existed at `version` of the order: each
/// was written with the order's version of its transaction.
pub fn operations_as_of(items: Vec<Item>, version: u64) -> Vec<Item> {
    items.into_iter().filter(|i| i.sk.starts_with(table::OP_PREFIX) && i.version <= version).collect()
}

/// The webhook events one outbox record produces, from the image its change wrote and what
/// [`needs`] asked to be read.
pub fn events_of(image: &Item, rec: &EventRecord, related: &Related) -> Result<Vec<WebhookEvent>, ContractError> {
    let (aid, _) = owner(&image.pk).ok_or_else(|| ContractError::NotAResource(image.pk.clone()))?;
    let version = rec.version();
    let created_at = rec.event.created_at.clone().unwrap_or_default();
    let source_id = rec.event.id.clone().unwrap_or_default();
    let order = || -> Result<Order, ContractError> {
        let mut order: Order = serde_json::from_str(&image.doc)?;
        crate::payment::attach_operations(&mut order, &related.operations)?;
        Ok(order)
    };
    let mut out = Vec::new();
    for kind in &rec.webhooks {
        let data = match (image.sk.as_str(), kind.as_str()) {
            (table::DRAFT_SK, _) => {
                let stored: DraftRecord = serde_json::from_str(&image.doc)?;
                let order_ids = stored.order_ids.clone();
                let draft = Draft { events: None, ..stored.draft };
                if kind == DRAFT_COMPLETE {
                    json!({ "draft": draft, "order_ids": order_ids, "orders": related.orders })
                } else {
                    json!({ "draft": draft })
                }
            }
            (table::ORDER_SK, ORDER_EVENT_ADD) => json!({ "order": order()?, "order_event": rec.event }),
            (table::ORDER_SK, _) => json!({ "order": order()? }),
            _ => return Err(ContractError::NotAResource(format!("{}/{}", image.pk, image.sk))),
        };
        out.push(WebhookEvent {
            id: event_id(&source_id, kind),
            event: kind.clone(),
            account_id: aid.to_owned(),
            event_delivery: None,
            created_at: created_at.clone(),
            version,
            schema_version: schema_version(),
            resource: resource(data),
        });
    }
    Ok(out)
}

/// The events of an order's retention ending, from the order header's last image (the item
/// the store's TTL removed): its `shopping_order_update` (the order as it reads from then
/// on, emptied, one version on), then its `shopping_order_delete`. Built from that image
/// alone, so every redelivery of the removal carries the same ids and bytes. Empty when the
/// image is not an order header.
pub fn expired(image: &Item) -> Result<Vec<WebhookEvent>, ContractError> {
    if image.sk != table::ORDER_SK {
        return Ok(Vec::new());
    }
    let (aid, id) = owner(&image.pk).ok_or_else(|| ContractError::NotAResource(image.pk.clone()))?;
    let order: Order = serde_json::from_str(&image.doc)?;
    let emptied = crate::order::OrderStub::of(&order).emptied();
    let version = image.version.saturating_add(1);
    let source = format!("{id}-expired-{version}");
    let event = |kind: &str| WebhookEvent {
        id: event_id(&source, kind),
        event: kind.into(),
        account_id: aid.to_owned(),
        event_delivery: None,
        created_at: emptied.updated_at.clone(),
        version,
        schema_version: schema_version(),
        resource: resource(json!({ "order": emptied })),
    };
    Ok(vec![event(ORDER_UPDATE), event(ORDER_DELETE)])
}

/// The event a subscription receives when it is created or pinged.
pub fn ping(aid: &str, id: String, created_at: String, subscription_id: &str) -> WebhookEvent {
    WebhookEvent {
        id,
        event: PING.into(),
        account_id: aid.to_owned(),
        event_delivery: None,
        created_at,
        version: 0,
        schema_version: schema_version(),
        resource: resource(json!({ "hook": { "id": subscription_id } })),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::Event;

    #[test]
    fn ids_are_stable_and_distinct_per_type() {
        let a = event_id("3f2c0000-0000-4000-8000-000000000001", ORDER_UPDATE);
        assert_eq!(a, event_id("3f2c0000-0000-4000-8000-000000000001", ORDER_UPDATE));
        assert_ne!(a, event_id("3f2c0000-0000-4000-8000-000000000001", ORDER_EVENT_ADD));
    }

    #[test]
    fn order_events_carry_the_account_the_version_and_the_payload() {
        let order = Order { id: "o-1".into(), ..Default::default() };
        let mut image = Item::new(table::order_key("T12345678", "o-1"), 3, serde_json::to_string(&order).unwrap());
        image.events = None;
        let rec = EventRecord::new(
            Event { id: Some("e-1".into()), version: Some(3), created_at: Some("t".into()), ..Default::default() },
            &[ORDER_UPDATE, ORDER_EVENT_ADD],
        );
        let evs = events_of(&image, &rec, &Related::default()).unwrap();
        assert_eq!(evs.len(), 2);
        assert_eq!((evs[0].account_id.as_str(), evs[0].version), ("T12345678", 3));
        assert_eq!(evs[0].schema_version, SCHEMA_VERSION);
        let wire = serde_json::to_string(&evs[0]).unwrap();
        assert!(wire.contains(r#""version":3,"schema_version":"1","#), "next to the version: {wire}");
        let before: WebhookEvent = serde_json::from_str(&wire.replace(r#""schema_version":"1","#, "")).unwrap();
        assert_eq!(before.schema_version, "1", "an event published before it existed reads as version 1");
        assert_eq!(evs[0].resource["order"]["id"], "o-1");
        assert_eq!(evs[0].resource_id(), Some("o-1"));
        assert_eq!(evs[1].resource["order_event"]["id"], "e-1");
        assert_eq!(evs[1].resource["order"]["id"], "o-1");
        let wire = serde_json::to_value(&evs[0]).unwrap();
        assert_eq!((wire["account_id"].as_str(), wire["event"].as_str()), (Some("T12345678"), Some(ORDER_UPDATE)));
        assert_eq!(wire["order"]["id"], "o-1", "the resource sits at the top level");
    }

    #[test]
    fn an_expired_order_header_gives_its_emptied_order_one_version_on() {
        let mut order = Order { id: "o-1".into(), created_at: "c".into(), ..Default::default() };
        order.content.order_number = Some("42".into());
        order.content.time_to_live_expires_at = Some("2030-01-01T00:00:00.000Z".into());
        order.content.customer = Some(Default::default());
        let image = Item::new(table::order_key("T12345678", "o-1"), 7, serde_json::to_string(&order).unwrap());
        let evs = expired(&image).unwrap();
        let kinds: Vec<_> = evs.iter().map(|e| e.event.as_str()).collect();
        assert_eq!(kinds, [ORDER_UPDATE, ORDER_DELETE], "the emptied order, then its deletion");
        let ev = &evs[0];
        assert_eq!((ev.event.as_str(), ev.version, ev.account_id.as_str()), (ORDER_UPDATE, 8, "T12345678"));
        assert_eq!(ev.resource["order"]["order_number"], "42");
        assert_eq!(ev.resource["order"]["deleted_at"], "2030-01-01T00:00:00.000Z");
        assert!(ev.resource["order"].get("customer").is_none());
        assert_ne!(evs[0].id, evs[1].id);
        assert_eq!(evs, expired(&image).unwrap(), "the same removal, the same events");
        let child = Item::new(crate::table::Key::new(table::order_pk("T12345678", "o-1"), "EVENT#1"), 1, "{}".into());
        assert!(expired(&child).unwrap().is_empty());
    }
}
