//! Per-tenant usage, for platforms that bill pay-per-request tenants: for every request the
//! account it was authorized for, and the DynamoDB read and write units and the events its
//! writes produced; for every webhook attempt, one delivery. On AWS each request (and each
//! delivery) prints one CloudWatch Embedded Metric Format line, which CloudWatch turns into
//! metrics with an `account` dimension; `shopping-local` keeps the same counters and serves
//! them at `/metrics` (Prometheus text).
//!
//! Units are DynamoDB's pricing rules applied to the items as stored (the same sizes on both
//! engines): a write 1 unit per KB per item, 2 inside a transaction; a read 1 unit per 4 KB
//! (a query sums what it returns), at least 1. Only requests that passed authorization count:
//! nothing is billed to an account a caller could not act for, and hostile paths cannot grow
//! the counters. The request side is part of the edge middleware
//! ([`crate::edge::http::edge`]): it scopes a fresh meter around the request, which the
//! metered store adds to.

use async_trait::async_trait;
use domain::table::{Item, Key, WriteOp};
use infra::{Page, Query, Store, StoreError};
use std::cell::RefCell;
use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

/// What one request (or delivery) cost.
#[derive(Debug, Default, Clone, Copy, PartialEq)]
pub struct Counts {
    pub requests: u64,
    pub read_units: f64,
    pub write_units: f64,
    pub events: u64,
    pub webhooks: u64,
    /// Requests refused by the account's limit (429): not served, not counted in `requests`.
    pub throttled: u64,
}

impl Counts {
    fn add(&mut self, o: &Counts) {
        // Counters of a long-running server: saturate rather than wrap.
        self.requests = self.requests.saturating_add(o.requests);
        self.read_units += o.read_units;
        self.write_units += o.write_units;
        self.events = self.events.saturating_add(o.events);
        self.webhooks = self.webhooks.saturating_add(o.webhooks);
        self.throttled = self.throttled.saturating_add(o.throttled);
    }
}

/// What the request being served cost so far.
#[derive(Debug, Default)]
struct Current {
    counts: Counts,
}

tokio::task_local! {
    static CURRENT: RefCell<Current>;
}

fn with_current(f: impl FnOnce(&mut Current)) {
    let _ = CURRENT.try_with(|c| {
        if let Ok(mut c) = c.try_borrow_mut() {
            f(&mut c);
        }
    });
}

/// The read units the request being served has used so far (0 outside a request).
pub fn read_units() -> f64 {
    CURRENT.try_with(|c| c.try_borrow().map_or(0.0, |c| c.counts.read_units)).unwrap_or(0.0)
}

/// Counts `units` read units to the request being served: an answer kept in memory costs
/// what the read it came from did, so usage is the same on both hosts, hit or miss.
pub fn add_read_units(units: f64) {
    with_current(|c| c.counts.read_units += units);
}

/// Where the counts go.
#[derive(Clone)]
pub enum Sink {
    /// One EMF line on stdout per request (AWS).
    Emf,
    /// Counters kept in memory, served at `/metrics` (local).
    Registry(Arc<Registry>),
}

impl Sink {
    pub fn local() -> Self {
        Self::Registry(Arc::default())
    }

    /// Records what `account` used.
    pub fn record(&self, account: &str, counts: &Counts, epoch_ms: i64) {
        match self {
            Self::Emf => println!("{}", emf_line(account, counts, epoch_ms)),
            Self::Registry(r) => r.add(account, counts),
        }
    }
}

/// Runs `fut` (one request) with a fresh meter; answers its result and what it cost.
pub async fn metered<F: std::future::Future>(fut: F) -> (F::Output, Counts) {
    let cell = RefCell::new(Current::default());
    let (out, cell) = CURRENT
        .scope(cell, async move {
            let out = fut.await;
            let taken = CURRENT.try_with(|c| std::mem::take(&mut *c.borrow_mut())).unwrap_or_default();
            (out, taken)
        })
        .await;
    (out, Counts { requests: 1, ..cell.counts })
}

/// The account a request acts for, when it passed authorization: the caller's token names
/// the account in the path, and the answer is neither 401 nor 403. Anything else counts for
/// nobody, so no caller can grow the counters of an account it cannot act for.
pub fn billed_account<'a>(path: &'a str, caller_account: Option<&str>, status: u16) -> Option<&'a str> {
    let aid = path.strip_prefix("/v1/accounts/")?.split('/').next()?;
    (domain::validate::is_account_id(aid) && caller_account == Some(aid) && status != 401 && status != 403)
        .then_some(aid)
}

/// One Prometheus series: name, help text, and its value in a [`Counts`].
type Series = (&'static str, &'static str, fn(&Counts) -> f64);

/// The counters of every account, as the local server keeps them.
#[derive(Default)]
pub struct Registry(Mutex<BTreeMap<String, Counts>>);

