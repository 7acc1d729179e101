//! Completion: a draft becomes one order, one per store, or goes into an existing order.

use super::*;
use crate::model::{ItemStore, Order, OrderStatus, PaymentStatus};
use crate::order::{has_payments, order_items, payment_details, OrderItems, ORDER_EVENT_ADD, ORDER_UPDATE};
use std::collections::BTreeMap;

/// The complete response: the draft envelope with the orders, as the upstream shows it.
fn completion_response(mut out: Outcome<Draft>, orders: Vec<Order>) -> Outcome<Draft> {
    out.resource =
        Draft { version: None, events: None, options: None, order: None, orders: Some(orders), ..out.resource };
    out
}

/// Completion into an existing order: append the draft's items, or replace the content.
fn complete_into(
    ctx: &Ctx,
    ids: &mut dyn Ids,
    mut rec: DraftRecord,
    target: OrderRecord,
    replace: bool,
) -> Result<Outcome<Draft>> {
    let OrderRecord { mut order, unflushed } = target;
    if order.status == Some(OrderStatus::Cancelled) {
        return Err(DomainError::conflict("ORDER_CANCELLED", "the order is cancelled and cannot take new items"));
    }
    let options = rec.draft.options.clone().unwrap_or_default();
    let draft_order = rec.draft.order.clone().unwrap_or_default();
    let prev = order.content.version.unwrap_or(0);
    let version = money::next_version(prev);
    let mut new_items = draft_order.items.clone().unwrap_or_default();
    for it in &mut new_items {
        it.version = Some(version);
        // New to the order: unchanged in it so far.
        it.is_changed = Some(false);
    }
    if replace {
        if has_payments(&order) {
            return Err(DomainError::conflict(
                "ORDER_HAS_PAYMENTS",
                "an order with payment operations cannot be replaced",
            ));
        }
        let keep = order.content.clone();
        order.content = OrderObject {
            items: Some(new_items),
            order_id: keep.order_id,
            order_number: draft_order.order_number.clone().or(keep.order_number),
            time_to_live: options.order_time_to_live.or(draft_order.time_to_live).or(keep.time_to_live),
            multiple_authorizations: keep.multiple_authorizations,
            ..draft_order
        };
    } else {
        let existing = order.content.items.get_or_insert_with(Vec::new);
        for it in &new_items {
            if let Some(l) = it.line_id.filter(|l| existing.iter().any(|e| e.line_id == Some(*l))) {
                return Err(DomainError::conflict(
                    "DUPLICATE_LINE_ID",
                    format!("line_id {l} already exists in order {}", order.id),
                ));
            }
        }
        let first_new = existing.len();
        existing.extend(new_items);
        number_new_items(existing, |i| format!("order.items[{}].line_id", i.saturating_sub(first_new)))?;
        if let Some(ttl) = options.order_time_to_live {
            order.content.time_to_live = Some(ttl);
        }
    }
    let ttl = order.content.time_to_live;
    normalize_order(&mut order.content, version, ctx.now, ttl)?;
    // The draft's payout rules apply to the items it brings.
    let brought = order.content.items.iter_mut().flatten().filter(|i| i.version == Some(version));
    crate::payment::payout::resolve_items(&options, brought);
    order.content.stores = None;
    // The order's own change (version, expiry, payment figures, its event and webhooks) is
    // the one every order command makes.
    order.content.version = Some(prev);
    let event = api_event(ctx, ids, version, &rec.draft.id);
    let changed = crate::order::commit(ctx, OrderRecord { order, unflushed }, event, &[ORDER_UPDATE, ORDER_EVENT_ADD])?;
    let mut order = changed.resource;
    order.events = None;
    let ops = changed.ops;
    rec.order_ids.push(order.id.clone());
    let draft_version = rec.version();
    rec.draft.status = DraftStatus::Completed;
    let out = commit(ctx, ids, Some(draft_version), rec, "shopping_draft_complete", ops)?;
    Ok(completion_response(out, vec![order]))
}

