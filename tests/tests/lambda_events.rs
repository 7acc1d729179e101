//! Each function as Lambda runs it: the committed API Gateway HTTP API v2 events in
//! `events/apigw/` go through `lambda_http` (the same adapter `lambda_http::run` uses) into
//! the function's router, with the DynamoDB engine on the local emulator. Claims come from the
//! authorizer's context; account and scope are still checked by the function.

mod common;

use functions::edge::auth::Auth;
use functions::edge::state::AppState;
use infra::clock::ManualClock;
use lambda_http::request::LambdaRequest;
use lambda_http::{Adapter, Context, LambdaEvent, Service};
use serde_json::Value;
use std::sync::Arc;

struct Functions {
    drafts: axum::Router,
    orders: axum::Router,
    views: axum::Router,
    payments: axum::Router,
    hooks: axum::Router,
    clock: Arc<ManualClock>,
}

impl Functions {
    async fn new() -> Self {
        let clock = Arc::new(ManualClock::at(common::T0));
        let store = common::dynamo_store(clock.clone()).await;
        let state = AppState::local(store, clock.clone(), Auth::ApiGateway);
        Self {
            drafts: functions::finish(functions::api::drafts::router(), state.clone()),
            orders: functions::finish(functions::api::orders::router(), state.clone()),
            views: functions::finish(functions::api::views::router(), state.clone()),
            payments: functions::finish(functions::api::payments::router(), state.clone()),
            hooks: functions::finish(functions::api::hooks::router(), state),
            clock,
        }
    }
}

