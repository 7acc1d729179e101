//! Hostile and absurd input through the public HTTP surface, on both engines: every case is a
//! 4xx naming the field or the cause, changes nothing, and the server keeps answering.

#[macro_use]
mod common;

use common::{drafts_path, item, noise, Api, AID, OTHER};
use serde_json::{json, Value};

const MAX_SAFE: i64 = 9_007_199_254_740_991;

fn paths(r: &common::Resp) -> Vec<String> {
    r.body["error"]["errors"]
        .as_array()
        .map(|a| a.iter().map(|e| e["path"].as_str().unwrap_or("").to_owned()).collect())
        .unwrap_or_default()
}

/// Asserts a 4xx in the upstream error shape and returns it.
fn client_error(r: common::Resp, status: u16) -> common::Resp {
    let shown: String = r.body.to_string().chars().take(600).collect();
    assert_eq!(r.status.as_u16(), status, "{shown}");
    assert!(r.body["error"]["code"].is_string(), "error shape: {}", r.body);
    assert!(r.body["error"]["message"].is_string(), "error shape: {}", r.body);
    r
}

async fn draft_count(api: &Api) -> usize {
    let r = api.call("GET", &format!("{}?limit=100&status=open,completed,deleted", drafts_path()), None).await;
    r.body["draft_orders"].as_array().map_or(0, Vec::len)
}

async fn create(api: &Api, body: Value) -> common::Resp {
    api.call("POST", &drafts_path(), Some(body)).await
}

fn order(items: Vec<Value>) -> Value {
    json!({"order": {"currency": "NOK", "items": items}})
}

async fn time_never_panics(api: &Api) {
    let read_only = api.token_for(AID, "read:shopping", 3600);
    let p = format!("{}?created_at.lte=9999-12-31T23:59:59-01:00", drafts_path());
    let r = client_error(api.call_as(Some(&read_only), "GET", &p, None, None).await, 400);
    assert_eq!(paths(&r), ["created_at.lte"]);
    let r = client_error(api.call("GET", &format!("{}?created_at.gte=10000-01-01", drafts_path()), None).await, 400);
    assert_eq!(paths(&r), ["created_at.gte"]);

    for ttl in [1_000_000_000_000i64, i64::MAX, 3_155_760_001] {
        let r = client_error(create(api, json!({"order": {"currency": "NOK", "time_to_live": ttl}})).await, 400);
        assert_eq!(paths(&r), ["order.time_to_live"], "{ttl}");
        let r = client_error(
            create(api, json!({"options": {"order_time_to_live": ttl}, "order": {"currency": "NOK"}})).await,
            400,
        );
        assert_eq!(paths(&r), ["options.order_time_to_live"]);
    }
    // The longest retention allowed works.
    let r = create(api, json!({"order": {"currency": "NOK", "time_to_live": 3_155_760_000i64}})).await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(draft_count(api).await, 1, "the server is up and nothing else was written");
}

