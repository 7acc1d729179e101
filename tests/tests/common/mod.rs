//! Shared test wiring: stores on both engines.

#![allow(dead_code)]

use infra::clock::Clock;
use infra::Store;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Arc;

/// The emulator endpoint the test script exported. Missing is a failure, never a skip.
pub fn emulator_endpoint() -> String {
    std::env::var("SHOPPING_TEST_DYNAMODB_ENDPOINT").expect(
        "SHOPPING_TEST_DYNAMODB_ENDPOINT is not set: run the suite with ./tests/run.sh, which starts the local AWS emulator",
    )
}

/// A DynamoDB store on a fresh table of its own (unique per test, so tests run in parallel).
pub async fn dynamo_store(clock: Arc<dyn Clock>) -> Arc<dyn Store> {
    dynamo_store_via(&emulator_endpoint(), clock).await
}

/// [`dynamo_store`] reached through `endpoint` (e.g. a proxy in front of the emulator).
pub async fn dynamo_store_via(endpoint: &str, clock: Arc<dyn Clock>) -> Arc<dyn Store> {
    static N: AtomicU32 = AtomicU32::new(0);
    let client = infra::dynamo::emulator_client(endpoint);
    let table = format!("shopping-test-{}-{}", std::process::id(), N.fetch_add(1, Ordering::SeqCst));
    infra::dynamo::create_table(&client, &table).await.expect("create table on the emulator");
    Arc::new(infra::dynamo::DynamoStore::new(client, table, clock))
}

use axum::body::Body;
use axum::http::{Request, StatusCode};
use functions::edge::auth::{sign, Auth, Claims};
use functions::edge::state::AppState;
use http_body_util::BodyExt;
use infra::clock::ManualClock;
use serde_json::Value;
use tower::ServiceExt;

pub const AID: &str = "T12345678";
pub const OTHER: &str = "T87654321";
const SECRET: &[u8] = b"test-secret-test-secret-test-secret!";
pub const T0: i64 = 1_800_000_000;

/// The whole API (every router) on one store, called in-process through `oneshot`.
pub struct Api {
    pub router: axum::Router,
    pub clock: Arc<ManualClock>,
    pub store: Arc<dyn Store>,
    _dir: Option<tempfile::TempDir>,
}

pub struct Resp {
    pub status: StatusCode,
    pub headers: axum::http::HeaderMap,
    pub body: Value,
}

impl Resp {
    pub fn code(&self) -> &str {
        self.body["error"]["code"].as_str().unwrap_or("")
    }
}

impl Api {
    pub fn with(store: Arc<dyn Store>, clock: Arc<ManualClock>, dir: Option<tempfile::TempDir>) -> Self {
        Self::with_state(Self::state(store, clock.clone()), clock, dir)
    }

    /// The state [`Api::with`] serves: the embedded queue, loopback receivers allowed.
    pub fn state(store: Arc<dyn Store>, clock: Arc<ManualClock>) -> AppState {
        // These tests drive one account at any rate; `rate_limits.rs` sets the limits it tests.
        let unlimited = functions::edge::limit::Limiter::new(
            store.clone(),
            clock.clone(),
            domain::ratelimit::Limit::new(1_000_000, 1_000_000),
        );
        AppState::local(store, clock, Auth::hs256(SECRET)).allow_loopback(true).with_limiter(unlimited)
    }

    pub fn with_state(state: AppState, clock: Arc<ManualClock>, dir: Option<tempfile::TempDir>) -> Self {
        let store = state.store.clone();
        Self { router: functions::app(state), clock, store, _dir: dir }
    }

    /// The embedded engine as `shopping-local` serves it: with its memo of rendered answers,
    /// so every test that reads an order after changing it checks the memo let go of it.
    pub fn sqlite() -> Self {
        let dir = tempfile::tempdir().expect("tempdir");
        let clock = Arc::new(ManualClock::at(T0));
        let store = Arc::new(infra::sqlite::SqliteStore::open(&dir.path().join("s.db"), clock.clone()).expect("open"));
        let state = Self::state(store.clone(), clock.clone());
        let state = functions::platform::local::remember_answers(state, &store, 1 << 20);
        Self::with_state(state, clock, Some(dir))
    }

    pub async fn dynamo() -> Self {
        let clock = Arc::new(ManualClock::at(T0));
        let store = dynamo_store(clock.clone()).await;
        Self::with(store, clock, None)
    }

    pub fn token_for(&self, aid: &str, scope: &str, ttl: i64) -> String {
        let claims =
            Claims { aid: aid.into(), scope: scope.into(), sub: "tester".into(), exp: self.clock.epoch() + ttl };
        sign(&claims, SECRET).expect("sign")
    }

    pub fn token(&self) -> String {
        self.token_for(AID, "admin:shopping", 3600)
    }

