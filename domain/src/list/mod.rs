//! List parameters: paging and filters, parsed from raw query pairs so repeated parameters
//! (`status=open&status=completed`) and comma lists (`status=open,completed`) both work.
//! OR within a parameter, AND across parameters.

pub mod merge;
mod orders;
pub use orders::{store_ids, OrderFilter, Scope};

use crate::error::{DomainError, FieldError};
use crate::model::{Draft, DraftStatus, Order, OrderObject};
use serde::{Deserialize, Serialize};

pub const DEFAULT_LIMIT: usize = 10;
pub const MAX_LIMIT: usize = 100;

#[derive(Debug, Clone, Default, PartialEq)]
pub struct Paging {
    pub limit: usize,
    pub starting_after: Option<String>,
}

#[derive(Debug, Clone, Default, PartialEq)]
pub struct DraftFilter {
    pub paging: Paging,
    pub status: Vec<DraftStatus>,
    pub customer_id: Vec<String>,
    /// Inclusive bounds as RFC 3339 text with millisecond precision (comparable as strings).
    pub created_gte: Option<String>,
    pub created_lte: Option<String>,
    pub net_gte: Option<i64>,
    pub net_lte: Option<i64>,
    pub currency: Vec<String>,
    pub search: Option<String>,
}

pub(crate) fn values<'a>(pairs: &'a [(String, String)], name: &str) -> Vec<&'a str> {
    pairs
        .iter()
        .filter(|(k, _)| k == name || k.strip_suffix("[]") == Some(name))
        .flat_map(|(_, v)| v.split(','))
        .map(str::trim)
        .filter(|v| !v.is_empty())
        .collect()
}

pub(crate) fn single<'a>(pairs: &'a [(String, String)], name: &str, errs: &mut Vec<FieldError>) -> Option<&'a str> {
    let v = values(pairs, name);
    if v.len() > 1 {
        errs.push(FieldError::new(name, "INVALID", "must be given once"));
    }
    v.first().copied()
}

/// Parses a date (whole day, inclusive) or a date-time into a comparable bound.
/// A moment whose UTC date falls outside years 0–9999 is refused like a malformed one.
fn bound(v: &str, upper: bool) -> Option<String> {
    if let Some(t) = crate::ids::parse_rfc3339(v) {
        return crate::ids::checked_timestamp(t);
    }
    // Exactly YYYY-MM-DD (chrono's `%Y` alone would also take signs and other widths).
    let shaped = v.len() == 10
        && v.bytes().enumerate().all(|(i, c)| if i == 4 || i == 7 { c == b'-' } else { c.is_ascii_digit() });
    let d = chrono::NaiveDate::parse_from_str(v, "%Y-%m-%d").ok().filter(|_| shaped)?;
    let t = if upper { d.and_hms_milli_opt(23, 59, 59, 999)? } else { d.and_hms_opt(0, 0, 0)? };
    crate::ids::checked_timestamp(t.and_utc())
}

/// A `created_at.gte|lte` parameter as a comparable bound, or an error naming it.
pub fn date_bound(pairs: &[(String, String)], name: &str, upper: bool, errs: &mut Vec<FieldError>) -> Option<String> {
    let v = single(pairs, name, errs)?;
    let b = bound(v, upper);
    if b.is_none() {
        errs.push(FieldError::new(
            name,
            "INVALID_DATE",
            "must be a date (YYYY-MM-DD) or an RFC 3339 date-time within years 0000-9999 UTC",
        ));
    }
    b
}

/// `currency` values, upper-cased; each must be three letters.
pub(crate) fn currencies(pairs: &[(String, String)], errs: &mut Vec<FieldError>) -> Vec<String> {
    let mut out = Vec::new();
    for c in values(pairs, "currency") {
        if c.len() == 3 && c.bytes().all(|b| b.is_ascii_alphabetic()) {
            out.push(c.to_ascii_uppercase());
        } else {
            errs.push(FieldError::new(
                "currency",
                "INVALID_CURRENCY",
                format!("`{c}` is not a three-letter currency code"),
            ));
        }
    }
    out
}

pub fn parse_paging(pairs: &[(String, String)], errs: &mut Vec<FieldError>) -> Paging {
    let limit = match single(pairs, "limit", errs) {
        None => DEFAULT_LIMIT,
        Some(v) => match v.parse::<usize>() {
            Ok(n) if (1..=MAX_LIMIT).contains(&n) => n,
            _ => {
                errs.push(FieldError::new(
                    "limit",
                    "OUT_OF_RANGE",
                    format!("must be an integer from 1 to {MAX_LIMIT}"),
                ));
                DEFAULT_LIMIT
            }
        },
    };
    let starting_after = single(pairs, "starting_after", errs).map(str::to_owned);
    Paging { limit, starting_after }
}

pub(crate) fn amount(pairs: &[(String, String)], name: &str, errs: &mut Vec<FieldError>) -> Option<i64> {
    let v = single(pairs, name, errs)?;
    match v.parse::<i64>() {
        Ok(n) if n >= 0 => Some(n),
        _ => {
            errs.push(FieldError::new(name, "INVALID", "must be a non-negative integer"));
            None
        }
    }
}