async fn money_never_wraps(api: &Api) {
    // Each amount beyond ±(2^53 − 1) is named.
    let r = client_error(create(api, order(vec![item(1, i64::MAX), item(2, i64::MAX)])).await, 400);
    assert_eq!(paths(&r), ["order.items[0].gross_amount", "order.items[1].gross_amount"]);
    // In range one by one, out of range together: the total is named.
    let r = client_error(create(api, order(vec![item(1, MAX_SAFE), item(2, MAX_SAFE)])).await, 400);
    assert_eq!(paths(&r), ["order.gross_amount"]);
    // Discounts are ≥ 0 and never exceed the gross of a non-negative item.
    let mut d = item(1, 100);
    d["discount_lines"] = json!([{"amount": i64::MIN, "discount_type": "manual"}]);
    let r = client_error(create(api, order(vec![d])).await, 400);
    assert_eq!(paths(&r), ["order.items[0].discount_lines[0].amount"]);
    let mut d = item(1, 100);
    d["discount_lines"] = json!([{"amount": 1000, "discount_type": "manual"}]);
    let r = client_error(create(api, order(vec![d])).await, 400);
    assert_eq!(paths(&r), ["order.items[0].discount_lines"]);
    assert_eq!(r.body["error"]["errors"][0]["code"], "EXCEEDS_GROSS_AMOUNT");
    // A reversal (negative gross) may carry no discount beyond zero but is otherwise fine.
    let r = create(api, order(vec![item(1, 500), item(2, -200)])).await;
    assert_eq!((r.status.as_u16(), r.body["order"]["net_amount"].as_i64()), (200, Some(300)), "{}", r.body);
    // quantity ≥ 1
    let mut q = item(1, 100);
    q["quantity"] = json!(0);
    assert_eq!(paths(&client_error(create(api, order(vec![q])).await, 400)), ["order.items[0].quantity"]);

    // Adding an item to a draft can push its total out of range: named, nothing changes.
    let d = create(api, order(vec![item(1, MAX_SAFE)])).await;
    assert_eq!(d.status, 200);
    let dp = format!("{}/{}", drafts_path(), d.body["id"].as_str().unwrap_or(""));
    let r = client_error(api.call("POST", &format!("{dp}/items"), Some(item(2, 1))).await, 400);
    assert_eq!(paths(&r), ["order.gross_amount"]);
    assert_eq!(api.call("GET", &dp, None).await.body["version"], 0);
    assert_eq!(draft_count(api).await, 2);
}

async fn line_ids_never_wrap(api: &Api) {
    let r = client_error(create(api, order(vec![item(i64::MAX, 100)])).await, 400);
    assert_eq!(paths(&r), ["order.items[0].line_id"]);
    let d = create(api, order(vec![item(MAX_SAFE, 100)])).await;
    assert_eq!(d.status, 200, "{}", d.body);
    let dp = format!("{}/{}", drafts_path(), d.body["id"].as_str().unwrap_or(""));
    let r = client_error(
        api.call("POST", &format!("{dp}/items"), Some(json!({"gross_amount": 1, "tax_lines": [{"percentage": 0}]})))
            .await,
        400,
    );
    assert_eq!(paths(&r), ["line_id"]);
    // An explicit free line_id still works.
    let r = api.call("POST", &format!("{dp}/items"), Some(item(7, 1))).await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.body["order"]["items"].as_array().map(Vec::len), Some(2));
    // A path line_id beyond the range is a 400 too, and never a crash.
    let r = client_error(api.call("DELETE", &format!("{dp}/items/99999999999999999999"), None).await, 400);
    assert_eq!(paths(&r), ["line_id"]);
}

async fn every_problem_at_once(api: &Api) {
    let body = json!({"order": {"currency": 7, "items": [
        {"line_id": 1, "gross_amount": "12", "tax_lines": [{"percentage": 25}]},
        {"line_id": 2, "gross_amount": 5},
        {"line_id": 3, "gross_amount": 5, "tax_lines": [{"percentage": 101}], "quantity": "two"},
    ]}});
    let r = client_error(create(api, body).await, 400);
    let mut got = paths(&r);
    got.sort();
    assert_eq!(
        got,
        [
            "order.currency",
            "order.items[0].gross_amount",
            "order.items[1].tax_lines",
            "order.items[2].quantity",
            "order.items[2].tax_lines[0].percentage",
        ]
    );
    let r = client_error(
        api.call(
            "POST",
            &format!("{}/00000000-0000-4000-8000-000000000001/items", drafts_path()),
            Some(json!({"gross_amount": [], "tax_lines": "x", "line_id": -1})),
        )
        .await,
        400,
    );
    let mut got = paths(&r);
    got.sort();
    assert_eq!(got, ["gross_amount", "line_id", "tax_lines"], "validation comes before the lookup");
    assert_eq!(draft_count(api).await, 0);
}

