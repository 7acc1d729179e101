//! The order endpoints (update, status, comments, events, sessions), the order list with
//! every filter, and the customer and store views, through the public HTTP surface: the
//! same scenarios on the embedded engine and on DynamoDB (through the local emulator).

#[macro_use]
mod common;

use common::{drafts_path, item, store_item, Api, AID, OTHER};
use serde_json::{json, Value};

fn orders() -> String {
    format!("/v1/accounts/{AID}/shopping/orders")
}

/// Completes a draft of `order` (with `options`) and answers the one order it made.
async fn new_order(api: &Api, options: Value, order: Value) -> Value {
    let d = api.call("POST", &drafts_path(), Some(json!({"options": options, "order": order}))).await;
    assert_eq!(d.status, 200, "{}", d.body);
    let done = api.call("PUT", &format!("{}/{}/complete", drafts_path(), d.body["id"].as_str().unwrap()), None).await;
    assert_eq!(done.status, 200, "{}", done.body);
    done.body["orders"][0].clone()
}

async fn simple_order(api: &Api) -> (Value, String) {
    let o = new_order(api, json!({}), json!({"currency": "NOK", "items": [item(1, 1000), item(2, 500)]})).await;
    let path = format!("{}/{}", orders(), o["id"].as_str().unwrap());
    (o, path)
}

fn ids(list: &Value) -> Vec<String> {
    list["orders"].as_array().expect("orders").iter().map(|o| o["id"].as_str().unwrap().to_owned()).collect()
}

async fn updates(api: &Api) {
    let o = new_order(
        api,
        json!({"generate_order_id": "ALPHANUMERIC_9"}),
        json!({"currency": "NOK", "comment": "keep", "items": [item(1, 1000), item(2, 500)]}),
    )
    .await;
    // by order_id as well as by id
    let path = format!("{}/{}", orders(), o["order_id"].as_str().unwrap());
    let r = api
        .call(
            "PUT",
            &format!("{path}?include_events=api-event"),
            Some(json!({"courier_id": "bring", "pickup_at": "2026-12-01T10:00:00Z", "time_to_live": 172800,
                        "items": [{"line_id": 2, "status": "picked"}], "external_ids": [{"id": "x-1", "source": "erp"}]})),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.headers["etag"], "W/\"1\"");
    assert_eq!(r.body["version"], 1);
    assert_eq!(r.body["courier_id"], "bring");
    assert_eq!(r.body["comment"], "keep", "absent fields keep their value");
    assert_eq!(r.body["items"][1]["status"], "picked");
    assert!(r.body["items"][0].get("status").is_none());
    assert_eq!(r.body["time_to_live"], 172800);
    assert!(r.body["time_to_live_expires_at"].is_string());
    let events = r.body["events"].as_array().expect("events");
    assert_eq!(events.len(), 2, "the completion's event and the update's");
    assert_eq!(events[1]["request"]["method"], "PUT");
    assert_eq!(r.body["state"], "pending");

    let stale = api.call_as(Some(&api.token()), "PUT", &path, Some(json!({"courier_id": "x"})), Some("W/\"0\"")).await;
    assert_eq!(stale.status, 412);
    assert_eq!(stale.code(), "VERSION_CONFLICT");
    let pinned = api.call_as(Some(&api.token()), "PUT", &path, Some(json!({"courier_id": "y"})), Some("W/\"1\"")).await;
    assert_eq!(pinned.status, 200, "{}", pinned.body);
    assert!(pinned.body.get("events").is_none(), "no include_events, no events");

    let bad = api
        .call(
            "PUT",
            &path,
            Some(json!({"comment": "x".repeat(256), "delivery_at": "tomorrow", "time_to_live": 5,
                        "items": [{"line_id": "one"}, {"status": "lost"}]})),
        )
        .await;
    assert_eq!(bad.status, 400, "{}", bad.body);
    let mut paths: Vec<&str> =
        bad.body["error"]["errors"].as_array().unwrap().iter().map(|e| e["path"].as_str().unwrap()).collect();
    paths.sort_unstable();
    assert_eq!(paths, ["comment", "delivery_at", "items[0].line_id", "items[1].line_id", "time_to_live"]);
    let unknown = api.call("PUT", &path, Some(json!({"items": [{"line_id": 9, "status": "x"}]}))).await;
    assert_eq!(unknown.status, 400);
    assert_eq!(unknown.body["error"]["errors"][0]["path"], "items[0].line_id");
    let after = api.call("GET", &path, None).await;
    assert_eq!(after.body["version"], 2, "refused requests changed nothing");

    // Idempotency-Key: a repeat answers the first response and changes nothing
    let body = json!({"salesperson_name": "Kari"});
    let first = api.call_idem("upd-1", "PUT", &path, body.clone()).await;
    let again = api.call_idem("upd-1", "PUT", &path, body).await;
    assert_eq!(first.status, 200);
    assert_eq!(again.body, first.body);
    assert_eq!(api.call("GET", &path, None).await.body["version"], 3);
    let reused = api.call_idem("upd-1", "PUT", &path, json!({"salesperson_name": "Ola"})).await;
    assert_eq!(reused.status, 409);

    assert_eq!(api.call("PUT", &format!("{}/nope", orders()), Some(json!({}))).await.status, 404);
    let read_only = api.token_for(AID, "read:shopping", 60);
    assert_eq!(api.call_as(Some(&read_only), "PUT", &path, Some(json!({})), None).await.status, 403);
}

