//! Concurrent writers and retried requests through the public HTTP surface, on both engines:
//! no change is lost, `If-Match` lets exactly one of a version's writers win, and a retried
//! request with its `Idempotency-Key` changes nothing.

#[macro_use]
mod common;

use common::{drafts_path, item, Api, AID};
use serde_json::{json, Value};

async fn new_draft(api: &Api, body: Value) -> Value {
    let r = api.call("POST", &drafts_path(), Some(body)).await;
    assert_eq!(r.status, 200, "{}", r.body);
    r.body
}

fn id(v: &Value) -> String {
    v["id"].as_str().expect("id").to_owned()
}

fn orders() -> String {
    format!("/v1/accounts/{AID}/shopping/orders")
}

fn ids(list: &Value) -> Vec<String> {
    list["orders"].as_array().expect("orders").iter().map(|o| o["id"].as_str().unwrap().to_owned()).collect()
}

/// Completes a draft of `order` (with `options`) and answers the one order it made.
async fn new_order(api: &Api, options: Value, order: Value) -> Value {
    let d = new_draft(api, json!({"options": options, "order": order})).await;
    let done = api.call("PUT", &format!("{}/{}/complete", drafts_path(), id(&d)), None).await;
    assert_eq!(done.status, 200, "{}", done.body);
    done.body["orders"][0].clone()
}

/// A completed two-item order and its path.
async fn simple_order(api: &Api) -> (Value, String) {
    let o = new_order(api, json!({}), json!({"currency": "NOK", "items": [item(1, 1000), item(2, 500)]})).await;
    let path = format!("{}/{}", orders(), id(&o));
    (o, path)
}

/// Many concurrent writers on one draft: every item lands, versions count every write.
async fn concurrent_writers(api: &Api) {
    let d = new_draft(api, json!({"order": {"currency": "NOK"}})).await;
    let path = format!("{}/{}/items", drafts_path(), id(&d));
    let mut tasks = Vec::new();
    for line in 1..=8i64 {
        let router = api.router.clone();
        let token = api.token();
        let path = path.clone();
        tasks.push(tokio::spawn(async move {
            let req = axum::http::Request::post(path)
                .header("authorization", format!("Bearer {token}"))
                .body(axum::body::Body::from(item(line, 10).to_string()))
                .expect("req");
            let res = tower::ServiceExt::oneshot(router, req).await.expect("call");
            let status = res.status();
            let bytes = http_body_util::BodyExt::collect(res.into_body()).await.expect("body").to_bytes();
            (status, serde_json::from_slice::<Value>(&bytes).expect("json"))
        }));
    }
    for t in tasks {
        let (status, body) = t.await.expect("task");
        assert_eq!(status, 200, "{body}");
        // A write that lost races and retried still answers with its whole history: one event
        // per version, up to its own.
        let version = body["version"].as_u64().expect("version");
        let versions: Vec<u64> =
            body["events"].as_array().into_iter().flatten().filter_map(|e| e["version"].as_u64()).collect();
        assert_eq!(versions, (0..=version).collect::<Vec<_>>());
    }
    let got = api.call("GET", &format!("{}/{}", drafts_path(), id(&d)), None).await;
    assert_eq!(got.body["order"]["items"].as_array().map(Vec::len), Some(8));
    assert_eq!(got.body["version"], 8);
    assert_eq!(got.body["order"]["gross_amount"], 80);
}

/// Many writers on one order: drafts completed into it at the same time all land.
async fn concurrent_writers_on_one_order(api: &Api) {
    let d = new_draft(api, json!({"order": {"currency": "NOK", "items": [item(1, 10)]}})).await;
    let r = api.call("PUT", &format!("{}/{}/complete", drafts_path(), id(&d)), None).await;
    let oid = id(&r.body["orders"][0]);
    let mut drafts = Vec::new();
    for line in 2..=7i64 {
        let d = new_draft(
            api,
            json!({"options": {"order_id": oid}, "order": {"currency": "NOK", "items": [item(line, 10)]}}),
        )
        .await;
        drafts.push(id(&d));
    }
    let mut tasks = Vec::new();
    for draft in drafts {
        let router = api.router.clone();
        let token = api.token();
        tasks.push(tokio::spawn(async move {
            let req = axum::http::Request::put(format!("{}/{draft}/complete", drafts_path()))
                .header("authorization", format!("Bearer {token}"))
                .body(axum::body::Body::empty())
                .expect("req");
            tower::ServiceExt::oneshot(router, req).await.expect("call").status()
        }));
    }
    for t in tasks {
        assert_eq!(t.await.expect("task"), 200);
    }
    let got = api.call("GET", &format!("/v1/accounts/{AID}/shopping/orders/{oid}?include_events=true"), None).await;
    assert_eq!(got.body["items"].as_array().map(Vec::len), Some(7));
    assert_eq!(got.body["version"], 6);
    assert_eq!(got.body["net_amount"], 70);
    assert_eq!(got.body["events"].as_array().map(Vec::len), Some(7));
}