async fn store_limits_are_client_errors(api: &Api) {
    // Fields that feed stored items are capped where they are accepted.
    let big_meta: serde_json::Map<String, Value> =
        (0..20).map(|i| (format!("k{i}"), Value::String(noise(1000, i)))).collect();
    let r = client_error(create(api, json!({"order": {"currency": "NOK", "metadata": big_meta}})).await, 400);
    assert_eq!(paths(&r), ["order.metadata"]);
    let r = client_error(
        create(api, json!({"order": {"currency": "NOK", "customer": {"id": "c".repeat(3000)}}})).await,
        400,
    );
    assert_eq!(paths(&r), ["order.customer.id"]);
    let r = client_error(
        create(api, json!({"order": {"currency": "NOK", "customer": {"first_name": noise(5000, 1)}}})).await,
        400,
    );
    assert_eq!(paths(&r), ["order.customer.first_name"]);

    // A body within the request limit whose draft would not fit one stored item: 413 naming
    // it, on both engines alike, and nothing is written.
    let items: Vec<Value> = (1..=150)
        .map(|n| {
            let mut i = item(n, 100);
            i["description"] = Value::String(noise(4000, n as u64));
            i
        })
        .collect();
    let r = client_error(create(api, order(items)).await, 413);
    assert_eq!(r.code(), "ITEM_TOO_LARGE");
    assert!(r.body["error"]["message"].as_str().unwrap_or("").contains("the draft"), "{}", r.body);

    // Large but storable, with an Idempotency-Key: the stored response leaves out the event
    // history (which repeats the body), so it fits, and the replay is byte-for-byte the same.
    let items: Vec<Value> = (1..=60)
        .map(|n| {
            let mut i = item(n, 100);
            i["description"] = Value::String(noise(4000, 100 + n as u64));
            i
        })
        .collect();
    let first = api.call_idem("big-1", "POST", &drafts_path(), order(items.clone())).await;
    assert_eq!(first.status, 200, "{}", first.body);
    let again = api.call_idem("big-1", "POST", &drafts_path(), order(items)).await;
    assert_eq!((again.status, &again.body), (first.status, &first.body));
    assert_eq!(draft_count(api).await, 1);
}

async fn stored_draft_rules(api: &Api) {
    let d = create(api, json!({"options": {"generate_order_id": "ALPHANUMERIC_9_RESERVE"}, "order": {"currency": "NOK", "items": [item(1, 100)]}})).await;
    assert_eq!(d.status, 200, "{}", d.body);
    let dp = format!("{}/{}", drafts_path(), d.body["id"].as_str().unwrap_or(""));
    let r = client_error(
        api.call("PUT", &dp, Some(json!({"options": {"split_draft": true}, "order": {"currency": "NOK", "items": [common::store_item(1, 100, "s1"), common::store_item(2, 100, "s2")]}}))).await,
        400,
    );
    assert_eq!(paths(&r), ["options.split_draft"]);
    // A draft stored with both before the rule existed: completing it is the same 400.
    let key = domain::table::draft_key(AID, d.body["id"].as_str().unwrap_or(""));
    let mut stored = api.store.get(&key).await.expect("get").expect("draft");
    let mut doc: Value = serde_json::from_str(&stored.doc).expect("doc");
    doc["options"]["split_draft"] = json!(true);
    doc["order"]["items"] = json!([common::store_item(1, 100, "s1"), common::store_item(2, 100, "s2")]);
    stored.doc = doc.to_string();
    api.store
        .write(vec![domain::table::WriteOp::Put { item: stored, cond: None }])
        .await
        .expect("rewrite the stored draft");
    let r = client_error(api.call("PUT", &format!("{dp}/complete"), None).await, 400);
    assert_eq!(paths(&r), ["options.split_draft"]);
    // It completes once the split is turned off.
    let r = api.call("PUT", &dp, Some(json!({"order": {"currency": "NOK", "items": [item(1, 100)]}}))).await;
    assert_eq!(r.status, 200, "{}", r.body);
    let r = api.call("PUT", &format!("{dp}/complete"), None).await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.body["orders"][0]["order_id"], d.body["order"]["order_id"]);
}

