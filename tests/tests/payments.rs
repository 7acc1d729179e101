//! Payment operations through the public HTTP surface, on both engines: the ledger's limits,
//! `payment_status` and `payment_details`, multiple authorizations, idempotent creates,
//! payouts, and concurrent captures.

#[macro_use]
mod common;

use common::{drafts_path, item, store_item, Api, AID};
use serde_json::{json, Value};

fn orders() -> String {
    format!("/v1/accounts/{AID}/shopping/orders")
}

async fn new_order(api: &Api, options: Value, items: Value) -> String {
    let d = api
        .call("POST", &drafts_path(), Some(json!({"options": options, "order": {"currency": "NOK", "items": items}})))
        .await;
    assert_eq!(d.status, 200, "{}", d.body);
    let done = api.call("PUT", &format!("{}/{}/complete", drafts_path(), d.body["id"].as_str().unwrap()), None).await;
    assert_eq!(done.status, 200, "{}", done.body);
    format!("{}/{}", orders(), done.body["orders"][0]["id"].as_str().unwrap())
}

fn op(lines: &[(i64, i64)]) -> Value {
    let items: Vec<Value> = lines.iter().map(|(l, a)| json!({"line_id": l, "amount": a})).collect();
    json!({"items": items, "processed_at": "2026-11-22T12:00:00Z", "processed_by": "dintero-checkout",
           "payment_details": {"psp": "Bambora", "payment_product": "bambora", "payment_product_type": "bambora.creditcard",
                               "card": {"masked_pan": "4444 **** **** 4448", "brand": "Visa", "type": "Credit"}}})
}

fn remaining_code(r: &common::Resp) -> (u16, String) {
    (r.status.as_u16(), r.code().to_owned())
}

async fn captures_and_refunds_without_authorization(api: &Api) {
    let o = new_order(api, json!({}), json!([item(1, 1000), item(2, 500)])).await;
    let c = api.call("POST", &format!("{o}/captures"), Some(op(&[(1, 600)]))).await;
    assert_eq!(c.status, 200, "{}", c.body);
    assert_eq!(c.body["amount"], 600);
    assert_eq!(c.body["items"][0]["amount"], 600);
    assert!(c.body["_links"].is_array());
    let cid = c.body["id"].as_str().unwrap().to_owned();
    let over = api.call("POST", &format!("{o}/captures"), Some(op(&[(1, 401)]))).await;
    assert_eq!(remaining_code(&over), (409, "AMOUNT_EXCEEDS_REMAINING".into()));
    assert!(over.body["error"]["message"].as_str().unwrap().contains("line 1: 400"), "{}", over.body);
    let refund_over = api.call("POST", &format!("{o}/refunds"), Some(op(&[(1, 601)]))).await;
    assert_eq!(remaining_code(&refund_over), (409, "AMOUNT_EXCEEDS_REMAINING".into()));
    assert_eq!(api.call("POST", &format!("{o}/refunds"), Some(op(&[(1, 200)]))).await.status, 200);
    // a failed operation is stored but counts for nothing
    let mut failed = op(&[(2, 500)]);
    failed["success"] = json!(false);
    assert_eq!(api.call("POST", &format!("{o}/captures"), Some(failed)).await.status, 200);

    let order = api.call("GET", &o, None).await;
    assert_eq!(order.body["captures"].as_array().map(Vec::len), Some(2));
    assert_eq!(order.body["refunds"].as_array().map(Vec::len), Some(1));
    assert_eq!(order.body["payment_status"], "partially_refunded");
    assert_eq!(
        order.body["payment_details"],
        json!({"remaining_capture_amount": 900, "remaining_refund_amount": 400, "remaining_cancellation_amount": 0,
               "amount_due": 1100, "remaining_authorization_amount": 1500})
    );
    let list = api.call("GET", &format!("{o}/captures"), None).await;
    assert_eq!(list.body["captures"][0]["id"], cid.as_str());
    assert_eq!(api.call("GET", &format!("{o}/captures/{cid}"), None).await.body["amount"], 600);
    assert_eq!(api.call("GET", &format!("{o}/captures/nope"), None).await.status, 404);
    assert_eq!(api.call("GET", &format!("{o}/refunds"), None).await.body["refunds"].as_array().map(Vec::len), Some(1));
    assert_eq!(api.call("GET", &format!("{o}/authorizations"), None).await.body["authorizations"], json!([]));

    // the rest of line 1 and all of line 2 make it paid (then partially refunded stays)
    assert_eq!(api.call("POST", &format!("{o}/captures"), Some(op(&[(1, 400), (2, 500)]))).await.status, 200);
    let paid = api.call("GET", &o, None).await;
    assert_eq!(paid.body["payment_details"]["remaining_capture_amount"], 0);
    // the list filters see the operations
    let id = paid.body["id"].as_str().unwrap();
    for q in [
        "payment_status=partially_refunded",
        "card_brand=visa",
        "card_number=4448",
        "psp=bambora",
        "payment_product_type=bambora.creditcard",
    ] {
        let r = api.call("GET", &format!("{}?{q}", orders()), None).await;
        let ids: Vec<&str> = r.body["orders"].as_array().unwrap().iter().map(|o| o["id"].as_str().unwrap()).collect();
        assert_eq!(ids, [id], "{q}");
        assert_eq!(r.body["orders"][0]["captures"].as_array().map(Vec::len), Some(3), "lists show operations");
    }
    assert!(api.call("GET", &format!("{}?card_brand=mastercard", orders()), None).await.body["orders"]
        .as_array()
        .unwrap()
        .is_empty());
}

