//! The order list and the customer and store views: every documented filter, parsed from raw
//! query pairs, checked first against the compact summary the list index holds (so only the
//! documents that may match are fetched) and then against the whole order.

use super::{
    amount, currencies, date_bound, find_admits, matches_order, net_admits, parse_paging, single, values, Paging,
    Summary,
};
use crate::error::{DomainError, FieldError};
use crate::events;
use crate::model::{OperationPaymentDetails, Order, PaymentOperation};

/// Which orders a list covers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Scope {
    /// `GET /orders`: every filter.
    Account,
    /// `GET /customers/{customer_id}/orders`: orders whose `customer.id` is this.
    Customer(String),
    /// `GET /stores/{store_id}/orders`: orders whose `store.id` or any item's `store.id` is this.
    Store(String),
}

const STATUSES: [&str; 3] = ["open", "closed", "cancelled"];
const PAYMENT_STATUSES: [&str; 5] = ["pending", "partially_paid", "paid", "partially_refunded", "refunded"];
const TRAVEL_MODES: [&str; 10] = ["BUS", "CAR", "FERRY", "METRO", "TAXI", "TRAIN", "TRAM", "WALK", "WAIT", "CUSTOM"];
const DISCOUNT_TYPES: [&str; 7] = ["customer", "periodic", "manual", "loyalty", "total", "employee", "external"];

#[derive(Debug, Clone, PartialEq)]
pub struct OrderFilter {
    pub scope: Scope,
    pub paging: Paging,
    /// `include_events`: which event types each listed order shows.
    pub kinds: Option<Vec<&'static str>>,
    pub status: Vec<String>,
    pub payment_status: Vec<String>,
    /// Inclusive bounds as fixed-width RFC 3339 text (comparable with index sort keys).
    pub created_gte: Option<String>,
    pub created_lte: Option<String>,
    pub card_brand: Vec<String>,
    pub card_number: Vec<String>,
    pub psp: Vec<String>,
    pub payment_product: Vec<String>,
    pub payment_product_type: Vec<String>,
    pub net_gte: Option<i64>,
    pub net_lte: Option<i64>,
    pub currency: Vec<String>,
    pub search: Option<String>,
    pub travel_mode: Vec<String>,
    pub arrival_address: Option<String>,
    pub departure_address: Option<String>,
    pub discount_type: Vec<String>,
}

/// Values of an enumerated parameter; an unknown one is an error naming the parameter.
fn one_of(pairs: &[(String, String)], name: &str, allowed: &[&str], errs: &mut Vec<FieldError>) -> Vec<String> {
    let mut out = Vec::new();
    for v in values(pairs, name) {
        if allowed.contains(&v) {
            out.push(v.to_owned());
        } else {
            errs.push(FieldError::new(
                name,
                "INVALID",
                format!("unknown value `{v}`; use one of {}", allowed.join(", ")),
            ));
        }
    }
    out
}

fn strings(pairs: &[(String, String)], name: &str) -> Vec<String> {
    values(pairs, name).into_iter().map(str::to_lowercase).collect()
}

