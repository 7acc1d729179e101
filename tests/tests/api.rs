//! The draft and order endpoints through the public HTTP surface, the same scenarios on the
//! embedded engine and on DynamoDB (through the local emulator).

#[macro_use]
mod common;

use common::{drafts_path, item, store_item, Api, AID, OTHER};
use serde_json::{json, Value};

async fn new_draft(api: &Api, body: Value) -> Value {
    let r = api.call("POST", &drafts_path(), Some(body)).await;
    assert_eq!(r.status, 200, "{}", r.body);
    r.body
}

fn id(v: &Value) -> String {
    v["id"].as_str().expect("id").to_owned()
}

async fn draft_lifecycle(api: &Api) {
    let d = new_draft(api, json!({"order": {"currency": "NOK", "customer": {"id": "c-1", "email": "a@example.com"}, "items": [item(1, 1000)]}, "unknown_field": true})).await;
    let path = format!("{}/{}", drafts_path(), id(&d));
    assert_eq!(d["status"], "open");
    assert_eq!(d["version"], 0);
    assert_eq!(d["order"]["gross_amount"], 1000);
    assert!(d.get("deleted_at").is_none(), "absent fields are omitted, not null");

    let got = api.call("GET", &path, None).await;
    assert_eq!(got.status, 200);
    assert_eq!(got.headers["etag"], "W/\"0\"");
    assert_eq!(got.body["events"][0]["event_type"], "api-event");

    let put = api
        .call("PUT", &path, Some(json!({"order": {"currency": "NOK", "items": [item(1, 500), item(2, 700)]}, "options": {"order_time_to_live": 90000}})))
        .await;
    assert_eq!(put.status, 200, "{}", put.body);
    assert_eq!(put.body["version"], 1);
    assert_eq!(put.body["order"]["net_amount"], 1200);
    assert!(put.body["order"]["time_to_live_expires_at"].is_string());

    let mut discounted = item(3, 1000);
    discounted["discount_lines"] = json!([{"amount": 100, "discount_type": "manual"}]);
    let add = api.call("POST", &format!("{path}/items"), Some(discounted)).await;
    assert_eq!(add.status, 200, "{}", add.body);
    assert_eq!(add.body["order"]["net_amount"], 2100);
    assert_eq!(add.body["order"]["total_manual_discount_amount"], 100);

    let upd = api.call("PUT", &format!("{path}/items/2"), Some(item(2, 900))).await;
    assert_eq!(upd.status, 200, "{}", upd.body);
    assert_eq!(upd.body["order"]["gross_amount"], 2400);

    let del = api.call("DELETE", &format!("{path}/items/1"), None).await;
    assert_eq!(del.status, 200);
    assert_eq!(del.body["order"]["items"].as_array().map(Vec::len), Some(2));
    assert_eq!(del.body["version"], 4);
    assert_eq!(del.body["events"].as_array().map(Vec::len), Some(5), "one api-event per write");

    let done = api.call("PUT", &format!("{path}/complete"), None).await;
    assert_eq!(done.status, 200, "{}", done.body);
    assert_eq!(done.body["status"], "completed");
    let orders = done.body["orders"].as_array().expect("orders");
    assert_eq!(orders.len(), 1);
    let order = &orders[0];
    assert_eq!(order["net_amount"], 1800);
    assert_eq!(order["status"], "open");
    assert_eq!(order["payment_status"], "pending");
    assert_eq!(order["order_id"], order["id"], "UUID mode: order_id defaults to id");
    assert_eq!(order["time_to_live"], 90000);

    let read = api.call("GET", &format!("/v1/accounts/{AID}/shopping/orders/{}", id(order)), None).await;
    assert_eq!(read.status, 200);
    assert_eq!(read.body["items"], order["items"]);
    assert!(read.body.get("events").is_none());
    let with_events =
        api.call("GET", &format!("/v1/accounts/{AID}/shopping/orders/{}?include_events=true", id(order)), None).await;
    assert_eq!(with_events.body["events"][0]["draft_id"], d["id"]);
    assert_eq!(with_events.body["state"], "pending");

    // completed drafts are final
    let again = api.call("PUT", &format!("{path}/complete"), None).await;
    assert_eq!((again.status.as_u16(), again.code()), (409, "DRAFT_NOT_OPEN"));
    let edit = api.call("POST", &format!("{path}/items"), Some(item(9, 1))).await;
    assert_eq!((edit.status.as_u16(), edit.code()), (409, "DRAFT_NOT_OPEN"));

    // soft delete
    let d2 = new_draft(api, json!({"order": {"currency": "NOK"}})).await;
    let p2 = format!("{}/{}", drafts_path(), id(&d2));
    let gone = api.call("DELETE", &p2, None).await;
    assert_eq!(gone.status, 200);
    assert_eq!(gone.body["status"], "deleted");
    assert_eq!(gone.body["deleted_by"], "tester");
    assert!(gone.body["deleted_at"].is_string());
    assert_eq!(api.call("GET", &p2, None).await.body["status"], "deleted");
}

