//! Per-account limits (issue 38), through the whole router on both engines: a tenant over its
//! limit gets 429 in the upstream error shape with `Retry-After` and the RateLimit header
//! fields, and its refused requests change nothing and are metered as throttled; another
//! tenant at the same moment is unaffected; an operator's override takes effect without a
//! restart; several instances over one table hold the limit within ±20 %.

mod common;

use common::{Api, AID, OTHER, T0};
use domain::ratelimit::Limit;
use functions::edge::limit::{write_policy, Limiter};
use functions::metering::Sink;
use infra::clock::ManualClock;
use infra::Store;
use serde_json::json;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

fn draft() -> serde_json::Value {
    json!({"order": {"currency": "NOK", "items": [{"line_id": 1, "gross_amount": 100, "tax_lines": [{"percentage": 25}]}]}})
}

fn path(aid: &str) -> String {
    format!("/v1/accounts/{aid}/shopping/draft_orders")
}

/// The API over `store` with the limiter's default `limit` (its leases last `lease_ms`).
fn api(store: Arc<dyn Store>, clock: Arc<ManualClock>, limit: Limit, lease_ms: i64) -> (Api, Sink) {
    let mut limiter = Limiter::new(store.clone(), clock.clone(), limit);
    limiter.lease_ms = lease_ms;
    let state = Api::state(store, clock.clone()).with_limiter(limiter);
    let usage = state.usage.clone();
    (Api::with_state(state, clock, None), usage)
}

async fn count_drafts(store: &dyn Store, aid: &str) -> usize {
    let q = infra::Query {
        index: Some(domain::table::Index::Gsi1),
        ..infra::Query::partition(domain::table::drafts_index_pk(aid))
    };
    infra::port::query_all(store, q).await.expect("query").len()
}

async fn over_the_limit_is_429_with_headers_and_changes_nothing(store: Arc<dyn Store>, clock: Arc<ManualClock>) {
    // a burst of 10 and a rate of one a second: ten creates pass, the eleventh is refused
    let (a, usage) = api(store.clone(), clock.clone(), Limit::new(1, 10), 60_000);
    let token = a.token();
    for n in 0..10 {
        let r = a.call_as(Some(&token), "POST", &path(AID), Some(draft()), None).await;
        assert_eq!(r.status, 200, "create {n}: {}", r.body);
        assert_eq!(r.headers["ratelimit-policy"], "\"default\";q=10;w=10");
        let rl = r.headers["ratelimit"].to_str().unwrap();
        assert!(rl.starts_with(&format!("\"default\";r={};t=", 9 - n)), "{rl}");
    }
    let refused = a.call_as(Some(&token), "POST", &path(AID), Some(draft()), None).await;
    assert_eq!(refused.status, 429, "{}", refused.body);
    assert_eq!(refused.code(), "RATE_LIMITED");
    assert!(refused.body["error"]["message"].as_str().unwrap().contains("retry after"));
    let retry: u64 = refused.headers["retry-after"].to_str().unwrap().parse().unwrap();
    assert!((1..=10).contains(&retry), "{retry}");
    assert_eq!(refused.headers["ratelimit"].to_str().unwrap(), format!("\"default\";r=0;t={retry}"));
    assert_eq!(refused.headers["ratelimit-policy"], "\"default\";q=10;w=10");
    // the refused create changed nothing
    assert_eq!(count_drafts(store.as_ref(), AID).await, 10);
    // another tenant at the same moment is unaffected
    let other = a.token_for(OTHER, "admin:shopping", 3600);
    let r = a.call_as(Some(&other), "POST", &path(OTHER), Some(draft()), None).await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert!(r.headers.contains_key("ratelimit"));
    // a caller without a token sees the headers but spends nothing of the account's
    let anon = a.call_as(None, "GET", &path(OTHER), None, None).await;
    assert_eq!(anon.status, 401);
    assert!(anon.headers.contains_key("ratelimit-policy"));
    // metered: ten served, one throttled
    let Sink::Registry(reg) = usage else { panic!("local sink") };
    let c = reg.get(AID);
    assert_eq!((c.requests, c.throttled), (10, 1), "{c:?}");
    assert!(reg.prometheus().contains(&format!("shopping_throttled_total{{account=\"{AID}\"}} 1")));
}

/// A fresh embedded store in a temporary directory (kept alive by the returned guard).
fn sqlite_store(clock: Arc<ManualClock>) -> (tempfile::TempDir, Arc<dyn Store>) {
    let dir = tempfile::tempdir().unwrap();
    let store = Arc::new(infra::sqlite::SqliteStore::open(&dir.path().join("s.db"), clock).unwrap());
    (dir, store)
}

#[tokio::test]
async fn sqlite_over_the_limit_is_429_with_headers_and_changes_nothing() {
    let clock = Arc::new(ManualClock::at(T0));
    let (_dir, store) = sqlite_store(clock.clone());
    over_the_limit_is_429_with_headers_and_changes_nothing(store, clock).await;
}

#[tokio::test]
async fn dynamo_over_the_limit_is_429_with_headers_and_changes_nothing() {
    let clock = Arc::new(ManualClock::at(T0));
    let store = common::dynamo_store(clock.clone()).await;
    over_the_limit_is_429_with_headers_and_changes_nothing(store, clock).await;
}

