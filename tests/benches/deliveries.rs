//! Local webhook deliveries per second: the local deliverer of `shopping-local` (durable
//! embedded store: SQLite WAL, `synchronous=FULL`) draining a queue of N jobs to a loopback
//! receiver that answers 200 at once, with every attempt recorded (its delivery record, the
//! job removed). Also how long queueing the N jobs took (the outbox consumer's side).
//!
//! Run: `cargo bench -p shopping-tests --bench deliveries -- [jobs] [subscriptions]`
//! (defaults 3000 and 3). Prints one line of figures; exits non-zero unless every job was
//! received and recorded exactly once.

use domain::hooks;
use domain::webhook::WebhookEvent;
use functions::edge::auth::{sign, Auth, Claims};
use functions::edge::state::AppState;
use infra::{query_all, Clock, Query, Store};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tower::ServiceExt;

const AID: &str = "T12345678";
const KEY: &[u8] = b"bench-key-bench-key-bench-key-32";

/// A receiver that counts what it gets and answers 200 at once.
async fn receiver() -> (u16, Arc<AtomicUsize>) {
    let seen = Arc::new(AtomicUsize::new(0));
    let s = seen.clone();
    let app = axum::Router::new().fallback(move || {
        let s = s.clone();
        async move {
            s.fetch_add(1, Ordering::Relaxed);
            axum::http::StatusCode::OK
        }
    });
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind the receiver");
    let port = listener.local_addr().expect("receiver address").port();
    tokio::spawn(async move { axum::serve(listener, app).await });
    (port, seen)
}

fn event(n: usize, now: &str) -> WebhookEvent {
    let draft = serde_json::json!({"id": format!("draft-{n}"), "status": "open", "items": [
        {"id": "i1", "sku": "SKU-1", "description": "A thing a merchant sells", "quantity": 1, "price": "19.99"}
    ]});
    WebhookEvent {
        id: format!("00000000-0000-4000-8000-{n:012}"),
        event: "shopping_draft_update".into(),
        account_id: AID.into(),
        event_delivery: None,
        created_at: now.into(),
        version: 1,
        schema_version: domain::webhook::SCHEMA_VERSION.into(),
        resource: [("draft".to_owned(), draft)].into_iter().collect(),
    }
}

async fn count(store: &dyn Store, pk: String) -> usize {
    query_all(store, Query::partition(pk)).await.map(|i| i.len()).unwrap_or(usize::MAX)
}

#[tokio::main]
async fn main() {
    let mut args = std::env::args().skip(1).filter(|a| !a.starts_with('-'));
    let jobs: usize = args.next().and_then(|a| a.parse().ok()).unwrap_or(3000);
    let subs: usize = args.next().and_then(|a| a.parse().ok()).unwrap_or(3).max(1);
    let events = jobs.div_ceil(subs);

    let dir = tempfile::tempdir().expect("temp dir");
    let clock: Arc<dyn Clock> = Arc::new(infra::SystemClock::default());
    let store = Arc::new(infra::sqlite::SqliteStore::open(&dir.path().join("s.db"), clock.clone()).expect("store"));
    let state = AppState::local(store.clone(), clock.clone(), Auth::hs256(KEY)).allow_loopback(true).with_limiter(
        // The bench measures deliveries, not the per-account limit (README, "Per-account limits").
        functions::edge::limit::Limiter::new(
            store.clone(),
            clock.clone(),
            domain::ratelimit::Limit::new(1_000_000, 1_000_000),
        ),
    );
    let (port, seen) = receiver().await;

    let claims =
        Claims { aid: AID.into(), scope: "admin:hooks".into(), sub: "bench".into(), exp: clock.epoch() + 3600 };
    let token = sign(&claims, KEY).expect("token");
    let router = functions::app(state.clone());
    let mut hook_ids = Vec::new();
    for n in 0..subs {
        let body = serde_json::json!({"events": ["shopping_draft_update"], "config": {
            "url": format!("http://127.0.0.1:{port}/in/{n}"), "content_type": "application/json",
            "insecure_ssl": 0, "secret": {"type": "HMAC-SHA1", "value": "bench-secret"}}});
        let req = axum::http::Request::post(format!("/v1/accounts/{AID}/hooks/subscriptions"))
            .header("authorization", format!("Bearer {token}"))
            .header("content-type", "application/json")
            .body(axum::body::Body::from(body.to_string()))
            .expect("request");
        let res = router.clone().oneshot(req).await.expect("subscribe");
        let bytes = http_body_util::BodyExt::collect(res.into_body()).await.expect("body").to_bytes();
        let created: serde_json::Value = serde_json::from_slice(&bytes).expect("subscription");
        hook_ids.push(created["id"].as_str().expect("a subscription id").to_owned());
    }

    let now = domain::ids::timestamp(clock.now());
    let batch: Vec<WebhookEvent> = (0..events).map(|n| event(n, &now)).collect();
    let started = Instant::now();
    let queued =
        functions::workers::deliverer::enqueue(store.as_ref(), &batch, clock.epoch_ms()).await.expect("enqueue");
    let enqueue_s = started.elapsed().as_secs_f64();

    let client = infra::webhook::WebhookClient::new(Arc::new(infra::webhook::SystemResolver), true).expect("client");
    let started = Instant::now();
    tokio::spawn(functions::workers::deliverer::run_local(state.clone(), client));
    let deadline = started + Duration::from_secs(600);
    loop {
        tokio::time::sleep(Duration::from_millis(20)).await;
        if count(store.as_ref(), hooks::QUEUE_PK.to_owned()).await == 0 || Instant::now() > deadline {
            break;
        }
    }
    let drain_s = started.elapsed().as_secs_f64();
    let mut recorded: usize = 0;
    let mut outcomes = std::collections::BTreeMap::<String, usize>::new();
    for h in &hook_ids {
        for item in query_all(store.as_ref(), Query::partition(hooks::deliveries_pk(AID, h))).await.expect("records") {
            recorded += 1;
            let d: hooks::Delivery = serde_json::from_str(&item.doc).expect("a delivery record");
            let key = format!("{:?}{}", d.outcome, d.reason.map(|r| format!(" ({r})")).unwrap_or_default());
            *outcomes.entry(key).or_default() += 1;
        }
    }
    // Each new subscription was sent a ping as well.
    let received = seen.load(Ordering::Relaxed).saturating_sub(subs);
    let recorded = recorded.saturating_sub(subs);
    println!(
        "jobs {queued} ({events} events x {subs} subscriptions) | queued in {:.1} ms ({:.0} jobs/s) | \
         drained in {:.2} s: {:.0} deliveries/s | received {received} | attempts recorded {recorded} {outcomes:?}",
        enqueue_s * 1000.0,
        queued as f64 / enqueue_s,
        drain_s,
        received as f64 / drain_s,
    );
    // Exactly once each: fewer is a lost delivery, more a job sent twice.
    if received != queued || recorded != queued {
        eprintln!("FAILED: {queued} jobs, {received} received, {recorded} attempts recorded");
        std::process::exit(1);
    }
}