async fn status_changes(api: &Api) {
    let (_, path) = simple_order(api).await;
    let closed = api.call("POST", &format!("{path}/close"), None).await;
    assert_eq!(closed.status, 200, "{}", closed.body);
    assert_eq!(closed.body["status"], "closed");
    assert!(closed.body["closed_at"].is_string());
    assert_eq!(closed.body["closed_by"], "tester");
    let twice = api.call("POST", &format!("{path}/close"), None).await;
    assert_eq!((twice.status.as_u16(), twice.code()), (409, "INVALID_STATUS_TRANSITION"));
    let reopened = api.call("POST", &format!("{path}/open?include_events=true"), None).await;
    assert_eq!(reopened.body["status"], "open");
    assert!(reopened.body.get("closed_at").is_none());
    assert_eq!(reopened.body["events"].as_array().map(Vec::len), Some(3));
    let open_again = api.call("POST", &format!("{path}/open"), None).await;
    assert_eq!(open_again.code(), "INVALID_STATUS_TRANSITION");
    let bad = api.call("POST", &format!("{path}/cancel"), Some(json!({"cancelled_reason": "bored"}))).await;
    assert_eq!(bad.status, 400);
    assert_eq!(bad.body["error"]["errors"][0]["path"], "cancelled_reason");
    let cancelled = api.call("POST", &format!("{path}/cancel"), Some(json!({"cancelled_reason": "customer"}))).await;
    assert_eq!(cancelled.status, 200, "{}", cancelled.body);
    assert_eq!(cancelled.body["status"], "cancelled");
    assert_eq!(cancelled.body["cancelled_reason"], "customer");
    assert!(cancelled.body["cancelled_at"].is_string());
    for action in ["open", "close", "cancel"] {
        let r = api.call("POST", &format!("{path}/{action}"), None).await;
        assert_eq!((r.status.as_u16(), r.code()), (409, "INVALID_STATUS_TRANSITION"), "{action}");
    }
    // a cancel without a body
    let (_, other) = simple_order(api).await;
    assert_eq!(api.call("POST", &format!("{other}/cancel"), None).await.status, 200);
}

