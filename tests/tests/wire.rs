//! The upstream's own samples, sent as a merchant's client would send them: every request
//! sample of the reference (`../shared/reference/004…`, by line) goes to its endpoint, and the
//! answer is compared, field by field, with the response sample that follows it: each number
//! has the sample's JSON form (no `.0` on a whole number), each array of the sample is there
//! (empty when empty), and the read-only fields upstream always shows are set. Then
//! `metadata` round-trips byte for byte. On both engines.

mod common;

use common::{Api, AID};
use serde_json::{json, Value};

/// The Redoc rendering of the whole upstream reference (ENDPOINTS.md, "Sources").
const REFERENCE: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../../shared/reference/004_8fe1a8f78680e43e.txt");

/// The JSON samples that start at 1-based `line` of the reference, in order (a request
/// sample and the response sample after it, or a response sample alone). Redoc marks each
/// collapsible member with `- `; without those marks the samples are JSON.
fn samples(line: usize) -> Vec<Value> {
    let text = std::fs::read_to_string(REFERENCE).expect("the upstream reference beside the repository");
    let start: usize = text.split_inclusive('\n').take(line - 1).map(str::len).sum();
    let bytes = text.as_bytes();
    let mut i = start;
    let mut out = Vec::new();
    loop {
        while i < bytes.len() && bytes[i].is_ascii_whitespace() {
            i += 1;
        }
        if i >= bytes.len() || !matches!(bytes[i], b'{' | b'[') {
            return out;
        }
        let (mut depth, mut in_str, mut esc, mut j) = (0usize, false, false, i);
        loop {
            let c = bytes[j];
            if in_str {
                match c {
                    _ if esc => esc = false,
                    b'\\' => esc = true,
                    b'"' => in_str = false,
                    _ => {}
                }
            } else {
                match c {
                    b'"' => in_str = true,
                    b'{' | b'[' => depth += 1,
                    b'}' | b']' => {
                        depth -= 1;
                        if depth == 0 {
                            break;
                        }
                    }
                    _ => {}
                }
            }
            j += 1;
        }
        let json = text[i..=j].replace("{- ", "{").replace("[- ", "[").replace("\n- ", "\n");
        out.push(serde_json::from_str(&json).unwrap_or_else(|e| panic!("sample at line {line}: {e}")));
        i = j + 1;
    }
}

/// Whether a JSON number was written as a whole number (`2`, not `2.0` or `2e0`).
fn whole_form(n: &serde_json::Number) -> bool {
    !n.to_string().contains(['.', 'e', 'E'])
}

/// Keys of a sample our answer may leave out, with why: an order's `events` are shown only
/// when `include_events` asks for them (its default is `false`, 004:L6396).
const MAY_LACK: [&str; 1] = ["events"];

/// Compares `ours` with the upstream `sample` at `path`, recording every difference a strict
/// client would trip on.
fn conform(sample: &Value, ours: &Value, path: &str, problems: &mut Vec<String>) {
    match (sample, ours) {
        (Value::Object(s), Value::Object(o)) => {
            for (k, sv) in s {
                let here = format!("{path}.{k}");
                match (sv, o.get(k)) {
                    (Value::Array(_), None) if !MAY_LACK.contains(&k.as_str()) => {
                        problems.push(format!("{here}: the sample's array is missing"))
                    }
                    (_, None) => {}
                    (_, Some(ov)) => conform(sv, ov, &here, problems),
                }
            }
        }
        (Value::Array(s), Value::Array(o)) => {
            // Element by element where the sample shows one per element (payout destinations
            // differ in shape), else every element against the sample's first.
            for (i, ov) in o.iter().enumerate() {
                if let Some(sv) = s.get(i).or(s.first()).filter(|_| s.len() == o.len() || s.len() == 1) {
                    conform(sv, ov, &format!("{path}[{i}]"), problems);
                }
            }
        }
        (Value::Number(s), Value::Number(o)) => {
            if whole_form(s) && !whole_form(o) {
                problems.push(format!("{path}: {o} where the sample writes a whole number ({s})"));
            }
        }
        // The sample's placeholders are strings even where the value is a number written as
        // a numeric string (payout `value`): only shapes of kind are compared.
        (Value::String(_), Value::String(_)) | (Value::Bool(_), Value::Bool(_)) | (Value::Null, _) => {}
        (Value::String(_), Value::Number(_)) | (Value::Number(_), Value::String(_)) if path.ends_with(".value") => {}
        (s, o) => problems.push(format!("{path}: {} where the sample has {}", kind(o), kind(s))),
    }
}

