//! Property tests over the draft commands: any sequence of valid and invalid commands, with
//! amounts, line ids and retentions drawn from the whole integer range and its edges. No
//! command panics; a refused command changes nothing; after every accepted one the totals
//! equal an independent recomputation in 128-bit arithmetic, every figure stays within
//! ±(2^53 − 1), line ids are unique and in range, discounts never take a sale below zero, and
//! a completion's orders hold exactly the draft's items.
//!
//! `PROPTEST_CASES=20000 cargo test -p domain --test properties --release` runs a longer search.

use domain::draft::{self, Ctx, DraftBody, DraftRecord, Outcome};
use domain::ids::SequentialIds;
use domain::model::{
    Customer, DiscountLine, DiscountType, Draft, DraftOptions, DraftStatus, EventRequest, GenerateOrderId, ItemStore,
    OrderItem, OrderObject, TaxLine,
};
use domain::money::MAX_SAFE;
use domain::table::WriteOp;
use domain::DomainError;
use proptest::prelude::*;

fn ctx() -> Ctx {
    Ctx {
        aid: "T12345678".into(),
        actor: "prop".into(),
        now: domain::ids::parse_rfc3339("2026-11-22T12:00:00Z").unwrap(),
        request: EventRequest::default(),
    }
}

/// Integers with their edges well represented: small values, the safe range's limits, and
/// the i64 extremes.
fn int() -> impl Strategy<Value = i64> {
    prop_oneof![
        4 => -1_000i64..100_000,
        1 => Just(MAX_SAFE),
        1 => Just(-MAX_SAFE),
        1 => Just(MAX_SAFE - 1),
        1 => Just(i64::MAX),
        1 => Just(i64::MIN),
        1 => any::<i64>(),
    ]
}

fn discount() -> impl Strategy<Value = DiscountLine> {
    (int(), prop::option::of(prop_oneof![Just(DiscountType::Manual), Just(DiscountType::Periodic)]))
        .prop_map(|(amount, kind)| DiscountLine { amount: Some(amount), discount_type: kind, ..Default::default() })
}

/// Mostly valid items (so sequences get far), with hostile ones mixed in.
fn item() -> impl Strategy<Value = OrderItem> {
    prop_oneof![3 => valid_item(), 1 => hostile_item()]
}

fn valid_item() -> impl Strategy<Value = OrderItem> {
    (
        prop::option::of(0i64..30),
        prop_oneof![4 => -500i64..1_000_000, 1 => Just(MAX_SAFE / 2), 1 => Just(MAX_SAFE)],
        prop::option::of(prop_oneof![Just(1.0f64), Just(2.5), Just(3.0)]),
        prop::collection::vec((0u32..=100, any::<bool>()), 0..3),
        prop::option::of(prop_oneof![Just("s1"), Just("s2"), Just("s3")]),
    )
        .prop_map(|(line_id, gross, quantity, discounts, store)| {
            // Discounts as per-mille shares of the gross, so they mostly fit.
            let lines: Vec<DiscountLine> = discounts
                .into_iter()
                .map(|(per_mille, manual)| DiscountLine {
                    amount: Some(gross.max(0) / 1000 * i64::from(per_mille)),
                    discount_type: Some(if manual { DiscountType::Manual } else { DiscountType::Periodic }),
                    ..Default::default()
                })
                .collect();
            OrderItem {
                line_id,
                gross_amount: Some(gross),
                quantity,
                discount_lines: (!lines.is_empty()).then_some(lines),
                tax_lines: Some(vec![TaxLine { percentage: Some(25.0), ..Default::default() }]),
                store: store.map(|s| ItemStore { id: Some(s.into()), ..Default::default() }),
                ..Default::default()
            }
        })
}

fn hostile_item() -> impl Strategy<Value = OrderItem> {
    (
        prop::option::of(prop_oneof![0i64..20, Just(MAX_SAFE), Just(i64::MAX), Just(-1i64)]),
        prop::option::of(int()),
        prop::option::of(prop_oneof![Just(1.0f64), Just(2.5), Just(0.0), Just(f64::NAN), Just(1e300)]),
        prop::option::of(prop::collection::vec(discount(), 0..3)),
        prop_oneof![3 => Just(Some(25.0f64)), 1 => Just(None), 1 => Just(Some(250.0))],
        prop::option::of(prop_oneof![Just("s1"), Just("s2"), Just("s3")]),
    )
        .prop_map(|(line_id, gross, quantity, discounts, pct, store)| OrderItem {
            line_id,
            gross_amount: gross,
            quantity,
            discount_lines: discounts,
            tax_lines: pct.map(|p| vec![TaxLine { percentage: Some(p), ..Default::default() }]),
            store: store.map(|s| ItemStore { id: Some(s.into()), ..Default::default() }),
            ..Default::default()
        })
}