async fn comments(api: &Api) {
    let (_, path) = simple_order(api).await;
    let c = api
        .call("POST", &format!("{path}/comments"), Some(json!({"body": "ring twice", "visibility": "private"})))
        .await;
    assert_eq!(c.status, 200, "{}", c.body);
    let comment = &c.body["comments"][0];
    assert_eq!(comment["body"], "ring twice");
    let cid = comment["id"].as_str().unwrap().to_owned();
    for body in [json!({}), json!({"body": ""}), json!({"body": "x".repeat(256)}), json!({"body": 5})] {
        let r = api.call("POST", &format!("{path}/comments"), Some(body.clone())).await;
        assert_eq!(r.status, 400, "{body}");
        assert_eq!(r.body["error"]["errors"][0]["path"], "body");
    }
    // a client-chosen id makes the create idempotent
    let mine = json!({"id": "note-1", "body": "fragile"});
    let first = api.call("POST", &format!("{path}/comments"), Some(mine.clone())).await;
    let again = api.call("POST", &format!("{path}/comments"), Some(mine)).await;
    assert_eq!(again.status, 200);
    assert_eq!(again.body["version"], first.body["version"]);
    let clash = api.call("POST", &format!("{path}/comments"), Some(json!({"id": "note-1", "body": "other"}))).await;
    assert_eq!((clash.status.as_u16(), clash.code()), (409, "DUPLICATE_ID"));

    let del = api.call("DELETE", &format!("{path}/comments/{cid}?include_events=true"), None).await;
    assert_eq!(del.status, 200, "{}", del.body);
    let kept = del.body["comments"].as_array().unwrap().iter().find(|c| c["id"] == cid.as_str()).unwrap().clone();
    assert!(kept["deleted_at"].is_string(), "soft delete");
    assert!(del.body["events"].is_array());
    let twice = api.call("DELETE", &format!("{path}/comments/{cid}"), None).await;
    assert_eq!(twice.status, 200);
    assert_eq!(twice.body["version"], del.body["version"], "a second delete changes nothing");
    assert_eq!(api.call("DELETE", &format!("{path}/comments/unknown"), None).await.status, 404);
}

async fn service_events(api: &Api) {
    let (_, path) = simple_order(api).await;
    let writer = api.token_for(AID, "write:shopping:/orders/ANY/events", 600);
    let reader = api.token_for(AID, "read:shopping:/orders/ANY/events", 600);
    let ev = json!({"state": "pending", "service": "kitchen", "service_status": "cooking", "description": "food prepared",
                    "metadata": {"station": 4}});
    let posted = api.call_as(Some(&writer), "POST", &format!("{path}/events"), Some(ev), None).await;
    assert_eq!(posted.status, 200, "{}", posted.body);
    assert_eq!(posted.body["event_type"], "service-event");
    assert_eq!(posted.body["service_status"], "cooking");
    assert!(posted.body["id"].is_string());
    let listed = api.call_as(Some(&reader), "GET", &format!("{path}/events"), None, None).await;
    assert_eq!(listed.status, 200);
    assert_eq!(listed.body["state"], "pending");
    assert_eq!(listed.body["events"].as_array().map(Vec::len), Some(2));
    let done = json!({"state": "success", "service": "kitchen", "service_status": "ready_for_pickup"});
    api.call("POST", &format!("{path}/events"), Some(done)).await;
    assert_eq!(api.call("GET", &format!("{path}/events"), None).await.body["state"], "success");
    let only_service = api.call("GET", &format!("{path}?include_events=service-event"), None).await;
    assert_eq!(only_service.body["events"].as_array().map(Vec::len), Some(2));

    // the fine-grained scopes grant exactly these two endpoints
    assert_eq!(api.call_as(Some(&reader), "GET", &path, None, None).await.status, 403);
    assert_eq!(api.call_as(Some(&writer), "POST", &format!("{path}/close"), None, None).await.status, 403);
    assert_eq!(api.call_as(Some(&reader), "POST", &format!("{path}/events"), Some(json!({})), None).await.status, 403);
    assert_eq!(api.call_as(Some(&writer), "GET", &format!("{path}/events"), None, None).await.status, 403);
    assert_eq!(api.call_as(Some(&writer), "GET", &orders(), None, None).await.status, 403);

    let bad = api.call("POST", &format!("{path}/events"), Some(json!({"state": "meh"}))).await;
    assert_eq!(bad.status, 400);
    let paths: Vec<&str> =
        bad.body["error"]["errors"].as_array().unwrap().iter().map(|e| e["path"].as_str().unwrap()).collect();
    assert_eq!(paths, ["state", "service", "service_status"]);
}

