//! Request validation: reports every problem at once, each with its JSON path.
//!
//! Type errors (a string where an integer belongs, a fraction in an amount) are caught earlier,
//! by [`crate::decode`]; this module checks the rules the types cannot express: ranges (every
//! integer within ±(2^53 − 1), see [`crate::money`]), lengths that keep a stored item inside the
//! store's limits, and the money rules on discounts.

use crate::error::{DomainError, FieldError};
use crate::model::{DraftOptions, GenerateOrderId, OrderItem, OrderObject};
use crate::money::{self, MAX_SAFE};
use serde_json::Value;
use std::collections::HashSet;

pub const MIN_TIME_TO_LIVE: i64 = 86_400;
/// A hundred years: any retention beyond is a typo, and keeps every expiry a valid date.
pub const MAX_TIME_TO_LIVE: i64 = 3_155_760_000;
/// A `metadata` object, as JSON, is at most this many bytes (it is stored with the resource,
/// copied into events, and a stored item holds at most 400 KB).
pub const MAX_METADATA_BYTES: usize = 16 * 1024;
pub const MAX_COMMENT: usize = 255;
const MAX_ORDER_ID: usize = 255;
pub const MAX_RESOURCE_ID: usize = 40;
/// A generous cap for free-text fields the upstream leaves unbounded, so one field cannot
/// blow an item past the store's size limit.
pub const MAX_TEXT: usize = 4096;

/// `aid` must match `^[PT]\d{8}$`.
pub fn is_account_id(aid: &str) -> bool {
    match aid.as_bytes().split_first() {
        Some((first, rest)) => matches!(first, b'P' | b'T') && rest.len() == 8 && rest.iter().all(u8::is_ascii_digit),
        None => false,
    }
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
    crate::ids::parse_rfc3339(s).is_some()
}

#[derive(Default)]
pub struct Problems(pub(crate) Vec<FieldError>);

impl Problems {
    pub fn push(&mut self, path: impl Into<String>, code: &'static str, msg: impl Into<String>) {
        self.0.push(FieldError::new(path, code, msg));
    }