/// Groups items for a split: one group per store id in ascending order; items without a
/// store form the last group.
fn split_groups(items: Vec<OrderItem>) -> Vec<(Option<ItemStore>, Vec<OrderItem>)> {
    let mut by_store: BTreeMap<String, (ItemStore, Vec<OrderItem>)> = BTreeMap::new();
    let mut no_store = Vec::new();
    for item in items {
        match item.store.clone().filter(|s| s.id.is_some()) {
            Some(s) => by_store.entry(s.id.clone().unwrap_or_default()).or_insert_with(|| (s, Vec::new())).1.push(item),
            None => no_store.push(item),
        }
    }
    let mut groups: Vec<_> = by_store.into_values().map(|(s, items)| (Some(s), items)).collect();
    if !no_store.is_empty() {
        groups.push((None, no_store));
    }
    groups
}

/// PUT /draft_orders/{id}/complete: turns the draft into one order, or one per store with
/// `split_draft`. The response is the draft envelope with `orders`.
///
/// With `options.order_id` the draft goes into `existing` (the order that id names, read by the
/// caller) instead: its items are appended, or with `options.replace = "order"` they replace
/// the order's content.
pub fn complete(
    ctx: &Ctx,
    ids: &mut dyn Ids,
    mut rec: DraftRecord,
    existing: Option<OrderRecord>,
) -> Result<Outcome<Draft>> {
    ensure_open(&rec)?;
    let options = rec.draft.options.clone().unwrap_or_default();
    let draft_order = rec.draft.order.clone().unwrap_or_default();
    let items = draft_order.items.clone().unwrap_or_default();
    if items.is_empty() {
        return Err(DomainError::invalid("order.items", "a draft needs at least one item to be completed"));
    }
    if options.order_id.is_some() {
        let order = existing
            .ok_or_else(|| DomainError::invalid("options.order_id", "does not name an order of this account"))?;
        return complete_into(ctx, ids, rec, order, options.replace.is_some());
    }
    let split = options.split_draft == Some(true);
    // A draft stored before this rule existed may hold both; refuse it clearly.
    check_against_stored(&rec, &options)?;
    let groups = if split { split_groups(items) } else { vec![(None, items)] };
    if groups.len() > MAX_SPLIT_ORDERS {
        return Err(DomainError::invalid(
            "order.items",
            format!("a split creates at most {MAX_SPLIT_ORDERS} orders; this draft has {} stores", groups.len()),
        ));
    }
    let ttl = ttl_seconds(Some(&options), &draft_order);
    let ttl_epoch = expires_at(ctx.now, ttl)?.map(|t| t.timestamp());
    let now = ctx.now_str();
    let serial = options.serial_order_number_suffix == Some(true) && split;
    let mode = options.generate_order_id.unwrap_or_default();
    let mut ops = Vec::new();
    let mut custom_order_ids = Vec::new();
    let mut orders = Vec::new();
    let mut base_number: Option<String> = draft_order.order_number.clone();
    for (n, (store, items)) in (1..).zip(groups) {
        let id = ids.uuid();
        let (order_id, id_cond, custom) = match (&rec.reserved_order_id, mode, &draft_order.order_id) {
            (Some(reserved), _, _) => (reserved.clone(), Condition::VersionIs(0), false),
            (None, _, Some(custom)) if !split => (custom.clone(), Condition::NotExists, true),
            (None, GenerateOrderId::Uuid, _) => (id.clone(), Condition::NotExists, false),
            (None, _, _) => (ids.alphanumeric9(), Condition::NotExists, false),
        };
        let order_number = match (&base_number, serial) {
            (Some(base), true) => format!("{base}-{n}"),
            (None, true) => {
                // Without a draft order_number the first order's id numbers the whole split.
                let base = order_id.clone();
                base_number = Some(base.clone());
                format!("{base}-{n}")
            }
            (Some(base), false) => base.clone(),
            (None, false) => order_id.clone(),
        };
        let mut content = OrderObject {
            items: Some(
                items
                    .into_iter()
                    .map(|mut it| {
                        it.version = Some(0);
                        it
                    })
                    .collect(),
            ),
            order_id: Some(order_id.clone()),
            order_number: Some(order_number),
            time_to_live: ttl,
            multiple_authorizations: options.multiple_authorizations.or(draft_order.multiple_authorizations),
            ..draft_order.clone()
        };
        if content.store.is_none() {
            content.store = store.as_ref().map(OrderStore::from);
        }
        normalize_order(&mut content, 0, ctx.now, ttl)?;
        crate::payment::payout::resolve_items(&options, content.items.iter_mut().flatten());
        // A new order's lines are unchanged in it so far.
        for it in content.items.iter_mut().flatten() {
            it.is_changed = Some(false);
        }
        content.stores = None;
        let event = api_event(ctx, ids, 0, &rec.draft.id);
        let order = Order {
            id: id.clone(),
            created_at: now.clone(),
            created_by: Some(ctx.actor.clone()),
            updated_at: now.clone(),
            status: Some(OrderStatus::Open),
            payment_status: Some(PaymentStatus::Pending),
            payment_details: None,
            links: Some(vec![
                Link::new("self", ctx.href(&format!("orders/{id}"))),
                Link::new("draft", ctx.href(&format!("draft_orders/{}", rec.draft.id))),
                Link::new("events", ctx.href(&format!("orders/{id}/events"))),
            ]),
            content,
            ..Default::default()
        };
        let order = Order { payment_details: Some(payment_details(&order)), ..order };
        let OrderItems { mut header, stub } = order_items(&ctx.aid, &order, ttl_epoch);
        let mut no_history = Vec::new();
        outbox::attach(
            &mut header,
            Vec::new(),
            EventRecord::new(event, &["shopping_order_event_add"]),
            &mut no_history,
        );
        ops.push(WriteOp::Put { item: header, cond: Some(Condition::NotExists) });
        ops.extend(stub.map(|item| WriteOp::Put { item, cond: Some(Condition::NotExists) }));
        // An order whose order_id is its own (random) id needs no `ORDERID` item: the id is
        // unique, and a lookup of a UUID reads the order directly.
        if order_id != id {
            let id_key = table::order_id_key(&ctx.aid, &order_id);
            let id_version = if id_cond == Condition::NotExists { 0 } else { 1 };
            let id_doc = OrderIdRecord { id: Some(id.clone()), reserved_by_draft: None };
            ops.push(WriteOp::Put {
                item: Item::new(id_key.clone(), id_version, to_doc(&id_doc)),
                cond: Some(id_cond),
            });
            if custom {
                custom_order_ids.push((id_key, order_id.clone()));
            }
        }
        if custom && validate::is_uuid(&order_id) {
            // A chosen order_id shaped like an id must not be another order's own id.
            let taken = table::order_key(&ctx.aid, &order_id);
            ops.push(WriteOp::Check { key: taken.clone(), cond: Condition::NotExists });
            custom_order_ids.push((taken, order_id.clone()));
        }
        rec.order_ids.push(id);
        orders.push(order);
    }
    let prev = rec.version();
    rec.draft.status = DraftStatus::Completed;
    let mut out = commit(ctx, ids, Some(prev), rec, "shopping_draft_complete", ops)?;
    out.custom_order_ids = custom_order_ids;
    Ok(completion_response(out, orders))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ids::SequentialIds;
    use crate::model::EventRequest;
    use crate::model::TaxLine;

    fn ctx() -> Ctx {
        Ctx {
            aid: "T12345678".into(),
            actor: "client-1".into(),
            now: crate::ids::parse_rfc3339("2026-11-22T10:00:00Z").unwrap(),
            request: EventRequest::default(),
        }
    }

    fn item(line: i64, gross: i64, store: Option<&str>) -> OrderItem {
        OrderItem {
            line_id: Some(line),
            gross_amount: Some(gross),
            tax_lines: Some(vec![TaxLine { percentage: Some(25.0), ..Default::default() }]),
            store: store.map(|s| ItemStore { id: Some(s.into()), ..Default::default() }),
            ..Default::default()
        }
    }

    fn new_draft(ids: &mut SequentialIds, options: DraftOptions, items: Vec<OrderItem>) -> DraftRecord {
        let body = DraftBody {
            options: Some(options),
            order: OrderObject { currency: Some("NOK".into()), items: Some(items), ..Default::default() },
        };
        let out = create(&ctx(), ids, body).expect("create");
        record_of(&out)
    }

    fn record_of(out: &Outcome<Draft>) -> DraftRecord {
        let WriteOp::Put { item, .. } = &out.ops[0] else { panic!("draft put first") };
        serde_json::from_str(&item.doc).expect("doc")
    }

    #[test]
    fn create_starts_at_version_zero_with_totals_and_an_add_event() {
        let mut ids = SequentialIds::default();
        let out = create(
            &ctx(),
            &mut ids,
            DraftBody {
                options: None,
                order: OrderObject {
                    currency: Some("NOK".into()),
                    items: Some(vec![item(1, 100, None), OrderItem { line_id: None, ..item(0, 50, None) }]),
                    ..Default::default()
                },
            },
        )
        .expect("create");
        assert_eq!(out.resource.version, Some(0));
        let order = out.resource.order.as_ref().unwrap();
        assert_eq!(order.gross_amount, Some(150));
        assert_eq!(order.items.as_ref().unwrap()[1].line_id, Some(2));
        // One single-item write: the draft, with its event riding inside.
        assert_eq!(out.ops.len(), 1);
        let WriteOp::Put { item, .. } = &out.ops[0] else { panic!() };
        let riding = crate::outbox::fresh(item).unwrap();
        assert_eq!(riding.len(), 1);
        assert_eq!(riding[0].webhooks, ["shopping_draft_add"]);
    }

    #[test]
    fn split_orders_follow_store_ids_with_serial_numbers() {
        let mut ids = SequentialIds::default();
        let opts =
            DraftOptions { split_draft: Some(true), serial_order_number_suffix: Some(true), ..Default::default() };
        let mut rec =
            new_draft(&mut ids, opts, vec![item(1, 10, Some("s2")), item(2, 20, Some("s1")), item(3, 30, None)]);
        rec.draft.order.as_mut().unwrap().order_number = Some("N".into());
        let out = complete(&ctx(), &mut ids, rec, None).expect("complete");
        let orders = out.resource.orders.unwrap();
        let numbers: Vec<_> = orders.iter().map(|o| o.content.order_number.clone().unwrap()).collect();
        assert_eq!(numbers, ["N-1", "N-2", "N-3"]);
        assert_eq!(orders[0].content.store.as_ref().unwrap().id.as_deref(), Some("s1"));
        assert_eq!(orders[1].content.net_amount, Some(10));
        assert_eq!(orders[2].content.store, None);
    }

    #[test]
    fn completed_drafts_refuse_changes() {
        let mut ids = SequentialIds::default();
        let rec = new_draft(&mut ids, DraftOptions::default(), vec![item(1, 10, None)]);
        let out = complete(&ctx(), &mut ids, rec, None).expect("complete");
        let done = record_of(&out);
        let err = add_item(&ctx(), &mut ids, done, item(2, 1, None)).unwrap_err();
        assert!(matches!(err, DomainError::Conflict { code: "DRAFT_NOT_OPEN", .. }));
    }

    #[test]
    fn reserve_mode_shows_the_order_id_on_the_draft_and_uses_it() {
        let mut ids = SequentialIds::default();
        let opts =
            DraftOptions { generate_order_id: Some(GenerateOrderId::Alphanumeric9Reserve), ..Default::default() };
        let rec = new_draft(&mut ids, opts, vec![item(1, 10, None)]);
        let reserved = rec.draft.order.as_ref().unwrap().order_id.clone().unwrap();
        assert_eq!(reserved.len(), 9);
        let out = complete(&ctx(), &mut ids, rec, None).expect("complete");
        assert_eq!(out.resource.orders.unwrap()[0].content.order_id.as_deref(), Some(reserved.as_str()));
    }
}