async fn sessions(api: &Api) {
    let (_, path) = simple_order(api).await;
    let body = json!({"items": [{"line_id": "1"}, {"line_id": 2}], "profile_id": "default",
                      "url": {"return_url": "https://example.com/accept", "callback_url": "https://example.com/cb"},
                      "merchant_reference": "ref-1", "express": {"shipping_mode": "shipping_required"}});
    let s = api.call("POST", &format!("{path}/sessions"), Some(body.clone())).await;
    assert_eq!(s.status, 200, "{}", s.body);
    assert_eq!(s.body["amount"], 1500);
    assert_eq!(s.body["items"][0]["line_id"], "1");
    assert!(s.body.get("profile_id").is_none(), "the response does not echo the request");
    let sid = s.body["id"].as_str().unwrap().to_owned();
    let list = api.call("GET", &format!("{path}/sessions"), None).await;
    assert_eq!(list.body["sessions"][0]["id"], sid.as_str());
    let one = api.call("GET", &format!("{path}/sessions/{sid}"), None).await;
    assert_eq!(one.body["amount"], 1500);
    assert_eq!(api.call("GET", &format!("{path}/sessions/nope"), None).await.status, 404);
    let order = api.call("GET", &format!("{path}?include_events=api-event"), None).await;
    assert_eq!(order.body["sessions"][0]["id"], sid.as_str());
    assert_eq!(order.body["events"].as_array().map(Vec::len), Some(2), "a session event was appended");

    let bad = api.call("POST", &format!("{path}/sessions"), Some(json!({"items": [{"line_id": 7}, {}]}))).await;
    assert_eq!(bad.status, 400);
    let paths: Vec<&str> =
        bad.body["error"]["errors"].as_array().unwrap().iter().map(|e| e["path"].as_str().unwrap()).collect();
    assert_eq!(paths, ["items[1].line_id", "profile_id", "url"]);
    let unknown_line = json!({"items": [{"line_id": 7}], "profile_id": "p", "url": {"return_url": "https://e.x"}});
    let r = api.call("POST", &format!("{path}/sessions"), Some(unknown_line)).await;
    assert_eq!(r.body["error"]["errors"][0]["path"], "items[0].line_id");
    api.call("POST", &format!("{path}/cancel"), None).await;
    let refused = api.call("POST", &format!("{path}/sessions"), Some(body)).await;
    assert_eq!((refused.status.as_u16(), refused.code()), (409, "ORDER_CANCELLED"));
}