/// Loads `events/apigw/{name}.json`, fills the placeholders, invokes, returns (status, body).
async fn invoke(router: &axum::Router, name: &str, vars: &[(&str, &str)]) -> (u16, Value, Value) {
    let path = format!("{}/../events/apigw/{name}.json", env!("CARGO_MANIFEST_DIR"));
    let mut raw = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"));
    for (k, v) in vars {
        raw = raw.replace(&format!("{{{{{k}}}}}"), v);
    }
    let request: LambdaRequest = serde_json::from_str(&raw).expect("an API Gateway v2 event");
    let mut adapter = Adapter::from(router.clone());
    let response = adapter.call(LambdaEvent::new(request, Context::default())).await.expect("infallible");
    let response = serde_json::to_value(&response).expect("serialisable response");
    let status = response["statusCode"].as_u64().expect("statusCode") as u16;
    let body = response["body"].as_str().map_or(Value::Null, |b| serde_json::from_str(b).expect("JSON body"));
    (status, body, response["headers"].clone())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_route_through_lambda_http_on_dynamodb() {
    let f = Functions::new().await;
    let exp = (f.clock.as_ref() as &dyn infra::Clock).epoch() + 600;
    let exp = exp.to_string();
    let v = |extra: &[(&'static str, String)]| -> Vec<(&'static str, String)> {
        let mut all = vec![("exp", exp.clone())];
        all.extend(extra.iter().cloned());
        all
    };
    let call = |router: &axum::Router, name: &str, vars: Vec<(&'static str, String)>| {
        let (router, name) = (router.clone(), name.to_owned());
        async move {
            let refs: Vec<(&str, &str)> = vars.iter().map(|(k, v)| (*k, v.as_str())).collect();
            invoke(&router, &name, &refs).await
        }
    };

    let (status, draft, _) = call(&f.drafts, "drafts-create", v(&[])).await;
    assert_eq!(status, 200, "{draft}");
    assert_eq!(draft["created_by"], "client-42", "the actor comes from the authorizer's claims");
    let id = draft["id"].as_str().expect("id").to_owned();
    let d = v(&[("draft_id", id.clone())]);

    let (status, body, headers) = call(&f.drafts, "drafts-get", d.clone()).await;
    assert_eq!(status, 200);
    assert_eq!(body["id"], id.as_str());
    assert_eq!(headers["etag"], "W/\"0\"");

    let (status, body, _) = call(&f.drafts, "drafts-replace", d.clone()).await;
    assert_eq!((status, body["order"]["gross_amount"].as_i64()), (200, Some(24900)));
    let (status, body, _) = call(&f.drafts, "drafts-items-add", d.clone()).await;
    assert_eq!((status, body["order"]["gross_amount"].as_i64()), (200, Some(25900)));
    let (status, body, _) = call(&f.drafts, "drafts-items-update", d.clone()).await;
    assert_eq!((status, body["order"]["gross_amount"].as_i64()), (200, Some(26400)));
    let (status, body, _) = call(&f.drafts, "drafts-items-remove", d.clone()).await;
    assert_eq!((status, body["order"]["gross_amount"].as_i64()), (200, Some(21400)));

    let (status, body, _) = call(&f.drafts, "drafts-list", v(&[])).await;
    assert_eq!(status, 200);
    assert_eq!(body["draft_orders"][0]["id"], id.as_str());

    let (status, body, _) = call(&f.drafts, "drafts-complete", d.clone()).await;
    assert_eq!(status, 200, "{body}");
    let order_id = body["orders"][0]["order_id"].as_str().expect("order_id").to_owned();
    assert_eq!(order_id.len(), 9);

    let (status, order, _) = call(&f.orders, "orders-get", v(&[("order_id", order_id.clone())])).await;
    assert_eq!(status, 200, "{order}");
    assert_eq!(order["net_amount"], 21400);
    assert_eq!(order["events"][0]["draft_id"], id.as_str());

    let o = v(&[("order_id", order_id.clone())]);
    let (status, body, headers) = call(&f.orders, "orders-update", o.clone()).await;
    assert_eq!((status, body["courier_id"].as_str()), (200, Some("bring")), "{body}");
    assert_eq!(headers["etag"], "W/\"1\"");
    assert_eq!(body["events"].as_array().map(Vec::len), Some(2));
    let (status, body, _) = call(&f.orders, "orders-comments-add", o.clone()).await;
    assert_eq!(status, 200, "{body}");
    let comment_id = body["comments"][0]["id"].as_str().expect("comment id").to_owned();
    let (status, body, _) =
        call(&f.orders, "orders-comments-delete", v(&[("order_id", order_id.clone()), ("comment_id", comment_id)]))
            .await;
    assert!(status == 200 && body["comments"][0]["deleted_at"].is_string(), "{body}");
    let (status, body, _) = call(&f.orders, "orders-events-add", o.clone()).await;
    assert_eq!((status, body["event_type"].as_str()), (200, Some("service-event")), "{body}");
    let (status, body, _) = call(&f.orders, "orders-events-list", o.clone()).await;
    assert_eq!((status, body["state"].as_str()), (200, Some("success")), "{body}");
    let (status, session, _) = call(&f.orders, "orders-sessions-create", o.clone()).await;
    assert_eq!(status, 200, "{session}");
    let sid = session["id"].as_str().expect("session id").to_owned();
    let (status, body, _) = call(&f.orders, "orders-sessions-list", o.clone()).await;
    assert_eq!((status, body["sessions"][0]["id"].as_str()), (200, Some(sid.as_str())));
    let (status, body, _) =
        call(&f.orders, "orders-sessions-get", v(&[("order_id", order_id.clone()), ("session_id", sid)])).await;
    assert_eq!((status, body["amount"].as_i64()), (200, session["amount"].as_i64()));
    // payments on the order's first line: authorize all, cancel 400 of it, capture the rest,
    // refund it all (so the order can still be cancelled below)
    let first = &order["items"][0];
    let line = first["line_id"].as_i64().expect("line").to_string();
    let net = first["net_amount"].as_i64().expect("net");
    for (kind, amount) in
        [("authorizations", net), ("cancellations", 400), ("captures", net - 400), ("refunds", net - 400)]
    {
        let vars = v(&[("order_id", order_id.clone()), ("line", line.clone()), ("amount", amount.to_string())]);
        let (status, created, _) = call(&f.payments, &format!("payments-{kind}-create"), vars).await;
        assert_eq!((status, created["amount"].as_i64()), (200, Some(amount)), "{kind}: {created}");
        let (status, list, _) = call(&f.payments, &format!("payments-{kind}-list"), o.clone()).await;
        assert_eq!((status, list[kind][0]["id"].clone()), (200, created["id"].clone()), "{kind}");
        let id = created["id"].as_str().expect("id").to_owned();
        let vars = v(&[("order_id", order_id.clone()), ("id", id)]);
        let (status, got, _) = call(&f.payments, &format!("payments-{kind}-get"), vars).await;
        assert_eq!((status, got["amount"].as_i64()), (200, Some(amount)), "{kind}");
    }
    let (_, paid, _) = call(&f.orders, "orders-get", o.clone()).await;
    assert_eq!(paid["payment_status"], "refunded", "{paid}");

    for (name, want) in [("orders-close", "closed"), ("orders-open", "open"), ("orders-cancel", "cancelled")] {
        let (status, body, _) = call(&f.orders, name, o.clone()).await;
        assert_eq!((status, body["status"].as_str()), (200, Some(want)), "{name}: {body}");
    }

    let (status, body, _) = call(&f.views, "views-orders-list", v(&[])).await;
    assert_eq!((status, body["orders"].as_array().map(Vec::len)), (200, Some(0)), "the order is cancelled: {body}");
    let c = v(&[("customer_id", "cust-1".into()), ("order_id", order_id.clone())]);
    let (status, body, _) = call(&f.views, "views-customer-orders", c.clone()).await;
    assert_eq!((status, body["orders"][0]["order_id"].as_str()), (200, Some(order_id.as_str())), "{body}");
    let (status, body, _) = call(&f.views, "views-customer-order", c).await;
    assert_eq!((status, body["order_id"].as_str()), (200, Some(order_id.as_str())), "{body}");
    let s = v(&[("store_id", "no-such-store".into()), ("order_id", order_id.clone())]);
    let (status, body, _) = call(&f.views, "views-store-orders", s.clone()).await;
    assert_eq!((status, body["orders"].as_array().map(Vec::len)), (200, Some(0)));
    let (status, _, _) = call(&f.views, "views-store-order", s).await;
    assert_eq!(status, 404);

    // each function serves only its own group's routes
    let (status, _, _) = call(&f.orders, "drafts-get", d.clone()).await;
    assert_eq!(status, 404);
    let (status, _, _) = call(&f.views, "orders-get", o.clone()).await;
    assert_eq!(status, 404);
    let (status, _, _) = call(&f.orders, "views-orders-list", v(&[])).await;
    assert_eq!(status, 404);

    let (_, other, _) = call(&f.drafts, "drafts-create", v(&[])).await;
    let (status, body, _) =
        call(&f.drafts, "drafts-delete", v(&[("draft_id", other["id"].as_str().unwrap_or("").to_owned())])).await;
    assert_eq!((status, body["status"].as_str()), (200, Some("deleted")));

    let (status, body, _) = call(&f.drafts, "drafts-create-other-account", v(&[])).await;
    assert_eq!((status, body["error"]["code"].as_str()), (403, Some("FORBIDDEN")));
    let (status, _, _) = call(&f.drafts, "drafts-create-read-scope", v(&[])).await;
    assert_eq!(status, 403);
    let (status, _, _) = call(&f.drafts, "drafts-create-no-authorizer", v(&[])).await;
    assert_eq!(status, 401);
    // webhook subscriptions: hooks scopes from the authorizer; the secret is never returned
    let (status, hook, _) = call(&f.hooks, "hooks-create", v(&[])).await;
    assert_eq!(status, 200, "{hook}");
    assert_eq!(hook["config"]["secret"], serde_json::json!({"type": "HMAC-SHA1"}), "write-only value: {hook}");
    let h = v(&[("hook_id", hook["id"].as_str().expect("hook id").to_owned())]);
    let (status, body, _) = call(&f.hooks, "hooks-get", h.clone()).await;
    assert_eq!((status, body["id"].clone()), (200, hook["id"].clone()));
    let (status, body, _) = call(&f.hooks, "hooks-list", v(&[])).await;
    assert_eq!((status, body[0]["id"].clone()), (200, hook["id"].clone()), "{body}");
    let (status, body, _) = call(&f.hooks, "hooks-deliveries", h).await;
    assert!(status == 200 && body.is_array(), "the upstream's bare array: {body}");
    let (status, _, _) = call(&f.hooks, "hooks-create-shopping-scope", v(&[])).await;
    assert_eq!(status, 403, "admin:shopping alone does not manage hooks");
    let (status, _, _) = call(&f.drafts, "hooks-list", v(&[])).await;
    assert_eq!(status, 404);

    // expiry is enforced by the function too, with no leeway
    let (status, _, _) = call(&f.drafts, "drafts-get", vec![("exp", common::T0.to_string()), ("draft_id", id)]).await;
    assert_eq!(status, 401);
}