async fn bad_operations(api: &Api) {
    let o = new_order(api, json!({}), json!([item(1, 1000)])).await;
    for (body, path) in [
        (json!({}), "items"),
        (json!({"items": []}), "items"),
        (json!({"items": [{"line_id": 1}]}), "items[0].amount"),
        (json!({"items": [{"line_id": 1, "amount": 0}]}), "items[0].amount"),
        (json!({"items": [{"line_id": 1, "amount": -5}]}), "items[0].amount"),
        (json!({"items": [{"amount": 5}]}), "items[0].line_id"),
        (json!({"items": [{"line_id": 1, "amount": 5}], "amount": 6}), "amount"),
        (json!({"items": [{"line_id": 1, "amount": 5}], "processed_at": "noon"}), "processed_at"),
        (json!({"items": [{"line_id": 1, "amount": 5}, {"line_id": 1, "amount": 5}]}), "items[1].line_id"),
        (json!({"items": [{"line_id": 1, "amount": 9007199254740992u64}]}), "items[0].amount"),
        (json!({"items": [{"line_id": 7, "amount": 5}]}), "items[0].line_id"),
        (json!({"items": [{"line_id": 1, "amount": "5"}]}), "items[0].amount"),
        (json!({"id": "has space", "items": [{"line_id": 1, "amount": 5}]}), "id"),
    ] {
        let r = api.call("POST", &format!("{o}/captures"), Some(body.clone())).await;
        assert_eq!(r.status, 400, "{body}: {}", r.body);
        assert_eq!(r.body["error"]["errors"][0]["path"], path, "{body}");
    }
    assert_eq!(api.call("GET", &o, None).await.body["version"], 0, "refused operations changed nothing");
    assert_eq!(api.call("POST", &format!("{}/nope/captures", orders()), Some(op(&[(1, 5)]))).await.status, 404);
    let read_only = api.token_for(AID, "read:shopping", 60);
    assert_eq!(
        api.call_as(Some(&read_only), "POST", &format!("{o}/captures"), Some(op(&[(1, 5)])), None).await.status,
        403
    );
}