async fn lists_and_filters(api: &Api) {
    let leg = |mode: &str, from: &str, to: &str| json!([{"travel_mode": mode, "departure_address": {"postal_place": from}, "arrival_address": {"postal_place": to}}]);
    let mut discounted = item(1, 1000);
    discounted["discount_lines"] = json!([{"amount": 100, "discount_type": "loyalty"}]);
    let a = new_order(api, json!({}), json!({"currency": "NOK", "customer": {"id": "c-a", "email": "Ada@Example.com"}, "items": [discounted], "itinerary": leg("BUS", "Oslo", "Bergen")})).await;
    api.clock.advance(1);
    let b = new_order(api, json!({}), json!({"currency": "SEK", "customer": {"id": "c-b", "phone_number": "+4799"}, "items": [item(1, 5000)], "external_ids": [{"id": "ERP-77"}], "itinerary": leg("TRAIN", "Lund", "Malmo")})).await;
    api.clock.advance(1);
    let c = new_order(
        api,
        json!({"generate_order_id": "ALPHANUMERIC_9"}),
        json!({"currency": "NOK", "items": [item(1, 300)]}),
    )
    .await;
    api.call("POST", &format!("{}/{}/close", orders(), c["id"].as_str().unwrap()), None).await;
    let id = |o: &Value| o["id"].as_str().unwrap().to_owned();
    let get = |q: String| async move {
        let r = api.call("GET", &format!("{}?{q}", orders()), None).await;
        assert_eq!(r.status, 200, "{q}: {}", r.body);
        ids(&r.body)
    };
    assert_eq!(get(String::new()).await, [id(&c), id(&b), id(&a)], "newest first");
    assert_eq!(get("status=closed".into()).await, [id(&c)]);
    assert_eq!(get("status=open&status=closed".into()).await.len(), 3);
    assert_eq!(get("status=open,cancelled".into()).await, [id(&b), id(&a)]);
    assert_eq!(get("payment_status=pending".into()).await.len(), 3);
    assert!(get("payment_status=paid".into()).await.is_empty());
    assert_eq!(get("currency=sek".into()).await, [id(&b)]);
    assert_eq!(get("net_amount.gte=900&net_amount.lte=1000".into()).await, [id(&a)]);
    assert_eq!(get("search=ada@".into()).await, [id(&a)]);
    assert_eq!(get("search=erp-7".into()).await, [id(&b)]);
    assert_eq!(get("search=%2B4799".into()).await, [id(&b)]);
    assert_eq!(get(format!("search={}", &c["order_id"].as_str().unwrap()[..4])).await, [id(&c)]);
    assert_eq!(get("itinerary_travel_mode=TRAIN".into()).await, [id(&b)]);
    assert_eq!(get("itinerary_departure_address=oslo".into()).await, [id(&a)]);
    assert_eq!(get("itinerary_arrival_address=malmo".into()).await, [id(&b)]);
    assert_eq!(get("items_discount_lines_discount_type=loyalty".into()).await, [id(&a)]);
    assert!(get("card_brand=visa".into()).await.is_empty());
    for p in ["card_number=4448", "psp=bambora", "payment_product=x", "payment_product_type=x.card"] {
        assert!(get(p.into()).await.is_empty(), "{p}: no payment operations yet");
    }
    let created = b["created_at"].as_str().unwrap();
    let enc = |s: &str| s.replace(':', "%3A");
    assert_eq!(get(format!("created_at.gte={}&created_at.lte={}", enc(created), enc(created))).await, [id(&b)]);
    assert_eq!(get(format!("created_at.gte={}", &created[..10])).await.len(), 3, "a date is a whole day");
    assert!(get("created_at.lte=2000-01-01".into()).await.is_empty());
    let with_events = api.call("GET", &format!("{}?include_events=true&limit=1", orders()), None).await;
    assert_eq!(with_events.body["orders"][0]["events"].as_array().map(Vec::len), Some(2));
    assert_eq!(with_events.body["orders"][0]["state"], "pending");
    assert!(api.call("GET", &orders(), None).await.body["orders"][0].get("events").is_none());

    // paging
    assert_eq!(get("limit=2".into()).await, [id(&c), id(&b)]);
    assert_eq!(get(format!("limit=2&starting_after={}", id(&b))).await, [id(&a)]);
    assert_eq!(get(format!("status=closed&starting_after={}", id(&c))).await, Vec::<String>::new());
    // bad parameters name themselves
    for (q, name) in [
        ("limit=0", "limit"),
        ("limit=101", "limit"),
        ("status=gone", "status"),
        ("payment_status=free", "payment_status"),
        ("created_at.gte=yesterday", "created_at.gte"),
        ("net_amount.lte=-1", "net_amount.lte"),
        ("currency=kroner", "currency"),
        ("card_number=12ab", "card_number"),
        ("itinerary_travel_mode=ROCKET", "itinerary_travel_mode"),
        ("items_discount_lines_discount_type=secret", "items_discount_lines_discount_type"),
        ("include_events=maybe", "include_events"),
        ("starting_after=00000000-0000-4000-8000-000000000000", "starting_after"),
    ] {
        let r = api.call("GET", &format!("{}?{q}", orders()), None).await;
        assert_eq!(r.status, 400, "{q}");
        assert_eq!(r.body["error"]["errors"][0]["path"], name, "{q}");
    }
    // accounts are isolated
    let other = api.token_for(OTHER, "admin:shopping", 60);
    let theirs = api.call_as(Some(&other), "GET", &format!("/v1/accounts/{OTHER}/shopping/orders"), None, None).await;
    assert_eq!(theirs.body["orders"], json!([]));
    assert_eq!(api.call_as(Some(&other), "GET", &orders(), None, None).await.status, 403);
    // no token: 401 in the upstream error shape
    let anon = api.call_as(None, "GET", &orders(), None, None).await;
    assert_eq!(anon.status, 401);
    assert!(anon.body["error"]["message"].is_string());
}

