//! What each API call costs in DynamoDB capacity units — the bill of a pay-per-request tenant.
//!
//! Runs typical calls through the whole API over a metering store and prices every write and
//! read with DynamoDB's rules: item size = attribute names + values; a write costs 1 WCU per
//! KB per item, 2 inside a transaction, plus 1 per KB for each GSI the item is projected into
//! (projection ALL); a strongly consistent read 1 RCU per 4 KB (a query
//! sums the items it returns; an index query is eventually consistent: half).
//!
//! Next to each figure it prices the same documents in a naive layout (whole document as one
//! plain attribute map, one `PutItem`, every GSI projecting all) and prints the ratio.
//!
//! `cargo test -p shopping-tests --bench capacity_units -- --nocapture` (item sizes, hence the
//! figures, do not depend on the optimisation level, so the debug build is used).

use async_trait::async_trait;
use axum::body::Body;
use axum::http::Request;
use domain::table::{Item, Key, WriteOp};
use functions::edge::auth::{sign, Auth, Claims};
use functions::edge::state::AppState;
use http_body_util::BodyExt;
use infra::clock::ManualClock;
use infra::{Page, Query, Store, StoreError};
use serde_json::{json, Value};
use std::sync::{Arc, Mutex};
use tower::ServiceExt;

#[derive(Default)]
struct Meter {
    /// Write units of the same documents stored naively (see [`naive_wcu`]).
    naive_wcu: f64,
    wcu: f64,
    /// Of `wcu`, what the outbox consumer writes (history items) after the call.
    consumer_wcu: f64,
    rcu: f64,
    writes: usize,
    items_written: usize,
    bytes: usize,
}

impl Meter {
    /// Adds another call's figures (a lifecycle is the sum of its calls).
    fn add(&mut self, x: &Meter) {
        self.naive_wcu += x.naive_wcu;
        self.wcu += x.wcu;
        self.consumer_wcu += x.consumer_wcu;
        self.rcu += x.rcu;
        self.writes += x.writes;
        self.items_written += x.items_written;
        self.bytes += x.bytes;
    }
}

struct Metered {
    inner: Arc<infra::sqlite::SqliteStore>,
    meter: Mutex<Meter>,
}

/// Sizes as the DynamoDB engine stores items (large documents deflated).
fn size(i: &Item) -> usize {
    infra::dynamo::item_size(i)
}

/// DynamoDB's size of a JSON value stored as a native attribute: strings by length, numbers
/// by (digits / 2) + 1, booleans and nulls 1 byte, maps and lists 3 bytes plus 1 per element
/// plus their contents (and, for maps, the member names).
fn attr_size(v: &Value) -> usize {
    match v {
        Value::String(s) => s.len(),
        Value::Number(n) => n.to_string().trim_start_matches('-').replace('.', "").len().div_ceil(2) + 1,
        Value::Bool(_) | Value::Null => 1,
        Value::Array(a) => 3 + a.iter().map(|x| 1 + attr_size(x)).sum::<usize>(),
        Value::Object(m) => 3 + m.iter().map(|(k, x)| 1 + k.len() + attr_size(x)).sum::<usize>(),
    }
}

/// The baseline: each draft or order a write changes, stored naively — the whole document as
/// one plain attribute map (keys and index keys added), one `PutItem`, no event items, every
/// GSI projecting all attributes.
fn naive_wcu(ops: &[WriteOp]) -> f64 {
    ops.iter()
        .filter_map(|op| match op {
            WriteOp::Put { item, .. } if item.sk == "DRAFT" || item.sk == "ORDER" => Some(item),
            _ => None,
        })
        .map(|item| {
            let doc: Value = serde_json::from_str(&item.doc).unwrap_or(Value::Null);
            let Value::Object(fields) = doc else { return 0.0 };
            let keys = [("pk", &item.pk), ("sk", &item.sk)]
                .into_iter()
                .chain(item.gsi1pk.iter().map(|v| ("gsi1pk", v)))
                .chain(item.gsi1sk.iter().map(|v| ("gsi1sk", v)))
                .chain(item.gsi2pk.iter().map(|v| ("gsi2pk", v)))
                .chain(item.gsi2sk.iter().map(|v| ("gsi2sk", v)))
                .map(|(k, v)| k.len() + v.len())
                .sum::<usize>();
            let bytes = keys + fields.iter().map(|(k, v)| k.len() + attr_size(v)).sum::<usize>();
            let indexes = usize::from(item.gsi1pk.is_some()) + usize::from(item.gsi2pk.is_some());
            (bytes as f64 / 1024.0).ceil().max(1.0) * (1 + indexes) as f64
        })
        .sum()
}

