//! Webhooks: the subscription API (scopes, isolation, the SSRF check at create) on both
//! engines, and the local pipeline end to end — outbox → queue → signed deliveries to
//! receivers on 127.0.0.1, retries with the same `webhook-id`, a dead receiver that delays
//! nobody, the deliveries list and redelivery.

#[macro_use]
mod common;

use axum::body::Bytes;
use common::{drafts_path, item, receiver, verify, Api, AID, OTHER};
use functions::edge::auth::{sign, Auth, Claims};
use functions::edge::state::AppState;
use serde_json::{json, Value};
use std::sync::Arc;
use std::time::{Duration, Instant};

fn subs() -> String {
    format!("/v1/accounts/{AID}/hooks/subscriptions")
}

async fn subscriptions_api(api: &Api) {
    let hooks = api.token_for(AID, "admin:hooks", 600);
    let call = |method: &'static str, path: String, body: Option<Value>, token: String| async move {
        api.call_as(Some(&token), method, &path, body, None).await
    };
    let body = json!({"events": ["shopping_order_update", "shopping_draft_add"], "config": {"url": "https://hooks.example.com/in", "secret": "s3cret"}});
    let created = call("POST", subs(), Some(body.clone()), hooks.clone()).await;
    assert_eq!(created.status, 200, "{}", created.body);
    assert_eq!(created.body["config"]["secret"], json!({"type": "HMAC-SHA1"}), "the secret value is write-only");
    assert!(!created.body.to_string().contains("s3cret"));
    assert_eq!(created.body["active"], true);
    let hid = created.body["id"].as_str().unwrap().to_owned();
    let one = format!("{}/{hid}", subs());
    let got = call("GET", one.clone(), None, hooks.clone()).await;
    assert_eq!(got.body, created.body);
    assert!(!got.body.to_string().contains("s3cret"));
    let listed = call("GET", subs(), None, hooks.clone()).await;
    assert_eq!(listed.body.as_array().map(Vec::len), Some(1));
    let updated =
        call("PUT", one.clone(), Some(json!({"events": ["shopping_order_event_add"], "active": false})), hooks.clone())
            .await;
    assert_eq!(updated.status, 200, "{}", updated.body);
    assert_eq!(updated.body["events"], json!(["shopping_order_event_add"]));
    assert_eq!(updated.body["config"]["url"], "https://hooks.example.com/in", "absent fields keep their value");
    assert_eq!(updated.body["active"], false);
    let deliveries = call("GET", format!("{one}/deliveries"), None, hooks.clone()).await;
    assert_eq!(deliveries.body, json!([]), "the upstream's bare array");
    assert_eq!(call("GET", format!("{one}/deliveries/0000000000000-x"), None, hooks.clone()).await.status, 404);

    for (bad, path) in [
        (json!({"config": {"url": "https://e.example"}}), "events"),
        (json!({"events": ["nope"], "config": {"url": "https://e.example"}}), "events[0]"),
        (json!({"events": ["shopping_order_update"]}), "config.url"),
        (json!({"events": ["shopping_order_update"], "config": {"url": "http://10.0.0.7/hook"}}), "config.url"),
        (
            json!({"events": ["shopping_order_update"], "config": {"url": "http://169.254.169.254/latest"}}),
            "config.url",
        ),
        (json!({"events": ["shopping_order_update"], "config": {"url": "http://[::ffff:192.168.0.1]/"}}), "config.url"),
        (json!({"events": ["shopping_order_update"], "config": {"url": "ftp://e.example/"}}), "config.url"),
    ] {
        let r = call("POST", subs(), Some(bad.clone()), hooks.clone()).await;
        assert_eq!(r.status, 400, "{bad}: {}", r.body);
        assert_eq!(r.body["error"]["errors"][0]["path"], path, "{bad}");
    }
    // scopes: admin:shopping does not manage hooks; read:hooks cannot create
    let shopping = api.token();
    assert_eq!(call("GET", subs(), None, shopping.clone()).await.status, 403);
    assert_eq!(call("POST", subs(), Some(body.clone()), shopping).await.status, 403);
    let reader = api.token_for(AID, "read:hooks", 600);
    assert_eq!(call("GET", one.clone(), None, reader.clone()).await.status, 200);
    assert_eq!(call("POST", subs(), Some(body.clone()), reader.clone()).await.status, 403);
    assert_eq!(call("DELETE", one.clone(), None, reader).await.status, 403);
    // another account can neither see nor change it
    let other = api.token_for(OTHER, "admin:hooks", 600);
    let theirs = format!("/v1/accounts/{OTHER}/hooks/subscriptions/{hid}");
    assert_eq!(call("GET", theirs.clone(), None, other.clone()).await.status, 404);
    assert_eq!(call("PUT", theirs.clone(), Some(json!({"active": true})), other.clone()).await.status, 404);
    assert_eq!(call("DELETE", theirs, None, other.clone()).await.status, 404);
    assert_eq!(call("GET", one.clone(), None, other).await.status, 403);
    assert_eq!(
        call("GET", format!("/v1/accounts/{OTHER}/hooks/subscriptions"), None, api.token_for(OTHER, "read:hooks", 60))
            .await
            .body,
        json!([])
    );

    let deleted = call("DELETE", one.clone(), None, hooks.clone()).await;
    assert_eq!(deleted.status, 200);
    assert!(deleted.body["deleted_at"].is_string() && deleted.body["deleted_by"].is_string(), "{}", deleted.body);
    assert_eq!(deleted.body["active"], false);
    assert_eq!(call("GET", one.clone(), None, hooks.clone()).await.status, 404);
    assert_eq!(call("PUT", one.clone(), Some(json!({"active": true})), hooks.clone()).await.status, 404);
    assert_eq!(call("DELETE", one.clone(), None, hooks.clone()).await.status, 404);
    assert_eq!(call("GET", format!("{one}/deliveries"), None, hooks.clone()).await.status, 404);
    assert_eq!(call("GET", subs(), None, hooks).await.body, json!([]), "a deleted subscription is not listed");
}