/// Pages walked while other orders are being created see every older order exactly once.
async fn customer_and_store_views(api: &Api) {
    let mine = new_order(
        api,
        json!({}),
        json!({"currency": "NOK", "customer": {"id": "cust-1"}, "store": {"id": "s1"}, "items": [item(1, 100)]}),
    )
    .await;
    api.clock.advance(1);
    let other_customer = new_order(
        api,
        json!({}),
        json!({"currency": "NOK", "customer": {"id": "cust-2"}, "items": [store_item(1, 100, "s2")]}),
    )
    .await;
    api.clock.advance(1);
    let mixed = new_order(api, json!({}), json!({"currency": "NOK", "customer": {"id": "cust-1"}, "items": [store_item(1, 100, "s3"), store_item(2, 5, "s2")]})).await;
    let base = format!("/v1/accounts/{AID}/shopping");
    let id = |o: &Value| o["id"].as_str().unwrap().to_owned();
    let list = |p: String| async move {
        let r = api.call("GET", &p, None).await;
        assert_eq!(r.status, 200, "{p}: {}", r.body);
        ids(&r.body)
    };
    assert_eq!(list(format!("{base}/customers/cust-1/orders")).await, [id(&mixed), id(&mine)]);
    assert_eq!(list(format!("{base}/customers/cust-2/orders")).await, [id(&other_customer)]);
    assert!(list(format!("{base}/customers/nobody/orders")).await.is_empty());
    assert_eq!(list(format!("{base}/stores/s2/orders")).await, [id(&mixed), id(&other_customer)]);
    assert_eq!(list(format!("{base}/stores/s1/orders")).await, [id(&mine)]);
    assert_eq!(
        list(format!("{base}/customers/cust-1/orders?limit=1&starting_after={}", id(&mixed))).await,
        [id(&mine)]
    );
    api.call("POST", &format!("{base}/orders/{}/close", id(&mine)), None).await;
    assert_eq!(list(format!("{base}/customers/cust-1/orders?status=closed")).await, [id(&mine)]);
    assert_eq!(list(format!("{base}/stores/s1/orders?status=open")).await, Vec::<String>::new());

    let one = api
        .call("GET", &format!("{base}/customers/cust-1/orders/{}?include_events=service-event", id(&mine)), None)
        .await;
    assert_eq!(one.status, 200, "{}", one.body);
    assert_eq!(one.body["events"], json!([]));
    assert_eq!(api.call("GET", &format!("{base}/customers/cust-2/orders/{}", id(&mine)), None).await.status, 404);
    assert_eq!(api.call("GET", &format!("{base}/stores/s2/orders/{}", id(&mixed)), None).await.status, 200);
    assert_eq!(api.call("GET", &format!("{base}/stores/s1/orders/{}", id(&mixed)), None).await.status, 404);
    for p in [
        format!("{base}/customers/cust-1/orders?include_events=api-event"),
        format!("{base}/stores/s1/orders/{}?include_events=api-event", id(&mine)),
    ] {
        let r = api.call("GET", &p, None).await;
        assert_eq!(r.status, 400, "{p}");
        assert_eq!(r.body["error"]["errors"][0]["path"], "include_events");
    }
    let other = api.token_for(OTHER, "admin:shopping", 60);
    let theirs = api
        .call_as(Some(&other), "GET", &format!("/v1/accounts/{OTHER}/shopping/customers/cust-1/orders"), None, None)
        .await;
    assert_eq!(theirs.body["orders"], json!([]));
    let peek = api
        .call_as(
            Some(&other),
            "GET",
            &format!("/v1/accounts/{OTHER}/shopping/stores/s1/orders/{}", id(&mine)),
            None,
            None,
        )
        .await;
    assert_eq!(peek.status, 404);
}