async fn authorizations_bound_captures_and_cancellations(api: &Api) {
    let o = new_order(api, json!({}), json!([item(1, 1000), item(2, 500)])).await;
    let over = api.call("POST", &format!("{o}/authorizations"), Some(op(&[(1, 1001)]))).await;
    assert_eq!(remaining_code(&over), (409, "AMOUNT_EXCEEDS_REMAINING".into()));
    assert_eq!(api.call("POST", &format!("{o}/authorizations"), Some(op(&[(1, 800)]))).await.status, 200);
    // no cancellation without an authorization on the line
    let none = api.call("POST", &format!("{o}/cancellations"), Some(op(&[(2, 1)]))).await;
    assert_eq!(remaining_code(&none), (409, "AMOUNT_EXCEEDS_REMAINING".into()));
    // with an authorization, captures are bounded by it, not by the line
    let c = api.call("POST", &format!("{o}/captures"), Some(op(&[(1, 801)]))).await;
    assert_eq!(remaining_code(&c), (409, "AMOUNT_EXCEEDS_REMAINING".into()));
    assert_eq!(api.call("POST", &format!("{o}/captures"), Some(op(&[(1, 500)]))).await.status, 200);
    assert_eq!(api.call("POST", &format!("{o}/cancellations"), Some(op(&[(1, 300)]))).await.status, 200);
    let more = api.call("POST", &format!("{o}/cancellations"), Some(op(&[(1, 1)]))).await;
    assert_eq!(remaining_code(&more), (409, "AMOUNT_EXCEEDS_REMAINING".into()));
    let order = api.call("GET", &o, None).await;
    assert_eq!(order.body["payment_status"], "partially_paid");
    assert_eq!(order.body["payment_details"]["remaining_authorization_amount"], 700);
    assert_eq!(order.body["payment_details"]["remaining_capture_amount"], 0);
    // something is captured: the order cannot be cancelled, and cannot be replaced by a draft
    assert_eq!(api.call("POST", &format!("{o}/cancel"), None).await.code(), "INVALID_STATUS_TRANSITION");
    let oid = order.body["id"].as_str().unwrap();
    let d = api
        .call("POST", &drafts_path(), Some(json!({"options": {"order_id": oid, "replace": "order"}, "order": {"currency": "NOK", "items": [item(1, 5)]}})))
        .await;
    let r = api.call("PUT", &format!("{}/{}/complete", drafts_path(), d.body["id"].as_str().unwrap()), None).await;
    assert_eq!(remaining_code(&r), (409, "ORDER_HAS_PAYMENTS".into()));
    // a refund of everything captured, then the order may be cancelled; then nothing more
    assert_eq!(api.call("POST", &format!("{o}/refunds"), Some(op(&[(1, 500)]))).await.status, 200);
    assert_eq!(api.call("GET", &o, None).await.body["payment_status"], "refunded");
    assert_eq!(api.call("POST", &format!("{o}/cancel"), None).await.status, 200);
    for kind in ["authorizations", "captures"] {
        let r = api.call("POST", &format!("{o}/{kind}"), Some(op(&[(2, 1)]))).await;
        assert_eq!(remaining_code(&r), (409, "ORDER_CANCELLED".into()), "{kind}");
    }
}

async fn multiple_authorizations(api: &Api) {
    let o = new_order(api, json!({"multiple_authorizations": true}), json!([item(1, 1000)])).await;
    let mut a = op(&[(1, 500)]);
    a["id"] = json!("auth-a");
    assert_eq!(api.call("POST", &format!("{o}/authorizations"), Some(a)).await.status, 200);
    let mut b = op(&[(1, 500)]);
    b["id"] = json!("auth-b");
    assert_eq!(api.call("POST", &format!("{o}/authorizations"), Some(b)).await.status, 200);
    let third = api.call("POST", &format!("{o}/authorizations"), Some(op(&[(1, 1)]))).await;
    assert_eq!(remaining_code(&third), (409, "AMOUNT_EXCEEDS_REMAINING".into()), "the line is fully authorized");
    let missing = api.call("POST", &format!("{o}/captures"), Some(op(&[(1, 100)]))).await;
    assert_eq!(missing.status, 400);
    assert_eq!(missing.body["error"]["errors"][0]["path"], "authorization_id");
    let with = |id: &str, amount: i64| {
        let mut c = op(&[(1, amount)]);
        c["authorization_id"] = json!(id);
        c
    };
    let unknown = api.call("POST", &format!("{o}/captures"), Some(with("auth-x", 100))).await;
    assert_eq!(remaining_code(&unknown), (409, "UNKNOWN_AUTHORIZATION".into()));
    let over = api.call("POST", &format!("{o}/captures"), Some(with("auth-a", 600))).await;
    assert_eq!(remaining_code(&over), (409, "AMOUNT_EXCEEDS_REMAINING".into()), "limits hold per authorization");
    assert_eq!(api.call("POST", &format!("{o}/captures"), Some(with("auth-a", 500))).await.status, 200);
    assert_eq!(api.call("POST", &format!("{o}/captures"), Some(with("auth-b", 200))).await.status, 200);
    let refund_b = api.call("POST", &format!("{o}/refunds"), Some(with("auth-b", 300))).await;
    assert_eq!(remaining_code(&refund_b), (409, "AMOUNT_EXCEEDS_REMAINING".into()));
    assert_eq!(api.call("POST", &format!("{o}/cancellations"), Some(with("auth-b", 300))).await.status, 200);
    let order = api.call("GET", &o, None).await;
    assert_eq!(order.body["payment_details"]["remaining_cancellation_amount"], 0);
    assert_eq!(order.body["payment_status"], "partially_paid");
}

