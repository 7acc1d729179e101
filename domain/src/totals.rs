//! Money rules: item net amounts and order totals (integers in minor units).
//!
//! An item's `gross_amount` is the line total; `net_amount` = gross − Σ discount lines.
//! Order totals are sums over items; `total_manual_discount_amount` sums `manual` lines.

use crate::model::{DiscountType, OrderItem, OrderObject};

pub fn item_discount(item: &OrderItem) -> i64 {
    item.discount_lines.iter().flatten().filter_map(|d| d.amount).sum()
}

/// Fills the computed item and order amounts in place.
pub fn apply(order: &mut OrderObject) {
    let (mut gross, mut net, mut discount, mut manual) = (0i64, 0i64, 0i64, 0i64);
    for item in order.items.iter_mut().flatten() {
        let g = item.gross_amount.unwrap_or(0);
        let d = item_discount(item);
        item.net_amount = Some(g - d);
        gross += g;
        net += g - d;
        discount += d;
        manual += item
            .discount_lines
            .iter()
            .flatten()
            .filter(|l| l.discount_type == Some(DiscountType::Manual))
            .filter_map(|l| l.amount)
            .sum::<i64>();
    }
    order.gross_amount = Some(gross);
    order.net_amount = Some(net);
    order.total_discount = Some(discount);
    order.total_manual_discount_amount = Some(manual);
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::DiscountLine;

    fn line(amount: i64, kind: DiscountType) -> DiscountLine {
        DiscountLine { amount: Some(amount), discount_type: Some(kind), ..Default::default() }
    }

    #[test]
    fn sums_items_and_discounts() {
        let mut o = OrderObject {
            items: Some(vec![
                OrderItem {
                    gross_amount: Some(39800),
                    discount_lines: Some(vec![line(10000, DiscountType::Periodic), line(1960, DiscountType::Manual)]),
                    ..Default::default()
                },
                OrderItem { gross_amount: Some(20000), ..Default::default() },
            ]),
            ..Default::default()
        };
        apply(&mut o);
        let items = o.items.as_ref().unwrap();
        assert_eq!(items[0].net_amount, Some(27840));
        assert_eq!(items[1].net_amount, Some(20000));
        assert_eq!(o.gross_amount, Some(59800));
        assert_eq!(o.net_amount, Some(47840));
        assert_eq!(o.total_discount, Some(11960));
        assert_eq!(o.total_manual_discount_amount, Some(1960));
    }
}