impl Registry {
    pub fn add(&self, account: &str, counts: &Counts) {
        if let Ok(mut m) = self.0.lock() {
            m.entry(account.to_owned()).or_default().add(counts);
        }
    }

    pub fn get(&self, account: &str) -> Counts {
        self.0.lock().ok().and_then(|m| m.get(account).copied()).unwrap_or_default()
    }

    /// The Prometheus text exposition of every counter.
    pub fn prometheus(&self) -> String {
        let m = self.0.lock().map(|m| m.clone()).unwrap_or_default();
        let mut out = String::new();
        let series: [Series; 6] = [
            ("shopping_requests_total", "Requests authorized for the account.", |c| c.requests as f64),
            ("shopping_read_units_total", "DynamoDB read units the account's requests used.", |c| c.read_units),
            ("shopping_write_units_total", "DynamoDB write units the account's requests used.", |c| c.write_units),
            ("shopping_events_total", "Events the account's writes produced.", |c| c.events as f64),
            ("shopping_webhook_deliveries_total", "Webhook delivery attempts for the account.", |c| c.webhooks as f64),
            ("shopping_throttled_total", "Requests refused by the account's rate limit (429).", |c| c.throttled as f64),
        ];
        for (name, help, value) in series {
            out.push_str(&format!("# HELP {name} {help}\n# TYPE {name} counter\n"));
            for (account, c) in &m {
                out.push_str(&format!("{name}{{account=\"{account}\"}} {}\n", value(c)));
            }
        }
        out
    }
}

/// One CloudWatch Embedded Metric Format line: namespace `Shopping`, dimension `account`.
pub fn emf_line(account: &str, c: &Counts, epoch_ms: i64) -> String {
    serde_json::json!({
        "_aws": {
            "Timestamp": epoch_ms,
            "CloudWatchMetrics": [{
                "Namespace": "Shopping",
                "Dimensions": [["account"]],
                "Metrics": [
                    {"Name": "Requests", "Unit": "Count"},
                    {"Name": "ReadUnits", "Unit": "Count"},
                    {"Name": "WriteUnits", "Unit": "Count"},
                    {"Name": "Events", "Unit": "Count"},
                    {"Name": "WebhookDeliveries", "Unit": "Count"},
                    {"Name": "Throttled", "Unit": "Count"}
                ]
            }]
        },
        "account": account,
        "Requests": c.requests,
        "ReadUnits": c.read_units,
        "WriteUnits": c.write_units,
        "Events": c.events,
        "WebhookDeliveries": c.webhooks,
        "Throttled": c.throttled,
    })
    .to_string()
}

/// The units DynamoDB bills for `items` together, `per` bytes a unit, at least one. The
/// stored sizes are bounded first; only when the bounds fall in different units are the
/// documents deflated to find the exact size (a read would otherwise compress every document
/// it returns, which measured a fifth of a GET's CPU).
fn billed<'a>(items: impl IntoIterator<Item = &'a Item, IntoIter: Clone>, per: usize) -> f64 {
    let items = items.into_iter();
    let units = |bytes: usize| bytes.div_ceil(per).max(1);
    let (lo, hi) = items
        .clone()
        .map(infra::dynamo::item_size_bounds)
        .fold((0usize, 0usize), |(a, b), (l, h)| (a.saturating_add(l), b.saturating_add(h)));
    let n = if units(lo) == units(hi) {
        units(hi)
    } else {
        units(items.map(infra::dynamo::item_size).fold(0usize, usize::saturating_add))
    };
    n as f64
}

fn write_units(ops: &[WriteOp]) -> f64 {
    let per_item: f64 = ops
        .iter()
        .map(|op| match op {
            WriteOp::Put { item, .. } => billed([item], 1024),
            _ => 1.0,
        })
        .sum();
    // DynamoDB prices a transaction's items double.
    if ops.len() > 1 {
        per_item * 2.0
    } else {
        per_item
    }
}

fn events_of(ops: &[WriteOp]) -> u64 {
    ops.iter()
        .filter_map(|op| match op {
            WriteOp::Put { item, .. } if item.events.is_some() => domain::outbox::fresh(item).ok(),
            _ => None,
        })
        .map(|recs| recs.iter().map(|r| r.webhooks.len() as u64).sum::<u64>())
        .sum()
}

/// A store that adds what each call costs to the request being served.
pub struct MeteredStore(pub Arc<dyn Store>);

#[async_trait]
impl Store for MeteredStore {
    async fn get(&self, key: &Key) -> Result<Option<Item>, StoreError> {
        let r = self.0.get(key).await;
        if let Ok(found) = &r {
            let units = billed(found, 4096);
            with_current(|c| c.counts.read_units += units);
        }
        r
    }

    async fn get_many(&self, keys: &[Key]) -> Result<Vec<Item>, StoreError> {
        let r = self.0.get_many(keys).await;
        if let Ok(items) = &r {
            // BatchGetItem prices each item on its own.
            let units: f64 = items.iter().map(|i| billed([i], 4096)).sum();
            with_current(|c| c.counts.read_units += units);
        }
        r
    }