fn kind(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

/// Asserts `ours` conforms to the response sample.
fn check(what: &str, sample: &Value, ours: &common::Resp) {
    assert!(ours.status.is_success(), "{what}: {} {}", ours.status, ours.body);
    let mut problems = Vec::new();
    conform(sample, &ours.body, "", &mut problems);
    assert!(problems.is_empty(), "{what}:\n  {}\n{:#}", problems.join("\n  "), ours.body);
}

/// The value at a `/`-path, for the read-only field checks.
fn at<'a>(v: &'a Value, pointer: &str) -> &'a Value {
    v.pointer(pointer).unwrap_or_else(|| panic!("{pointer} is missing from {v:#}"))
}

async fn upstream_samples_round_trip(api: &Api) {
    let drafts = format!("/v1/accounts/{AID}/shopping/draft_orders");
    let shop = format!("/v1/accounts/{AID}/shopping");

    // Create a draft (004:L2906 request, then its response).
    let [create_req, create_res] = <[Value; 2]>::try_from(samples(2906)).expect("request and response");
    // The sample's `options.order_id` names the order to add to with `replace: "order"`;
    // the create that has none to name leaves both out.
    let mut body = create_req.clone();
    let options = body["options"].as_object_mut().expect("options");
    options.remove("order_id");
    options.remove("replace");
    // The sample's lines name a payout rule (`dynamic_payout` "string") that its options do
    // not hold; here they name the sample's rule, so that the payouts show.
    let sample_rule = json!({"rule_type": "order.items.store.id", "rule_id": "sc029"});
    for it in body["order"]["items"].as_array_mut().expect("items") {
        it["dynamic_payout"] = sample_rule.clone();
    }
    let created = api.call("POST", &drafts, Some(body.clone())).await;
    check("POST /draft_orders", &create_res, &created);
    let draft = format!("{drafts}/{}", created.body["id"].as_str().expect("id"));
    // Read-only fields the sample shows.
    let item = at(&created.body, "/order/items/0");
    assert_eq!(item["is_changed"], json!(false), "a new line is unchanged");
    for channel in ["sms", "email"] {
        assert!(at(&created.body, &format!("/order/customer/marketing_consent/{channel}/updated_at")).is_string());
    }
    let rule = at(&created.body, "/options/payout/rules/0");
    assert_eq!((rule["account_id"].as_str(), rule["rule_version"].as_i64()), (Some(AID), Some(1)));
    assert_eq!(at(&created.body, "/events/0/request/body"), &json!(body.to_string()));

    // Update it (004:L1652): the same body; the rule and the consents are unchanged.
    let [update_req, update_res] = <[Value; 2]>::try_from(samples(1652)).expect("request and response");
    let mut body = update_req.clone();
    let options = body["options"].as_object_mut().expect("options");
    options.remove("order_id");
    options.remove("replace");
    for it in body["order"]["items"].as_array_mut().expect("items") {
        it["dynamic_payout"] = sample_rule.clone();
    }
    let updated = api.call("PUT", &draft, Some(body)).await;
    check("PUT /draft_orders/{id}", &update_res, &updated);
    assert_eq!(at(&updated.body, "/options/payout/rules/0/rule_version"), &json!(1));
    assert_eq!(
        at(&updated.body, "/order/customer/marketing_consent/sms/updated_at"),
        at(&created.body, "/order/customer/marketing_consent/sms/updated_at"),
        "an unchanged consent keeps its time"
    );
    check("GET /draft_orders/{id}", &samples(967)[0], &api.call("GET", &draft, None).await);

    // Items (004:L5646 add, L4867 update, L4159 remove): a new line, then the sample's own.
    let [add_req, add_res] = <[Value; 2]>::try_from(samples(5646)).expect("request and response");
    let mut line = add_req.clone();
    line["line_id"] = json!(7);
    line["related_item"] = json!({"line_id": 1, "type": "required"});
    let added = api.call("POST", &format!("{draft}/items"), Some(line)).await;
    check("POST /draft_orders/{id}/items", &add_res, &added);
    let [put_req, put_res] = <[Value; 2]>::try_from(samples(4867)).expect("request and response");
    let mut line = put_req.clone();
    line["line_id"] = json!(7);
    line["dynamic_payout"] = sample_rule.clone();
    line["related_item"] = json!({"line_id": 1, "type": "required"});
    let changed = api.call("PUT", &format!("{draft}/items/7"), Some(line)).await;
    check("PUT /draft_orders/{id}/items/{line_id}", &put_res, &changed);
    let lines = at(&changed.body, "/order/items").as_array().expect("items");
    let seven = lines.iter().find(|i| i["line_id"] == 7).expect("line 7");
    assert_eq!(seven["is_changed"], json!(true), "a replaced line is changed");
    assert!(seven["payout"]["destinations"].is_array(), "a draft line shows its payout: {seven:#}");
    let removed = api.call("DELETE", &format!("{draft}/items/7"), None).await;
    check("DELETE /draft_orders/{id}/items/{line_id}", &samples(4159)[0], &removed);

    // Complete (004:L167: an empty body, then the draft with its orders).
    let [_, complete_res] = <[Value; 2]>::try_from(samples(167)).expect("request and response");
    let done = api.call("PUT", &format!("{draft}/complete"), Some(json!({}))).await;
    check("PUT /draft_orders/{id}/complete", &complete_res, &done);
    let order_id = done.body["orders"][0]["id"].as_str().expect("order id").to_owned();
    let order = format!("{shop}/orders/{order_id}");
    let payout = at(&done.body, "/orders/0/items/0/payout");
    assert_eq!((payout["account_id"].as_str(), payout["rule_version"].as_i64()), (Some(AID), Some(1)));
    assert!(payout["metadata"].is_object());

    check("GET /orders/{order_id}", &samples(6397)[0], &api.call("GET", &order, None).await);
    let [order_req, order_res] = <[Value; 2]>::try_from(samples(7206)).expect("request and response");
    let mut body = order_req.clone();
    // The sample's item update names line 0; this order's first line is 1.
    for it in body["items"].as_array_mut().expect("items") {
        it["line_id"] = json!(1);
    }
    let changed = api.call("PUT", &order, Some(body)).await;
    check("PUT /orders/{order_id}", &order_res, &changed);
    assert_eq!(at(&changed.body, "/items/0/is_changed"), &json!(true), "an updated line is changed");

    let [event_req, event_res] = <[Value; 2]>::try_from(samples(8147)).expect("request and response");
    check(
        "POST /orders/{order_id}/events",
        &event_res,
        &api.call("POST", &format!("{order}/events"), Some(event_req)).await,
    );
    let [comment_req, comment_res] = <[Value; 2]>::try_from(samples(8967)).expect("request and response");
    let commented = api.call("POST", &format!("{order}/comments"), Some(comment_req)).await;
    check("POST /orders/{order_id}/comments", &comment_res, &commented);
    let comment_id = commented.body["comments"][0]["id"].as_str().expect("comment id").to_owned();
    let uncommented = api.call("DELETE", &format!("{order}/comments/{comment_id}"), None).await;
    check("DELETE /orders/{order_id}/comments/{comment_id}", &samples(8173)[0], &uncommented);

    // A session (the 004 request sample is not JSON: `items: [null]` and trailing commas;
    // 002 shows the request).
    let session = json!({"items": [{"line_id": "1"}], "profile_id": "default",
        "url": {"return_url": "https://example.com/accept", "callback_url": "https://example.com/cb"}});
    let s = api.call("POST", &format!("{order}/sessions"), Some(session)).await;
    assert!(s.status.is_success(), "{}", s.body);
    let sid = s.body["id"].as_str().expect("session id").to_owned();
    check(
        "GET …/sessions/{session_id}",
        &samples(12143)[0],
        &api.call("GET", &format!("{order}/sessions/{sid}"), None).await,
    );

    // The payment operations (004:L12374 capture, L12480 refund, L12586 cancellation; the
    // authorization uses the capture's body). Line 1 of the completed order; amounts it allows.
    let op = |sample: &Value, amount: i64, auth: Option<&str>| {
        let mut body = sample.clone();
        body["items"] = json!([{"line_id": 1, "amount": amount}]);
        match auth {
            Some(a) => body["authorization_id"] = json!(a),
            None => {
                body.as_object_mut().expect("body").remove("authorization_id");
            }
        }
        body
    };
    let [capture_req, capture_res] = <[Value; 2]>::try_from(samples(12374)).expect("request and response");
    let mut unsaid = op(&capture_req, 300, None);
    unsaid.as_object_mut().expect("body").remove("success");
    let auth = api.call("POST", &format!("{order}/authorizations"), Some(unsaid)).await;
    check("POST /orders/{order_id}/authorizations", &capture_res, &auth);
    let auth_id = auth.body["id"].as_str().expect("authorization id").to_owned();
    assert_eq!(auth.body["authorization_id"], json!(auth_id), "an authorization is its own authorization");
    assert_eq!(auth.body["success"], json!(true), "an operation recorded without `success` succeeded");
    let capture = api.call("POST", &format!("{order}/captures"), Some(op(&capture_req, 200, None))).await;
    check("POST /orders/{order_id}/captures", &capture_res, &capture);
    let payout = at(&capture.body, "/items/0/payout");
    assert_eq!((payout["account_id"].as_str(), payout["rule_version"].as_i64()), (Some(AID), Some(1)));
    let capture_id = capture.body["id"].as_str().expect("capture id").to_owned();
    let read = api.call("GET", &format!("{order}/captures/{capture_id}"), None).await;
    check("GET …/captures/{capture_id}", &samples(12326)[0], &read);
    let [refund_req, refund_res] = <[Value; 2]>::try_from(samples(12480)).expect("request and response");
    let refund = api.call("POST", &format!("{order}/refunds"), Some(op(&refund_req, 50, None))).await;
    check("POST /orders/{order_id}/refunds", &refund_res, &refund);
    let refund_id = refund.body["id"].as_str().expect("refund id").to_owned();
    check(
        "GET …/refunds/{refund_id}",
        &samples(12432)[0],
        &api.call("GET", &format!("{order}/refunds/{refund_id}"), None).await,
    );
    let [cancel_req, cancel_res] = <[Value; 2]>::try_from(samples(12586)).expect("request and response");
    let cancellation = api.call("POST", &format!("{order}/cancellations"), Some(op(&cancel_req, 100, None))).await;
    check("POST /orders/{order_id}/cancellations", &cancel_res, &cancellation);
    let cancellation_id = cancellation.body["id"].as_str().expect("cancellation id").to_owned();
    let read = api.call("GET", &format!("{order}/cancellations/{cancellation_id}"), None).await;
    check("GET …/cancellations/{cancellation_id}", &samples(12538)[0], &read);

    // Lists and views.
    for (line, path) in [
        (12654, drafts.clone()),
        (13501, format!("{shop}/orders")),
        (13334, format!("{order}/cancellations")),
        (13374, format!("{order}/captures")),
        (13414, format!("{order}/events")),
        (13422, format!("{order}/refunds")),
        (13462, format!("{order}/sessions")),
        (15096, format!("{shop}/customers/string/orders")),
        (14296, format!("{shop}/customers/string/orders/{order_id}")),
        (16691, format!("{shop}/stores/SL02/orders")),
        (15891, format!("{shop}/stores/SL02/orders/{order_id}")),
    ] {
        let answer = api.call("GET", &path, None).await;
        check(&format!("GET {path}"), &samples(line)[0], &answer);
    }
    let listed = api.call("GET", &format!("{shop}/orders"), None).await;
    let entry = &listed.body["orders"][0];
    for key in ["sessions", "authorizations", "captures", "refunds", "cancellations", "comments", "discounts"] {
        assert!(entry[key].is_array(), "a list entry's {key} is an array: {entry:#}");
    }
    let events = api.call("GET", &format!("{order}?include_events=api-event"), None).await;
    let bodyless =
        events.body["events"].as_array().expect("events").iter().find(|e| e["request"]["method"] == "DELETE");
    assert_eq!(bodyless.map(|e| &e["request"]["body"]), Some(&json!("")), "a request without a body shows \"\"");

    // Status changes (004:L9764 cancel, L10558 close, L11351 open), on a second order.
    let second =
        api.call("POST", &drafts, Some(json!({"order": {"currency": "NOK", "items": [common::item(1, 1000)]}}))).await;
    let done = api.call("PUT", &format!("{drafts}/{}/complete", second.body["id"].as_str().expect("id")), None).await;
    let other = format!("{shop}/orders/{}", done.body["orders"][0]["id"].as_str().expect("id"));
    check("POST …/close", &samples(10558)[0], &api.call("POST", &format!("{other}/close"), None).await);
    check("POST …/open", &samples(11351)[0], &api.call("POST", &format!("{other}/open"), None).await);
    let [cancel_req, cancel_res] = <[Value; 2]>::try_from(samples(9764)).expect("request and response");
    check("POST …/cancel", &cancel_res, &api.call("POST", &format!("{other}/cancel"), Some(cancel_req)).await);
}