/// A subscription as the upstream Hooks API documents it, from a merchant's existing client:
/// typed secret, content type, insecure_ssl 0, masks; read back in the upstream shape.
async fn upstream_shaped_subscriptions(api: &Api) {
    let hooks = api.token_for(AID, "admin:hooks", 600);
    let call = |method: &'static str, path: String, body: Option<Value>| {
        let hooks = hooks.clone();
        async move { api.call_as(Some(&hooks), method, &path, body, None).await }
    };
    let body = json!({
        "events": ["shopping_order_update"],
        "active": true,
        "config": {"url": "https://hooks.example.com/in", "content_type": "application/json", "insecure_ssl": 0,
                   "secret": {"type": "HMAC-SHA1", "value": "upstream-secret"}},
        "fields": "order(id,order_id,status)",
        "exclude_fields": ["order/customer"]
    });
    let created = call("POST", subs(), Some(body)).await;
    assert_eq!(created.status, 200, "{}", created.body);
    assert_eq!(
        created.body["config"],
        json!({"url": "https://hooks.example.com/in", "content_type": "application/json", "insecure_ssl": 0,
               "secret": {"type": "HMAC-SHA1"}}),
        "the value is write-only"
    );
    assert_eq!(created.body["fields"], "order(id,order_id,status)");
    assert_eq!(created.body["exclude_fields"], json!(["order/customer"]));
    for key in ["id", "created_at", "created_by", "updated_at"] {
        assert!(created.body[key].is_string(), "{key}");
    }
    let one = format!("{}/{}", subs(), created.body["id"].as_str().unwrap());
    let got = call("GET", one.clone(), None).await;
    assert_eq!(got.body, created.body);
    assert!(!got.body.to_string().contains("upstream-secret"));
    // false for insecure_ssl and the older string secret are accepted too
    let alt = json!({"events": ["shopping_order_update"], "config": {"url": "https://hooks.example.com/in", "insecure_ssl": false, "secret": "plain"}});
    let r = call("POST", subs(), Some(alt)).await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.body["config"]["secret"], json!({"type": "HMAC-SHA1"}));
    // a rotated secret keeps the shape
    let rotated =
        call("PUT", one.clone(), Some(json!({"config": {"secret": {"type": "HMAC-SHA1", "value": "next"}}}))).await;
    assert_eq!(rotated.status, 200, "{}", rotated.body);
    assert_eq!(rotated.body["config"]["secret"], json!({"type": "HMAC-SHA1"}));

    let base = |config: Value| json!({"events": ["shopping_order_update"], "config": config});
    for (bad, path) in [
        (base(json!({"url": "https://e.example", "insecure_ssl": 1})), "config.insecure_ssl"),
        (base(json!({"url": "https://e.example", "insecure_ssl": true})), "config.insecure_ssl"),
        (base(json!({"url": "https://e.example", "insecure_ssl": "no"})), "config.insecure_ssl"),
        (base(json!({"url": "https://e.example", "content_type": "text/xml"})), "config.content_type"),
        (base(json!({"url": "https://e.example", "secret": {"type": "HMAC-MD5", "value": "x"}})), "config.secret.type"),
        (
            base(json!({"url": "https://e.example", "secret": {"type": "HMAC-SHA1", "value": ""}})),
            "config.secret.value",
        ),
        (
            json!({"events": ["shopping_order_update"], "config": {"url": "https://e.example"}, "fields": "order(id"}),
            "fields",
        ),
        (
            json!({"events": ["shopping_order_update"], "config": {"url": "https://e.example"}, "exclude_fields": ["a//b"]}),
            "exclude_fields[0]",
        ),
    ] {
        let r = call("POST", subs(), Some(bad.clone())).await;
        assert_eq!(r.status, 400, "{bad}: {}", r.body);
        assert_eq!(r.body["error"]["errors"][0]["path"], path, "{bad}: {}", r.body);
    }
    // a bad update changes nothing
    let r = call("PUT", one.clone(), Some(json!({"config": {"insecure_ssl": 1}}))).await;
    assert_eq!(r.status, 400);
    assert_eq!(call("GET", one.clone(), None).await.body["updated_at"], rotated.body["updated_at"]);
    // recover: a window is required and well-formed
    for (bad, path) in [
        (json!({}), "since"),
        (json!({"since": "yesterday"}), "since"),
        (json!({"since": "2026-12-02T00:00:00Z", "until": "2026-12-01T00:00:00Z"}), "until"),
    ] {
        let r = call("POST", format!("{one}/recover"), Some(bad.clone())).await;
        assert_eq!(r.status, 400, "{bad}: {}", r.body);
        assert_eq!(r.body["error"]["errors"][0]["path"], path, "{bad}");
    }
    let r = call("POST", format!("{one}/recover"), Some(json!({"since": "2020-01-01T00:00:00Z"}))).await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.body["queued"], 0, "{}", r.body);
}

