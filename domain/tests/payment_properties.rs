//! Property tests over the payment ledger: any sequence of operations (any kind, lines,
//! amounts from the whole integer range, failed ones, real and unknown authorizations, with or
//! without `multiple_authorizations`) never panics; after each accepted one the ledger's
//! limits hold, and the order's `payment_status` and `payment_details` equal a
//! straightforward recomputation; payout splits always sum to the amount they split.
//!
//! `PROPTEST_CASES=20000 cargo test -p domain --test payment_properties --release` searches longer.

use domain::change::Ctx;
use domain::ids::SequentialIds;
use domain::model::{
    EventRequest, Order, OrderItem, OrderObject, OrderStatus, PaymentOperation, PaymentStatus, PayoutDestination,
};
use domain::order::OrderRecord;
use domain::payment::{self, payout, Kind, OperationRequest};
use domain::table::WriteOp;
use proptest::prelude::*;
use serde_json::json;
use std::collections::HashMap;

fn ctx() -> Ctx {
    Ctx {
        aid: "T12345678".into(),
        actor: "prop".into(),
        now: domain::ids::parse_rfc3339("2026-11-22T12:00:00Z").unwrap(),
        request: EventRequest::default(),
    }
}

fn amount() -> impl Strategy<Value = i64> {
    prop_oneof![6 => 1i64..400, 1 => Just(0), 1 => -5i64..0, 1 => Just(i64::MAX), 1 => Just(9_007_199_254_740_991)]
}

#[derive(Debug, Clone)]
struct Step {
    kind: usize,
    lines: Vec<(i64, i64)>,
    success: Option<bool>,
    auth: usize,
    id: Option<u8>,
}

fn step() -> impl Strategy<Value = Step> {
    (
        0usize..4,
        prop::collection::vec((0i64..5, amount()), 1..3),
        prop::option::of(any::<bool>()),
        0usize..4,
        prop::option::of(0u8..4),
    )
        .prop_map(|(kind, lines, success, auth, id)| Step { kind, lines, success, auth, id })
}

fn order(nets: &[i64], multiple: bool) -> Order {
    let items = nets
        .iter()
        .enumerate()
        .map(|(i, n)| OrderItem {
            line_id: Some(i as i64 + 1),
            gross_amount: Some(*n),
            net_amount: Some(*n),
            ..Default::default()
        })
        .collect();
    Order {
        id: "00000000-0000-4000-8000-000000000001".into(),
        created_at: "2026-11-22T12:00:00.000Z".into(),
        updated_at: "2026-11-22T12:00:00.000Z".into(),
        status: Some(OrderStatus::Open),
        content: OrderObject {
            version: Some(0),
            net_amount: Some(nets.iter().sum()),
            currency: Some("NOK".into()),
            multiple_authorizations: Some(multiple),
            items: Some(items),
            ..Default::default()
        },
        ..Default::default()
    }
}

/// Σ per (key, line) and kind, the straightforward way.
fn sums(o: &Order, multiple: bool) -> HashMap<(String, i64), [i128; 4]> {
    let mut m: HashMap<(String, i64), [i128; 4]> = HashMap::new();
    for (k, kind) in Kind::ALL.iter().enumerate() {
        for op in kind.list(o).iter().flatten() {
            if op.success == Some(false) {
                continue;
            }
            let key = if !multiple {
                String::new()
            } else if *kind == Kind::Authorization {
                op.id.clone().unwrap()
            } else {
                op.authorization_id.clone().unwrap()
            };
            for it in op.items.iter().flatten() {
                m.entry((key.clone(), it.line_id.unwrap())).or_default()[k] += i128::from(it.amount.unwrap());
            }
        }
    }
    m
}