async fn completion_modes(api: &Api) {
    // split per store, serial suffix, stores in ascending id order, store-less items last
    let d = new_draft(
        api,
        json!({"options": {"split_draft": true, "serial_order_number_suffix": true},
               "order": {"currency": "NOK", "order_number": "ON", "items": [store_item(1, 100, "s2"), store_item(2, 200, "s1"), item(3, 300), store_item(4, 400, "s2")]}}),
    )
    .await;
    let r = api.call("PUT", &format!("{}/{}/complete", drafts_path(), id(&d)), None).await;
    assert_eq!(r.status, 200, "{}", r.body);
    let orders = r.body["orders"].as_array().expect("orders");
    let numbers: Vec<_> = orders.iter().map(|o| o["order_number"].as_str().unwrap_or("")).collect();
    assert_eq!(numbers, ["ON-1", "ON-2", "ON-3"]);
    assert_eq!(orders[0]["store"]["id"], "s1");
    assert_eq!(orders[1]["net_amount"], 500);
    assert_eq!(orders[2]["items"][0]["line_id"], 3);

    // ALPHANUMERIC_9: 9 characters of 0-9A-Z assigned at completion
    let d = new_draft(api, json!({"options": {"generate_order_id": "ALPHANUMERIC_9"}, "order": {"currency": "NOK", "items": [item(1, 100)]}})).await;
    assert!(d["order"].get("order_id").is_none());
    let r = api.call("PUT", &format!("{}/{}/complete", drafts_path(), id(&d)), None).await;
    let oid = r.body["orders"][0]["order_id"].as_str().expect("order_id").to_owned();
    assert_eq!(oid.len(), 9);
    assert!(oid.bytes().all(|b| b.is_ascii_digit() || b.is_ascii_uppercase()));
    assert_eq!(r.body["orders"][0]["order_number"], oid.as_str());
    // the order is found by its order_id as well as by its id
    let by_oid = api.call("GET", &format!("/v1/accounts/{AID}/shopping/orders/{oid}"), None).await;
    assert_eq!(by_oid.status, 200);
    assert_eq!(by_oid.body["id"], r.body["orders"][0]["id"]);

    // ALPHANUMERIC_9_RESERVE: shown on the draft at creation, used by the order
    let d = new_draft(api, json!({"options": {"generate_order_id": "ALPHANUMERIC_9_RESERVE"}, "order": {"currency": "NOK", "items": [item(1, 100)]}})).await;
    let reserved = d["order"]["order_id"].as_str().expect("reserved").to_owned();
    assert_eq!(reserved.len(), 9);
    let put = api
        .call("PUT", &format!("{}/{}", drafts_path(), id(&d)), Some(json!({"options": {"generate_order_id": "ALPHANUMERIC_9_RESERVE"}, "order": {"currency": "NOK", "items": [item(1, 150)]}})))
        .await;
    assert_eq!(put.body["order"]["order_id"], reserved.as_str(), "the reservation survives a replace");
    let r = api.call("PUT", &format!("{}/{}/complete", drafts_path(), id(&d)), None).await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.body["orders"][0]["order_id"], reserved.as_str());

    // a custom order_id is unique per account
    for expect in [200, 409] {
        let d =
            new_draft(api, json!({"order": {"currency": "NOK", "order_id": "SHOP-1", "items": [item(1, 100)]}})).await;
        let r = api.call("PUT", &format!("{}/{}/complete", drafts_path(), id(&d)), None).await;
        assert_eq!(r.status.as_u16(), expect, "{}", r.body);
        if expect == 409 {
            assert_eq!(r.code(), "DUPLICATE_ORDER_ID");
            // the failed completion changed nothing: the draft is still open
            assert_eq!(api.call("GET", &format!("{}/{}", drafts_path(), id(&d)), None).await.body["status"], "open");
        } else {
            assert_eq!(r.body["orders"][0]["order_id"], "SHOP-1");
        }
    }
    // ... and refused together with split_draft
    let r = api
        .call(
            "POST",
            &drafts_path(),
            Some(json!({"options": {"split_draft": true}, "order": {"currency": "NOK", "order_id": "X"}})),
        )
        .await;
    assert_eq!(r.status, 400);
    assert_eq!(r.body["error"]["errors"][0]["path"], "order.order_id");
    // an empty draft cannot complete
    let d = new_draft(api, json!({"order": {"currency": "NOK"}})).await;
    let r = api.call("PUT", &format!("{}/{}/complete", drafts_path(), id(&d)), None).await;
    assert_eq!(r.status, 400);
}