impl DraftFilter {
    pub fn parse(pairs: &[(String, String)]) -> Result<Self, DomainError> {
        let mut errs = Vec::new();
        let paging = parse_paging(pairs, &mut errs);
        let mut status = Vec::new();
        for s in values(pairs, "status") {
            match serde_json::from_value::<DraftStatus>(serde_json::Value::String(s.to_owned())) {
                Ok(st) => status.push(st),
                Err(_) => errs.push(FieldError::new(
                    "status",
                    "INVALID",
                    format!("unknown status `{s}`; use open, completed or deleted"),
                )),
            }
        }
        let created_gte = date_bound(pairs, "created_at.gte", false, &mut errs);
        let created_lte = date_bound(pairs, "created_at.lte", true, &mut errs);
        let currency = currencies(pairs, &mut errs);
        let f = Self {
            net_gte: amount(pairs, "net_amount.gte", &mut errs),
            net_lte: amount(pairs, "net_amount.lte", &mut errs),
            customer_id: values(pairs, "customer_id").into_iter().map(str::to_owned).collect(),
            search: single(pairs, "search", &mut errs).map(str::to_lowercase),
            currency,
            created_gte,
            created_lte,
            status,
            paging,
        };
        if errs.is_empty() {
            Ok(f)
        } else {
            Err(DomainError::Validation(errs))
        }
    }

    pub fn matches(&self, d: &Draft) -> bool {
        let status_ok = if self.status.is_empty() {
            // Deleted drafts are listed only when asked for.
            d.status != DraftStatus::Deleted
        } else {
            self.status.contains(&d.status)
        };
        let empty = OrderObject::default();
        let o = d.order.as_ref().unwrap_or(&empty);
        status_ok
            && self.created_gte.as_deref().is_none_or(|b| d.created_at.as_str() >= b)
            && self.created_lte.as_deref().is_none_or(|b| d.created_at.as_str() <= b)
            && matches_order(o, &self.customer_id, self.net_gte, self.net_lte, &self.currency, self.search.as_deref())
    }
}

/// What the list indexes hold of a draft or an order besides its keys: the fields that rarely
/// change and that most list filters test. A list query reads these, and then fetches only
/// the documents they admit; a change that leaves them alone writes nothing to the index.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Summary {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub customer_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub currency: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub payment_status: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub net_amount: Option<i64>,
    /// Every store id of an order: `store.id` and each item's `store.id` (store views).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub stores: Vec<String>,
    /// An order's enumerated filter values, so that those filters too are decided by the
    /// summary: itinerary travel modes, item discount types, and its operations' payment
    /// identifiers (`b:` card brand, `n:` last four digits, `p:` psp, `pp:` payment product,
    /// `pt:` payment product type), lower-case.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub tags: Vec<String>,
    /// What `search` matches a prefix of (order_id, external ids, the customer's id, email,
    /// phone, names), lower-case, each cut to [`SEARCH_TERM`] characters.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub find: Vec<String>,
    /// Whether an order holds payment operations (a list reads them only then). A flag, not
    /// a count: a summary change is an index write, and a new operation should not be one.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub ops: bool,
}

/// Search terms in a summary are cut to this many characters: enough for any real prefix.
pub const SEARCH_TERM: usize = 40;

/// The search terms of order content (see [`Summary::find`]), without repeats.
pub fn search_terms(o: &OrderObject) -> Vec<String> {
    let c = o.customer.as_ref();
    let all =
        [o.order_id.as_deref()].into_iter().chain(o.external_ids.iter().flatten().map(|e| e.id.as_deref())).chain([
            c.and_then(|c| c.id.as_deref()),
            c.and_then(|c| c.email.as_deref()),
            c.and_then(|c| c.phone_number.as_deref()),
            c.and_then(|c| c.first_name.as_deref()),
            c.and_then(|c| c.last_name.as_deref()),
        ]);
    let mut terms: Vec<String> = Vec::new();
    for t in all.flatten().filter(|t| !t.is_empty()) {
        let t: String = t.to_lowercase().chars().take(SEARCH_TERM).collect();
        if !terms.contains(&t) {
            terms.push(t);
        }
    }
    terms
}

/// Whether a needle may match a summary's search terms: a prefix of a term, or (for a needle
/// longer than a cut term) starting with it; the document decides the rest.
pub(crate) fn find_admits(terms: &[String], needle: Option<&str>) -> bool {
    needle.is_none_or(|n| {
        terms.iter().any(|t| t.starts_with(n) || (t.chars().count() == SEARCH_TERM && n.starts_with(t.as_str())))
    })
}

impl Summary {
    pub fn of_draft(d: &Draft) -> Self {
        let o = d.order.as_ref();
        Self {
            status: Some(d.status.as_str().to_owned()),
            customer_id: o.and_then(|o| o.customer.as_ref()).and_then(|c| c.id.clone()),
            currency: o.and_then(|o| o.currency.clone()),
            // Not the net amount: it changes with every item, and each summary change is an
            // index write.
            ..Default::default()
        }
    }