impl OrderFilter {
    /// Parses the parameters `scope` offers. The views take only `status`, `payment_status`,
    /// `created_at.*`, `include_events` (without `api-event`) and paging; other parameters
    /// are ignored there, like any unknown parameter.
    pub fn parse(pairs: &[(String, String)], scope: Scope) -> Result<Self, DomainError> {
        let mut errs = Vec::new();
        let account = scope == Scope::Account;
        let paging = parse_paging(pairs, &mut errs);
        let kinds = events::include_events(pairs, account).unwrap_or_else(|e| {
            if let DomainError::Validation(v) = e {
                errs.extend(v);
            }
            None
        });
        let mut f = Self {
            paging,
            kinds,
            status: one_of(pairs, "status", &STATUSES, &mut errs),
            payment_status: one_of(pairs, "payment_status", &PAYMENT_STATUSES, &mut errs),
            created_gte: date_bound(pairs, "created_at.gte", false, &mut errs),
            created_lte: date_bound(pairs, "created_at.lte", true, &mut errs),
            card_brand: Vec::new(),
            card_number: Vec::new(),
            psp: Vec::new(),
            payment_product: Vec::new(),
            payment_product_type: Vec::new(),
            net_gte: None,
            net_lte: None,
            currency: Vec::new(),
            search: None,
            travel_mode: Vec::new(),
            arrival_address: None,
            departure_address: None,
            discount_type: Vec::new(),
            scope,
        };
        if account {
            f.card_brand = strings(pairs, "card_brand");
            f.card_number = values(pairs, "card_number").into_iter().map(str::to_owned).collect();
            for n in &f.card_number {
                if !(n.len() == 4 && n.bytes().all(|b| b.is_ascii_digit())) {
                    errs.push(FieldError::new(
                        "card_number",
                        "INVALID",
                        format!("`{n}` is not the last 4 digits of a card"),
                    ));
                }
            }
            f.psp = strings(pairs, "psp");
            f.payment_product = strings(pairs, "payment_product");
            f.payment_product_type = strings(pairs, "payment_product_type");
            f.net_gte = amount(pairs, "net_amount.gte", &mut errs);
            f.net_lte = amount(pairs, "net_amount.lte", &mut errs);
            f.currency = currencies(pairs, &mut errs);
            f.search = single(pairs, "search", &mut errs).map(str::to_lowercase);
            let modes: Vec<String> =
                values(pairs, "itinerary_travel_mode").into_iter().map(str::to_ascii_uppercase).collect();
            let modes: Vec<(String, String)> =
                modes.into_iter().map(|m| ("itinerary_travel_mode".to_owned(), m)).collect();
            f.travel_mode = one_of(&modes, "itinerary_travel_mode", &TRAVEL_MODES, &mut errs);
            f.arrival_address = single(pairs, "itinerary_arrival_address", &mut errs).map(str::to_lowercase);
            f.departure_address = single(pairs, "itinerary_departure_address", &mut errs).map(str::to_lowercase);
            f.discount_type = one_of(pairs, "items_discount_lines_discount_type", &DISCOUNT_TYPES, &mut errs);
        }
        if errs.is_empty() {
            Ok(f)
        } else {
            Err(DomainError::Validation(errs))
        }
    }

    /// Whether an order with this summary may match: never false for one that matches.
    pub fn admits(&self, s: &Summary) -> bool {
        let any = |want: &[String], have: Option<&String>| want.is_empty() || have.is_some_and(|h| want.contains(h));
        any(&self.status, s.status.as_ref())
            && any(&self.payment_status, s.payment_status.as_ref())
            && any(&self.currency, s.currency.as_ref())
            && net_admits(s.net_amount, self.net_gte, self.net_lte)
            && self.admits_tags(s)
            && match &self.scope {
                Scope::Account => true,
                Scope::Customer(c) => s.customer_id.as_ref() == Some(c),
                Scope::Store(id) => s.stores.contains(id),
            }
    }

    /// The enumerated filters, against the summary's tags (a summary written before it held
    /// tags admits everything: the document decides).
    fn admits_tags(&self, s: &Summary) -> bool {
        if s.status.is_some() && s.payment_status.is_none() {
            // Written before summaries held tags and search terms.
            return true;
        }
        if !find_admits(&s.find, self.search.as_deref()) {
            return false;
        }
        let has = |prefix: &str, want: &[String]| {
            want.is_empty() || want.iter().any(|w| s.tags.iter().any(|t| t.strip_prefix(prefix) == Some(w.as_str())))
        };
        let modes: Vec<String> = self.travel_mode.iter().map(|m| m.to_lowercase()).collect();
        has("m:", &modes)
            && has("d:", &self.discount_type)
            && has("b:", &self.card_brand)
            && has("n:", &self.card_number)
            && has("p:", &self.psp)
            && has("pp:", &self.payment_product)
            && has("pt:", &self.payment_product_type)
    }

