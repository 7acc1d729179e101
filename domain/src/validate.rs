//! Request validation: reports every problem at once, each with its JSON path.
//!
//! Type errors (a string where an integer belongs, a fraction in an amount) are caught earlier,
//! by deserialisation; this module checks the rules the types cannot express.

use crate::error::{DomainError, FieldError};
use crate::model::{DraftOptions, GenerateOrderId, OrderItem, OrderObject};
use std::collections::HashSet;

pub const MIN_TIME_TO_LIVE: i64 = 86_400;
const MAX_COMMENT: usize = 255;
const MAX_ORDER_ID: usize = 255;
const MAX_RESOURCE_ID: usize = 40;
/// A generous cap for free-text fields the upstream leaves unbounded, so one field cannot
/// blow an item past the store's size limit.
const MAX_TEXT: usize = 4096;

/// `aid` must match `^[PT]\d{8}$`.
pub fn is_account_id(aid: &str) -> bool {
    let b = aid.as_bytes();
    b.len() == 9 && matches!(b[0], b'P' | b'T') && b[1..].iter().all(u8::is_ascii_digit)
}

/// Canonical lower-case UUID text (`8-4-4-4-12` hex).
pub fn is_uuid(s: &str) -> bool {
    let b = s.as_bytes();
    b.len() == 36
        && b.iter().enumerate().all(|(i, c)| match i {
            8 | 13 | 18 | 23 => *c == b'-',
            _ => c.is_ascii_hexdigit(),
        })
}

pub fn is_date_time(s: &str) -> bool {
    time::OffsetDateTime::parse(s, &time::format_description::well_known::Rfc3339).is_ok()
}

#[derive(Default)]
pub struct Problems(Vec<FieldError>);

impl Problems {
    pub fn push(&mut self, path: impl Into<String>, code: &'static str, msg: impl Into<String>) {
        self.0.push(FieldError::new(path, code, msg));
    }

    fn max_len(&mut self, path: &str, v: &Option<String>, max: usize) {
        if let Some(s) = v {
            if s.chars().count() > max {
                self.push(path, "TOO_LONG", format!("must be at most {max} characters"));
            }
        }
    }

    pub fn into_result(self) -> Result<(), DomainError> {
        if self.0.is_empty() {
            Ok(())
        } else {
            Err(DomainError::Validation(self.0))
        }
    }
}

/// Validates a draft create/replace body. `p` prefixes paths (`order`).
pub fn draft_body(options: &DraftOptions, order: &OrderObject) -> Result<(), DomainError> {
    let mut p = Problems::default();
    check_options(&mut p, options);
    check_order(&mut p, "order", order, true);
    if options.split_draft == Some(true) && options.order_id.is_some() {
        p.push("options.order_id", "NOT_ALLOWED_WITH_SPLIT", "a split cannot complete into an existing order");
    }
    if options.split_draft == Some(true) {
        if order.order_id.is_some() && options.generate_order_id != Some(GenerateOrderId::Alphanumeric9Reserve) {
            p.push(
                "order.order_id",
                "NOT_ALLOWED_WITH_SPLIT",
                "a custom order_id cannot be used with options.split_draft",
            );
        }
        if options.generate_order_id == Some(GenerateOrderId::Alphanumeric9Reserve) {
            p.push(
                "options.generate_order_id",
                "NOT_ALLOWED_WITH_SPLIT",
                "ALPHANUMERIC_9_RESERVE reserves one order_id and cannot be used with options.split_draft",
            );
        }
    }
    p.into_result()
}

fn check_options(p: &mut Problems, o: &DraftOptions) {
    if let Some(ttl) = o.order_time_to_live {
        if ttl < MIN_TIME_TO_LIVE {
            p.push(
                "options.order_time_to_live",
                "OUT_OF_RANGE",
                format!("must be at least {MIN_TIME_TO_LIVE} seconds"),
            );
        }
    }
    if o.replace.is_some() && o.order_id.is_none() {
        p.push("options.replace", "REQUIRES_ORDER_ID", "replace needs options.order_id to name the order to replace");
    }
    if let Some(id) = &o.order_id {
        if id.is_empty() || id.chars().count() > MAX_ORDER_ID {
            p.push("options.order_id", "OUT_OF_RANGE", format!("must be 1..{MAX_ORDER_ID} characters"));
        }
    }
}

