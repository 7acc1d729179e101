//! A structure-aware fuzzer over the whole router: requests built from the API's own shapes —
//! real and mangled paths, known and junk query parameters, good, foreign, expired and forged
//! tokens, `If-Match` and `Idempotency-Key` values, and JSON bodies made by mutating valid
//! ones (subtrees swapped for extreme numbers, long strings, wrong types, deep nesting) or raw
//! bytes — sent through `app()` with `oneshot` on a store that already holds drafts and orders.
//!
//! Every answer must be below 500, every 4xx in the upstream error shape, and nothing may
//! panic. CI runs a bounded number of cases; for a longer search:
//! `FUZZ_CASES=20000 cargo test -p shopping-tests --test fuzz_router --release -- --nocapture`

mod common;

use axum::body::Body;
use axum::http::Request;
use common::{drafts_path, item, store_item, Api, AID, OTHER};
use proptest::prelude::*;
use proptest::test_runner::{Config, TestRunner};
use serde_json::{json, Value};

const MAX_SAFE: i64 = 9_007_199_254_740_991;

fn cases() -> u32 {
    std::env::var("FUZZ_CASES").ok().and_then(|v| v.parse().ok()).unwrap_or(3000)
}

/// What the store holds before the fuzzer starts: ids the generated paths can hit.
struct Seeded {
    drafts: Vec<String>,
    orders: Vec<String>,
}

async fn seed(api: &Api) -> Seeded {
    let mut drafts = Vec::new();
    let mut orders = Vec::new();
    for n in 0..3 {
        let body = json!({"options": {"generate_order_id": "ALPHANUMERIC_9_RESERVE"}, "order": {"currency": "NOK", "customer": {"id": format!("c{n}")}, "items": [item(1, 100), store_item(2, 200, "s1")]}});
        let d = api.call("POST", &drafts_path(), Some(body)).await;
        drafts.push(d.body["id"].as_str().unwrap_or_default().to_owned());
    }
    let d = api.call("POST", &drafts_path(), Some(json!({"order": {"currency": "NOK", "items": [item(1, 5)]}}))).await;
    let id = d.body["id"].as_str().unwrap_or_default().to_owned();
    let done = api.call("PUT", &format!("{}/{id}/complete", drafts_path()), None).await;
    for o in done.body["orders"].as_array().into_iter().flatten() {
        orders.push(o["id"].as_str().unwrap_or_default().to_owned());
        orders.push(o["order_id"].as_str().unwrap_or_default().to_owned());
    }
    drafts.push(id);
    Seeded { drafts, orders }
}

fn json_leaf() -> impl Strategy<Value = Value> {
    prop_oneof![
        Just(json!(i64::MAX)),
        Just(json!(i64::MIN)),
        Just(json!(MAX_SAFE)),
        Just(json!(-MAX_SAFE)),
        Just(json!(u64::MAX)),
        Just(json!(1e300)),
        Just(json!(-0.5)),
        Just(json!(0)),
        Just(json!(1_000_000_000_000i64)),
        Just(json!(null)),
        Just(json!(true)),
        Just(json!("")),
        Just(json!("9999-12-31T23:59:59-01:00")),
        Just(json!("ALPHANUMERIC_9_RESERVE")),
        Just(Value::String("x".repeat(5000))),
        Just(json!([])),
        Just(json!({})),
        any::<i64>().prop_map(Value::from),
        "\\PC{0,40}".prop_map(Value::String),
    ]
}

