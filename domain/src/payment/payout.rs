//! Payout splits: how an amount is shared among a payout rule's destinations, in integer
//! minor units, the parts always summing exactly to the amount.
//!
//! One level at a time, in this order: `flat_amount` destinations take their value (at most
//! what is left), in the order given; `percentage` destinations take their percentage of the
//! level's amount, rounded down, in the order given (again at most what is left); the first
//! `remaining_amount` destination takes what is then left, and later ones nothing. A
//! destination with `destinations` of its own splits its amount among them the same way. When
//! no `remaining_amount` destination takes what is left (rounding, or percentages under 100),
//! it is shown as a last part of type `remaining_amount` without a destination: the merchant's.

use crate::model::{DraftOptions, ItemPayout, OrderItem, PayoutDestination, PayoutRule};
use serde_json::Value;

pub const PERCENTAGE: &str = "percentage";
pub const FLAT_AMOUNT: &str = "flat_amount";
pub const REMAINING_AMOUNT: &str = "remaining_amount";

/// A destination value as a decimal: (digits, scale), e.g. "5.25" → (525, 2). Numbers and
/// numeric strings are both accepted; anything else is `None`.
pub fn decimal(v: &Value) -> Option<(i128, u32)> {
    let text = match v {
        Value::Number(n) => n.to_string(),
        Value::String(s) => s.trim().to_owned(),
        _ => return None,
    };
    let (int, frac) = text.split_once('.').unwrap_or((text.as_str(), ""));
    if int.is_empty() && frac.is_empty() || frac.len() > 9 || int.len() > 18 {
        return None;
    }
    let digits = |s: &str| s.is_empty() || s.bytes().all(|b| b.is_ascii_digit());
    let (neg, int) = int.strip_prefix('-').map_or((false, int), |r| (true, r));
    if neg || !digits(int) || !digits(frac) {
        return None;
    }
    let scale = u32::try_from(frac.len()).ok()?;
    let whole: i128 = if int.is_empty() { 0 } else { int.parse().ok()? };
    let part: i128 = if frac.is_empty() { 0 } else { frac.parse().ok()? };
    Some((whole.checked_mul(10i128.checked_pow(scale)?)?.checked_add(part)?, scale))
}

/// `pct` percent of `amount`, rounded down; `None` only if it cannot be computed.
fn percent_of(amount: i64, pct: (i128, u32)) -> Option<i64> {
    let (digits, scale) = pct;
    let denominator = 100i128.checked_mul(10i128.checked_pow(scale)?)?;
    let v = i128::from(amount).checked_mul(digits)?.checked_div(denominator)?;
    i64::try_from(v).ok()
}

/// Splits `amount` (≥ 0) among `destinations`; the parts' amounts sum to `amount` exactly.
pub fn split(amount: i64, destinations: &[PayoutDestination]) -> Vec<PayoutDestination> {
    let amount = amount.max(0);
    let mut parts: Vec<PayoutDestination> =
        destinations.iter().map(|d| PayoutDestination { amount: Some(0), destinations: None, ..d.clone() }).collect();
    let mut left = amount;
    let kind = |d: &PayoutDestination| d.kind.clone().unwrap_or_default();
    for pass in [FLAT_AMOUNT, PERCENTAGE] {
        for (part, d) in parts.iter_mut().zip(destinations) {
            if kind(d) != pass {
                continue;
            }
            let want = match (pass, d.value.as_ref().and_then(decimal)) {
                (FLAT_AMOUNT, Some((digits, scale))) => {
                    i64::try_from(digits.checked_div(10i128.pow(scale.min(9))).unwrap_or(0)).unwrap_or(i64::MAX)
                }
                (PERCENTAGE, Some(p)) => percent_of(amount, p).unwrap_or(0),
                _ => 0,
            };
            let take = want.clamp(0, left);
            part.amount = Some(take);
            left = left.saturating_sub(take);
        }
    }
    if let Some((part, _)) = parts.iter_mut().zip(destinations).find(|(_, d)| kind(d) == REMAINING_AMOUNT) {
        part.amount = Some(left);
        left = 0;
    }
    // Nested splits of each part's own amount.
    for (part, d) in parts.iter_mut().zip(destinations) {
        if let Some(children) = d.destinations.as_deref().filter(|c| !c.is_empty()) {
            part.destinations = Some(split(part.amount.unwrap_or(0), children));
        }
    }
    if left > 0 {
        parts.push(PayoutDestination { kind: Some(REMAINING_AMOUNT.into()), amount: Some(left), ..Default::default() });
    }
    parts
}

/// Σ of the parts' amounts at the top level.
pub fn total(parts: &[PayoutDestination]) -> i64 {
    crate::money::total(parts.iter().filter_map(|p| p.amount))
}

/// The payout rule of an item, from the draft's options: the item's `dynamic_payout`
/// (`rule_type` and `rule_id`), else the rule whose `rule_id` is the value of the item field
/// `options.payout.resolve_rule_id` names (`order.items.store.id` or `order.items.id`).
pub fn rule_for<'a>(options: &'a DraftOptions, item: &OrderItem) -> Option<&'a PayoutRule> {
    let payout = options.payout.as_ref()?;
    let rules = payout.rules.as_deref()?;
    if let Some(dp) = &item.dynamic_payout {
        return rules.iter().find(|r| {
            r.rule_id == dp.rule_id && (dp.rule_type.is_none() || r.rule_type.is_none() || r.rule_type == dp.rule_type)
        });
    }
    let key = match payout.resolve_rule_id.as_deref()? {
        "order.items.store.id" => item.store.as_ref().and_then(|s| s.id.clone()),
        "order.items.id" => item.id.clone(),
        _ => None,
    }?;
    rules.iter().find(|r| r.rule_id.as_deref() == Some(key.as_str()))
}