    /// Whether the whole order matches every filter. `s` is the order's stored summary, which
    /// decides what lives outside the order item (its payment operations' identifiers).
    pub fn matches(&self, o: &Order, s: &Summary) -> bool {
        let c = &o.content;
        self.admits(s)
            && self.created_gte.as_deref().is_none_or(|b| o.created_at.as_str() >= b)
            && self.created_lte.as_deref().is_none_or(|b| o.created_at.as_str() <= b)
            && matches_order(c, &[], None, None, &[], self.search.as_deref())
            && (!has_operations(o) || self.matches_payments(o))
            && (self.travel_mode.is_empty()
                || c.itinerary.iter().flatten().any(|i| {
                    i.travel_mode
                        .and_then(|m| serde_json::to_value(m).ok())
                        .is_some_and(|v| v.as_str().is_some_and(|m| self.travel_mode.iter().any(|x| x == m)))
                }))
            && self.arrival_address.as_deref().is_none_or(|a| {
                c.itinerary.iter().flatten().any(|i| i.arrival_address.as_ref().is_some_and(|x| address_has(x, a)))
            })
            && self.departure_address.as_deref().is_none_or(|a| {
                c.itinerary.iter().flatten().any(|i| i.departure_address.as_ref().is_some_and(|x| address_has(x, a)))
            })
            && (self.discount_type.is_empty()
                || c.items.iter().flatten().flat_map(|i| i.discount_lines.iter().flatten()).any(|d| {
                    d.discount_type
                        .and_then(|t| serde_json::to_value(t).ok())
                        .is_some_and(|v| v.as_str().is_some_and(|t| self.discount_type.iter().any(|x| x == t)))
                }))
    }

    /// The payment filters match the `payment_details` of any of the order's operations.
    fn matches_payments(&self, o: &Order) -> bool {
        let details: Vec<&OperationPaymentDetails> = [&o.authorizations, &o.captures, &o.refunds, &o.cancellations]
            .into_iter()
            .flat_map(|ops| ops.iter().flatten())
            .filter_map(|op: &PaymentOperation| op.payment_details.as_ref())
            .collect();
        let lower = |v: Option<&String>| v.map(|s| s.to_lowercase());
        let test = |want: &[String], get: &dyn Fn(&OperationPaymentDetails) -> Option<String>| {
            want.is_empty() || details.iter().any(|d| get(d).is_some_and(|v| want.contains(&v)))
        };
        test(&self.card_brand, &|d| lower(d.card.as_ref().and_then(|c| c.brand.as_ref())))
            && test(&self.card_number, &|d| d.card.as_ref().and_then(|c| c.masked_pan.as_deref()).map(last_four))
            && test(&self.psp, &|d| lower(d.psp.as_ref()))
            && test(&self.payment_product, &|d| lower(d.payment_product.as_ref()))
            && test(&self.payment_product_type, &|d| lower(d.payment_product_type.as_ref()))
    }
}

fn has_operations(o: &Order) -> bool {
    [&o.authorizations, &o.captures, &o.refunds, &o.cancellations]
        .iter()
        .any(|l| l.as_ref().is_some_and(|l| !l.is_empty()))
}

/// An itinerary address matches when any of its texts contains the (lower-case) needle.
fn address_has(a: &crate::model::ItineraryAddress, needle: &str) -> bool {
    [&a.id, &a.name, &a.address_line, &a.address_line_2, &a.postal_code, &a.postal_place, &a.country]
        .into_iter()
        .flatten()
        .any(|v| v.to_lowercase().contains(needle))
}

fn last_four(masked_pan: &str) -> String {
    let digits: Vec<char> = masked_pan.chars().filter(char::is_ascii_digit).collect();
    digits.iter().skip(digits.len().saturating_sub(4)).collect()
}