fn options() -> impl Strategy<Value = DraftOptions> {
    (
        prop_oneof![6 => Just(None), 3 => prop_oneof![Just(86_400i64), Just(10), Just(i64::MAX), Just(3_155_760_000), int()].prop_map(Some)],
        prop::option::of(prop_oneof![
            Just(GenerateOrderId::Uuid),
            Just(GenerateOrderId::Uuid),
            Just(GenerateOrderId::Alphanumeric9),
            Just(GenerateOrderId::Alphanumeric9Reserve)
        ]),
        prop::option::of(any::<bool>()),
        prop::option::of(any::<bool>()),
    )
        .prop_map(|(ttl, gen, split, serial)| DraftOptions {
            order_time_to_live: ttl,
            generate_order_id: gen,
            split_draft: split,
            serial_order_number_suffix: serial,
            ..Default::default()
        })
}

fn body() -> impl Strategy<Value = DraftBody> {
    (
        prop::option::of(options()),
        prop::collection::vec(item(), 0..5),
        prop_oneof![6 => Just(None), 1 => Just(Some(86_400i64)), 1 => Just(Some(1_000_000_000_000)), 1 => int().prop_map(Some)],
        prop_oneof![10 => Just(Some("NOK")), 1 => Just(None), 1 => Just(Some("nok"))],
    )
        .prop_map(|(options, items, ttl, currency)| DraftBody {
            options,
            order: OrderObject {
                currency: currency.map(str::to_owned),
                items: Some(items),
                time_to_live: ttl,
                customer: Some(Customer { id: Some("c-1".into()), ..Default::default() }),
                ..Default::default()
            },
        })
}

// Test data only, built once per step: the size of a variant does not matter here.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Clone)]
enum Command {
    Replace(DraftBody),
    AddItem(OrderItem),
    UpdateItem(i64, OrderItem),
    RemoveItem(i64),
    Delete,
    Complete,
}

fn command() -> impl Strategy<Value = Command> {
    prop_oneof![
        2 => body().prop_map(Command::Replace),
        4 => item().prop_map(Command::AddItem),
        2 => (prop_oneof![0i64..20, Just(MAX_SAFE)], item()).prop_map(|(l, i)| Command::UpdateItem(l, i)),
        1 => (0i64..20).prop_map(Command::RemoveItem),
        1 => Just(Command::Delete),
        1 => Just(Command::Complete),
    ]
}

fn record(out: &Outcome<Draft>) -> DraftRecord {
    let Some(WriteOp::Put { item, .. }) = out.ops.first() else { panic!("the draft is the first write") };
    serde_json::from_str(&item.doc).expect("stored draft parses")
}

/// The invariants every stored draft order satisfies, recomputed independently.
fn check_order(order: &OrderObject) -> Result<(), TestCaseError> {
    let items = order.items.clone().unwrap_or_default();
    let mut seen = std::collections::HashSet::new();
    let (mut gross, mut net, mut disc, mut manual) = (0i128, 0i128, 0i128, 0i128);
    for it in &items {
        let line = it.line_id.ok_or_else(|| TestCaseError::fail("every item has a line_id"))?;
        prop_assert!((0..=MAX_SAFE).contains(&line), "line_id {line} in range");
        prop_assert!(seen.insert(line), "line_id {line} unique");
        let g = i128::from(it.gross_amount.unwrap_or(0));
        let d: i128 = it.discount_lines.iter().flatten().filter_map(|l| l.amount).map(i128::from).sum();
        prop_assert!(it.discount_lines.iter().flatten().all(|l| l.amount.is_some_and(|a| a >= 0)));
        prop_assert_eq!(it.net_amount.map(i128::from), Some(g - d));
        if g >= 0 {
            prop_assert!(g - d >= 0, "discounts never take a sale below zero");
        }
        prop_assert!(it.quantity.is_some_and(|q| q.is_finite() && q >= 1.0));
        gross += g;
        net += g - d;
        disc += d;
        manual += it
            .discount_lines
            .iter()
            .flatten()
            .filter(|l| l.discount_type == Some(DiscountType::Manual))
            .filter_map(|l| l.amount)
            .map(i128::from)
            .sum::<i128>();
    }
    prop_assert_eq!(order.gross_amount.map(i128::from), Some(gross));
    prop_assert_eq!(order.net_amount.map(i128::from), Some(net));
    prop_assert_eq!(order.total_discount.map(i128::from), Some(disc));
    prop_assert_eq!(order.total_manual_discount_amount.map(i128::from), Some(manual));
    for v in [gross, net, disc, manual] {
        prop_assert!(v.abs() <= i128::from(MAX_SAFE), "total {v} within ±(2^53 − 1)");
    }
    Ok(())
}

