//! The outbox promise, on both engines: the event of every acknowledged write reaches the
//! outbox exactly once per version (the embedded engine's outbox table; DynamoDB's stream on
//! the emulator), and a refused write or a lost race leaves nothing there. Then the consumer
//! turns those images into history items, and reads show the same events as before it ran.

#[macro_use]
mod common;

use common::{drafts_path, item, Api, AID, T0};
use domain::outbox;
use domain::table::Item;
use infra::clock::ManualClock;
use serde_json::{json, Value};
use std::sync::Arc;

/// An event bus that records what it is given and refuses one event id, when told.
#[derive(Default)]
struct Recorder {
    sent: std::sync::Mutex<Vec<domain::webhook::WebhookEvent>>,
    refuse: std::sync::Mutex<Option<String>>,
}

#[async_trait::async_trait]
impl infra::bus::EventSink for Recorder {
    async fn publish(&self, events: &[domain::webhook::WebhookEvent]) -> Vec<usize> {
        let refuse = self.refuse.lock().unwrap().clone();
        let mut failed = Vec::new();
        for (n, ev) in events.iter().enumerate() {
            if Some(&ev.id) == refuse.as_ref() {
                failed.push(n);
            } else {
                self.sent.lock().unwrap().push(ev.clone());
            }
        }
        failed
    }
}

/// (partition, version) of every write the API acknowledged.
type Acked = Vec<(String, u64)>;

fn etag_version(r: &common::Resp) -> u64 {
    let tag = r.headers.get("etag").and_then(|v| v.to_str().ok()).unwrap_or_default();
    tag.trim_start_matches("W/").trim_matches('"').parse().unwrap_or_else(|_| panic!("etag {tag}"))
}

/// Creates, changes (past the riding bound, racing, retrying, refused) and completes drafts;
/// returns the acknowledged versions and one draft's path.
async fn workload(api: &Arc<Api>) -> (Acked, String) {
    let mut acked = Vec::new();
    let d =
        api.call("POST", &drafts_path(), Some(json!({"order": {"currency": "NOK", "items": [item(1, 100)]}}))).await;
    assert_eq!(d.status, 200);
    let id = d.body["id"].as_str().unwrap().to_owned();
    let pk = domain::table::draft_pk(AID, &id);
    let path = format!("{}/{id}", drafts_path());
    acked.push((pk.clone(), 0));
    // More changes than may ride in one item without a consumer.
    for line in 2..=7 {
        let r = api.call("POST", &format!("{path}/items"), Some(item(line, 10))).await;
        assert_eq!(r.status, 200);
        acked.push((pk.clone(), etag_version(&r)));
    }
    // Refused writes leave nothing: a stale If-Match, a bad body.
    let token = api.token();
    let stale = api.call_as(Some(&token), "POST", &format!("{path}/items"), Some(item(50, 1)), Some("W/\"0\"")).await;
    assert_eq!(stale.status, 412);
    assert_eq!(api.call("POST", &format!("{path}/items"), Some(json!({"gross_amount": "x"}))).await.status, 400);
    // The same Idempotency-Key twice is one change.
    let first = api.call_idem("k-1", "POST", &format!("{path}/items"), item(8, 10)).await;
    let again = api.call_idem("k-1", "POST", &format!("{path}/items"), item(8, 10)).await;
    assert_eq!((first.status, again.status), (axum::http::StatusCode::OK, axum::http::StatusCode::OK));
    acked.push((pk.clone(), etag_version(&first)));
    // Racing writers: every one lands, each as its own version.
    let racers: Vec<_> = (0..6)
        .map(|n| {
            let (api, path) = (api.clone(), path.clone());
            tokio::spawn(async move { api.call("POST", &format!("{path}/items"), Some(item(100 + n, 1))).await })
        })
        .collect();
    for r in racers {
        let r = r.await.unwrap();
        assert_eq!(r.status, 200, "{}", r.body);
        acked.push((pk.clone(), etag_version(&r)));
    }
    let done = api.call("PUT", &format!("{path}/complete"), None).await;
    assert_eq!(done.status, 200);
    acked.push((pk.clone(), etag_version(&done)));
    let order = done.body["orders"][0]["id"].as_str().unwrap();
    acked.push((domain::table::order_pk(AID, order), 0));
    acked.sort();
    (acked, path)
}

/// What the outbox holds: the records each image's write produced, by (partition, version).
fn produced(images: &[Item]) -> Acked {
    let mut seen = Vec::new();
    for image in images.iter().filter(|i| i.events.is_some()) {
        for rec in outbox::fresh(image).unwrap() {
            assert!(!rec.webhooks.is_empty(), "every event names its webhook events");
            seen.push((image.pk.clone(), rec.version()));
        }
    }
    seen.sort();
    seen
}