    async fn query(&self, q: &Query) -> Result<Page, StoreError> {
        let r = self.0.query(q).await;
        if let Ok(page) = &r {
            let units = billed(&page.items, 4096);
            with_current(|c| c.counts.read_units += units);
        }
        r
    }

    async fn write(&self, ops: Vec<WriteOp>) -> Result<(), StoreError> {
        let (units, events) = (write_units(&ops), events_of(&ops));
        let r = self.0.write(ops).await;
        // A refused conditional write is billed too; its events did not happen.
        with_current(|c| {
            c.counts.write_units += units;
            if r.is_ok() {
                c.counts.events += events;
            }
        });
        r
    }

    async fn write_each(&self, writes: Vec<Vec<WriteOp>>) -> Vec<Result<(), StoreError>> {
        let priced: Vec<(f64, u64)> = writes.iter().map(|ops| (write_units(ops), events_of(ops))).collect();
        let results = self.0.write_each(writes).await;
        with_current(|c| {
            for ((units, events), r) in priced.iter().zip(&results) {
                c.counts.write_units += units;
                if r.is_ok() {
                    c.counts.events += events;
                }
            }
        });
        results
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_emf_line_names_its_metrics_and_the_account_dimension() {
        let c = Counts { requests: 1, read_units: 2.0, write_units: 4.0, events: 1, webhooks: 0, throttled: 0 };
        let line: serde_json::Value = serde_json::from_str(&emf_line("T12345678", &c, 1_800_000_000_000)).unwrap();
        let spec = &line["_aws"]["CloudWatchMetrics"][0];
        assert_eq!(spec["Namespace"], "Shopping");
        assert_eq!(spec["Dimensions"], serde_json::json!([["account"]]));
        for m in spec["Metrics"].as_array().unwrap() {
            assert!(line.get(m["Name"].as_str().unwrap()).is_some(), "every metric has a value: {m}");
        }
        assert_eq!((line["account"].as_str(), line["WriteUnits"].as_f64()), (Some("T12345678"), Some(4.0)));
    }

    #[test]
    fn only_authorized_requests_are_counted() {
        let path = "/v1/accounts/T12345678/shopping/draft_orders";
        assert_eq!(billed_account(path, Some("T12345678"), 200), Some("T12345678"));
        assert_eq!(billed_account(path, Some("T12345678"), 404), Some("T12345678"));
        assert_eq!(billed_account(path, Some("T12345678"), 403), None, "a refused scope");
        assert_eq!(billed_account(path, Some("T87654321"), 200), None, "another account's token");
        assert_eq!(billed_account(path, None, 401), None, "no token");
        assert_eq!(billed_account("/v1/accounts/made-up/x", Some("made-up"), 200), None);
        assert_eq!(billed_account("/openapi.json", Some("T12345678"), 200), None);
    }

    #[test]
    fn a_transaction_costs_double() {
        let put = |n: usize| WriteOp::Put { item: Item::new(Key::new("p", "s"), 0, "x".repeat(n)), cond: None };
        assert_eq!(write_units(&[put(10)]), 1.0);
        assert_eq!(write_units(&[put(10), put(10)]), 4.0);
        assert_eq!(billed(&[], 4096), 1.0, "an empty read costs one unit");
    }

    /// The bounded billing is the exact one: for documents stored as text and deflated,
    /// compressible and not, around every unit boundary, alone and summed.
    #[test]
    fn bounded_billing_is_exact() {
        let exact = |items: &[&Item], per: usize| {
            let bytes: usize = items.iter().map(|i| infra::dynamo::item_size(i)).sum();
            bytes.div_ceil(per).max(1) as f64
        };
        let mut seed = 7u64;
        let mut noise = |n: usize| -> String {
            (0..n)
                .map(|_| {
                    seed = seed.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
                    char::from(b'a' + u8::try_from((seed >> 59) % 26).unwrap_or(0))
                })
                .collect()
        };
        let mut items = Vec::new();
        for n in [0, 100, 511, 512, 900, 1000, 1024, 2000, 4000, 4096, 5000, 9000, 20_000] {
            items.push(Item::new(Key::new("A#T12345678#o", "ORDER"), 3, format!("{{\"a\":\"{}\"}}", "x".repeat(n))));
            items.push(Item::new(Key::new("A#T12345678#o", "ORDER"), 3, format!("{{\"a\":\"{}\"}}", noise(n))));
        }
        for per in [1024, 4096] {
            for i in &items {
                assert_eq!(billed([i], per), exact(&[i], per), "{} bytes of doc per {per}", i.doc.len());
            }
            for pair in items.windows(3) {
                let refs: Vec<&Item> = pair.iter().collect();
                assert_eq!(billed(pair, per), exact(&refs, per));
            }
        }
    }
}