on_both_engines!(subscriptions_api, upstream_shaped_subscriptions);

// ---------------------------------------------------------------- local end to end

/// What a receiver saw: (path, headers, body).
struct Local {
    router: axum::Router,
    token: String,
    hooks: String,
}

const SECRET: &[u8] = b"e2e-secret-e2e-secret-e2e-secret!!";

impl Local {
    async fn start(dir: &std::path::Path) -> Self {
        let clock: Arc<dyn infra::Clock> = Arc::new(infra::SystemClock::default());
        let store = Arc::new(infra::sqlite::SqliteStore::open(&dir.join("s.db"), clock.clone()).unwrap());
        let state = AppState::local(store.clone(), clock.clone(), Auth::hs256(SECRET)).allow_loopback(true);
        let client = infra::webhook::WebhookClient::new(Arc::new(infra::webhook::SystemResolver), true).unwrap();
        tokio::spawn(functions::workers::publisher::run_local(store, clock.clone()));
        tokio::spawn(functions::workers::deliverer::run_local(state.clone(), client));
        let claims =
            |scope: &str| Claims { aid: AID.into(), scope: scope.into(), sub: "e2e".into(), exp: clock.epoch() + 3600 };
        Self {
            router: functions::app(state),
            token: sign(&claims("admin:shopping"), SECRET).unwrap(),
            hooks: sign(&claims("admin:hooks"), SECRET).unwrap(),
        }
    }

