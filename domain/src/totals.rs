//! Money rules: item net amounts and order totals (integers in minor units).
//!
//! An item's `gross_amount` is the line total; `net_amount` = gross − Σ discount lines.
//! Order totals are sums over items; `total_manual_discount_amount` sums `manual` lines.
//! All arithmetic goes through [`crate::money`]: a total that would leave ±(2^53 − 1) is a
//! validation error naming the total, never a wrapped number.

use crate::error::{DomainError, FieldError};
use crate::model::{DiscountType, OrderItem, OrderObject};
use crate::money;

/// Σ of an item's discount lines; `path` names the item.
pub fn item_discount(item: &OrderItem, path: &str) -> Result<i64, FieldError> {
    money::sum(item.discount_lines.iter().flatten().filter_map(|d| d.amount), &format!("{path}.discount_lines"))
}

fn item_manual_discount(item: &OrderItem, path: &str) -> Result<i64, FieldError> {
    money::sum(
        item.discount_lines
            .iter()
            .flatten()
            .filter(|l| l.discount_type == Some(DiscountType::Manual))
            .filter_map(|l| l.amount),
        &format!("{path}.discount_lines"),
    )
}

/// Fills the computed item and order amounts in place. `path` names the order (`order`).
/// On error nothing at order level is filled in.
pub fn apply(order: &mut OrderObject, path: &str) -> Result<(), DomainError> {
    let [gross, net, discount, manual] = sums(order, path).map_err(|e| DomainError::Validation(vec![e]))?;
    order.gross_amount = Some(gross);
    order.net_amount = Some(net);
    order.total_discount = Some(discount);
    order.total_manual_discount_amount = Some(manual);
    Ok(())
}

/// Item net amounts (set in place) and the order's gross, net, discount and manual totals.
fn sums(order: &mut OrderObject, path: &str) -> Result<[i64; 4], FieldError> {
    let (mut gross, mut net, mut discount, mut manual) = (0i64, 0i64, 0i64, 0i64);
    for (i, item) in order.items.iter_mut().flatten().enumerate() {
        let ip = format!("{path}.items[{i}]");
        let g = item.gross_amount.unwrap_or(0);
        let d = item_discount(item, &ip)?;
        let n = money::sub(g, d, &format!("{ip}.net_amount"))?;
        item.net_amount = Some(n);
        gross = money::add(gross, g, &format!("{path}.gross_amount"))?;
        net = money::add(net, n, &format!("{path}.net_amount"))?;
        discount = money::add(discount, d, &format!("{path}.total_discount"))?;
        manual = money::add(manual, item_manual_discount(item, &ip)?, &format!("{path}.total_manual_discount_amount"))?;
    }
    Ok([gross, net, discount, manual])
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::DiscountLine;
    use crate::money::MAX_SAFE;

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
        apply(&mut o, "order").unwrap();
        let items = o.items.as_ref().unwrap();
        assert_eq!(items[0].net_amount, Some(27840));
        assert_eq!(items[1].net_amount, Some(20000));
        assert_eq!(o.gross_amount, Some(59800));
        assert_eq!(o.net_amount, Some(47840));
        assert_eq!(o.total_discount, Some(11960));
        assert_eq!(o.total_manual_discount_amount, Some(1960));
    }

    #[test]
    fn totals_that_would_leave_the_safe_range_name_the_total() {
        let big = OrderItem { gross_amount: Some(MAX_SAFE), ..Default::default() };
        let mut o = OrderObject { items: Some(vec![big.clone(), big]), ..Default::default() };
        let Err(DomainError::Validation(errs)) = apply(&mut o, "order") else { panic!("must fail") };
        assert_eq!(errs[0].path, "order.gross_amount");
        assert_eq!(o.gross_amount, None, "nothing is filled in on failure");
    }
}