/// Free-form JSON comes back as it was sent: the bytes of `metadata` in the answer are the
/// bytes of the request, numbers of every form, nesting and unicode included — but for an
/// exponent, which is written with its sign (`1e3` as `1e+3`: DECISIONS.md, "Numbers on the
/// wire").
async fn metadata_round_trips(api: &Api) {
    let sent = r#"{"zero":-0,"exp":1e3,"big":123456789012345678901234,"frac":1.50,"nested":{"list":[1,2.0,-3e-7,{"deep":true}]},"text":"blåbær ✓","null":null}"#;
    let metadata = sent.replace("1e3", "1e+3");
    let metadata = metadata.as_str();
    let body = format!(
        r#"{{"order":{{"currency":"NOK","metadata":{sent},"items":[{{"line_id":1,"gross_amount":100,"tax_lines":[{{"percentage":25}}],"metadata":{sent}}}]}}}}"#
    );
    let req = axum::http::Request::builder()
        .method("POST")
        .uri(format!("/v1/accounts/{AID}/shopping/draft_orders"))
        .header("authorization", format!("Bearer {}", api.token()))
        .header("content-type", "application/json")
        .body(axum::body::Body::from(body))
        .expect("request");
    let (status, bytes) = api.raw_bytes(req).await;
    let text = String::from_utf8(bytes).expect("UTF-8");
    assert!(status.is_success(), "{status} {text}");
    assert_eq!(text.matches(metadata).count(), 2, "metadata as sent, in the order and its line: {text}");
    let id = serde_json::from_str::<Value>(&text).expect("JSON")["id"].as_str().expect("id").to_owned();
    let done = api.call("PUT", &format!("/v1/accounts/{AID}/shopping/draft_orders/{id}/complete"), None).await;
    let order_id = done.body["orders"][0]["id"].as_str().expect("order id").to_owned();
    let req = axum::http::Request::builder()
        .uri(format!("/v1/accounts/{AID}/shopping/orders/{order_id}"))
        .header("authorization", format!("Bearer {}", api.token()))
        .body(axum::body::Body::empty())
        .expect("request");
    let (_, bytes) = api.raw_bytes(req).await;
    let text = String::from_utf8(bytes).expect("UTF-8");
    assert_eq!(text.matches(metadata).count(), 2, "and in the order completed from it: {text}");
}

on_both_engines!(upstream_samples_round_trip, metadata_round_trips);