/// `options.order_id`: the draft's items go into an existing order, or replace its content.
async fn completion_into_existing_orders(api: &Api) {
    let d = new_draft(api, json!({"options": {"generate_order_id": "ALPHANUMERIC_9"}, "order": {"currency": "NOK", "items": [item(1, 1000)]}})).await;
    let r = api.call("PUT", &format!("{}/{}/complete", drafts_path(), id(&d)), None).await;
    let order = r.body["orders"][0].clone();
    let (oid, order_id) = (id(&order), order["order_id"].as_str().expect("order_id").to_owned());

    // append, naming the order by its order_id
    let d = new_draft(
        api,
        json!({"options": {"order_id": order_id}, "order": {"currency": "NOK", "items": [item(2, 500)]}}),
    )
    .await;
    let r = api.call("PUT", &format!("{}/{}/complete", drafts_path(), id(&d)), None).await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.body["orders"][0]["id"], oid.as_str());
    let got =
        api.call("GET", &format!("/v1/accounts/{AID}/shopping/orders/{oid}?include_events=api-event"), None).await;
    assert_eq!(got.body["net_amount"], 1500);
    assert_eq!(got.body["version"], 1);
    assert_eq!(got.headers["etag"], "W/\"1\"");
    assert_eq!(got.body["events"][1]["draft_id"], d["id"]);
    assert_eq!(got.body["payment_details"]["amount_due"], 1500);

    // a colliding line_id is refused and nothing changes
    let d = new_draft(api, json!({"options": {"order_id": oid}, "order": {"currency": "NOK", "items": [item(1, 1)]}}))
        .await;
    let r = api.call("PUT", &format!("{}/{}/complete", drafts_path(), id(&d)), None).await;
    assert_eq!((r.status.as_u16(), r.code()), (409, "DUPLICATE_LINE_ID"));
    assert_eq!(api.call("GET", &format!("{}/{}", drafts_path(), id(&d)), None).await.body["status"], "open");
    assert_eq!(api.call("GET", &format!("/v1/accounts/{AID}/shopping/orders/{oid}"), None).await.body["version"], 1);

    // replace: the order keeps its identity and takes the draft's content
    let d = new_draft(
        api,
        json!({"options": {"order_id": oid, "replace": "order"}, "order": {"currency": "NOK", "items": [item(7, 42)]}}),
    )
    .await;
    let r = api.call("PUT", &format!("{}/{}/complete", drafts_path(), id(&d)), None).await;
    assert_eq!(r.status, 200, "{}", r.body);
    let got = api.call("GET", &format!("/v1/accounts/{AID}/shopping/orders/{order_id}"), None).await;
    assert_eq!(got.body["id"], oid.as_str());
    assert_eq!(got.body["items"].as_array().map(Vec::len), Some(1));
    assert_eq!(got.body["net_amount"], 42);

    // an unknown order, and a split into an existing order, are bad input
    let d =
        new_draft(api, json!({"options": {"order_id": "NOPE"}, "order": {"currency": "NOK", "items": [item(1, 1)]}}))
            .await;
    let r = api.call("PUT", &format!("{}/{}/complete", drafts_path(), id(&d)), None).await;
    assert_eq!((r.status.as_u16(), r.body["error"]["errors"][0]["path"].as_str()), (400, Some("options.order_id")));
    let r = api
        .call(
            "POST",
            &drafts_path(),
            Some(json!({"options": {"order_id": oid, "split_draft": true}, "order": {"currency": "NOK"}})),
        )
        .await;
    assert_eq!(r.status, 400);
}