/// The naive price of rewriting a whole order (as the API shows it, operations included) as
/// one plain attribute map, with both indexes projecting all.
fn naive_order_wcu(order: &Value) -> f64 {
    let Value::Object(fields) = order else { return 0.0 };
    let keys = 120; // pk, sk and the two index key pairs
    let bytes = keys + fields.iter().map(|(k, v)| k.len() + attr_size(v)).sum::<usize>();
    (bytes as f64 / 1024.0).ceil().max(1.0) * 3.0
}

/// What the indexes hold of an item (keys, ttl, summary), to tell whether a write changes it.
fn projection(i: &Item) -> Item {
    i.projected()
}

#[async_trait]
impl Store for Metered {
    async fn get(&self, key: &Key) -> Result<Option<Item>, StoreError> {
        let r = self.inner.get(key).await?;
        let bytes = r.as_ref().map_or(0, size);
        self.meter.lock().unwrap().rcu += (bytes.max(1) as f64 / 4096.0).ceil();
        Ok(r)
    }
    async fn get_many(&self, keys: &[Key]) -> Result<Vec<Item>, StoreError> {
        let r = self.inner.get_many(keys).await?;
        // BatchGetItem bills each item on its own, rounded up to 4 KB.
        let units: f64 = r.iter().map(|i| (size(i).max(1) as f64 / 4096.0).ceil()).sum();
        self.meter.lock().unwrap().rcu += units.max(if keys.is_empty() { 0.0 } else { 1.0 });
        Ok(r)
    }
    async fn query(&self, q: &Query) -> Result<Page, StoreError> {
        let r = self.inner.query(q).await?;
        let bytes: usize = r.items.iter().map(size).sum();
        let units = (bytes.max(1) as f64 / 4096.0).ceil();
        self.meter.lock().unwrap().rcu += if q.index.is_some() { units / 2.0 } else { units };
        Ok(r)
    }
    async fn write(&self, ops: Vec<WriteOp>) -> Result<(), StoreError> {
        let factor = if ops.len() > 1 { 2.0 } else { 1.0 };
        let units: f64 = ops
            .iter()
            .map(|op| match op {
                WriteOp::Put { item, .. } => (size(item) as f64 / 1024.0).ceil().max(1.0) * factor,
                _ => factor,
            })
            .sum();
        // Index replication is billed as ordinary (non-transactional) writes, and happens only
        // when what an index holds of the item (keys, ttl, summary) changes.
        let mut index_units = 0.0;
        for op in &ops {
            let WriteOp::Put { item, .. } = op else { continue };
            let before = self.inner.get(&item.key()).await?;
            if before.as_ref().map(projection) == Some(projection(item)) {
                continue;
            }
            let indexes = usize::from(item.gsi1pk.is_some()) + usize::from(item.gsi2pk.is_some());
            index_units += indexes as f64 * (infra::limits::projected_size(item) as f64 / 1024.0).ceil().max(1.0);
        }
        let n = ops.len();
        let ops_bytes: usize =
            ops.iter().map(|op| if let WriteOp::Put { item, .. } = op { size(item) } else { 0 }).sum();
        let naive = naive_wcu(&ops);
        let r = self.inner.write(ops).await;
        if r.is_ok() {
            let mut m = self.meter.lock().unwrap();
            m.naive_wcu += naive;
            m.wcu += units + index_units;
            m.bytes += ops_bytes;
            m.writes += 1;
            m.items_written += n;
        }
        r
    }
}

struct Bench {
    router: axum::Router,
    store: Arc<Metered>,
    token: String,
}