fn apply(ids: &mut SequentialIds, rec: &DraftRecord, cmd: &Command) -> domain::error::Result<Outcome<Draft>> {
    let (c, r) = (&ctx(), rec.clone());
    match cmd.clone() {
        Command::Replace(b) => draft::replace(c, ids, r, b),
        Command::AddItem(i) => draft::add_item(c, ids, r, i),
        Command::UpdateItem(l, i) => draft::update_item(c, ids, r, l, i),
        Command::RemoveItem(l) => draft::remove_item(c, ids, r, l),
        Command::Delete => draft::delete(c, ids, r),
        Command::Complete => draft::complete(c, ids, r, None),
    }
}

proptest! {
    #![proptest_config(ProptestConfig { failure_persistence: None, ..ProptestConfig::default() })]

    #[test]
    fn any_command_sequence_keeps_the_money_rules(first in body(), cmds in prop::collection::vec(command(), 0..12)) {
        let mut ids = SequentialIds::default();
        let Ok(out) = draft::create(&ctx(), &mut ids, first) else { return Ok(()) };
        let mut rec = record(&out);
        prop_assert_eq!(rec.version(), 0);
        check_order(rec.draft.order.as_ref().expect("order"))?;
        for cmd in &cmds {
            match apply(&mut ids, &rec, cmd) {
                Ok(out) => {
                    prop_assert_eq!(rec.draft.status, DraftStatus::Open, "only open drafts change");
                    let next = record(&out);
                    prop_assert_eq!(next.version(), rec.version() + 1);
                    if let Some(orders) = &out.resource.orders {
                        // The orders hold exactly the draft's items, and its whole net amount.
                        let mut want: Vec<i64> = rec.draft.order.iter().flat_map(|o| o.items.iter().flatten()).filter_map(|i| i.line_id).collect();
                        let mut got: Vec<i64> = orders.iter().flat_map(|o| o.content.items.iter().flatten()).filter_map(|i| i.line_id).collect();
                        want.sort_unstable();
                        got.sort_unstable();
                        prop_assert_eq!(got, want);
                        let net: i128 = orders.iter().filter_map(|o| o.content.net_amount).map(i128::from).sum();
                        prop_assert_eq!(Some(net), rec.draft.order.as_ref().and_then(|o| o.net_amount).map(i128::from));
                        for o in orders {
                            check_order(&o.content)?;
                        }
                    }
                    rec = next;
                    check_order(rec.draft.order.as_ref().expect("order"))?;
                }
                Err(DomainError::Validation(errs)) => prop_assert!(!errs.is_empty() && errs.iter().all(|e| !e.path.is_empty())),
                Err(DomainError::Conflict { .. } | DomainError::NotFound(_)) => {}
            }
        }
    }

    #[test]
    fn decoding_any_json_never_panics(raw in prop::collection::vec(any::<u8>(), 0..256), text in "\\PC{0,200}") {
        let rules = |b: &DraftBody| domain::validate::draft_body(&b.options.clone().unwrap_or_default(), &b.order);
        let _ = domain::decode::decode::<DraftBody>(&raw, rules);
        let _ = domain::decode::decode::<DraftBody>(text.as_bytes(), rules);
        let _ = domain::decode::decode::<OrderItem>(text.as_bytes(), domain::validate::item_body);
    }
}

/// The property above means something only if its search gets past validation: a fixed-seed
/// run of the same strategies accepts a good share of the commands it tries.
#[test]
fn the_search_gets_past_validation() {
    use proptest::test_runner::{Config, RngAlgorithm, TestRng, TestRunner};
    let config = Config { cases: 200, failure_persistence: None, ..Config::default() };
    let mut runner = TestRunner::new_with_rng(config, TestRng::deterministic_rng(RngAlgorithm::ChaCha));
    let accepted = std::sync::atomic::AtomicUsize::new(0);
    let tried = std::sync::atomic::AtomicUsize::new(0);
    runner
        .run(&(body(), prop::collection::vec(command(), 0..12)), |(first, cmds)| {
            let mut ids = SequentialIds::default();
            let Ok(out) = draft::create(&ctx(), &mut ids, first) else { return Ok(()) };
            let mut rec = record(&out);
            for cmd in &cmds {
                tried.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                if let Ok(out) = apply(&mut ids, &rec, cmd) {
                    accepted.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                    rec = record(&out);
                }
            }
            Ok(())
        })
        .expect("runs");
    let (a, t) = (accepted.into_inner(), tried.into_inner());
    eprintln!("{a} of {t} commands accepted");
    assert!(a * 5 >= t, "only {a} of {t} commands were accepted");
}