async fn bad_input(api: &Api) {
    let p = drafts_path();
    let r = api.call("POST", &p, Some(json!({"order": {"currency": "NOK", "items": [{"line_id": 1, "gross_amount": 10.5, "tax_lines": [{"percentage": 25}]}]}}))).await;
    assert_eq!(r.status, 400);
    assert_eq!(r.body["error"]["errors"][0]["path"], "order.items[0].gross_amount");
    let r = api.call("POST", &p, Some(json!({"options": {}}))).await;
    assert_eq!((r.status.as_u16(), r.body["error"]["errors"][0]["path"].as_str()), (400, Some("order")));
    let r = api.call("POST", &p, Some(json!({"order": {"currency": "NOKK", "time_to_live": 5, "items": [{"line_id": 1, "gross_amount": 1, "tax_lines": []}, item(1, 2)]}}))).await;
    assert_eq!(r.status, 400);
    let paths: Vec<_> = r.body["error"]["errors"]
        .as_array()
        .expect("errors")
        .iter()
        .map(|e| e["path"].as_str().unwrap_or(""))
        .collect();
    assert_eq!(paths, ["order.currency", "order.time_to_live", "order.items[0].tax_lines", "order.items[1].line_id"]);
    let r = api
        .raw(
            axum::http::Request::post(&p)
                .header("authorization", format!("Bearer {}", api.token()))
                .body(axum::body::Body::from("{not json"))
                .expect("req"),
        )
        .await;
    assert_eq!((r.status.as_u16(), r.code()), (400, "VALIDATION_ERROR"));
    let big = "x".repeat(1024 * 1024 + 10);
    let r = api.call("POST", &p, Some(json!({"order": {"currency": "NOK", "comment": big}}))).await;
    assert_eq!((r.status.as_u16(), r.code()), (413, "PAYLOAD_TOO_LARGE"));
    let r =
        api.call("POST", "/v1/accounts/X1/shopping/draft_orders", Some(json!({"order": {"currency": "NOK"}}))).await;
    assert_eq!(r.status, 400);
    assert_eq!(api.call("GET", "/v1/nothing", None).await.body["error"]["code"], "NOT_FOUND");
    assert_eq!(api.call("PATCH", &p, None).await.status, 405);
    let r = api.call("POST", &format!("{p}?apply_discounts=true"), Some(json!({"order": {"currency": "NOK"}}))).await;
    assert_eq!((r.status.as_u16(), r.body["error"]["errors"][0]["path"].as_str()), (400, Some("apply_discounts")));

    let d = new_draft(api, json!({"order": {"currency": "NOK", "items": [item(1, 100)]}})).await;
    let dp = format!("{p}/{}", id(&d));
    let r = api.call("POST", &format!("{dp}/items"), Some(item(1, 5))).await;
    assert_eq!((r.status.as_u16(), r.code()), (409, "DUPLICATE_LINE_ID"));
    let r = api.call("PUT", &format!("{dp}/items/7"), Some(item(7, 5))).await;
    assert_eq!(r.status, 404);
    let r = api.call("DELETE", &format!("{dp}/items/abc"), None).await;
    assert_eq!(r.status, 400);
    let r = api.call("POST", &format!("{dp}/items"), Some(json!({"line_id": 2, "gross_amount": 5}))).await;
    assert_eq!(r.body["error"]["errors"][0]["path"], "tax_lines");
    assert_eq!(api.call("GET", &format!("{p}/not-a-uuid"), None).await.status, 404);
    assert_eq!(api.call("GET", &format!("{p}/00000000-0000-4000-8000-000000000000"), None).await.status, 404);
    let r = api.call("GET", &format!("{p}?limit=0&status=nope"), None).await;
    assert_eq!(r.status, 400);
    assert_eq!(r.body["error"]["errors"].as_array().map(Vec::len), Some(2));

    // If-Match: the current version applies, an old one is a 412 and changes nothing
    let t = api.token();
    let r = api.call_as(Some(&t), "POST", &format!("{dp}/items"), Some(item(2, 1)), Some("W/\"0\"")).await;
    assert_eq!(r.status, 200);
    let r = api.call_as(Some(&t), "POST", &format!("{dp}/items"), Some(item(3, 1)), Some("W/\"0\"")).await;
    assert_eq!((r.status.as_u16(), r.code()), (412, "VERSION_CONFLICT"));
    assert_eq!(api.call("GET", &dp, None).await.body["version"], 1);

    // nothing above changed the draft list beyond the drafts created
    let all = api.call("GET", &p, None).await;
    assert_eq!(all.body["draft_orders"].as_array().map(Vec::len), Some(1));
}