async fn idempotent_creates(api: &Api) {
    let o = new_order(api, json!({}), json!([item(1, 1000)])).await;
    let mut c = op(&[(1, 100)]);
    c["id"] = json!("cap-1");
    let first = api.call("POST", &format!("{o}/captures"), Some(c.clone())).await;
    let again = api.call("POST", &format!("{o}/captures"), Some(c.clone())).await;
    assert_eq!((first.status.as_u16(), again.status.as_u16()), (200, 200));
    assert_eq!(again.body, first.body, "the stored operation, unchanged");
    assert_eq!(api.call("GET", &o, None).await.body["captures"].as_array().map(Vec::len), Some(1));
    c["items"][0]["amount"] = json!(200);
    let clash = api.call("POST", &format!("{o}/captures"), Some(c)).await;
    assert_eq!(remaining_code(&clash), (409, "DUPLICATE_ID".into()));
    let body = op(&[(1, 50)]);
    let k1 = api.call_idem("pay-1", "POST", &format!("{o}/captures"), body.clone()).await;
    let k2 = api.call_idem("pay-1", "POST", &format!("{o}/captures"), body).await;
    assert_eq!(k1.body, k2.body);
    assert_eq!(api.call("GET", &o, None).await.body["captures"].as_array().map(Vec::len), Some(2));
}

async fn payouts(api: &Api) {
    let rules = json!({"resolve_rule_id": "order.items.store.id", "rules": [
        {"rule_type": "order.items.store.id", "rule_id": "s1", "destinations": [
            {"type": "percentage", "value": "5.0", "destination": "platform"},
            {"type": "flat_amount", "value": "100", "destination": "courier"},
            {"type": "remaining_amount", "destinations": [
                {"type": "percentage", "value": 50, "destination": "store-a"},
                {"type": "remaining_amount", "destination": "store-b"}]}]}]});
    let o = new_order(api, json!({"payout": rules}), json!([store_item(1, 1001, "s1"), item(2, 300)])).await;
    let order = api.call("GET", &o, None).await;
    assert_eq!(order.body["items"][0]["payout"]["rule_id"], "s1");
    assert!(order.body["items"][1].get("payout").is_none());
    let c = api.call("POST", &format!("{o}/captures"), Some(op(&[(1, 777), (2, 300)]))).await;
    assert_eq!(c.status, 200, "{}", c.body);
    let parts = c.body["items"][0]["payout"]["destinations"].as_array().unwrap().clone();
    let amounts: Vec<i64> = parts.iter().map(|p| p["amount"].as_i64().unwrap()).collect();
    assert_eq!(amounts, [38, 100, 639]);
    let nested: Vec<i64> =
        parts[2]["destinations"].as_array().unwrap().iter().map(|p| p["amount"].as_i64().unwrap()).collect();
    assert_eq!(nested, [319, 320]);
    assert!(c.body["items"][1].get("payout").is_none());
}

/// 10 captures of a line's whole remaining amount at once: exactly one is recorded.
async fn concurrent_captures(api: &Api) {
    let o = new_order(api, json!({}), json!([item(1, 1000), item(2, 10)])).await;
    assert_eq!(api.call("POST", &format!("{o}/captures"), Some(op(&[(1, 250)]))).await.status, 200);
    let path = format!("{o}/captures");
    let mut racers = Vec::new();
    for _ in 0..10 {
        racers.push(api.call("POST", &path, Some(op(&[(1, 750)]))));
    }
    let mut codes: Vec<u16> = common::join_all(racers).await.iter().map(|r| r.status.as_u16()).collect();
    codes.sort_unstable();
    assert_eq!(codes, [200, 409, 409, 409, 409, 409, 409, 409, 409, 409]);
    let order = api.call("GET", &o, None).await;
    let captured: i64 = order.body["captures"].as_array().unwrap().iter().map(|c| c["amount"].as_i64().unwrap()).sum();
    assert_eq!(captured, 1000);
    assert_eq!(order.body["payment_details"]["remaining_capture_amount"], 10);
}

/// An order with hundreds of operations stays small: operations are items of their own, and
/// none is rewritten when another is added.
async fn hundreds_of_operations(api: &Api) {
    let o = new_order(api, json!({}), json!([item(1, 100_000)])).await;
    for _ in 0..150 {
        let r = api.call("POST", &format!("{o}/captures"), Some(op(&[(1, 1)]))).await;
        assert_eq!(r.status, 200, "{}", r.body);
    }
    let order = api.call("GET", &o, None).await;
    assert_eq!(order.body["captures"].as_array().map(Vec::len), Some(150));
    let id = order.body["id"].as_str().unwrap();
    let header = api.store.get(&domain::table::order_key(AID, id)).await.expect("get").expect("order item");
    let size = infra::dynamo::item_size(&header);
    assert!(size < 8 * 1024, "the order item is {size} bytes with 150 operations");
}

on_both_engines!(
    captures_and_refunds_without_authorization,
    bad_operations,
    authorizations_bound_captures_and_cancellations,
    multiple_authorizations,
    idempotent_creates,
    payouts,
    concurrent_captures,
    hundreds_of_operations,
);