#[cfg(test)]
mod into_existing {
    use super::*;
    use crate::ids::SequentialIds;
    use crate::model::TaxLine;
    use crate::model::{EventRequest, PaymentOperation};

    fn ctx() -> Ctx {
        Ctx {
            aid: "T12345678".into(),
            actor: "a".into(),
            now: crate::ids::parse_rfc3339("2026-11-22T10:00:00Z").unwrap(),
            request: EventRequest::default(),
        }
    }

    fn draft_into(ids: &mut SequentialIds, order_id: &str, replace: bool, line: i64) -> DraftRecord {
        let body = DraftBody {
            options: Some(DraftOptions {
                order_id: Some(order_id.into()),
                replace: replace.then_some(crate::model::ReplaceMode::Order),
                ..Default::default()
            }),
            order: OrderObject {
                currency: Some("NOK".into()),
                items: Some(vec![OrderItem {
                    line_id: Some(line),
                    gross_amount: Some(500),
                    tax_lines: Some(vec![TaxLine { percentage: Some(25.0), ..Default::default() }]),
                    ..Default::default()
                }]),
                ..Default::default()
            },
        };
        let out = create(&ctx(), ids, body).expect("create");
        let WriteOp::Put { item, .. } = &out.ops[0] else { panic!() };
        serde_json::from_str(&item.doc).expect("doc")
    }