async fn auth_and_tenancy(api: &Api) {
    let p = drafts_path();
    let d = new_draft(api, json!({"order": {"currency": "NOK"}})).await;
    let dp = format!("{p}/{}", id(&d));
    let body = Some(json!({"order": {"currency": "NOK"}}));
    assert_eq!(api.call_as(None, "GET", &dp, None, None).await.status, 401);
    let expired = api.token_for(AID, "admin:shopping", 0);
    assert_eq!(api.call_as(Some(&expired), "GET", &dp, None, None).await.status, 401);
    let mut forged = api.token();
    forged.pop();
    forged.push('A');
    assert_eq!(api.call_as(Some(&forged), "GET", &dp, None, None).await.status, 401);
    let reader = api.token_for(AID, "read:shopping", 60);
    assert_eq!(api.call_as(Some(&reader), "GET", &dp, None, None).await.status, 200);
    let r = api.call_as(Some(&reader), "POST", &p, body.clone(), None).await;
    assert_eq!((r.status.as_u16(), r.code()), (403, "FORBIDDEN"));
    let writer = api.token_for(AID, "write:shopping", 60);
    assert_eq!(api.call_as(Some(&writer), "POST", &p, body.clone(), None).await.status, 200);
    assert_eq!(api.call_as(Some(&writer), "GET", &dp, None, None).await.status, 403);
    // another account's token on this account's path
    let other = api.token_for(OTHER, "admin:shopping", 60);
    assert_eq!(api.call_as(Some(&other), "GET", &dp, None, None).await.status, 403);
    // another account's draft id under the caller's own account: not found
    let foreign = format!("/v1/accounts/{OTHER}/shopping/draft_orders/{}", id(&d));
    assert_eq!(api.call_as(Some(&other), "GET", &foreign, None, None).await.status, 404);
    assert_eq!(api.call_as(Some(&other), "PUT", &format!("{foreign}/complete"), None, None).await.status, 404);
    let list =
        api.call_as(Some(&other), "GET", &format!("/v1/accounts/{OTHER}/shopping/draft_orders"), None, None).await;
    assert_eq!(list.body["draft_orders"], json!([]));
    // ... and the same for orders, by id and by order_id
    let d2 = new_draft(api, json!({"order": {"currency": "NOK", "order_id": "MINE-1", "items": [item(1, 1)]}})).await;
    let o = api.call("PUT", &format!("{p}/{}/complete", id(&d2)), None).await;
    let oid = id(&o.body["orders"][0]);
    for key in [oid.as_str(), "MINE-1"] {
        let mine = format!("/v1/accounts/{AID}/shopping/orders/{key}");
        let theirs = format!("/v1/accounts/{OTHER}/shopping/orders/{key}");
        assert_eq!(api.call_as(Some(&other), "GET", &mine, None, None).await.status, 403);
        assert_eq!(api.call_as(Some(&other), "GET", &theirs, None, None).await.status, 404);
        assert_eq!(api.call_as(Some(&reader), "GET", &mine, None, None).await.status, 200);
        assert_eq!(api.call_as(None, "GET", &mine, None, None).await.status, 401);
    }
}