fn json_value() -> impl Strategy<Value = Value> {
    json_leaf().prop_recursive(4, 32, 4, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
            prop::collection::btree_map(
                prop_oneof![
                    Just("gross_amount".to_owned()),
                    Just("line_id".to_owned()),
                    Just("amount".to_owned()),
                    Just("tax_lines".to_owned()),
                    Just("items".to_owned()),
                    Just("metadata".to_owned()),
                    "[a-z_]{1,12}",
                ],
                inner,
                0..4
            )
            .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

fn valid_body() -> Value {
    let mut disc = item(3, 1000);
    disc["discount_lines"] = json!([{"amount": 100, "discount_type": "manual"}]);
    json!({"options": {"split_draft": false, "order_time_to_live": 90000, "generate_order_id": "UUID"},
           "order": {"currency": "NOK", "time_to_live": 86400, "customer": {"id": "c1", "email": "a@b.c", "metadata": {"k": 1}},
                     "items": [item(1, 100), store_item(2, 200, "s1"), disc]}})
}

/// Every location in `v`, as a list of steps (object keys or array indices).
fn locations(v: &Value, here: &mut Vec<Value>, out: &mut Vec<Vec<Value>>) {
    out.push(here.clone());
    match v {
        Value::Object(m) => m.iter().for_each(|(k, x)| {
            here.push(json!(k));
            locations(x, here, out);
            here.pop();
        }),
        Value::Array(a) => a.iter().enumerate().for_each(|(i, x)| {
            here.push(json!(i));
            locations(x, here, out);
            here.pop();
        }),
        _ => {}
    }
}

fn replace_at(v: &mut Value, at: &[Value], with: Value) {
    let Some((first, rest)) = at.split_first() else {
        *v = with;
        return;
    };
    let next = match (v, first) {
        (Value::Object(m), Value::String(k)) => m.get_mut(k),
        (Value::Array(a), Value::Number(i)) => i.as_u64().and_then(|i| a.get_mut(i as usize)),
        _ => None,
    };
    if let Some(n) = next {
        replace_at(n, rest, with);
    }
}

/// A valid body (or item) with a few subtrees replaced.
fn mutated_body() -> impl Strategy<Value = Vec<u8>> {
    let bases = prop_oneof![
        Just(valid_body()),
        Just(item(9, 50)),
        Just(json!({"order": {"currency": "NOK"}})),
        // order bodies: update, comment, service event, session, cancel
        Just(json!({"courier_id": "c", "time_to_live": 86400, "items": [{"line_id": 1, "status": "picked"}],
                    "itinerary": [{"travel_mode": "BUS"}], "external_ids": [{"id": "x"}]})),
        Just(json!({"id": "note-1", "body": "hello", "visibility": "private"})),
        Just(json!({"state": "pending", "service": "kitchen", "service_status": "cooking", "metadata": {"a": 1}})),
        Just(json!({"items": [{"line_id": "1"}, {"line_id": 2}], "profile_id": "p",
                    "url": {"return_url": "https://example.com/r"}, "express": {}})),
        Just(json!({"cancelled_reason": "customer"})),
        // a payment operation
        Just(json!({"id": "op-1", "items": [{"line_id": 1, "amount": 2}], "processed_at": "2026-11-22T12:00:00Z",
                    "payment_details": {"psp": "p", "card": {"brand": "Visa", "masked_pan": "4444 **** 4448"}},
                    "authorization_id": "op-1", "success": true})),
    ];
    (bases, prop::collection::vec((any::<prop::sample::Index>(), json_value()), 0..4)).prop_map(|(mut base, edits)| {
        for (at, with) in edits {
            let mut all = Vec::new();
            locations(&base, &mut Vec::new(), &mut all);
            let path = at.get(&all).clone();
            replace_at(&mut base, &path, with);
        }
        base.to_string().into_bytes()
    })
}

fn body() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        6 => mutated_body(),
        1 => json_value().prop_map(|v| v.to_string().into_bytes()),
        1 => prop::collection::vec(any::<u8>(), 0..64),
        1 => (1usize..3000).prop_map(|n| format!("{}1{}", "[".repeat(n), "]".repeat(n)).into_bytes()),
        1 => Just(Vec::new()),
    ]
}

#[derive(Debug, Clone)]
struct Req {
    method: &'static str,
    path: String,
    query: String,
    token: u8,
    if_match: Option<String>,
    idem: Option<String>,
    body: Vec<u8>,
}

fn segment(ids: Vec<String>) -> impl Strategy<Value = String> {
    prop_oneof![
        4 => prop::sample::select(ids),
        1 => Just("00000000-0000-4000-8000-000000000000".to_owned()),
        1 => Just("..".to_owned()),
        1 => Just("%00%ff".to_owned()),
        1 => Just("99999999999999999999".to_owned()),
        1 => "[A-Za-z0-9%._~-]{0,50}",
    ]
}

