//! The order commands' rules, exact to the item written.

use super::*;
use crate::change::Ctx;
use crate::error::DomainError;
use crate::ids::SequentialIds;
use crate::model::{EventRequest, OrderItem, OrderObject, PaymentOperation};
use crate::model::{Order, OrderStatus};
use crate::table::Condition;
use crate::table::WriteOp;
use serde_json::Value;

fn ctx() -> Ctx {
    Ctx {
        aid: "T12345678".into(),
        actor: "client-1".into(),
        now: crate::ids::parse_rfc3339("2026-11-22T10:00:00Z").unwrap(),
        request: EventRequest::default(),
    }
}

fn rec() -> OrderRecord {
    let item = |l: i64, net: i64| OrderItem {
        line_id: Some(l),
        gross_amount: Some(net),
        net_amount: Some(net),
        ..Default::default()
    };
    let order = Order {
        id: "00000000-0000-4000-8000-000000000999".into(),
        created_at: "2026-11-21T10:00:00.000Z".into(),
        updated_at: "2026-11-21T10:00:00.000Z".into(),
        status: Some(OrderStatus::Open),
        content: OrderObject {
            version: Some(3),
            net_amount: Some(300),
            currency: Some("NOK".into()),
            items: Some(vec![item(1, 100), item(2, 200)]),
            ..Default::default()
        },
        ..Default::default()
    };
    OrderRecord { order, unflushed: Vec::new() }
}

fn conflict_code(e: DomainError) -> &'static str {
    match e {
        DomainError::Conflict { code, .. } => code,
        other => panic!("expected a conflict, got {other:?}"),
    }
}

#[test]
fn update_is_partial_bumps_the_version_and_is_conditioned_on_it() {
    let mut r = rec();
    r.order.content.comment = Some("keep me".into());
    let u = OrderUpdate {
        courier_id: Some("c-7".into()),
        items: Some(vec![ItemStatus { line_id: Some(2), status: Some("picked".into()) }]),
        ..Default::default()
    };
    let out = update(&ctx(), &mut SequentialIds::default(), r, u).unwrap();
    let o = &out.resource;
    assert_eq!(out.version, 4);
    assert_eq!(o.content.courier_id.as_deref(), Some("c-7"));
    assert_eq!(o.content.comment.as_deref(), Some("keep me"));
    let items = o.content.items.as_ref().unwrap();
    assert_eq!(items[1].status.as_deref(), Some("picked"));
    assert_eq!(items[1].version, Some(4));
    assert_eq!(items[0].status, None);
    assert!(matches!(out.ops[0], WriteOp::Put { cond: Some(Condition::VersionIs(3)), .. }));
    assert_eq!(o.events.as_ref().unwrap()[0].version, Some(4));
}

#[test]
fn update_of_an_unknown_line_names_it() {
    let u = OrderUpdate { items: Some(vec![ItemStatus { line_id: Some(9), status: None }]), ..Default::default() };
    let Err(DomainError::Validation(errs)) = update(&ctx(), &mut SequentialIds::default(), rec(), u) else {
        panic!("expected a 400")
    };
    assert_eq!(errs[0].path, "items[0].line_id");
}

#[test]
fn status_transitions_follow_the_matrix() {
    let ids = &mut SequentialIds::default();
    let closed = close(&ctx(), ids, rec()).unwrap().resource;
    assert_eq!(closed.status, Some(OrderStatus::Closed));
    assert!(closed.closed_at.is_some());
    let again = OrderRecord { order: closed.clone(), unflushed: Vec::new() };
    assert_eq!(conflict_code(close(&ctx(), ids, again).unwrap_err()), "INVALID_STATUS_TRANSITION");
    assert_eq!(conflict_code(open(&ctx(), ids, rec()).unwrap_err()), "INVALID_STATUS_TRANSITION");
    let reopened = open(&ctx(), ids, OrderRecord { order: closed.clone(), unflushed: Vec::new() }).unwrap();
    assert_eq!(reopened.resource.closed_at, None);
    let body = CancelBody { cancelled_reason: Some("customer".into()) };
    let cancelled = cancel(&ctx(), ids, OrderRecord { order: closed, unflushed: Vec::new() }, body).unwrap();
    assert_eq!(cancelled.resource.cancelled_reason.as_deref(), Some("customer"));
    let done = OrderRecord { order: cancelled.resource, unflushed: Vec::new() };
    for f in [close, open] {
        assert_eq!(conflict_code(f(&ctx(), ids, done.clone()).unwrap_err()), "INVALID_STATUS_TRANSITION");
    }
    let body = CancelBody::default();
    assert_eq!(conflict_code(cancel(&ctx(), ids, done, body).unwrap_err()), "INVALID_STATUS_TRANSITION");
}