async fn lists_and_paging(api: &Api) {
    let mut ids = Vec::new();
    for i in 0..7i64 {
        let currency = if i % 2 == 0 { "NOK" } else { "SEK" };
        let d = new_draft(
            api,
            json!({"order": {"currency": currency, "customer": {"id": format!("cust-{i}"), "email": format!("Person{i}@Example.com")}, "items": [item(1, 100 * (i + 1))]}}),
        )
        .await;
        ids.push(id(&d));
        api.clock.advance(1);
    }
    let p = drafts_path();
    let mut seen = Vec::new();
    let mut after: Option<String> = None;
    loop {
        let q = match &after {
            Some(a) => format!("{p}?limit=3&starting_after={a}"),
            None => format!("{p}?limit=3"),
        };
        let page = api.call("GET", &q, None).await;
        assert_eq!(page.status, 200);
        let list = page.body["draft_orders"].as_array().expect("list").clone();
        if list.is_empty() {
            break;
        }
        seen.extend(list.iter().map(id));
        after = seen.last().cloned();
    }
    let newest_first: Vec<String> = ids.iter().rev().cloned().collect();
    assert_eq!(seen, newest_first, "every draft once, newest first");

    let count = |v: &Value| v["draft_orders"].as_array().map_or(0, Vec::len);
    assert_eq!(count(&api.call("GET", &format!("{p}?currency=SEK&limit=100"), None).await.body), 3);
    assert_eq!(count(&api.call("GET", &format!("{p}?currency=SEK&currency=NOK"), None).await.body), 7);
    assert_eq!(count(&api.call("GET", &format!("{p}?net_amount.gte=300&net_amount.lte=500"), None).await.body), 3);
    assert_eq!(count(&api.call("GET", &format!("{p}?customer_id=cust-3"), None).await.body), 1);
    assert_eq!(count(&api.call("GET", &format!("{p}?search=person5"), None).await.body), 1);
    assert_eq!(count(&api.call("GET", &format!("{p}?search=PERSON"), None).await.body), 7);
    assert_eq!(count(&api.call("GET", &format!("{p}?status=completed"), None).await.body), 0);
    assert_eq!(
        count(&api.call("GET", &format!("{p}?created_at.gte=2027-01-15&created_at.lte=2027-01-15"), None).await.body),
        7
    );
    assert_eq!(count(&api.call("GET", &format!("{p}?created_at.gte=2027-01-16"), None).await.body), 0);
    assert_eq!(api.call("GET", &format!("{p}?starting_after=nope"), None).await.status, 400);
}

/// Retention: after `time_to_live` the draft is gone and the order is emptied.
async fn retention(api: &Api) {
    let d = new_draft(api, json!({"options": {"order_time_to_live": 86400}, "order": {"currency": "NOK", "external_ids": [{"id": "ext-1"}], "items": [item(1, 100)]}})).await;
    let dp = format!("{}/{}", drafts_path(), id(&d));
    let r = api.call("PUT", &format!("{dp}/complete"), None).await;
    let order_id = id(&r.body["orders"][0]);
    let op = format!("/v1/accounts/{AID}/shopping/orders/{order_id}");
    api.clock.advance(86_399);
    assert_eq!(api.call("GET", &dp, None).await.status, 200);
    assert!(api.call("GET", &op, None).await.body["items"].is_array());
    api.clock.advance(2);
    assert_eq!(api.call("GET", &dp, None).await.status, 404);
    let emptied = api.call("GET", &op, None).await;
    assert_eq!(emptied.status, 200);
    assert_eq!(emptied.body["items"], json!([]), "an emptied order's arrays are empty, still there");
    assert_eq!(emptied.body["external_ids"][0]["id"], "ext-1");
    assert!(emptied.body["deleted_at"].is_string());
    assert_eq!(emptied.body["order_id"], order_id.as_str());
}

/// Each write's event carries the webhook events it produces, whether it still rides in the
/// draft item or already has its history item.
async fn outbox_events(api: &Api) {
    let d = new_draft(api, json!({"order": {"currency": "NOK", "items": [item(1, 1)]}})).await;
    api.call("PUT", &format!("{}/{}/complete", drafts_path(), id(&d)), None).await;
    let page = api.store.query(&infra::Query::partition(domain::table::draft_pk(AID, &id(&d)))).await.expect("query");
    let mut hooks = std::collections::BTreeMap::new();
    for i in &page.items {
        let recs = if i.sk.starts_with("EVENT#") {
            vec![domain::outbox::decode(&i.doc).expect("history")]
        } else {
            domain::outbox::riding(i).expect("riding")
        };
        for r in recs {
            hooks.insert(r.version(), r.webhooks);
        }
    }
    let hooks: Vec<Vec<String>> = hooks.into_values().collect();
    assert_eq!(hooks, [vec!["shopping_draft_add".to_owned()], vec!["shopping_draft_complete".to_owned()]]);
}

on_both_engines!(
    draft_lifecycle,
    completion_modes,
    completion_into_existing_orders,
    bad_input,
    auth_and_tenancy,
    lists_and_paging,
    retention,
    outbox_events,
);