async fn still_refused(api: &Api) {
    let p = drafts_path();
    let body = Some(json!({"order": {"currency": "NOK"}}));
    // another account's token, a token without a signature algorithm
    let other = api.token_for(OTHER, "admin:shopping", 3600);
    client_error(api.call_as(Some(&other), "POST", &p, body.clone(), None).await, 403);
    let none = "eyJhbGciOiJub25lIiwidHlwIjoiSldUIn0.eyJhaWQiOiJUMTIzNDU2NzgiLCJzY29wZSI6ImFkbWluOnNob3BwaW5nIiwic3ViIjoieCIsImV4cCI6OTk5OTk5OTk5OX0.";
    client_error(api.call_as(Some(none), "POST", &p, body.clone(), None).await, 401);
    let t = api.token();
    client_error(api.call_as(Some(&t), "POST", &p, body.clone(), Some("W/\"banana\"")).await, 400);
    let long_key = "k".repeat(300);
    client_error(api.call_idem(&long_key, "POST", &p, json!({"order": {"currency": "NOK"}})).await, 400);
    let deep = format!("{{\"order\":{{\"currency\":\"NOK\",\"metadata\":{}1{}}}}}", "[".repeat(5000), "]".repeat(5000));
    let r = api
        .raw(
            axum::http::Request::post(&p)
                .header("authorization", format!("Bearer {t}"))
                .body(axum::body::Body::from(deep))
                .expect("req"),
        )
        .await;
    client_error(r, 400);
    let r = api
        .raw(
            axum::http::Request::post(&p)
                .header("authorization", format!("Bearer {t}"))
                .body(axum::body::Body::from(b"{\"order\":{\"currency\":\"N\xffK\"}}".to_vec()))
                .expect("req"),
        )
        .await;
    client_error(r, 400);
    assert_eq!(draft_count(api).await, 0);
}

on_both_engines!(
    time_never_panics,
    money_never_wraps,
    line_ids_never_wrap,
    every_problem_at_once,
    store_limits_are_client_errors,
    stored_draft_rules,
    still_refused,
);

/// A store that fails every call the way a real one can.
struct Failing(fn() -> infra::StoreError);

#[async_trait::async_trait]
impl infra::Store for Failing {
    async fn get(&self, _: &domain::table::Key) -> Result<Option<domain::table::Item>, infra::StoreError> {
        Err((self.0)())
    }
    async fn get_many(&self, _: &[domain::table::Key]) -> Result<Vec<domain::table::Item>, infra::StoreError> {
        Err((self.0)())
    }
    async fn query(&self, _: &infra::Query) -> Result<infra::Page, infra::StoreError> {
        Err((self.0)())
    }
    async fn write(&self, _: Vec<domain::table::WriteOp>) -> Result<(), infra::StoreError> {
        Err((self.0)())
    }
}

fn api_over(store: Failing) -> Api {
    Api::with(std::sync::Arc::new(store), std::sync::Arc::new(infra::clock::ManualClock::at(common::T0)), None)
}

/// Only an unavailable or throttling store is a 503, and it says when to retry; a corrupt
/// item is a 500; neither leaks the store's error to the caller.
#[tokio::test]
async fn store_failures_map_to_what_a_client_can_do() {
    let cases: [(fn() -> infra::StoreError, u16); 3] = [
        (|| infra::StoreError::Unavailable("connection refused".into()), 503),
        (|| infra::StoreError::Throttled("ProvisionedThroughputExceededException".into()), 503),
        (|| infra::StoreError::Corrupt("bad bytes".into()), 500),
    ];
    for (make, status) in cases {
        let api = api_over(Failing(make));
        let r = api.call("GET", &drafts_path(), None).await;
        assert_eq!(r.status.as_u16(), status);
        assert_eq!(r.headers.get("retry-after").is_some(), status == 503);
        let text = r.body.to_string();
        assert!(!text.contains("refused") && !text.contains("bad bytes") && !text.contains("Provisioned"), "{text}");
        let r = api.call("POST", &drafts_path(), Some(json!({"order": {"currency": "NOK"}}))).await;
        assert_eq!(r.status.as_u16(), status);
    }
}