    pub async fn raw(&self, req: Request<Body>) -> Resp {
        let res = self.router.clone().oneshot(req).await.expect("infallible");
        let status = res.status();
        let headers = res.headers().clone();
        let bytes = res.into_body().collect().await.expect("body").to_bytes();
        let body = if bytes.is_empty() { Value::Null } else { serde_json::from_slice(&bytes).expect("JSON response") };
        Resp { status, headers, body }
    }

    /// Status and raw body bytes, for answers that need not be JSON.
    pub async fn raw_bytes(&self, req: Request<Body>) -> (StatusCode, Vec<u8>) {
        let res = self.router.clone().oneshot(req).await.expect("infallible");
        let status = res.status();
        (status, res.into_body().collect().await.expect("body").to_bytes().to_vec())
    }

    pub async fn call_as(
        &self,
        token: Option<&str>,
        method: &str,
        path: &str,
        body: Option<Value>,
        if_match: Option<&str>,
    ) -> Resp {
        let mut req = Request::builder().method(method).uri(path);
        if let Some(t) = token {
            req = req.header("authorization", format!("Bearer {t}"));
        }
        if let Some(m) = if_match {
            req = req.header("if-match", m);
        }
        let body = body.map_or_else(Body::empty, |b| Body::from(b.to_string()));
        self.raw(req.header("content-type", "application/json").body(body).expect("request")).await
    }

    pub async fn call_idem(&self, key: &str, method: &str, path: &str, body: Value) -> Resp {
        let req = Request::builder()
            .method(method)
            .uri(path)
            .header("authorization", format!("Bearer {}", self.token()))
            .header("idempotency-key", key)
            .body(Body::from(body.to_string()))
            .expect("request");
        self.raw(req).await
    }

    pub async fn call(&self, method: &str, path: &str, body: Option<Value>) -> Resp {
        let t = self.token();
        self.call_as(Some(&t), method, path, body, None).await
    }
}

/// Deterministic text that deflate cannot shrink much (random over 90 symbols: about 6.5
/// bits a character), so it really costs about its length when stored.
pub fn noise(len: usize, seed: u64) -> String {
    let mut x = seed.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
    (0..len)
        .map(|_| {
            x = x.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
            char::from(b'!' + ((x >> 33) % 90) as u8)
        })
        .collect()
}

pub fn drafts_path() -> String {
    format!("/v1/accounts/{AID}/shopping/draft_orders")
}

pub fn item(line: i64, gross: i64) -> Value {
    serde_json::json!({"line_id": line, "gross_amount": gross, "tax_lines": [{"percentage": 25}], "description": format!("item {line}")})
}

pub fn store_item(line: i64, gross: i64, store: &str) -> Value {
    let mut i = item(line, gross);
    i["store"] = serde_json::json!({"id": store, "name": format!("Store {store}")});
    i
}

/// Runs each named scenario `async fn(&Api)` as two tests: on the embedded engine and on
/// DynamoDB (through the local emulator).
#[macro_export]
macro_rules! on_both_engines {
    ($($name:ident),* $(,)?) => {
        mod sqlite {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    super::$name(&super::common::Api::sqlite()).await
                }
            )*
        }
        mod dynamodb {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    super::$name(&super::common::Api::dynamo().await).await
                }
            )*
        }
    };
}

/// Runs the futures concurrently on the current task (concurrent writers through one API).
pub async fn join_all<F: std::future::Future>(fs: Vec<F>) -> Vec<F::Output> {
    let mut pinned: Vec<_> = fs.into_iter().map(Box::pin).collect();
    let mut out: Vec<Option<F::Output>> = pinned.iter().map(|_| None).collect();
    std::future::poll_fn(|cx| {
        let mut pending = false;
        for (f, slot) in pinned.iter_mut().zip(out.iter_mut()) {
            if slot.is_none() {
                match f.as_mut().poll(cx) {
                    std::task::Poll::Ready(v) => *slot = Some(v),
                    std::task::Poll::Pending => pending = true,
                }
            }
        }
        if pending {
            std::task::Poll::Pending
        } else {
            std::task::Poll::Ready(())
        }
    })
    .await;
    out.into_iter().map(|o| o.expect("ready")).collect()
}