/// An order with a retention of one day, two days later: emptied, its draft and children
/// gone, out of the lists; an order without retention is intact.
async fn order_retention(api: &Api) {
    let d = api
        .call("POST", &drafts_path(), Some(json!({"options": {"order_time_to_live": 86400}, "order": {"currency": "DKK", "customer": {"id": "ttl-c"}, "external_ids": [{"id": "keep-1"}], "items": [item(1, 100)]}})))
        .await;
    let draft = format!("{}/{}", drafts_path(), d.body["id"].as_str().unwrap());
    let done = api.call("PUT", &format!("{draft}/complete"), None).await;
    let expiring = done.body["orders"][0]["id"].as_str().unwrap().to_owned();
    let ep = format!("{}/{expiring}", orders());
    api.call("POST", &format!("{ep}/comments"), Some(json!({"body": "hi"}))).await;
    let s = json!({"items": [{"line_id": 1}], "profile_id": "p", "url": {"return_url": "https://e.x"}});
    api.call("POST", &format!("{ep}/sessions"), Some(s)).await;
    let (_, kept) = simple_order(api).await;
    // a draft that would outlive its order, whose retention was shortened after completion
    let long = api
        .call("POST", &drafts_path(), Some(json!({"options": {"order_time_to_live": 94672800}, "order": {"currency": "NOK", "items": [item(1, 100)]}})))
        .await;
    let long_draft = format!("{}/{}", drafts_path(), long.body["id"].as_str().unwrap());
    let done = api.call("PUT", &format!("{long_draft}/complete"), None).await;
    let shortened = format!("{}/{}", orders(), done.body["orders"][0]["id"].as_str().unwrap());
    assert_eq!(api.call("PUT", &shortened, Some(json!({"time_to_live": 86400}))).await.status, 200);
    assert_eq!(api.call("GET", &long_draft, None).await.status, 200);
    api.clock.advance(2 * 86_400);
    assert_eq!(api.call("GET", &long_draft, None).await.status, 404, "an order's drafts go with it");
    let emptied = api.call("GET", &format!("{ep}?include_events=true"), None).await;
    assert_eq!(emptied.status, 200);
    let body = emptied.body.as_object().unwrap();
    let mut keys: Vec<&str> = body.iter().filter(|(_, v)| *v != &json!([])).map(|(k, _)| k.as_str()).collect();
    keys.sort_unstable();
    assert_eq!(keys, ["created_at", "deleted_at", "external_ids", "id", "order_id", "order_number", "updated_at"]);
    for key in ["items", "comments", "sessions", "authorizations", "captures", "refunds", "cancellations", "discounts"]
    {
        assert_eq!(body.get(key), Some(&json!([])), "{key}: an emptied order's arrays are empty, still there");
    }
    assert_eq!(api.call("GET", &draft, None).await.status, 404);
    assert_eq!(api.call("GET", &format!("{ep}/events"), None).await.body["events"], json!([]));
    assert_eq!(api.call("GET", &format!("{ep}/sessions"), None).await.body["sessions"], json!([]));
    assert_eq!(api.call("POST", &format!("{ep}/comments"), Some(json!({"body": "late"}))).await.status, 404);
    for q in ["currency=DKK", "status=open", ""] {
        let list = api.call("GET", &format!("{}?{q}", orders()), None).await;
        assert!(!ids(&list.body).contains(&expiring), "{q}");
    }
    let view = api.call("GET", &format!("/v1/accounts/{AID}/shopping/customers/ttl-c/orders"), None).await;
    assert_eq!(view.body["orders"], json!([]));
    let intact = api.call("GET", &kept, None).await;
    assert_eq!(intact.body["items"].as_array().map(Vec::len), Some(2));
}

/// Every order change carries its webhook events in the same write: an update or a comment
/// `shopping_order_update` + `shopping_order_event_add`, a service event only the latter.
async fn order_outbox_events(api: &Api) {
    let (o, path) = simple_order(api).await;
    api.call("PUT", &path, Some(json!({"courier_id": "c"}))).await;
    let ev = json!({"state": "success", "service": "s", "service_status": "done"});
    api.call("POST", &format!("{path}/events"), Some(ev)).await;
    api.call("POST", &format!("{path}/comments"), Some(json!({"body": "b"}))).await;
    let pk = domain::table::order_pk(AID, o["id"].as_str().unwrap());
    let page = api.store.query(&infra::Query::partition(pk)).await.expect("query");
    let mut hooks = std::collections::BTreeMap::new();
    for i in &page.items {
        let recs = if i.sk.starts_with("EVENT#") {
            vec![domain::outbox::decode(&i.doc).expect("history")]
        } else if i.sk == "ORDER" {
            domain::outbox::riding(i).expect("riding")
        } else {
            Vec::new()
        };
        for r in recs {
            hooks.insert(r.version(), r.webhooks);
        }
    }
    let both = vec!["shopping_order_update".to_owned(), "shopping_order_event_add".to_owned()];
    let hooks: Vec<Vec<String>> = hooks.into_values().collect();
    assert_eq!(
        hooks,
        [vec!["shopping_order_event_add".to_owned()], both.clone(), vec!["shopping_order_event_add".to_owned()], both]
    );
}

on_both_engines!(
    order_outbox_events,
    updates,
    status_changes,
    comments,
    service_events,
    sessions,
    lists_and_filters,
    customer_and_store_views,
    order_retention,
);