    fn existing(net: i64) -> Order {
        let mut o = Order { id: "o1".into(), status: Some(OrderStatus::Open), ..Default::default() };
        o.content.items = Some(vec![OrderItem { line_id: Some(1), gross_amount: Some(net), ..Default::default() }]);
        o.content.net_amount = Some(net);
        o.content.version = Some(3);
        o
    }

    #[test]
    fn replace_is_refused_once_the_order_has_payments() {
        let mut ids = SequentialIds::default();
        let rec = draft_into(&mut ids, "o1", true, 1);
        let mut order = existing(1000);
        order.captures = Some(vec![PaymentOperation { amount: Some(100), ..Default::default() }]);
        let err = complete(&ctx(), &mut ids, rec, Some(OrderRecord { order, unflushed: Vec::new() })).unwrap_err();
        assert!(matches!(err, DomainError::Conflict { code: "ORDER_HAS_PAYMENTS", .. }));
    }

    #[test]
    fn append_bumps_the_order_version_and_is_conditioned_on_it() {
        let mut ids = SequentialIds::default();
        let rec = draft_into(&mut ids, "o1", false, 2);
        let target = OrderRecord { order: existing(1000), unflushed: Vec::new() };
        let out = complete(&ctx(), &mut ids, rec, Some(target)).expect("append");
        let order = &out.resource.orders.as_ref().unwrap()[0];
        assert_eq!(order.content.version, Some(4));
        assert_eq!(order.content.net_amount, Some(1500));
        assert_eq!(order.payment_details.as_ref().unwrap().amount_due, Some(1500));
        assert!(out
            .ops
            .iter()
            .any(|op| matches!(op, WriteOp::Put { item, cond: Some(Condition::VersionIs(3)) } if item.sk == "ORDER")));
    }

    #[test]
    fn payment_details_follow_the_decided_formulas() {
        let op = |amount, success| PaymentOperation { amount: Some(amount), success, ..Default::default() };
        let mut o = existing(1000);
        o.authorizations = Some(vec![op(800, None), op(100, Some(false))]);
        o.captures = Some(vec![op(500, Some(true))]);
        o.refunds = Some(vec![op(200, None)]);
        o.cancellations = Some(vec![op(100, None)]);
        let d = payment_details(&o);
        assert_eq!(d.remaining_authorization_amount, Some(200));
        assert_eq!(d.remaining_capture_amount, Some(200));
        assert_eq!(d.remaining_refund_amount, Some(300));
        assert_eq!(d.remaining_cancellation_amount, Some(200));
        assert_eq!(d.amount_due, Some(700));
    }
}
