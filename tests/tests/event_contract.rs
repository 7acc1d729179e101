//! The event contract: every event the API's writes produce, built from the outbox as the
//! publisher builds it, is valid against its JSON Schema in `events/schemas/`, and every type
//! is produced.

mod common;

use common::{drafts_path, item, Api, AID, T0};
use infra::clock::ManualClock;
use infra::Store as _;
use serde_json::{json, Value};
use std::collections::BTreeMap;
use std::sync::Arc;

fn schema(name: &str) -> jsonschema::Validator {
    let path = format!("{}/../events/schemas/{name}.json", env!("CARGO_MANIFEST_DIR"));
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"));
    jsonschema::validator_for(&serde_json::from_str(&text).expect("schema JSON")).expect("a valid schema")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_produced_event_matches_its_schema() {
    let dir = tempfile::tempdir().expect("tempdir");
    let clock = Arc::new(ManualClock::at(T0));
    let store = Arc::new(infra::sqlite::SqliteStore::open(&dir.path().join("s.db"), clock.clone()).expect("open"));
    let api = Api::with(store.clone(), clock, None);

    let d =
        api.call("POST", &drafts_path(), Some(json!({"order": {"currency": "NOK", "items": [item(1, 1000)]}}))).await;
    let draft = format!("{}/{}", drafts_path(), d.body["id"].as_str().unwrap());
    api.call("POST", &format!("{draft}/items"), Some(item(2, 500))).await;
    let done = api.call("PUT", &format!("{draft}/complete"), None).await;
    let order = format!("/v1/accounts/{AID}/shopping/orders/{}", done.body["orders"][0]["id"].as_str().unwrap());
    api.call("PUT", &order, Some(json!({"courier_id": "bring"}))).await;
    api.call(
        "POST",
        &format!("{order}/events"),
        Some(json!({"state": "success", "service": "s", "service_status": "ok"})),
    )
    .await;
    api.call("POST", &format!("{order}/comments"), Some(json!({"body": "hi"}))).await;
    let capture = json!({"items": [{"line_id": 1, "amount": 100}]});
    assert_eq!(api.call("POST", &format!("{order}/captures"), Some(capture)).await.status, 200);

    let validators: BTreeMap<&str, jsonschema::Validator> =
        domain::webhook::TYPES.iter().map(|t| (*t, schema(t))).collect();
    let mut seen: BTreeMap<String, usize> = BTreeMap::new();
    let mut ids = std::collections::HashSet::new();
    let mut carried: Vec<(String, u64, Value)> = Vec::new();
    for entry in store.outbox_read(1000).await.expect("outbox") {
        for ev in functions::workers::publisher::webhook_events(store.as_ref(), &entry.item).await.expect("events") {
            let value: Value = serde_json::to_value(&ev).expect("JSON");
            let v = validators.get(ev.event.as_str()).unwrap_or_else(|| panic!("no schema for {}", ev.event));
            let errors: Vec<String> =
                v.iter_errors(&value).map(|e| format!("{} at {}", e, e.instance_path())).collect();
            assert!(errors.is_empty(), "{}: {errors:?}\n{value:#}", ev.event);
            assert!(ids.insert(ev.id.clone()), "event ids are unique");
            carried.push((ev.event.clone(), ev.version, value));
            *seen.entry(ev.event).or_default() += 1;
        }
    }
    let kinds: Vec<&str> = seen.keys().map(String::as_str).collect();
    assert_eq!(
        kinds,
        [
            "shopping_draft_add",
            "shopping_draft_complete",
            "shopping_draft_update",
            "shopping_order_event_add",
            "shopping_order_update"
        ],
        "every type but shopping_order_delete, which retention alone sends"
    );
    // The completion carries the orders it created, as the complete endpoint answered them.
    let (_, _, complete) = carried.iter().find(|(t, _, _)| t == "shopping_draft_complete").expect("a completion");
    assert_eq!(complete["orders"].as_array().map(Vec::len), Some(1));
    assert_eq!(complete["orders"][0]["id"], complete["order_ids"][0]);
    assert_eq!(complete["orders"][0]["items"], done.body["orders"][0]["items"]);
    // Order events carry the payment operations the order had at their version: the capture
    // (the last change) in its own events, none in the earlier ones.
    let updates: Vec<&(String, u64, Value)> = carried.iter().filter(|(t, _, _)| t == "shopping_order_update").collect();
    let last = updates.iter().map(|(_, v, _)| *v).max().expect("order updates");
    for (_, version, ev) in &updates {
        let captures = ev["order"]["captures"].as_array().map(Vec::len);
        assert_eq!(captures, Some(usize::from(*version == last)), "captures at version {version}");
    }
    // an order's expiry (its header removed by the TTL) publishes a valid update
    let order_id = done.body["orders"][0]["id"].as_str().unwrap();
    let header = store
        .get(&domain::table::Key { pk: domain::table::order_pk(AID, order_id), sk: domain::table::ORDER_SK.into() })
        .await
        .unwrap()
        .expect("order header");
    // an order's expiry (its header removed by the TTL) publishes a valid update, then a
    // valid deletion
    let expired = domain::webhook::expired(&header).unwrap();
    let kinds: Vec<&str> = expired.iter().map(|e| e.event.as_str()).collect();
    assert_eq!(kinds, ["shopping_order_update", "shopping_order_delete"]);
    for ev in &expired {
        let errors: Vec<String> = validators[ev.event.as_str()]
            .iter_errors(&serde_json::to_value(ev).unwrap())
            .map(|e| e.to_string())
            .collect();
        assert!(errors.is_empty(), "{}: {errors:?}", ev.event);
        assert!(ids.insert(ev.id.clone()), "the expiry's events have ids of their own");
    }
    // as a subscriber receives it: the upstream envelope, with its event_delivery
    let sub = domain::hooks::create(
        domain::hooks::Made { aid: AID, actor: "t", now: "2026-12-02T00:00:00.000Z", id: "hook-1".into() },
        domain::hooks::SubscriptionBody { events: Some(vec!["shopping_order_update".into()]), ..Default::default() },
    );
    let sent = domain::hooks::envelope_for(&sub, &expired[0], "0b6f7a2e-8d57-5a8e-9d3c-6a1c0c9f3a11");
    let errors: Vec<String> = validators["shopping_order_update"].iter_errors(&sent).map(|e| e.to_string()).collect();
    assert!(errors.is_empty(), "{errors:?}");
    assert_eq!((sent["account_id"].as_str(), sent["order"]["id"].as_str()), (Some(AID), Some(order_id)));

    // a ping is valid too
    let ping = domain::webhook::ping(AID, "evt_ping_1".into(), "2026-11-22T12:00:00.000Z".into(), "hook-1");
    let errors: Vec<String> =
        schema("ping").iter_errors(&serde_json::to_value(&ping).unwrap()).map(|e| e.to_string()).collect();
    assert!(errors.is_empty(), "{errors:?}");
}