/// Validates order content (draft.order or an order update). `require_currency` is set where
/// the upstream schema marks currency as required.
pub fn check_order(p: &mut Problems, path: &str, o: &OrderObject, require_currency: bool) {
    match &o.currency {
        Some(c) if !(c.len() == 3 && c.bytes().all(|b| b.is_ascii_uppercase())) => {
            p.push(format!("{path}.currency"), "INVALID_CURRENCY", "must be a three-letter ISO-4217 code, e.g. NOK");
        }
        None if require_currency => p.push(format!("{path}.currency"), "REQUIRED", "is required"),
        _ => {}
    }
    if let Some(ttl) = o.time_to_live {
        if ttl < MIN_TIME_TO_LIVE {
            p.push(
                format!("{path}.time_to_live"),
                "OUT_OF_RANGE",
                format!("must be at least {MIN_TIME_TO_LIVE} seconds"),
            );
        }
    }
    if let Some(id) = &o.order_id {
        if id.is_empty() || id.chars().count() > MAX_ORDER_ID {
            p.push(format!("{path}.order_id"), "OUT_OF_RANGE", format!("must be 1..{MAX_ORDER_ID} characters"));
        }
    }
    p.max_len(&format!("{path}.comment"), &o.comment, MAX_COMMENT);
    p.max_len(&format!("{path}.order_number"), &o.order_number, MAX_ORDER_ID);
    for (name, v) in [
        ("salesperson_id", &o.salesperson_id),
        ("salesperson_name", &o.salesperson_name),
        ("courier_id", &o.courier_id),
        ("delivery_id", &o.delivery_id),
        ("type", &o.kind),
    ] {
        p.max_len(&format!("{path}.{name}"), v, MAX_TEXT);
    }
    for (name, v) in [("delivery_at", &o.delivery_at), ("pickup_at", &o.pickup_at)] {
        if let Some(s) = v {
            if !is_date_time(s) {
                p.push(format!("{path}.{name}"), "INVALID_DATE_TIME", "must be an RFC 3339 date-time");
            }
        }
    }
    if let Some(c) = &o.customer {
        if let Some(email) = &c.email {
            if !email.contains('@') {
                p.push(format!("{path}.customer.email"), "INVALID_EMAIL", "must be an e-mail address");
            }
        }
    }
    if let Some(items) = &o.items {
        let mut seen = HashSet::new();
        for (i, item) in items.iter().enumerate() {
            let ip = format!("{path}.items[{i}]");
            check_item(p, &ip, item);
            if let Some(l) = item.line_id {
                if !seen.insert(l) {
                    p.push(
                        format!("{ip}.line_id"),
                        "DUPLICATE_LINE_ID",
                        format!("line_id {l} is used by another item"),
                    );
                }
            }
        }
    }
}

/// Validates one item (draft item bodies and items inside `order.items`).
pub fn check_item(p: &mut Problems, path: &str, item: &OrderItem) {
    if item.gross_amount.is_none() {
        p.push(format!("{path}.gross_amount"), "REQUIRED", "is required");
    }
    match &item.tax_lines {
        None => p.push(format!("{path}.tax_lines"), "REQUIRED", "is required and must hold at least one tax line"),
        Some(t) if t.is_empty() => p.push(format!("{path}.tax_lines"), "EMPTY", "must hold at least one tax line"),
        Some(t) => {
            for (i, tl) in t.iter().enumerate() {
                match tl.percentage {
                    None => p.push(format!("{path}.tax_lines[{i}].percentage"), "REQUIRED", "is required"),
                    Some(x) if !(0.0..=100.0).contains(&x) => {
                        p.push(format!("{path}.tax_lines[{i}].percentage"), "OUT_OF_RANGE", "must be between 0 and 100")
                    }
                    _ => {}
                }
            }
        }
    }
    if let Some(l) = item.line_id {
        if l < 0 {
            p.push(format!("{path}.line_id"), "OUT_OF_RANGE", "must be zero or positive");
        }
    }
    if let Some(q) = item.quantity {
        if !q.is_finite() || q < 0.0 {
            p.push(format!("{path}.quantity"), "OUT_OF_RANGE", "must be zero or positive");
        }
    }
    if let Some(d) = &item.discount_lines {
        for (i, dl) in d.iter().enumerate() {
            if dl.amount.is_none() {
                p.push(format!("{path}.discount_lines[{i}].amount"), "REQUIRED", "is required");
            }
        }
    }
    p.max_len(&format!("{path}.comment"), &item.comment, MAX_COMMENT);
    p.max_len(&format!("{path}.description"), &item.description, MAX_TEXT);
    p.max_len(&format!("{path}.id"), &item.id, MAX_TEXT);
    if let Some(s) = &item.store {
        p.max_len(&format!("{path}.store.id"), &s.id, MAX_RESOURCE_ID.max(255));
    }
    if let Some(c) = &item.original_currency {
        if !(c.len() == 3 && c.bytes().all(|b| b.is_ascii_uppercase())) {
            p.push(format!("{path}.original_currency"), "INVALID_CURRENCY", "must be a three-letter ISO-4217 code");
        }
    }
}

/// Validates a single draft item body.
pub fn item_body(item: &OrderItem) -> Result<(), DomainError> {
    let mut p = Problems::default();
    check_item(&mut p, "", item);
    // Paths of a bare item body have no prefix: drop the leading dot.
    p.0.iter_mut().for_each(|e| e.path = e.path.trim_start_matches('.').to_owned());
    p.into_result()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::TaxLine;

    #[test]
    fn account_pattern() {
        assert!(is_account_id("T12345678"));
        assert!(is_account_id("P00000000"));
        assert!(!is_account_id("X12345678"));
        assert!(!is_account_id("T1234567"));
        assert!(!is_account_id("T1234567a"));
    }

    #[test]
    fn reports_every_problem_with_its_path() {
        let order = OrderObject {
            currency: Some("nok".into()),
            time_to_live: Some(10),
            items: Some(vec![
                OrderItem { line_id: Some(1), ..Default::default() },
                OrderItem {
                    line_id: Some(1),
                    gross_amount: Some(1),
                    tax_lines: Some(vec![TaxLine::default()]),
                    ..Default::default()
                },
            ]),
            ..Default::default()
        };
        let Err(DomainError::Validation(errs)) = draft_body(&DraftOptions::default(), &order) else {
            panic!("expected validation errors")
        };
        let paths: Vec<_> = errs.iter().map(|e| e.path.as_str()).collect();
        assert_eq!(
            paths,
            [
                "order.currency",
                "order.time_to_live",
                "order.items[0].gross_amount",
                "order.items[0].tax_lines",
                "order.items[1].tax_lines[0].percentage",
                "order.items[1].line_id",
            ]
        );
    }
}