fn total(o: &Order, kind: Kind) -> i128 {
    kind.list(o).iter().flatten().filter(|op| op.success != Some(false)).map(|op| i128::from(op.amount.unwrap())).sum()
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    #[test]
    fn the_ledger_always_adds_up(
        nets in prop::collection::vec(-50i64..2_000, 1..4),
        multiple in any::<bool>(),
        steps in prop::collection::vec(step(), 1..25),
    ) {
        let mut o = order(&nets, multiple);
        let mut ids = SequentialIds::default();
        for s in steps {
            let kind = Kind::ALL[s.kind];
            let auths: Vec<String> = Kind::Authorization.list(&o).iter().flatten().filter_map(|a| a.id.clone()).collect();
            let authorization_id = match s.auth {
                0 => None,
                1 => Some("nope".to_owned()),
                n => auths.get(n - 2).cloned().or_else(|| auths.first().cloned()),
            };
            let req = OperationRequest {
                id: s.id.map(|n| format!("op-{n}")),
                items: Some(s.lines.iter().map(|(l, a)| domain::model::OperationItem { line_id: Some(*l), amount: Some(*a), ..Default::default() }).collect()),
                success: s.success,
                authorization_id,
                ..Default::default()
            };
            let rec = OrderRecord { order: o.clone(), unflushed: Vec::new() };
            let Ok(out) = payment::create(&ctx(), &mut ids, rec, kind, req) else { continue };
            if out.ops.is_empty() {
                continue; // a repeated create: nothing changes
            }
            let op: PaymentOperation = out.resource;
            prop_assert_eq!(op.amount.map(i128::from), Some(op.items.iter().flatten().map(|i| i128::from(i.amount.unwrap())).sum::<i128>()));
            kind.list_mut(&mut o).get_or_insert_with(Vec::new).push(op);
            o.content.version = Some(out.version);
            // The limits, per line (and per authorization with multiple authorizations).
            let per = sums(&o, multiple);
            for (line, net) in nets.iter().enumerate() {
                let line = line as i64 + 1;
                let authorized: i128 = per.iter().filter(|((_, l), _)| *l == line).map(|(_, s)| s[0]).sum();
                prop_assert!(authorized <= i128::from((*net).max(0)), "authorized {authorized} > net {net}");
            }
            for ((_, line), s) in &per {
                let net = i128::from(nets[*line as usize - 1].max(0));
                prop_assert!(s[2] <= s[1], "refunded {} > captured {}", s[2], s[1]);
                prop_assert!(s[1] + s[3] <= s[0].max(net), "captured + cancelled beyond the limit");
            }
            // The stored order's derived figures, recomputed the straightforward way.
            let WriteOp::Put { item, .. } = &out.ops[0] else { panic!("the order's put comes first") };
            let stored: Order = serde_json::from_str(&item.doc).unwrap();
            prop_assert!(stored.captures.is_none(), "operations are items of their own");
            let net = i128::from(nets.iter().sum::<i64>());
            let (authorized, captured, refunded, cancelled) =
                (total(&o, Kind::Authorization), total(&o, Kind::Capture), total(&o, Kind::Refund), total(&o, Kind::Cancellation));
            let has_auth = Kind::Authorization.list(&o).iter().flatten().any(|a| a.success != Some(false));
            let capturable = if has_auth { authorized } else { net };
            let d = stored.payment_details.unwrap();
            let clamp = |v: i128| i64::try_from(v.max(0)).unwrap();
            prop_assert_eq!(d.remaining_authorization_amount, Some(clamp(net - authorized)));
            prop_assert_eq!(d.remaining_capture_amount, Some(clamp(capturable - captured - cancelled)));
            prop_assert_eq!(d.remaining_refund_amount, Some(clamp(captured - refunded)));
            prop_assert_eq!(d.remaining_cancellation_amount, Some(clamp(authorized - captured - cancelled)));
            prop_assert_eq!(d.amount_due, Some(clamp(net - clamp(captured - refunded) as i128)));
            let status = if captured > 0 && refunded >= captured {
                PaymentStatus::Refunded
            } else if captured > 0 && refunded > 0 {
                PaymentStatus::PartiallyRefunded
            } else if captured == 0 {
                PaymentStatus::Pending
            } else if captured < net {
                PaymentStatus::PartiallyPaid
            } else {
                PaymentStatus::Paid
            };
            prop_assert_eq!(stored.payment_status, Some(status));
        }
    }

    #[test]
    fn payout_splits_sum_to_the_amount(
        amount in prop_oneof![0i64..100_000, Just(9_007_199_254_740_991)],
        dests in prop::collection::vec((0usize..4, prop_oneof![Just(json!(10)), Just(json!("33.3")), Just(json!("500")), Just(json!(150)), Just(json!("x")), Just(json!(0.5))], any::<bool>()), 0..6),
    ) {
        let kinds = ["percentage", "flat_amount", "remaining_amount", "unknown"];
        let ds: Vec<PayoutDestination> = dests
            .into_iter()
            .map(|(k, v, nested)| PayoutDestination {
                kind: Some(kinds[k].into()),
                value: Some(v),
                destination: Some(format!("d{k}")),
                destinations: nested.then(|| vec![PayoutDestination { kind: Some("percentage".into()), value: Some(json!(50)), ..Default::default() }]),
                ..Default::default()
            })
            .collect();
        let parts = payout::split(amount, &ds);
        prop_assert_eq!(payout::total(&parts), amount);
        for p in &parts {
            prop_assert!(p.amount.unwrap() >= 0);
            if let Some(children) = &p.destinations {
                prop_assert_eq!(payout::total(children), p.amount.unwrap());
            }
        }
    }
}
