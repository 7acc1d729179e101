//! `shopping-local`'s memo of rendered order answers (`functions::app::answer`), through the
//! public HTTP surface: an answer from memory is byte for byte what a fresh read renders, a
//! change of the order (or the passing of its retention) is seen by the very next read, and
//! it costs the read units its read did. (`Api::sqlite` keeps the memo too, so every order
//! scenario on the embedded engine reads through it.)

#[macro_use]
mod common;

use axum::body::Body;
use axum::http::Request;
use common::{drafts_path, item, Api, AID, T0};
use functions::edge::state::AppState;
use infra::clock::ManualClock;
use serde_json::{json, Value};
use std::sync::Arc;
use tower::ServiceExt;

/// Two servers on one store: one with the memo (as `shopping-local` serves), one without.
struct Pair {
    kept: Api,
    fresh: Api,
    state: AppState,
    clock: Arc<ManualClock>,
    dir: std::path::PathBuf,
}

fn pair() -> Pair {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().to_owned();
    let clock = Arc::new(ManualClock::at(T0));
    let store = Arc::new(infra::sqlite::SqliteStore::open(&path.join("s.db"), clock.clone()).expect("open"));
    let state = functions::platform::local::remember_answers(Api::state(store.clone(), clock.clone()), &store, 1 << 20);
    assert!(state.answers.is_some());
    let kept = Api::with_state(state.clone(), clock.clone(), Some(dir));
    let fresh = Api::with(store, clock.clone(), None);
    Pair { kept, fresh, state, clock, dir: path }
}

async fn order(api: &Api, options: Value) -> String {
    let body = json!({"options": options, "order": {"currency": "NOK", "items": [item(1, 1000)]}});
    let d = api.call("POST", &drafts_path(), Some(body)).await;
    assert_eq!(d.status, 200, "{}", d.body);
    let done = api.call("PUT", &format!("{}/{}/complete", drafts_path(), d.body["id"].as_str().unwrap()), None).await;
    assert_eq!(done.status, 200, "{}", done.body);
    format!("/v1/accounts/{AID}/shopping/orders/{}", done.body["orders"][0]["id"].as_str().unwrap())
}

/// Status, `ETag` and the body's bytes of a `GET`.
async fn get(api: &Api, path: &str) -> (u16, Option<String>, Vec<u8>) {
    let req = Request::get(path).header("authorization", format!("Bearer {}", api.token())).body(Body::empty());
    let res = api.router.clone().oneshot(req.expect("request")).await.expect("infallible");
    let etag = res.headers().get("etag").and_then(|v| v.to_str().ok()).map(str::to_owned);
    let status = res.status().as_u16();
    let body = http_body_util::BodyExt::collect(res.into_body()).await.expect("body").to_bytes().to_vec();
    (status, etag, body)
}

#[tokio::test]
async fn an_answer_from_memory_is_a_fresh_reads_bytes_and_every_change_replaces_it() {
    let p = pair();
    let path = order(&p.kept, json!({})).await;
    let first = get(&p.kept, &path).await;
    let again = get(&p.kept, &path).await;
    assert_eq!(first.0, 200);
    assert_eq!(again, first, "the second answer is the first one's bytes");
    assert_eq!(get(&p.fresh, &path).await, first, "and what a server without the memo renders");
    assert_eq!(first.1.as_deref(), Some("W/\"0\""));

    // A change through the API: the next read shows it.
    let r = p.kept.call("PUT", &path, Some(json!({"comment": "changed"}))).await;
    assert_eq!(r.status, 200, "{}", r.body);
    let after = get(&p.kept, &path).await;
    assert_eq!(after.1.as_deref(), Some("W/\"1\""));
    assert_eq!(serde_json::from_slice::<Value>(&after.2).expect("JSON")["comment"], "changed");
    assert_eq!(get(&p.fresh, &path).await, after);

    // A change made by the other server's requests (the same store, so the same process).
    let r = p.fresh.call("PUT", &path, Some(json!({"comment": "changed again"}))).await;
    assert_eq!(r.status, 200, "{}", r.body);
    let later = get(&p.kept, &path).await;
    assert_eq!(later.1.as_deref(), Some("W/\"2\""));
    assert_eq!(later, get(&p.fresh, &path).await);

    // Asked with events, the answer is read afresh (the memo keeps the plain view only).
    let (status, _, with_events) = get(&p.kept, &format!("{path}?include_events=true")).await;
    assert_eq!(status, 200);
    assert!(serde_json::from_slice::<Value>(&with_events).expect("JSON")["events"].is_array());
}

#[tokio::test]
async fn an_order_kept_in_memory_is_emptied_the_second_its_retention_ends() {
    let p = pair();
    let path = order(&p.kept, json!({"order_time_to_live": 86400})).await;
    let live = get(&p.kept, &path).await;
    assert_eq!(get(&p.kept, &path).await, live);
    assert!(live.1.is_some());
    p.clock.advance(86_399);
    assert_eq!(get(&p.kept, &path).await, live, "still live a second before");
    p.clock.advance(1);
    let gone = get(&p.kept, &path).await;
    assert_ne!(gone, live);
    assert_eq!(gone, get(&p.fresh, &path).await, "what a fresh read answers once retention ended");
    assert_eq!(gone.1, None, "an emptied order has no version to offer");
}

#[tokio::test]
async fn an_answer_from_memory_counts_the_read_units_of_its_read() {
    let p = pair();
    let path = order(&p.kept, json!({})).await;
    let functions::metering::Sink::Registry(usage) = &p.state.usage else { panic!("the local sink") };
    let units = || usage.get(AID).read_units;
    let before = units();
    get(&p.kept, &path).await;
    let read = units() - before;
    get(&p.kept, &path).await;
    let from_memory = units() - before - read;
    assert!(read >= 1.0, "a read costs at least one unit: {read}");
    assert_eq!(from_memory, read, "a hit costs what the read did");
}

/// The answer does come from memory: a change made behind the memo's back (a second store
/// on the same file, which tells nobody: what `serve.lock` keeps from happening) is not seen
/// by the server keeping answers until its own next write of the order.
#[tokio::test]
async fn a_kept_answer_is_served_without_reading_the_store() {
    let p = pair();
    let path = order(&p.kept, json!({})).await;
    let kept = get(&p.kept, &path).await;
    let other = Arc::new(infra::sqlite::SqliteStore::open(&p.dir.join("s.db"), p.clock.clone()).expect("open"));
    let behind = Api::with(other, p.clock.clone(), None);
    let r = behind.call("PUT", &path, Some(json!({"comment": "behind its back"}))).await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(get(&p.kept, &path).await, kept, "answered from memory");
    assert_ne!(get(&p.fresh, &path).await, kept, "a fresh read sees the change");
    let r = p.kept.call("PUT", &path, Some(json!({"comment": "its own"}))).await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(get(&p.kept, &path).await, get(&p.fresh, &path).await);
}