#[tokio::test]
async fn an_override_takes_effect_without_a_restart() {
    let clock = Arc::new(ManualClock::at(T0));
    let (_dir, store) = sqlite_store(clock.clone());
    let (a, _) = api(store.clone(), clock, Limit::new(1000, 2000), 100);
    let token = a.token();
    let p = path(AID);
    let get = || a.call_as(Some(&token), "GET", &p, None, None);
    let r = get().await;
    assert_eq!((r.status.as_u16(), r.headers["ratelimit-policy"].to_str().unwrap()), (200, "\"default\";q=2000;w=2"));
    // the operator lowers the account's limit; the running instance takes it at its next
    // lease (five leases long: the bucket was full)
    write_policy(store.as_ref(), AID, Limit::new(1, 2)).await.unwrap();
    tokio::time::sleep(Duration::from_millis(550)).await;
    let statuses: Vec<u16> = {
        let mut v = vec![];
        for _ in 0..4 {
            v.push(get().await.status.as_u16());
        }
        v
    };
    assert_eq!(statuses, [200, 200, 429, 429], "the new burst of 2, after which the bucket is empty");
    let r = get().await;
    assert_eq!(r.headers["ratelimit-policy"], "\"default\";q=2;w=2");
}

/// How a flood meets the instances: `instances` routers (each its own limiter) over one
/// table, two callers each; a caller waits `pause` after every request (none: it sends at
/// once, 5 ms after a refusal).
struct Flood {
    instances: usize,
    limit: Limit,
    pause: Option<Duration>,
    seconds: u64,
}

/// Four instances, each flooded as fast as it answers (a limit the emulator serves well
/// within its own pace, so that the limiter, not the emulator, is what holds it).
const FAST: Flood = Flood { instances: 4, limit: Limit { rate: 25, burst: 25 }, pause: None, seconds: 4 };
/// A flood spread thin, as a stack spreads it: sixteen instances each asked five times a
/// second (four times the limit in all), so whole blocks would leave tokens unspent.
const THIN: Flood =
    Flood { instances: 16, limit: Limit { rate: 10, burst: 10 }, pause: Some(Duration::from_millis(400)), seconds: 8 };

async fn instances_hold_the_limit(store: Arc<dyn Store>, clock: Arc<ManualClock>, flood: Flood) {
    let limit = flood.limit;
    let apis: Vec<Api> = (0..flood.instances).map(|_| api(store.clone(), clock.clone(), limit, 2000).0).collect();
    let token = apis[0].token();
    let accepted = Arc::new(AtomicU64::new(0));
    let refused = Arc::new(AtomicU64::new(0));
    let run = Duration::from_secs(flood.seconds);
    let started = Instant::now();
    let mut tasks = Vec::new();
    for a in apis {
        for _ in 0..2 {
            let (a_router, token, accepted, refused) =
                (a.router.clone(), token.clone(), accepted.clone(), refused.clone());
            tasks.push(tokio::spawn(async move {
                use tower::ServiceExt;
                while started.elapsed() < run {
                    let req = axum::http::Request::get(path(AID))
                        .header("authorization", format!("Bearer {token}"))
                        .body(axum::body::Body::empty())
                        .unwrap();
                    let res = a_router.clone().oneshot(req).await.unwrap();
                    if res.status() == 429 {
                        refused.fetch_add(1, Ordering::Relaxed);
                        if flood.pause.is_none() {
                            tokio::time::sleep(Duration::from_millis(5)).await;
                        }
                    } else {
                        assert_eq!(res.status(), 200);
                        accepted.fetch_add(1, Ordering::Relaxed);
                    }
                    if let Some(pause) = flood.pause {
                        tokio::time::sleep(pause).await;
                    }
                }
            }));
        }
    }
    for t in tasks {
        t.await.unwrap();
    }
    let secs = started.elapsed().as_secs_f64();
    let expected = f64::from(limit.burst) + f64::from(limit.rate) * secs;
    let got = accepted.load(Ordering::Relaxed) as f64;
    eprintln!(
        "accepted {got} in {secs:.2} s of a limit allowing {expected:.0} ({:+.1} %)",
        (got / expected - 1.0) * 100.0
    );
    assert!(refused.load(Ordering::Relaxed) > 0, "the flood was over the limit");
    assert!((got - expected).abs() <= 0.2 * expected, "accepted {got} in {secs:.1} s; the limit allows {expected:.0}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn sqlite_instances_hold_the_limit_within_a_fifth() {
    let clock = Arc::new(ManualClock::at(T0));
    let (_dir, store) = sqlite_store(clock.clone());
    instances_hold_the_limit(store, clock, FAST).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn dynamo_instances_hold_the_limit_within_a_fifth() {
    let clock = Arc::new(ManualClock::at(T0));
    let store = common::dynamo_store(clock.clone()).await;
    instances_hold_the_limit(store, clock, FAST).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn sqlite_many_thinly_asked_instances_hold_the_limit_within_a_fifth() {
    let clock = Arc::new(ManualClock::at(T0));
    let (_dir, store) = sqlite_store(clock.clone());
    instances_hold_the_limit(store, clock, THIN).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn dynamo_many_thinly_asked_instances_hold_the_limit_within_a_fifth() {
    let clock = Arc::new(ManualClock::at(T0));
    let store = common::dynamo_store(clock.clone()).await;
    instances_hold_the_limit(store, clock, THIN).await;
}