    pub fn of_order(order: &Order) -> Self {
        let status =
            order.status.and_then(|s| serde_json::to_value(s).ok()).and_then(|v| v.as_str().map(str::to_owned));
        let payment_status =
            order.payment_status.and_then(|s| serde_json::to_value(s).ok()).and_then(|v| v.as_str().map(str::to_owned));
        Self {
            status,
            customer_id: order.content.customer.as_ref().and_then(|c| c.id.clone()),
            currency: order.content.currency.clone(),
            payment_status,
            net_amount: order.content.net_amount,
            stores: orders::store_ids(order),
            tags: orders::tags(order),
            find: search_terms(&order.content),
            ops: [&order.authorizations, &order.captures, &order.refunds, &order.cancellations]
                .into_iter()
                .any(|l| l.as_ref().is_some_and(|l| !l.is_empty())),
        }
    }
}

impl DraftFilter {
    /// Whether a draft with this summary may match: never false for a draft that matches,
    /// so only the documents it admits need fetching.
    pub fn admits(&self, s: &Summary) -> bool {
        let status = s.status.as_deref();
        let status_ok = if self.status.is_empty() {
            status != Some(DraftStatus::Deleted.as_str())
        } else {
            self.status.iter().any(|x| Some(x.as_str()) == status)
        };
        status_ok
            && (self.customer_id.is_empty()
                || s.customer_id.as_ref().is_some_and(|c| self.customer_id.iter().any(|x| x == c)))
            && (self.currency.is_empty() || s.currency.as_ref().is_some_and(|c| self.currency.contains(c)))
            && net_admits(s.net_amount, self.net_gte, self.net_lte)
    }
}

/// A summary without a net amount (written before it held one) is admitted.
pub(crate) fn net_admits(net: Option<i64>, gte: Option<i64>, lte: Option<i64>) -> bool {
    net.is_none_or(|n| gte.is_none_or(|b| n >= b) && lte.is_none_or(|b| n <= b))
}

/// Order-content filters shared by draft and order lists.
pub fn matches_order(
    o: &OrderObject,
    customer_id: &[String],
    net_gte: Option<i64>,
    net_lte: Option<i64>,
    currency: &[String],
    search: Option<&str>,
) -> bool {
    let cid = o.customer.as_ref().and_then(|c| c.id.as_deref());
    let net = o.net_amount.unwrap_or(0);
    (customer_id.is_empty() || cid.is_some_and(|c| customer_id.iter().any(|x| x == c)))
        && net_gte.is_none_or(|b| net >= b)
        && net_lte.is_none_or(|b| net <= b)
        && (currency.is_empty() || o.currency.as_ref().is_some_and(|c| currency.contains(c)))
        && search.is_none_or(|s| matches_search(o, s))
}

/// Case-insensitive prefix of order_id, an external id, or the customer's id, email, phone
/// number, first or last name. `needle` is lower-case.
pub fn matches_search(o: &OrderObject, needle: &str) -> bool {
    let hit = |v: Option<&str>| v.is_some_and(|v| v.to_lowercase().starts_with(needle));
    let c = o.customer.as_ref();
    hit(o.order_id.as_deref())
        || o.external_ids.iter().flatten().any(|e| hit(e.id.as_deref()))
        || c.is_some_and(|c| {
            hit(c.id.as_deref())
                || hit(c.email.as_deref())
                || hit(c.phone_number.as_deref())
                || hit(c.first_name.as_deref())
                || hit(c.last_name.as_deref())
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn q(s: &[(&str, &str)]) -> Vec<(String, String)> {
        s.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
    }

    #[test]
    fn parses_repeated_and_comma_lists_and_dates() {
        let f = DraftFilter::parse(&q(&[
            ("status", "open,completed"),
            ("status", "deleted"),
            ("created_at.lte", "2026-01-31"),
            ("limit", "5"),
        ]))
        .unwrap();
        assert_eq!(f.status.len(), 3);
        assert_eq!(f.created_lte.as_deref(), Some("2026-01-31T23:59:59.999Z"));
        assert_eq!(f.paging.limit, 5);
    }

    #[test]
    fn dates_beyond_year_9999_in_utc_are_a_clear_error() {
        let Err(DomainError::Validation(errs)) =
            DraftFilter::parse(&q(&[("created_at.lte", "9999-12-31T23:59:59-01:00")]))
        else {
            panic!()
        };
        assert_eq!(errs[0].path, "created_at.lte");
        assert!(DraftFilter::parse(&q(&[("created_at.gte", "9999-12-31T23:59:59Z")])).is_ok());
    }

    #[test]
    fn rejects_bad_values_naming_each() {
        let Err(DomainError::Validation(errs)) =
            DraftFilter::parse(&q(&[("limit", "0"), ("status", "gone"), ("net_amount.gte", "-1")]))
        else {
            panic!()
        };
        let names: Vec<_> = errs.iter().map(|e| e.path.as_str()).collect();
        assert_eq!(names, ["limit", "status", "net_amount.gte"]);
    }
}