    pub fn max_len(&mut self, path: &str, v: &Option<String>, max: usize) {
        if let Some(s) = v {
            if s.chars().count() > max {
                self.push(path, "TOO_LONG", format!("must be at most {max} characters"));
            }
        }
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// Adds the problems of `other` whose paths have none yet (a specific rule, checked
    /// first, says more than the shared limits).
    pub fn merge_new(&mut self, other: Problems) {
        for e in other.0 {
            if !self.0.iter().any(|x| x.path == e.path) {
                self.0.push(e);
            }
        }
    }

    /// [`Self::into_result`] for a body checked with an empty path prefix: paths lose their
    /// leading dot (`.comment` → `comment`).
    pub fn into_body_result(mut self) -> Result<(), DomainError> {
        self.0.iter_mut().for_each(|e| e.path = e.path.trim_start_matches('.').to_owned());
        self.into_result()
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

fn check_ttl(p: &mut Problems, path: &str, ttl: Option<i64>) {
    if let Some(ttl) = ttl {
        if !(MIN_TIME_TO_LIVE..=MAX_TIME_TO_LIVE).contains(&ttl) {
            p.push(
                path,
                "OUT_OF_RANGE",
                format!("must be from {MIN_TIME_TO_LIVE} to {MAX_TIME_TO_LIVE} seconds (100 years)"),
            );
        }
    }
}

/// Limits every field shares, checked on the decoded value as JSON (so only fields the API
/// knows count, never ignored unknown ones): integers within ±(2^53 − 1) outside free-form
/// `metadata`, text at most [`MAX_TEXT`] characters, `metadata` at most
/// [`MAX_METADATA_BYTES`] as JSON.
pub fn check_limits(p: &mut Problems, path: &str, v: &Value) {
    walk_limits(p, At::Root(path), v, false);
}

/// Where a value sits in the body: written out only when a problem names it (building every
/// field's path as text showed in a create's profile).
#[derive(Clone, Copy)]
enum At<'a> {
    Root(&'a str),
    Key(&'a At<'a>, &'a str),
    Index(&'a At<'a>, usize),
}

impl std::fmt::Display for At<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            At::Root(path) => f.write_str(path),
            At::Key(At::Root(""), k) => f.write_str(k),
            At::Key(parent, k) => write!(f, "{parent}.{k}"),
            At::Index(parent, i) => write!(f, "{parent}[{i}]"),
        }
    }
}

/// `free` is set inside `metadata`, whose numbers are the client's own business.
fn walk_limits(p: &mut Problems, at: At<'_>, v: &Value, free: bool) {
    match v {
        Value::Number(n) if !free => {
            let ok = match (n.as_i64(), n.as_u64(), n.as_f64()) {
                (Some(i), _, _) => money::in_range(i),
                (None, Some(u), _) => u <= MAX_SAFE.unsigned_abs(),
                (None, None, Some(f)) => f.is_finite() && f.abs() <= 9_007_199_254_740_991.0,
                _ => false,
            };
            if !ok {
                p.push(at.to_string(), "OUT_OF_RANGE", format!("must be between -{MAX_SAFE} and {MAX_SAFE}"));
            }
        }
        Value::String(s) if s.chars().count() > MAX_TEXT => {
            p.push(at.to_string(), "TOO_LONG", format!("must be at most {MAX_TEXT} characters"));
        }
        Value::Array(a) => a.iter().enumerate().for_each(|(i, x)| walk_limits(p, At::Index(&at, i), x, free)),
        Value::Object(m) => {
            for (k, x) in m {
                let kp = At::Key(&at, k);
                let metadata = !free && k == "metadata";
                if metadata && serde_json::to_string(x).map_or(0, |s| s.len()) > MAX_METADATA_BYTES {
                    p.push(kp.to_string(), "TOO_LARGE", format!("must be at most {MAX_METADATA_BYTES} bytes as JSON"));
                }
                walk_limits(p, kp, x, free || metadata);
            }
        }
        _ => {}
    }
}

fn limits_of<T: serde::Serialize>(p: &mut Problems, path: &str, v: &T) {
    if let Ok(json) = serde_json::to_value(v) {
        check_limits(p, path, &json);
    }
}

fn check_options(p: &mut Problems, o: &DraftOptions) {
    let mut limits = Problems::default();
    limits_of(&mut limits, "options", o);
    check_ttl(p, "options.order_time_to_live", o.order_time_to_live);
    if o.replace.is_some() && o.order_id.is_none() {
        p.push("options.replace", "REQUIRES_ORDER_ID", "replace needs options.order_id to name the order to replace");
    }
    if let Some(id) = &o.order_id {
        if id.is_empty() || id.chars().count() > MAX_ORDER_ID {
            p.push("options.order_id", "OUT_OF_RANGE", format!("must be 1..{MAX_ORDER_ID} characters"));
        }
    }
    p.merge_new(limits);
}

/// Validates order content (draft.order or an order update). `require_currency` is set where
/// the upstream schema marks currency as required.
pub fn check_order(p: &mut Problems, path: &str, o: &OrderObject, require_currency: bool) {
    // Items are checked (limits included) one by one below, on their part of the one value
    // the order is turned into (not each turned into its own again).
    let mut limits = Problems::default();
    let mut items_json = Vec::new();
    if let Ok(Value::Object(mut fields)) = serde_json::to_value(o) {
        if let Some(Value::Array(items)) = fields.remove("items") {
            items_json = items;
        }
        check_limits(&mut limits, path, &Value::Object(fields));
    }
    match &o.currency {
        Some(c) if !(c.len() == 3 && c.bytes().all(|b| b.is_ascii_uppercase())) => {
            p.push(format!("{path}.currency"), "INVALID_CURRENCY", "must be a three-letter ISO-4217 code, e.g. NOK");
        }
        None if require_currency => p.push(format!("{path}.currency"), "REQUIRED", "is required"),
        _ => {}
    }
    check_ttl(p, &format!("{path}.time_to_live"), o.time_to_live);
    if let Some(id) = &o.order_id {
        if id.is_empty() || id.chars().count() > MAX_ORDER_ID {
            p.push(format!("{path}.order_id"), "OUT_OF_RANGE", format!("must be 1..{MAX_ORDER_ID} characters"));
        }
    }
    p.max_len(&format!("{path}.comment"), &o.comment, MAX_COMMENT);
    p.max_len(&format!("{path}.order_number"), &o.order_number, MAX_ORDER_ID);
    for (name, v) in [("delivery_at", &o.delivery_at), ("pickup_at", &o.pickup_at)] {
        if let Some(s) = v {
            if !is_date_time(s) {
                p.push(format!("{path}.{name}"), "INVALID_DATE_TIME", "must be an RFC 3339 date-time");
            }
        }
    }
    if let Some(c) = &o.customer {
        // The customer id is part of an index key (orders by customer).
        p.max_len(&format!("{path}.customer.id"), &c.id, MAX_ORDER_ID);
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
            check_item_as(p, &ip, item, items_json.get(i));
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
    p.merge_new(limits);
}

/// Validates one item (draft item bodies and items inside `order.items`).
pub fn check_item(p: &mut Problems, path: &str, item: &OrderItem) {
    check_item_as(p, path, item, None);
}

/// [`check_item`], its limits checked on `json` (the item as a value) when the caller has it.
fn check_item_as(p: &mut Problems, path: &str, item: &OrderItem, json: Option<&Value>) {
    let mut limits = Problems::default();
    match json {
        Some(v) => check_limits(&mut limits, path, v),
        None => limits_of(&mut limits, path, item),
    }
    let limits_failed = !limits.is_empty();
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
        if !q.is_finite() || q < 1.0 {
            p.push(format!("{path}.quantity"), "OUT_OF_RANGE", "must be at least 1");
        }
    }
    if let Some(d) = &item.discount_lines {
        let mut amounts_ok = !limits_failed;
        for (i, dl) in d.iter().enumerate() {
            match dl.amount {
                None => {
                    p.push(format!("{path}.discount_lines[{i}].amount"), "REQUIRED", "is required");
                    amounts_ok = false;
                }
                Some(a) if a < 0 => {
                    p.push(format!("{path}.discount_lines[{i}].amount"), "OUT_OF_RANGE", "must be zero or positive");
                    amounts_ok = false;
                }
                Some(_) => {}
            }
        }
        // A discount never takes a sale below zero (negative gross amounts are reversals).
        if let (true, Some(gross)) = (amounts_ok, item.gross_amount.filter(|g| *g >= 0)) {
            match money::sum(d.iter().filter_map(|l| l.amount), &format!("{path}.discount_lines")) {
                Ok(total) if total > gross => p.push(
                    format!("{path}.discount_lines"),
                    "EXCEEDS_GROSS_AMOUNT",
                    format!("the discounts ({total}) exceed the item's gross_amount ({gross})"),
                ),
                Ok(_) => {}
                Err(e) => p.0.push(e),
            }
        }
    }
    p.max_len(&format!("{path}.comment"), &item.comment, MAX_COMMENT);
    if let Some(s) = &item.store {
        p.max_len(&format!("{path}.store.id"), &s.id, MAX_RESOURCE_ID.max(255));
    }
    if let Some(c) = &item.original_currency {
        if !(c.len() == 3 && c.bytes().all(|b| b.is_ascii_uppercase())) {
            p.push(format!("{path}.original_currency"), "INVALID_CURRENCY", "must be a three-letter ISO-4217 code");
        }
    }
    p.merge_new(limits);
}

/// Validates a single draft item body.
pub fn item_body(item: &OrderItem) -> Result<(), DomainError> {
    let mut p = Problems::default();
    check_item(&mut p, "", item);
    p.into_body_result()
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

    /// Limits inside items and nested values name their field's full path, as they did when
    /// each item was turned into a value of its own; free-form `metadata` keeps its numbers.
    #[test]
    fn limits_name_the_full_path_inside_items() {
        let long = "x".repeat(MAX_TEXT + 1);
        let meta: crate::model::Object =
            serde_json::from_value(serde_json::json!({"n": 1e300, "tags": ["a", long.clone()]})).unwrap();
        let ok = || OrderItem {
            line_id: Some(1),
            gross_amount: Some(1),
            tax_lines: Some(vec![TaxLine { percentage: Some(25.0), ..Default::default() }]),
            ..Default::default()
        };
        let order = OrderObject {
            currency: Some("NOK".into()),
            metadata: Some(meta.clone()),
            items: Some(vec![
                ok(),
                OrderItem { line_id: Some(2), description: Some(long.clone()), metadata: Some(meta), ..ok() },
            ]),
            ..Default::default()
        };
        let mut p = Problems::default();
        check_order(&mut p, "order", &order, true);
        let paths: Vec<_> = p.0.iter().map(|e| (e.path.as_str(), e.code)).collect();
        assert_eq!(
            paths,
            [
                ("order.items[1].metadata.tags[1]", "TOO_LONG"),
                ("order.items[1].description", "TOO_LONG"),
                ("order.metadata.tags[1]", "TOO_LONG"),
            ]
        );
        let mut alone = Problems::default();
        check_item(&mut alone, "items[1]", order.items.as_ref().unwrap().get(1).unwrap());
        let alone: Vec<_> = alone.0.iter().map(|e| e.path.as_str()).collect();
        assert_eq!(alone, ["items[1].metadata.tags[1]", "items[1].description"]);
    }
}