fn versions(draft: &Value) -> Vec<u64> {
    draft["events"].as_array().unwrap().iter().map(|e| e["version"].as_u64().unwrap()).collect()
}

#[tokio::test]
async fn every_acknowledged_version_reaches_the_embedded_outbox_once() {
    let dir = tempfile::tempdir().unwrap();
    let clock = Arc::new(ManualClock::at(T0));
    let store = Arc::new(infra::sqlite::SqliteStore::open(&dir.path().join("s.db"), clock.clone()).unwrap());
    let api = Arc::new(Api::with(store.clone(), clock, Some(dir)));
    let (acked, path) = workload(&api).await;
    let images: Vec<Item> = store.outbox_read(10_000).await.unwrap().into_iter().map(|e| e.item).collect();
    assert_eq!(produced(&images), acked);

    let before = api.call("GET", &path, None).await.body;
    let draft_writes = acked.iter().filter(|(pk, _)| pk.contains("#D#")).count() as u64;
    assert_eq!(versions(&before), (0..draft_writes).collect::<Vec<_>>());
    while functions::workers::publisher::drain_local(&store, &infra::SystemClock::default(), 7).await.unwrap() > 0 {}
    assert!(store.outbox_read(10).await.unwrap().is_empty(), "acknowledged entries are gone");
    assert_eq!(api.call("GET", &path, None).await.body, before, "history reads as the riders did");
}

#[tokio::test]
async fn every_acknowledged_version_reaches_the_dynamodb_stream_once() {
    let endpoint = common::emulator_endpoint();
    let clock = Arc::new(ManualClock::at(T0));
    let client = infra::dynamo::emulator_client(&endpoint);
    let table = format!("shopping-outbox-{}", std::process::id());
    infra::dynamo::create_table(&client, &table).await.unwrap();
    let store: Arc<dyn infra::Store> = Arc::new(infra::dynamo::DynamoStore::new(client, table.clone(), clock.clone()));
    let api = Arc::new(Api::with(store.clone(), clock, None));
    let (acked, path) = workload(&api).await;

    let event = common::stream_event(&endpoint, &table).await;
    let images: Vec<Item> = event
        .records
        .iter()
        .filter(|r| r.event_name != "REMOVE")
        .map(|r| infra::dynamo::item_from_image(r.change.new_image.clone()).unwrap())
        .collect();
    assert_eq!(produced(&images), acked);

    let before = api.call("GET", &path, None).await.body;
    let sequences: Vec<String> = event.records.iter().filter_map(|r| r.change.sequence_number.clone()).collect();

    // The bus refuses one event: that event's record and every later one come back, the
    // history written so far stands, and the retry publishes the refused event again.
    let refuse = Recorder::default();
    let mut built = Vec::new();
    for i in &images {
        built.push(functions::workers::publisher::webhook_events(store.as_ref(), i).await.unwrap());
    }
    let victim = built[images.len() / 2..]
        .iter()
        .find_map(|evs| evs.first().map(|e| e.id.clone()))
        .expect("a later image has events");
    *refuse.refuse.lock().unwrap() = Some(victim.clone());
    let response = functions::workers::publisher::handle_stream(store.as_ref(), &refuse, event.clone()).await;
    let failed: Vec<String> = response.batch_item_failures.iter().filter_map(|f| f.item_identifier.clone()).collect();
    // The images are the stream's records without its removals, which this workload has none of.
    assert_eq!(images.len(), event.records.len());
    let owner = built.iter().position(|evs| evs.iter().any(|e| e.id == victim)).unwrap();
    assert_eq!(failed, sequences[owner..].to_vec(), "the refused event's record and all after it are retried");

    let bus = Recorder::default();
    let response = functions::workers::publisher::handle_stream(store.as_ref(), &bus, event).await;
    assert!(response.batch_item_failures.is_empty());
    let sent = bus.sent.lock().unwrap().clone();
    assert!(sent.iter().any(|e| e.id == victim), "the refused event is published on the retry");
    let expected: usize = built.iter().map(Vec::len).sum();
    assert_eq!(sent.len(), expected, "every webhook event of the stream is published");
    for ev in &sent {
        let path = format!("{}/../events/schemas/{}.json", env!("CARGO_MANIFEST_DIR"), ev.event);
        let schema: Value = serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
        let detail: Value = serde_json::from_str(&infra::bus::detail(ev)).unwrap();
        assert!(jsonschema::is_valid(&schema, &detail), "{} as published matches its schema", ev.event);
    }
    assert_eq!(api.call("GET", &path, None).await.body, before, "history reads as the riders did");
    let history = store
        .query(&infra::Query {
            sk: infra::SkCond::BeginsWith("EVENT#".into()),
            ..infra::Query::partition(acked[0].0.clone())
        })
        .await
        .unwrap();
    assert_eq!(history.items.len(), versions(&before).len(), "one history item per version");
}