#[test]
fn cancel_needs_nothing_captured_net_of_refunds() {
    let ids = &mut SequentialIds::default();
    let op = |amount| PaymentOperation { amount: Some(amount), ..Default::default() };
    let mut r = rec();
    r.order.captures = Some(vec![op(100)]);
    let err = cancel(&ctx(), ids, r.clone(), CancelBody::default()).unwrap_err();
    assert_eq!(conflict_code(err), "INVALID_STATUS_TRANSITION");
    r.order.refunds = Some(vec![op(100)]);
    assert!(cancel(&ctx(), ids, r, CancelBody::default()).is_ok());
    let bad = CancelBody { cancelled_reason: Some("bored".into()) };
    assert!(matches!(cancel(&ctx(), ids, rec(), bad), Err(DomainError::Validation(_))));
}

#[test]
fn comments_with_a_client_id_are_idempotent_and_deletes_are_soft() {
    let ids = &mut SequentialIds::default();
    let body = CommentBody { id: Some("c1".into()), body: Some("hello".into()), visibility: None };
    let first = add_comment(&ctx(), ids, rec(), body.clone()).unwrap();
    assert_eq!(first.ops.len(), 1);
    let stored = OrderRecord { order: first.resource.clone(), unflushed: Vec::new() };
    let repeat = add_comment(&ctx(), ids, stored.clone(), body).unwrap();
    assert!(repeat.ops.is_empty());
    assert_eq!(repeat.version, first.version);
    let other = CommentBody { id: Some("c1".into()), body: Some("changed".into()), visibility: None };
    assert_eq!(conflict_code(add_comment(&ctx(), ids, stored.clone(), other).unwrap_err()), "DUPLICATE_ID");
    let deleted = delete_comment(&ctx(), ids, stored, "c1").unwrap().resource;
    let c = &deleted.comments.as_ref().unwrap()[0];
    assert!(c.deleted_at.is_some());
    let twice = delete_comment(&ctx(), ids, OrderRecord { order: deleted, unflushed: Vec::new() }, "c1").unwrap();
    assert!(twice.ops.is_empty());
    assert!(matches!(delete_comment(&ctx(), ids, rec(), "nope"), Err(DomainError::NotFound("comment"))));
    let empty = CommentBody { body: Some(" ".into()), ..Default::default() };
    assert!(matches!(add_comment(&ctx(), ids, rec(), empty), Err(DomainError::Validation(_))));
}

#[test]
fn service_events_need_state_service_and_status() {
    let ids = &mut SequentialIds::default();
    let Err(DomainError::Validation(errs)) = add_event(&ctx(), ids, rec(), ServiceEventBody::default()) else {
        panic!("expected a 400")
    };
    let paths: Vec<_> = errs.iter().map(|e| e.path.as_str()).collect();
    assert_eq!(paths, ["state", "service", "service_status"]);
    let body = ServiceEventBody {
        state: Some("pending".into()),
        service: Some("kitchen".into()),
        service_status: Some("cooking".into()),
        ..Default::default()
    };
    let out = add_event(&ctx(), ids, rec(), body).unwrap();
    assert_eq!(out.resource.event_type.as_deref(), Some("service-event"));
    assert_eq!(out.resource.version, Some(4));
}

#[test]
fn sessions_sum_the_selected_lines_and_refuse_cancelled_orders() {
    let ids = &mut SequentialIds::default();
    let body = |lines: Vec<Value>| SessionBody {
        items: Some(lines.into_iter().map(|l| SessionItemRequest { line_id: Some(l) }).collect()),
        profile_id: Some("P1".into()),
        url: Some(SessionUrls { return_url: Some("https://example.com/r".into()), ..Default::default() }),
        ..Default::default()
    };
    let out = create_session(&ctx(), ids, rec(), body(vec![Value::from("1"), Value::from(2)])).unwrap();
    assert_eq!(out.resource.amount, Some(300));
    assert_eq!(out.resource.items.as_ref().unwrap()[0].line_id.as_deref(), Some("1"));
    let err = create_session(&ctx(), ids, rec(), body(vec![Value::from(7)])).unwrap_err();
    assert!(matches!(err, DomainError::Validation(ref e) if e[0].path == "items[0].line_id"));
    let mut cancelled = rec();
    cancelled.order.status = Some(OrderStatus::Cancelled);
    let err = create_session(&ctx(), ids, cancelled, body(vec![Value::from(1)])).unwrap_err();
    assert_eq!(conflict_code(err), "ORDER_CANCELLED");
}