    async fn call(&self, token: &str, method: &str, path: &str, body: Option<Value>) -> Value {
        use tower::ServiceExt;
        let req = axum::http::Request::builder()
            .method(method)
            .uri(path)
            .header("authorization", format!("Bearer {token}"))
            .body(body.map_or_else(axum::body::Body::empty, |b| axum::body::Body::from(b.to_string())))
            .unwrap();
        let res = self.router.clone().oneshot(req).await.unwrap();
        let status = res.status();
        let bytes = http_body_util::BodyExt::collect(res.into_body()).await.unwrap().to_bytes();
        assert!(status.is_success(), "{method} {path}: {status} {}", String::from_utf8_lossy(&bytes));
        serde_json::from_slice(&bytes).unwrap_or(Value::Null)
    }

    /// The subscription's deliveries list once it holds a delivery (within 10 s).
    async fn first_deliveries(&self, hid: &str) -> Value {
        let start = Instant::now();
        loop {
            let list = self.call(&self.hooks, "GET", &format!("{}/{hid}/deliveries", subs()), None).await;
            if list.as_array().is_some_and(|l| !l.is_empty()) {
                return list;
            }
            assert!(start.elapsed() < Duration::from_secs(10), "no delivery recorded");
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
    }

    async fn subscribe(&self, port: u16, path: &str, events: &[&str]) -> String {
        let body = json!({"events": events, "config": {"url": format!("http://127.0.0.1:{port}{path}"), "secret": "whsec-local"}});
        self.call(&self.hooks, "POST", &subs(), Some(body)).await["id"].as_str().unwrap().to_owned()
    }
}

async fn wait_for(what: &str, within: Duration, mut done: impl FnMut() -> bool) {
    let start = Instant::now();
    while !done() {
        assert!(start.elapsed() < within, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn local_deliveries_are_signed_retried_and_isolated() {
    let dir = tempfile::tempdir().unwrap();
    let local = Local::start(dir.path()).await;
    let (port, seen) = receiver().await;
    let all = domain::webhook::TYPES;
    let ok = local.subscribe(port, "/ok", &all).await;
    let dead = local.subscribe(port, "/dead", &all).await;

    // both get their ping
    wait_for("the pings", Duration::from_secs(10), || {
        let s = seen.lock().unwrap();
        s.iter().filter(|(_, h, _)| h.get("event").is_some_and(|e| e == "ping")).count() >= 2
    })
    .await;

    // a burst of shopping events: the live receiver gets every one within a second, though
    // the other receiver fails every attempt
    let d = local
        .call(
            &local.token,
            "POST",
            &drafts_path(),
            Some(json!({"order": {"currency": "NOK", "items": [item(1, 100)]}})),
        )
        .await;
    let draft = format!("{}/{}", drafts_path(), d["id"].as_str().unwrap());
    local.call(&local.token, "POST", &format!("{draft}/items"), Some(item(2, 50))).await;
    let done = local.call(&local.token, "PUT", &format!("{draft}/complete"), None).await;
    let order = format!("/v1/accounts/{AID}/shopping/orders/{}", done["orders"][0]["id"].as_str().unwrap());
    local.call(&local.token, "PUT", &order, Some(json!({"courier_id": "bring"}))).await;
    let written = Instant::now();
    // add, update, complete; order event_add (completion); update + event_add (PUT)
    let wanted = [
        "shopping_draft_add",
        "shopping_draft_update",
        "shopping_draft_complete",
        "shopping_order_event_add",
        "shopping_order_update",
    ];
    wait_for("every event at the live receiver", Duration::from_secs(10), || {
        let s = seen.lock().unwrap();
        let got: std::collections::HashSet<String> = s
            .iter()
            .filter(|(p, _, _)| p == "/ok")
            .filter_map(|(_, h, _)| h.get("event").map(|e| e.to_str().unwrap().to_owned()))
            .collect();
        wanted.iter().all(|w| got.contains(*w))
    })
    .await;
    // Within a second on an idle machine; the bound leaves room for a loaded test run, and
    // stays below the dead receiver's retry schedule (1 s + 2 s + …), which it must not wait on.
    assert!(written.elapsed() < Duration::from_secs(3), "the live receiver waited {:?}", written.elapsed());
    for (path, headers, body) in seen.lock().unwrap().iter() {
        verify("whsec-local", headers, body);
        let ev: Value = serde_json::from_slice(body).unwrap();
        assert_eq!(ev["account_id"], AID, "{path}");
    }

    // a receiver that fails twice then succeeds gets the event again with the same webhook-id
    let flaky = local.subscribe(port, "/flaky", &["shopping_order_event_add"]).await;
    let ev = json!({"state": "success", "service": "kitchen", "service_status": "ready"});
    local.call(&local.token, "POST", &format!("{order}/events"), Some(ev)).await;
    wait_for("the third attempt at /flaky", Duration::from_secs(20), || {
        seen.lock()
            .unwrap()
            .iter()
            .filter(|(p, h, _)| p == "/flaky" && h.get("event").is_some_and(|e| e != "ping"))
            .count()
            >= 3
    })
    .await;
    let attempts: Vec<(String, String, Bytes)> = seen
        .lock()
        .unwrap()
        .iter()
        .filter(|(p, h, _)| p == "/flaky" && h.get("event").is_some_and(|e| e != "ping"))
        .map(|(_, h, b)| {
            (h["webhook-id"].to_str().unwrap().to_owned(), h["event-delivery"].to_str().unwrap().to_owned(), b.clone())
        })
        .collect();
    assert!(attempts.windows(2).all(|w| w[0].0 == w[1].0 && w[0].2 == w[1].2), "same id and bytes on every retry");
    assert!(attempts.windows(2).all(|w| w[0].1 == w[1].1), "one event-delivery per event and subscription");

    // the deliveries list shows each attempt, with why it failed (the record of the last
    // attempt is written just after the receiver answered it)
    let mut list = Value::Null;
    let start = Instant::now();
    while !list.as_array().is_some_and(|ds| ds.iter().any(|d| d["outcome"] == "delivered" && d["event"] != "ping")) {
        assert!(start.elapsed() < Duration::from_secs(10), "the delivered attempt was never recorded: {list}");
        tokio::time::sleep(Duration::from_millis(25)).await;
        list = local.call(&local.hooks, "GET", &format!("{}/{flaky}/deliveries", subs()), None).await;
    }
    let outcomes: Vec<&str> = list.as_array().unwrap().iter().map(|d| d["outcome"].as_str().unwrap()).collect();
    assert!(outcomes.contains(&"delivered") && outcomes.contains(&"failed"), "{outcomes:?}");
    let failed = list.as_array().unwrap().iter().find(|d| d["outcome"] == "failed").unwrap();
    assert_eq!(failed["status"], 503);
    for key in ["id", "event_delivery", "created_at", "status"] {
        assert!(failed.get(key).is_some(), "the upstream's {key}");
    }
    assert_eq!(failed["event_delivery"], attempts[0].1.as_str());
    assert!(!list.to_string().contains("whsec-local"), "no secret in the deliveries list");
    // one attempt in detail: what was sent, what came back, how long it took
    let detail = local
        .call(&local.hooks, "GET", &format!("{}/{flaky}/deliveries/{}", subs(), failed["id"].as_str().unwrap()), None)
        .await;
    assert_eq!(detail["request"]["headers"]["event-delivery"], attempts[0].1.as_str());
    assert_eq!(detail["request"]["headers"]["event"], "shopping_order_event_add");
    assert!(detail["request"]["headers"]["event-signature"].is_string());
    assert_eq!(detail["request"]["body"], serde_json::from_slice::<Value>(&attempts[0].2).unwrap());
    assert!(detail["response"]["body"].is_string() && detail["response"]["headers"].is_object());
    assert_eq!(detail["details"]["delivery_success"], false);
    assert!(detail["details"]["delivery_duration"].is_u64() && detail["details"]["delivery_at"].is_string());
    assert!(detail["details"]["reason"].as_str().unwrap().contains("503"));
    assert!(detail["url"].as_str().unwrap().ends_with("/flaky"));

    // redelivery sends the same event again
    let delivered =
        list.as_array().unwrap().iter().find(|d| d["outcome"] == "delivered" && d["event"] != "ping").unwrap();
    let before = seen.lock().unwrap().iter().filter(|(p, _, _)| p == "/flaky").count();
    local
        .call(
            &local.hooks,
            "POST",
            &format!("{}/{flaky}/deliveries/{}/redeliver", subs(), delivered["id"].as_str().unwrap()),
            None,
        )
        .await;
    wait_for("the redelivery", Duration::from_secs(10), || {
        seen.lock().unwrap().iter().filter(|(p, _, _)| p == "/flaky").count() > before
    })
    .await;
    let last = seen.lock().unwrap().iter().filter(|(p, _, _)| p == "/flaky").last().unwrap().1.clone();
    assert_eq!(last["webhook-id"].to_str().unwrap(), attempts[0].0);

    // the dead receiver's deliveries are failing, and end dead after 5 attempts
    let dead_list = local.call(&local.hooks, "GET", &format!("{}/{dead}/deliveries", subs()), None).await;
    assert!(dead_list.as_array().unwrap().iter().all(|d| d["outcome"] != "delivered"));
    let _ = ok;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redirects_are_failures_and_never_followed() {
    let dir = tempfile::tempdir().unwrap();
    let local = Local::start(dir.path()).await;
    let (port, seen) = receiver().await;
    let hid = local.subscribe(port, "/redirect", &["shopping_draft_add"]).await;
    let list = local.first_deliveries(&hid).await;
    let first = &list[0];
    assert_eq!(first["outcome"], "failed");
    let detail = local
        .call(&local.hooks, "GET", &format!("{}/{hid}/deliveries/{}", subs(), first["id"].as_str().unwrap()), None)
        .await;
    assert!(detail["details"]["reason"].as_str().unwrap().contains("redirect"), "{detail}");
    assert_eq!(seen.lock().unwrap().len(), 1, "the Location was not followed");
}

/// A receiver that gives no answer (nothing listens on its port) is recorded as a typed client
/// can read it: `status` 0 and an empty `response`, with the reason; what was sent names the
/// sender in `User-Agent`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unanswered_delivery_shows_status_0_and_an_empty_response() {
    let dir = tempfile::tempdir().unwrap();
    let local = Local::start(dir.path()).await;
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let hid = local.subscribe(port, "/gone", &["shopping_draft_add"]).await;
    let list = local.first_deliveries(&hid).await;
    assert_eq!((list[0]["outcome"].as_str(), list[0]["status"].as_u64()), (Some("failed"), Some(0)), "{list}");
    let detail = local
        .call(&local.hooks, "GET", &format!("{}/{hid}/deliveries/{}", subs(), list[0]["id"].as_str().unwrap()), None)
        .await;
    assert_eq!(detail["status"], 0);
    assert_eq!(detail["response"], json!({"headers": {}, "body": ""}));
    assert!(detail["details"]["reason"].as_str().is_some_and(|r| !r.is_empty()), "{detail}");
    let agent = detail["request"]["headers"]["user-agent"].as_str().unwrap_or_default();
    assert_eq!(agent, concat!("Shopping-Webhooks/", env!("CARGO_PKG_VERSION")));
}

/// An order removed by its `time_to_live` publishes its expiry (the emptied order, one
/// version on) to subscribers, and its remaining items are cleaned up; the stub that keeps it
/// readable stays.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_expired_order_is_published_and_cleaned_up() {
    let dir = tempfile::tempdir().unwrap();
    let clock = Arc::new(infra::clock::ManualClock::at(common::T0));
    let store = Arc::new(infra::sqlite::SqliteStore::open(&dir.path().join("s.db"), clock.clone()).unwrap());
    let api = Api::with(store.clone(), clock.clone(), None);
    let hooks = api.token_for(AID, "admin:hooks", 3600);
    let body = json!({"events": ["shopping_order_update"], "config": {"url": "http://127.0.0.1:9/expired"}});
    let r = api.call_as(Some(&hooks), "POST", &subs(), Some(body), None).await;
    assert_eq!(r.status, 200, "{}", r.body);
    let hid = r.body["id"].as_str().unwrap().to_owned();

    let draft =
        json!({"options": {"order_time_to_live": 86_400}, "order": {"currency": "NOK", "items": [item(1, 100)]}});
    let d = api.call("POST", &drafts_path(), Some(draft)).await;
    let done = api.call("PUT", &format!("{}/{}/complete", drafts_path(), d.body["id"].as_str().unwrap()), None).await;
    let id = done.body["orders"][0]["id"].as_str().unwrap().to_owned();
    let order = format!("/v1/accounts/{AID}/shopping/orders/{id}");
    assert_eq!(api.call("POST", &format!("{order}/comments"), Some(json!({"body": "hi"}))).await.status, 200);
    let clock_ref: &dyn infra::Clock = clock.as_ref();
    while functions::workers::publisher::drain_local(&store, clock_ref, 100).await.unwrap() > 0 {}
    let queue = |store: Arc<infra::sqlite::SqliteStore>| async move {
        let q = infra::Query { sk: infra::SkCond::Any, ..infra::Query::partition(domain::hooks::QUEUE_PK) };
        infra::query_all(store.as_ref(), q).await.unwrap()
    };
    let before = queue(store.clone()).await.len();

    clock.advance(2 * 86_400);
    assert!(store.sweep().await.unwrap() > 0);
    while functions::workers::publisher::drain_local(&store, clock_ref, 100).await.unwrap() > 0 {}

    let jobs: Vec<domain::hooks::Pending> =
        queue(store.clone()).await.iter().map(|i| serde_json::from_str(&i.doc).unwrap()).collect();
    assert_eq!(jobs.len(), before + 1, "one more job: the expiry");
    let expiry = jobs.iter().find(|p| p.body.contains("\"deleted_at\"")).expect("the expiry event is queued");
    assert_eq!((expiry.hook_id.as_str(), expiry.event.as_str()), (hid.as_str(), "shopping_order_update"));
    let ev: Value = serde_json::from_str(&expiry.body).unwrap();
    let now = api.call("GET", &order, None).await;
    assert_eq!(ev["order"], now.body, "the event carries the order as it now reads");

    let left = infra::query_all(
        store.as_ref(),
        infra::Query { sk: infra::SkCond::Any, ..infra::Query::partition(domain::table::order_pk(AID, &id)) },
    )
    .await
    .unwrap();
    let sks: Vec<&str> = left.iter().map(|i| i.sk.as_str()).collect();
    assert_eq!(sks, [domain::table::STUB_SK], "only the stub is left");

    // a replayed removal queues nothing twice
    assert_eq!(
        functions::workers::deliverer::enqueue(store.as_ref(), &[serde_json::from_str(&expiry.body).unwrap()], 0)
            .await
            .unwrap(),
        0
    );
}