impl Bench {
    async fn call(&self, method: &str, path: &str, body: Option<Value>) -> (Value, Meter) {
        *self.store.meter.lock().unwrap() = Meter::default();
        let req = Request::builder()
            .method(method)
            .uri(path)
            .header("authorization", format!("Bearer {}", self.token))
            .body(body.map_or_else(Body::empty, |b| Body::from(b.to_string())))
            .unwrap();
        let res = self.router.clone().oneshot(req).await.unwrap();
        assert!(res.status().is_success(), "{method} {path}: {}", res.status());
        let bytes = res.into_body().collect().await.unwrap().to_bytes();
        let api_wcu = self.store.meter.lock().unwrap().wcu;
        // The outbox consumer's history writes are billed to the tenant too: run it now,
        // through the meter, as the stream would shortly after the call.
        let entries = self.store.inner.outbox_read(1000).await.unwrap();
        for e in &entries {
            functions::workers::publisher::record_history(self.store.as_ref(), &e.item).await.unwrap();
        }
        if let Some(last) = entries.last() {
            self.store.inner.outbox_ack(last.seq).await.unwrap();
        }
        let mut meter = std::mem::take(&mut *self.store.meter.lock().unwrap());
        meter.consumer_wcu = meter.wcu - api_wcu;
        (serde_json::from_slice(&bytes).unwrap(), meter)
    }
}

/// Stores `n` two-item orders in account `aid`, one a second apart; every 100th is closed,
/// travels by ferry and has an external id starting `EXT-`.
async fn seed_orders(store: &infra::sqlite::SqliteStore, aid: &str, n: usize) {
    let mut ops = Vec::new();
    for k in 0..n {
        let closed = k % 100 == 0;
        let ts = domain::ids::timestamp(domain::ids::from_epoch(1_700_000_000 + k as i64).unwrap());
        let order: domain::model::Order = serde_json::from_value(json!({
            "id": format!("00000000-0000-4000-8000-{k:012}"), "created_at": ts, "updated_at": ts,
            "status": if closed { "closed" } else { "open" }, "payment_status": "pending", "currency": "NOK", "version": 0,
            "customer": {"id": format!("cust-{}", k % 500), "email": "kari@example.com"},
            "itinerary": [{"travel_mode": if closed { "FERRY" } else { "BUS" }}],
            "external_ids": [{"id": if closed { format!("EXT-{k}") } else { format!("ERP-{k}") }}],
            "items": [item(1, None), item(2, None)], "gross_amount": 79600, "net_amount": 79600,
        }))
        .unwrap();
        ops.push(WriteOp::Put { item: domain::order::order_items(aid, &order, None).header, cond: None });
        if ops.len() == 100 {
            store.write(std::mem::take(&mut ops)).await.unwrap();
        }
    }
    if !ops.is_empty() {
        store.write(ops).await.unwrap();
    }
}

fn item(line: i64, store: Option<&str>) -> Value {
    let mut i = json!({"line_id": line, "id": format!("SKU-{line:05}"), "description": "Stoneware mug, 35 cl, blue",
        "quantity": 2, "gross_amount": 39800, "tax_lines": [{"percentage": 25, "amount": 7960, "tax_code": "3"}],
        "groups": [{"id": "kitchen", "name": "Kitchen"}]});
    if let Some(s) = store {
        i["store"] = json!({"id": s, "name": format!("Store {s}")});
    }
    i
}