/// The summary tags of an order (see [`Summary::tags`]), without repeats.
pub fn tags(o: &Order) -> Vec<String> {
    let mut tags: Vec<String> = Vec::new();
    let mut add = |prefix: &str, v: Option<&str>| {
        if let Some(v) = v.filter(|v| !v.is_empty()) {
            let t = format!("{prefix}{}", v.to_lowercase());
            if !tags.contains(&t) {
                tags.push(t);
            }
        }
    };
    let text = |v: Option<serde_json::Value>| v.and_then(|v| v.as_str().map(str::to_owned));
    for i in o.content.itinerary.iter().flatten() {
        add("m:", text(i.travel_mode.and_then(|m| serde_json::to_value(m).ok())).as_deref());
    }
    for d in o.content.items.iter().flatten().flat_map(|i| i.discount_lines.iter().flatten()) {
        add("d:", text(d.discount_type.and_then(|t| serde_json::to_value(t).ok())).as_deref());
    }
    let ops = [&o.authorizations, &o.captures, &o.refunds, &o.cancellations];
    for d in ops.into_iter().flat_map(|ops| ops.iter().flatten()).filter_map(|op| op.payment_details.as_ref()) {
        let card = d.card.as_ref();
        add("b:", card.and_then(|c| c.brand.as_deref()));
        add("n:", card.and_then(|c| c.masked_pan.as_deref()).map(last_four).as_deref());
        add("p:", d.psp.as_deref());
        add("pp:", d.payment_product.as_deref());
        add("pt:", d.payment_product_type.as_deref());
    }
    tags
}

/// Every store id an order names: its own `store.id`, then each item's, without repeats.
pub fn store_ids(o: &Order) -> Vec<String> {
    let mut ids: Vec<String> = Vec::new();
    let own = o.content.store.as_ref().and_then(|s| s.id.clone());
    let items = o.content.items.iter().flatten().filter_map(|i| i.store.as_ref().and_then(|s| s.id.clone()));
    for id in own.into_iter().chain(items) {
        if !ids.contains(&id) {
            ids.push(id);
        }
    }
    ids
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{Card, ItemStore, OrderItem, OrderStatus};

    fn q(s: &[(&str, &str)]) -> Vec<(String, String)> {
        s.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
    }

    #[test]
    fn every_bad_value_is_named() {
        let Err(DomainError::Validation(errs)) = OrderFilter::parse(
            &q(&[
                ("limit", "101"),
                ("status", "gone"),
                ("payment_status", "free"),
                ("card_number", "12"),
                ("itinerary_travel_mode", "rocket"),
                ("items_discount_lines_discount_type", "secret"),
                ("include_events", "maybe"),
            ]),
            Scope::Account,
        ) else {
            panic!()
        };
        let mut names: Vec<_> = errs.iter().map(|e| e.path.as_str()).collect();
        names.sort_unstable();
        assert_eq!(
            names,
            [
                "card_number",
                "include_events",
                "items_discount_lines_discount_type",
                "itinerary_travel_mode",
                "limit",
                "payment_status",
                "status"
            ]
        );
        assert!(OrderFilter::parse(&q(&[("include_events", "api-event")]), Scope::Store("s".into())).is_err());
    }

    #[test]
    fn store_views_match_the_order_store_or_any_item_store() {
        let order = Order {
            status: Some(OrderStatus::Open),
            content: crate::model::OrderObject {
                items: Some(vec![OrderItem {
                    store: Some(ItemStore { id: Some("s2".into()), ..Default::default() }),
                    ..Default::default()
                }]),
                ..Default::default()
            },
            ..Default::default()
        };
        let view = |s: &str| OrderFilter::parse(&[], Scope::Store(s.into())).unwrap();
        assert!(view("s2").matches(&order, &Summary::of_order(&order)));
        assert!(!view("s1").matches(&order, &Summary::of_order(&order)));
    }

    #[test]
    fn payment_filters_match_any_operation() {
        let card =
            Card { brand: Some("Visa".into()), masked_pan: Some("4444 **** **** 4448".into()), ..Default::default() };
        let op = PaymentOperation {
            payment_details: Some(OperationPaymentDetails {
                psp: Some("Bambora".into()),
                card: Some(card),
                ..Default::default()
            }),
            ..Default::default()
        };
        let order = Order { captures: Some(vec![op]), ..Default::default() };
        let f = |p: &[(&str, &str)]| OrderFilter::parse(&q(p), Scope::Account).unwrap();
        let s = Summary::of_order(&order);
        assert!(f(&[("card_brand", "visa"), ("card_number", "4448"), ("psp", "bambora")]).matches(&order, &s));
        assert!(!f(&[("card_number", "4444")]).matches(&order, &s));
    }
}