/// The table's stream as the emulator's DynamoDB Streams API returns it, shaped as Lambda
/// delivers it to the publisher.
pub async fn stream_records(endpoint: &str, table: &str) -> Vec<Value> {
    let client = hyper_util::client::legacy::Client::builder(hyper_util::rt::TokioExecutor::new())
        .build_http::<http_body_util::Full<hyper::body::Bytes>>();
    let call = |target: &'static str, body: Value| {
        let client = client.clone();
        let endpoint = endpoint.to_owned();
        async move {
            let req = hyper::Request::post(endpoint)
                .header("x-amz-target", target)
                .header("content-type", "application/x-amz-json-1.0")
                .header(
                    "authorization",
                    "AWS4-HMAC-SHA256 Credential=test/20261122/us-east-1/dynamodb/aws4_request, SignedHeaders=host, Signature=0",
                )
                .body(http_body_util::Full::new(hyper::body::Bytes::from(body.to_string())))
                .unwrap();
            let res = client.request(req).await.unwrap();
            let bytes = http_body_util::BodyExt::collect(res.into_body()).await.unwrap().to_bytes();
            serde_json::from_slice::<Value>(&bytes).unwrap()
        }
    };
    let table = call("DynamoDB_20120810.DescribeTable", serde_json::json!({"TableName": table})).await;
    let arn = table["Table"]["LatestStreamArn"].as_str().expect("the table has a stream").to_owned();
    let stream = call("DynamoDBStreams_20120810.DescribeStream", serde_json::json!({"StreamArn": arn})).await;
    let mut records = Vec::new();
    for shard in stream["StreamDescription"]["Shards"].as_array().unwrap() {
        let it = call(
            "DynamoDBStreams_20120810.GetShardIterator",
            serde_json::json!({"StreamArn": arn, "ShardId": shard["ShardId"], "ShardIteratorType": "TRIM_HORIZON"}),
        )
        .await;
        let mut iterator = it["ShardIterator"].clone();
        loop {
            let page =
                call("DynamoDBStreams_20120810.GetRecords", serde_json::json!({"ShardIterator": iterator})).await;
            let batch = page["Records"].as_array().cloned().unwrap_or_default();
            if batch.is_empty() {
                break;
            }
            records.extend(batch);
            iterator = page["NextShardIterator"].clone();
            if iterator.is_null() {
                break;
            }
        }
    }
    for r in &mut records {
        // Lambda sends epoch seconds; the emulator's API a date text.
        r["dynamodb"]["ApproximateCreationDateTime"] = serde_json::json!(T0);
    }
    records
}

/// [`stream_records`] as the publisher Lambda receives them.
pub async fn stream_event(endpoint: &str, table: &str) -> lambda_http::aws_lambda_events::event::dynamodb::Event {
    let records = stream_records(endpoint, table).await;
    serde_json::from_value(serde_json::json!({"Records": records})).expect("stream records")
}

use axum::body::Bytes;
use axum::http::HeaderMap;
use base64::Engine as _;
use hmac::{Hmac, KeyInit, Mac};
use std::sync::Mutex;

pub type Seen = Arc<Mutex<Vec<(String, HeaderMap, Bytes)>>>;

/// A receiver on 127.0.0.1: `/ok` answers 200, `/flaky` fails twice then answers 200,
/// `/dead` always 500, `/redirect` answers 302.
pub async fn receiver() -> (u16, Seen) {
    let seen: Seen = Arc::default();
    let flaky = Arc::new(Mutex::new(0u32));
    let s = seen.clone();
    let app = axum::Router::new().fallback(move |uri: axum::http::Uri, headers: HeaderMap, body: Bytes| {
        let (s, flaky) = (s.clone(), flaky.clone());
        async move {
            let path = uri.path().to_owned();
            // This request's own type (requests arrive concurrently).
            let ping = headers.get("event").is_some_and(|e| e == "ping");
            s.lock().unwrap().push((path.clone(), headers, body));
            match path.as_str() {
                "/ok" => StatusCode::OK,
                "/flaky" if ping => StatusCode::OK,
                "/flaky" => {
                    let mut n = flaky.lock().unwrap();
                    *n += 1;
                    if *n <= 2 {
                        StatusCode::SERVICE_UNAVAILABLE
                    } else {
                        StatusCode::OK
                    }
                }
                "/redirect" => StatusCode::FOUND,
                _ => StatusCode::INTERNAL_SERVER_ERROR,
            }
        }
    });
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (port, seen)
}

/// Checks both signatures the way a receiver would, from the specs (not the server's code).
pub fn verify(secret: &str, headers: &HeaderMap, body: &[u8]) {
    let h = |k: &str| headers.get(k).unwrap_or_else(|| panic!("header {k}")).to_str().unwrap().to_owned();
    let mut sha1 = Hmac::<sha1::Sha1>::new_from_slice(secret.as_bytes()).unwrap();
    sha1.update(body);
    let hex: String = sha1.finalize().into_bytes().iter().map(|b| format!("{b:02x}")).collect();
    assert_eq!(h("event-signature"), hex);
    let mut sha256 = Hmac::<sha2::Sha256>::new_from_slice(secret.as_bytes()).unwrap();
    sha256.update(format!("{}.{}.", h("webhook-id"), h("webhook-timestamp")).as_bytes());
    sha256.update(body);
    let expected = format!("v1,{}", base64::engine::general_purpose::STANDARD.encode(sha256.finalize().into_bytes()));
    assert_eq!(h("webhook-signature"), expected);
    let event: Value = serde_json::from_slice(body).unwrap();
    assert_eq!(h("event"), event["event"].as_str().unwrap());
    assert_eq!(h("webhook-id"), event["id"].as_str().unwrap());
    assert!(!h("event-delivery").is_empty());
}