fn request(seeded: &Seeded) -> impl Strategy<Value = Req> {
    let d = segment(seeded.drafts.clone());
    let o = segment(seeded.orders.clone());
    let line = prop_oneof![
        Just("1".to_owned()),
        Just("2".to_owned()),
        Just("-1".to_owned()),
        Just("9223372036854775808".to_owned()),
        "[0-9a-z]{0,20}"
    ];
    let aid = prop_oneof![8 => Just(AID.to_owned()), 1 => Just(OTHER.to_owned()), 1 => "[A-Z0-9]{0,12}"];
    // Mostly a method the route serves, sometimes any.
    let child = prop_oneof![Just("note-1".to_owned()), "[A-Za-z0-9%._~-]{0,40}"];
    let route = (aid, d, (o, child), line, 0u8..26, any::<prop::sample::Index>(), 0u8..5).prop_map(
        |(aid, d, (o, child), line, shape, pick, wild)| {
            let base = format!("/v1/accounts/{aid}/shopping");
            let (path, methods): (String, &[&'static str]) = match shape {
                0 => (format!("{base}/draft_orders"), &["GET", "POST"]),
                1 | 2 => (format!("{base}/draft_orders/{d}"), &["GET", "PUT", "DELETE"]),
                3 => (format!("{base}/draft_orders/{d}/complete"), &["PUT"]),
                4 => (format!("{base}/draft_orders/{d}/items"), &["POST"]),
                5 => (format!("{base}/draft_orders/{d}/items/{line}"), &["PUT", "DELETE"]),
                6 | 7 => (format!("{base}/orders/{o}"), &["GET", "PUT"]),
                8 => (format!("{base}/orders/{o}/close"), &["POST"]),
                9 => (format!("{base}/orders/{o}/open"), &["POST"]),
                10 => (format!("{base}/orders/{o}/cancel"), &["POST"]),
                11 => (format!("{base}/orders/{o}/comments"), &["POST"]),
                12 => (format!("{base}/orders/{o}/comments/{child}"), &["DELETE"]),
                13 => (format!("{base}/orders/{o}/events"), &["GET", "POST"]),
                14 => (format!("{base}/orders/{o}/sessions"), &["GET", "POST"]),
                15 => (format!("{base}/orders/{o}/sessions/{child}"), &["GET"]),
                16 | 17 => (format!("{base}/orders"), &["GET"]),
                18 => (format!("{base}/customers/{child}/orders"), &["GET"]),
                19 => (format!("{base}/stores/{child}/orders/{o}"), &["GET"]),
                20 => (format!("{base}/customers/c0/orders/{o}"), &["GET"]),
                21 => (format!("{base}/orders/{o}/authorizations"), &["GET", "POST"]),
                22 => (format!("{base}/orders/{o}/captures"), &["GET", "POST"]),
                23 => (format!("{base}/orders/{o}/refunds/{child}"), &["GET"]),
                24 => (format!("{base}/orders/{o}/cancellations"), &["GET", "POST"]),
                _ => (format!("{base}/{d}/{o}"), &["GET"]),
            };
            let any_method: &[&'static str] = &["GET", "POST", "PUT", "DELETE", "PATCH", "HEAD", "OPTIONS"];
            let from = if wild == 0 { any_method } else { methods };
            (*pick.get(from), path)
        },
    );
    let param = prop_oneof![
        Just("limit"),
        Just("starting_after"),
        Just("status"),
        Just("created_at.gte"),
        Just("created_at.lte"),
        Just("net_amount.gte"),
        Just("net_amount.lte"),
        Just("currency"),
        Just("search"),
        Just("customer_id"),
        Just("include_events"),
        Just("apply_discounts"),
        Just("status[]"),
        Just("payment_status"),
        Just("card_brand"),
        Just("card_number"),
        Just("psp"),
        Just("payment_product"),
        Just("payment_product_type"),
        Just("itinerary_travel_mode"),
        Just("itinerary_arrival_address"),
        Just("itinerary_departure_address"),
        Just("items_discount_lines_discount_type"),
    ];
    let value = prop_oneof![
        Just("0".to_owned()),
        Just("101".to_owned()),
        Just("-1".to_owned()),
        Just("true".to_owned()),
        Just("9999-12-31T23:59:59-01:00".to_owned()),
        Just("0000-01-01".to_owned()),
        Just("99999999999999999999".to_owned()),
        Just("open,completed".to_owned()),
        Just("api-event".to_owned()),
        "[ -~]{0,30}",
    ];
    let query = prop::collection::vec((param, value), 0..4).prop_map(|pairs| {
        let mut q = form_urlencoded::Serializer::new(String::new()).extend_pairs(pairs).finish();
        if !q.is_empty() {
            q.insert(0, '?');
        }
        q
    });
    let etag = prop::option::of(prop_oneof![
        Just("W/\"0\"".to_owned()),
        Just("*".to_owned()),
        Just("W/\"18446744073709551616\"".to_owned()),
        "[ -~]{0,20}"
    ]);
    let idem = prop::option::of(prop_oneof![Just("k1".to_owned()), Just("k".repeat(300)), "[ -~]{0,20}"]);
    (route, query, 0u8..7, etag, idem, body()).prop_map(|((method, path), query, token, if_match, idem, body)| Req {
        method,
        path,
        query,
        token,
        if_match,
        idem,
        body,
    })
}

/// Answers by status, printed at the end so a run shows how deep it got.
static STATUSES: std::sync::Mutex<std::collections::BTreeMap<u16, usize>> =
    std::sync::Mutex::new(std::collections::BTreeMap::new());

async fn send(api: &Api, r: &Req) -> Result<(), TestCaseError> {
    let token = match r.token {
        0..=2 => Some(api.token()),
        3 => Some(api.token_for(AID, "read:shopping", 3600)),
        4 => Some(api.token_for(OTHER, "admin:shopping", 3600)),
        5 => Some(api.token_for(AID, "write:shopping:/orders/ANY/events read:shopping:/orders/ANY/events", 3600)),
        _ => None,
    };
    let mut b = Request::builder().method(r.method).uri(format!("{}{}", r.path, r.query));
    if let Some(t) = token {
        b = b.header("authorization", format!("Bearer {t}"));
    }
    if let Some(m) = &r.if_match {
        b = b.header("if-match", m.as_str());
    }
    if let Some(k) = &r.idem {
        b = b.header("idempotency-key", k.as_str());
    }
    let Ok(req) = b.body(Body::from(r.body.clone())) else { return Ok(()) };
    let res = api.raw_bytes(req).await;
    if let Ok(mut s) = STATUSES.lock() {
        *s.entry(res.0.as_u16()).or_default() += 1;
    }
    prop_assert!(
        res.0.as_u16() < 500,
        "{} {}{} -> {}: {}",
        r.method,
        r.path,
        r.query,
        res.0,
        String::from_utf8_lossy(&res.1)
    );
    if res.0.is_client_error() && r.method != "HEAD" {
        let v: Value =
            serde_json::from_slice(&res.1).map_err(|e| TestCaseError::fail(format!("4xx body is not JSON: {e}")))?;
        prop_assert!(v["error"]["code"].is_string() && v["error"]["message"].is_string(), "error shape: {v}");
    }
    Ok(())
}

fn fuzz(api: Api, cases: u32) {
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().expect("runtime");
    let seeded = rt.block_on(seed(&api));
    let config = Config { cases, failure_persistence: None, max_shrink_iters: 200, ..Config::default() };
    let mut runner = TestRunner::new(config);
    let result = runner.run(&request(&seeded), |r| rt.block_on(send(&api, &r)));
    let seen = STATUSES.lock().map(|mut s| std::mem::take(&mut *s)).unwrap_or_default();
    eprintln!("answers by status: {seen:?}");
    if let Err(e) = result {
        panic!("{e}");
    }
}

#[test]
fn fuzz_router_on_the_embedded_engine() {
    fuzz(Api::sqlite(), cases());
}

/// DynamoDB through the emulator is slow (about 100 calls a second), so it gets a tenth.
#[test]
fn fuzz_router_on_dynamodb() {
    let rt = tokio::runtime::Runtime::new().expect("runtime");
    let api = rt.block_on(Api::dynamo());
    drop(rt);
    fuzz(api, (cases() / 10).max(20));
}