/// Sets what a payout rule shows but a client does not send: `account_id`, the account whose
/// draft holds the rule, and `rule_version`, 1 for a new rule, kept while the rule (its
/// destinations and metadata) stays the same, one more when a replace changes it. Rules are
/// matched by `rule_type` and `rule_id`.
pub fn stamp_rules(options: &mut DraftOptions, before: Option<&DraftOptions>, aid: &str) {
    let old = before.and_then(|o| o.payout.as_ref()).and_then(|p| p.rules.as_deref()).unwrap_or_default();
    let Some(rules) = options.payout.as_mut().and_then(|p| p.rules.as_mut()) else { return };
    for r in rules {
        r.account_id = Some(aid.to_owned());
        let prev = old.iter().find(|o| o.rule_type == r.rule_type && o.rule_id == r.rule_id);
        r.rule_version = match prev {
            Some(p) if p.destinations == r.destinations && p.metadata == r.metadata => {
                Some(p.rule_version.unwrap_or(1))
            }
            Some(p) => Some(p.rule_version.unwrap_or(1).saturating_add(1)),
            None => Some(1),
        };
    }
}

/// Gives each item with a payout rule its `payout`: the rule, split over the item's net.
pub fn resolve_items<'a>(options: &DraftOptions, items: impl IntoIterator<Item = &'a mut OrderItem>) {
    for item in items {
        let Some(rule) = rule_for(options, item) else { continue };
        let net = item.net_amount.or(item.gross_amount).unwrap_or(0);
        let destinations = rule.destinations.as_deref().unwrap_or_default();
        item.payout = Some(ItemPayout {
            account_id: rule.account_id.clone(),
            rule_type: rule.rule_type.clone(),
            rule_id: rule.rule_id.clone(),
            rule_version: rule.rule_version,
            destinations: Some(split(net, destinations)),
            metadata: Some(rule.metadata.clone().unwrap_or_default()),
        });
    }
}

/// The destinations of an item's rule, without the amounts computed for the item itself.
pub fn rule_destinations(payout: &ItemPayout) -> Vec<PayoutDestination> {
    fn strip(ds: &[PayoutDestination]) -> Vec<PayoutDestination> {
        ds.iter()
            .filter(|d| d.destination.is_some() || d.value.is_some() || d.destinations.is_some())
            .map(|d| PayoutDestination {
                amount: None,
                destinations: d.destinations.as_deref().map(strip),
                ..d.clone()
            })
            .collect()
    }
    strip(payout.destinations.as_deref().unwrap_or_default())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn dest(kind: &str, value: Value, to: &str) -> PayoutDestination {
        PayoutDestination {
            kind: Some(kind.into()),
            value: Some(value),
            destination: Some(to.into()),
            ..Default::default()
        }
    }

    #[test]
    fn flat_then_percentage_then_remaining() {
        let ds = vec![
            dest(PERCENTAGE, json!("5.0"), "platform"),
            dest(FLAT_AMOUNT, json!("500"), "courier"),
            PayoutDestination {
                kind: Some(REMAINING_AMOUNT.into()),
                destination: Some("store".into()),
                ..Default::default()
            },
        ];
        let parts = split(10_001, &ds);
        let amounts: Vec<i64> = parts.iter().filter_map(|p| p.amount).collect();
        assert_eq!(amounts, [500, 500, 9_001]);
        assert_eq!(total(&parts), 10_001);
    }

    #[test]
    fn rounding_left_overs_go_to_an_implicit_remainder() {
        let parts = split(101, &[dest(PERCENTAGE, json!(10), "a"), dest(PERCENTAGE, json!("33.3"), "b")]);
        let amounts: Vec<i64> = parts.iter().filter_map(|p| p.amount).collect();
        assert_eq!(amounts, [10, 33, 58]);
        assert_eq!(parts[2].destination, None);
    }

    #[test]
    fn nested_destinations_split_their_part() {
        let nested = PayoutDestination {
            kind: Some(REMAINING_AMOUNT.into()),
            destinations: Some(vec![dest(PERCENTAGE, json!(50), "x"), dest(REMAINING_AMOUNT, json!(0), "y")]),
            ..Default::default()
        };
        let parts = split(999, &[dest(FLAT_AMOUNT, json!(100), "fee"), nested]);
        assert_eq!(parts[1].amount, Some(899));
        let inner = parts[1].destinations.as_ref().unwrap();
        assert_eq!(inner.iter().filter_map(|p| p.amount).collect::<Vec<_>>(), [449, 450]);
    }

    #[test]
    fn values_parse_as_decimals() {
        assert_eq!(decimal(&json!("5.25")), Some((525, 2)));
        assert_eq!(decimal(&json!(10)), Some((10, 0)));
        assert_eq!(decimal(&json!("-1")), None);
        assert_eq!(decimal(&json!("abc")), None);
    }
}