#[tokio::main]
async fn main() {
    let dir = tempfile::tempdir().unwrap();
    let clock = Arc::new(ManualClock::at(1_800_000_000));
    let inner = Arc::new(infra::sqlite::SqliteStore::open(&dir.path().join("s.db"), clock.clone()).unwrap());
    let store = Arc::new(Metered { inner, meter: Mutex::new(Meter::default()) });
    let secret = b"bench-secret-bench-secret-bench-secret";
    let state = AppState::local(store.clone(), clock.clone(), Auth::hs256(secret)).with_limiter(
        // The bench measures the API, not the per-account limit (README, "Per-account limits").
        functions::edge::limit::Limiter::new(
            store.clone(),
            clock.clone(),
            domain::ratelimit::Limit::new(1_000_000, 1_000_000),
        ),
    );
    let claims =
        Claims { aid: "T12345678".into(), scope: "admin:shopping".into(), sub: "bench".into(), exp: 1_900_000_000 };
    let b = Bench { router: functions::app(state), store, token: sign(&claims, secret).unwrap() };
    let secret: &[u8] = secret;
    let base = "/v1/accounts/T12345678/shopping/draft_orders";
    let order = json!({"currency": "NOK", "customer": {"id": "cust-1", "email": "kari@example.com", "first_name": "Kari", "last_name": "Nordmann"},
        "shipping_address": {"address_line": "Storgata 1", "postal_code": "0155", "postal_place": "Oslo", "country": "NO"}});

    let mut rows = Vec::new();

    // The budget's typical lifecycle: draft with 3 items, add 1, complete, GET with events.
    let mut three = order.clone();
    three["items"] = json!([item(1, None), item(2, None), item(3, None)]);
    let mut life = Meter::default();
    let (d, m) = b.call("POST", base, Some(json!({"order": three}))).await;
    let lp = format!("{base}/{}", d["id"].as_str().unwrap());
    let (_, m2) = b.call("POST", &format!("{lp}/items"), Some(item(4, None))).await;
    let (done, m3) = b.call("PUT", &format!("{lp}/complete"), None).await;
    let oid = done["orders"][0]["id"].as_str().unwrap().to_owned();
    let (_, m4) =
        b.call("GET", &format!("/v1/accounts/T12345678/shopping/orders/{oid}?include_events=true"), None).await;
    for x in [m, m2, m3, m4] {
        life.add(&x);
    }

    let mut with_items = order.clone();
    with_items["items"] = json!([item(1, None), item(2, None)]);
    let (d, m) = b.call("POST", base, Some(json!({"order": with_items}))).await;
    rows.push(("create draft (2 items)", m));
    let path = format!("{base}/{}", d["id"].as_str().unwrap());
    let (_, m) = b.call("POST", &format!("{path}/items"), Some(item(3, None))).await;
    rows.push(("add item (3rd)", m));
    let (_, m) = b.call("PUT", &format!("{path}/items/3"), Some(item(3, None))).await;
    rows.push(("update item", m));
    let (_, m) = b.call("GET", &path, None).await;
    rows.push(("get draft (4 events)", m));
    let (done, m) = b.call("PUT", &format!("{path}/complete"), None).await;
    rows.push(("complete (1 order)", m));
    let (_, m) = b
        .call(
            "GET",
            &format!("/v1/accounts/T12345678/shopping/orders/{}", done["orders"][0]["id"].as_str().unwrap()),
            None,
        )
        .await;
    rows.push(("get order", m));
    // Every order endpoint, on the order just completed.
    let op = format!("/v1/accounts/T12345678/shopping/orders/{}", done["orders"][0]["id"].as_str().unwrap());
    let (_, m) =
        b.call("PUT", &op, Some(json!({"courier_id": "bring", "items": [{"line_id": 1, "status": "picked"}]}))).await;
    rows.push(("update order", m));
    let (_, m) = b.call("POST", &format!("{op}/close"), None).await;
    rows.push(("close order", m));
    let (_, m) = b.call("POST", &format!("{op}/open"), None).await;
    rows.push(("open order", m));
    let (o, m) = b.call("POST", &format!("{op}/comments"), Some(json!({"body": "Leave it at the door"}))).await;
    rows.push(("add comment", m));
    let cid = o["comments"][0]["id"].as_str().unwrap().to_owned();
    let (_, m) = b.call("DELETE", &format!("{op}/comments/{cid}"), None).await;
    rows.push(("delete comment", m));
    let ev = json!({"state": "success", "service": "kitchen", "service_status": "ready_for_pickup"});
    let (_, m) = b.call("POST", &format!("{op}/events"), Some(ev)).await;
    rows.push(("add service event", m));
    let (_, m) = b.call("GET", &format!("{op}/events"), None).await;
    rows.push(("list events (8)", m));
    let session = json!({"items": [{"line_id": 1}], "profile_id": "default", "url": {"return_url": "https://example.com/accept"}});
    let (s, m) = b.call("POST", &format!("{op}/sessions"), Some(session)).await;
    rows.push(("create session", m));
    let (_, m) = b.call("GET", &format!("{op}/sessions"), None).await;
    rows.push(("list sessions", m));
    let (_, m) = b.call("GET", &format!("{op}/sessions/{}", s["id"].as_str().unwrap()), None).await;
    rows.push(("get session", m));
    let (_, m) = b.call("GET", &format!("{op}?include_events=true"), None).await;
    rows.push(("get order with events (9)", m));
    let (_, m) = b.call("POST", &format!("{op}/cancel"), Some(json!({"cancelled_reason": "customer"}))).await;
    rows.push(("cancel order", m));
    let (_, m) = b.call("GET", "/v1/accounts/T12345678/shopping/orders?limit=10", None).await;
    rows.push(("list orders (limit 10)", m));
    let (_, m) = b.call("GET", "/v1/accounts/T12345678/shopping/customers/cust-1/orders?limit=10", None).await;
    rows.push(("customer view (limit 10)", m));
    let (_, m) = b.call("GET", "/v1/accounts/T12345678/shopping/stores/s1/orders?limit=10", None).await;
    rows.push(("store view (limit 10)", m));

    let mut split = order.clone();
    split["items"] = json!([item(1, Some("s1")), item(2, Some("s2")), item(3, Some("s3"))]);
    let (d, _) = b.call("POST", base, Some(json!({"options": {"split_draft": true}, "order": split}))).await;
    let (_, m) = b.call("PUT", &format!("{base}/{}/complete", d["id"].as_str().unwrap()), None).await;
    rows.push(("complete (split, 3 orders)", m));
    let (_, m) = b.call("GET", &format!("{base}?limit=10"), None).await;
    rows.push(("list drafts (limit 10)", m));

    rows.push(("lifecycle: 3 items, +1, complete, GET with events", life));

    // Payments: each operation on an order of 3 items, and the payment lifecycle (draft with 3
    // items → complete → authorize → capture → refund). The naive layout rewrites the whole
    // order — its operations included — as one plain attribute map on every change.
    let mut three = order.clone();
    three["items"] = json!([item(1, None), item(2, None), item(3, None)]);
    let mut pay = Meter::default();
    let (d, m1) = b.call("POST", base, Some(json!({"order": three}))).await;
    let (done, m2) = b.call("PUT", &format!("{base}/{}/complete", d["id"].as_str().unwrap()), None).await;
    let op = format!("/v1/accounts/T12345678/shopping/orders/{}", done["orders"][0]["id"].as_str().unwrap());
    let lines = |amount: i64| {
        json!({"items": [{"line_id": 1, "amount": amount}, {"line_id": 2, "amount": amount}, {"line_id": 3, "amount": amount}],
        "processed_at": "2026-11-22T12:00:00Z", "processed_by": "dintero-checkout",
        "payment_details": {"psp": "Bambora", "payment_product_type": "bambora.creditcard", "card": {"masked_pan": "4444 **** **** 4448", "brand": "Visa"}}})
    };
    let mut steps = vec![m1, m2];
    for (name, kind, amount) in [
        ("authorize (3 lines)", "authorizations", 39800),
        ("capture (3 lines)", "captures", 30000),
        ("refund (3 lines)", "refunds", 10000),
        ("cancel the rest (3 lines)", "cancellations", 9800),
    ] {
        let (_, mut m) = b.call("POST", &format!("{op}/{kind}"), Some(lines(amount))).await;
        let (whole, _) = b.call("GET", &op, None).await;
        m.naive_wcu = naive_order_wcu(&whole);
        if kind != "cancellations" {
            steps.push(Meter { naive_wcu: m.naive_wcu, ..m });
        }
        rows.push((name, m));
    }
    for x in steps {
        pay.add(&x);
    }
    let (_, m) = b.call("GET", &format!("{op}/captures"), None).await;
    rows.push(("list captures", m));
    let (_, m) = b.call("GET", &op, None).await;
    rows.push(("get order with 4 operations", m));
    rows.push(("payment lifecycle: 3 items, complete, authorize, capture, refund", pay));

    // A filtered page over a big account: 10,000 orders of which 1 % match (every 100th is
    // closed and goes by ferry), stored directly (not metered), then one page of 10 matches.
    let big = "T00000001";
    let claims = Claims { aid: big.into(), scope: "admin:shopping".into(), sub: "bench".into(), exp: 1_900_000_000 };
    let big_bench = Bench { router: b.router.clone(), store: b.store.clone(), token: sign(&claims, secret).unwrap() };
    seed_orders(&b.store.inner, big, 10_000).await;
    let list = format!("/v1/accounts/{big}/shopping/orders");
    for (name, q) in [
        ("list 10,000 orders, 1 % match, summary filter (status=closed)", "status=closed&limit=10"),
        (
            "list 10,000 orders, 1 % match, summary tag filter (itinerary_travel_mode=FERRY)",
            "itinerary_travel_mode=FERRY&limit=10",
        ),
        ("list 10,000 orders, 1 % match, summary search terms (search=ext-)", "search=ext-&limit=10"),
        ("list 10,000 orders, no filter (limit 10)", "limit=10"),
    ] {
        let (page, m) = big_bench.call("GET", &format!("{list}?{q}"), None).await;
        assert_eq!(page["orders"].as_array().map(Vec::len), Some(10), "{q}");
        rows.push((name, m));
    }
    println!(
        "| call | writes | items written | bytes written | WCU | of which consumer | naive WCU | WCU / naive | RCU |"
    );
    println!("|---|---|---|---|---|---|---|---|---|");
    for (name, m) in rows {
        let ratio = if m.naive_wcu > 0.0 { format!("{:.2}", m.wcu / m.naive_wcu) } else { "–".into() };
        println!(
            "| {name} | {} | {} | {} | {} | {} | {} | {ratio} | {} |",
            m.writes, m.items_written, m.bytes, m.wcu, m.consumer_wcu, m.naive_wcu, m.rcu
        );
    }
    println!("\nbudget (issue 6): the lifecycle at most 1/3 of the naive layout's write units");

    limiter_costs(&b.store, clock).await;
}