/// `Idempotency-Key`: a retried POST/PUT returns the first response and changes nothing.
async fn idempotent_retries(api: &Api) {
    let body = json!({"order": {"currency": "NOK", "items": [item(1, 100)]}});
    let first = api.call_idem("k-1", "POST", &drafts_path(), body.clone()).await;
    assert_eq!(first.status, 200);
    let again = api.call_idem("k-1", "POST", &drafts_path(), body.clone()).await;
    assert_eq!((again.status.as_u16(), &again.body), (200, &first.body));
    assert_eq!(again.headers["etag"], first.headers["etag"]);
    let list = api.call("GET", &drafts_path(), None).await;
    assert_eq!(list.body["draft_orders"].as_array().map(Vec::len), Some(1), "one draft, not two");
    let other = api.call_idem("k-1", "POST", &drafts_path(), json!({"order": {"currency": "SEK"}})).await;
    assert_eq!((other.status.as_u16(), other.code()), (409, "IDEMPOTENCY_KEY_REUSED"));

    let items = format!("{}/{}/items", drafts_path(), id(&first.body));
    let added = api.call_idem("k-2", "POST", &items, item(2, 50)).await;
    assert_eq!(added.body["version"], 1);
    let repeated = api.call_idem("k-2", "POST", &items, item(2, 50)).await;
    assert_eq!((repeated.status.as_u16(), repeated.body["version"].as_u64()), (200, Some(1)));
    assert_eq!(api.call("GET", &format!("{}/{}", drafts_path(), id(&first.body)), None).await.body["version"], 1);

    let bad = api.call_idem(" ", "POST", &drafts_path(), body.clone()).await;
    assert_eq!(bad.status, 400);
    // keys are kept for 24 hours
    api.clock.advance(24 * 3600 + 1);
    let later = api.call_idem("k-1", "POST", &drafts_path(), body).await;
    assert_eq!(later.status, 200);
    assert_ne!(later.body["id"], first.body["id"]);
}

/// 20 comment writers at once: exactly 20 comments. 5 `If-Match` updates of the same
/// version at once: one wins, four get 412.
async fn concurrent_order_writers(api: &Api) {
    let (_, path) = simple_order(api).await;
    let comments_path = format!("{path}/comments");
    let mut writers = Vec::new();
    for n in 0..20 {
        writers.push(api.call("POST", &comments_path, Some(json!({"body": format!("c{n}")}))));
    }
    for r in common::join_all(writers).await {
        assert_eq!(r.status, 200, "{}", r.body);
    }
    let order = api.call("GET", &path, None).await;
    assert_eq!(order.body["comments"].as_array().map(Vec::len), Some(20));
    assert_eq!(order.body["version"], 20);
    let token = api.token();
    let mut pinned = Vec::new();
    for n in 0..5 {
        pinned.push(api.call_as(
            Some(&token),
            "PUT",
            &path,
            Some(json!({"courier_id": format!("k{n}")})),
            Some("W/\"20\""),
        ));
    }
    let mut codes: Vec<u16> = common::join_all(pinned).await.iter().map(|r| r.status.as_u16()).collect();
    codes.sort_unstable();
    assert_eq!(codes, [200, 412, 412, 412, 412]);
}

/// Pages read while orders keep arriving: no gap, no duplicate.
async fn paging_while_inserting(api: &Api) {
    for n in 0..12 {
        new_order(api, json!({}), json!({"currency": "NOK", "items": [item(1, 100 + n)]})).await;
        api.clock.advance(1);
    }
    let before: Vec<String> = ids(&api.call("GET", &format!("{}?limit=100", orders()), None).await.body);
    assert_eq!(before.len(), 12);
    let mut seen = Vec::new();
    let mut after: Option<String> = None;
    loop {
        // a new order arrives between every two pages
        new_order(api, json!({}), json!({"currency": "NOK", "items": [item(1, 1)]})).await;
        let q = after.as_ref().map_or_else(|| "limit=5".to_owned(), |a| format!("limit=5&starting_after={a}"));
        let page = ids(&api.call("GET", &format!("{}?{q}", orders()), None).await.body);
        if page.is_empty() {
            break;
        }
        after = page.last().cloned();
        seen.extend(page);
    }
    let fresh = seen.len() - before.len();
    assert_eq!(&seen[fresh..], &before[..], "no gap, no duplicate among the orders that existed");
    let unique: std::collections::HashSet<_> = seen.iter().collect();
    assert_eq!(unique.len(), seen.len());
}

on_both_engines!(
    paging_while_inserting,
    concurrent_writers,
    concurrent_writers_on_one_order,
    idempotent_retries,
    concurrent_order_writers
);