/// What the per-account limiter adds (issue 38): a steady tenant at the default limit (100 a
/// second, burst 200) on one instance, at three rates, each for 600 requests in simulated
/// time (`Limiter::check` is given the moment, so this takes no wall time): the write and
/// read units its leases cost per request, through the same metering as above; and the wall
/// time each check takes on the embedded store (a lease is one SQLite read and one committed
/// write), whose p99 is what the limiter adds to a request's p99 on `shopping-local`.
async fn limiter_costs(store: &Arc<Metered>, clock: Arc<ManualClock>) {
    use functions::edge::limit::Limiter;
    println!("\n| steady tenant at the default limit (100/s, burst 200) | requests | leases (writes) | WCU per request | RCU per request | check p50 | check p99 |");
    println!("|---|---|---|---|---|---|---|");
    for (n, per_second) in [(0usize, 20.0f64), (1, 1.0), (2, 0.2)] {
        let aid = format!("T5555555{n}");
        let limiter = Limiter::new(store.clone(), clock.clone(), domain::ratelimit::Limit::DEFAULT);
        *store.meter.lock().unwrap() = Meter::default();
        let mut micros = Vec::new();
        let start_ms = 1_800_000_000_000i64 + n as i64 * 10_000_000;
        let requests = 600;
        for k in 0..requests {
            let now = start_ms + (k as f64 * 1000.0 / per_second) as i64;
            let started = std::time::Instant::now();
            let d = limiter.check(&aid, now).await;
            micros.push(started.elapsed().as_micros() as u64);
            assert!(d.allowed, "a steady tenant under its limit");
        }
        micros.sort_unstable();
        let at = |q: f64| micros[((micros.len() - 1) as f64 * q).round() as usize] as f64 / 1000.0;
        let m = std::mem::take(&mut *store.meter.lock().unwrap());
        println!(
            "| {per_second} requests a second | {requests} | {} | {:.3} | {:.3} | {:.2} ms | {:.2} ms |",
            m.writes,
            m.wcu / requests as f64,
            m.rcu / requests as f64,
            at(0.5),
            at(0.99)
        );
    }
    println!("\nbudget (issue 38): at most 0.1 WCU a request for a steady tenant; at most 2 ms added to a request's p99 on shopping-local");
}
