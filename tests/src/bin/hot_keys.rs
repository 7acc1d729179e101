//! The capacity simulator (issue 39): which partition keys does a load shape make hot?
//!
//! Drives a load shape through the real request path — the API router with its extractors,
//! commands, key builders and limiter, then the stream publisher and the AWS deliverer's
//! bookkeeping — on the embedded engine (SQLite in `/dev/shm` when there is one), behind a
//! store wrapper that meters every read and write by partition key and by simulated second,
//! with DynamoDB's pricing rules: a write 1 WCU per KB of the item (2 in a transaction, a
//! delete or condition check at least 1), an index entry written (1 WCU per KB of what the
//! index projects) whenever the item's index keys or projected attributes change, and the old
//! entry deleted when its index key moves; a strongly consistent read 1 RCU per 4 KB, an
//! index query (eventually consistent) half. Time is an injected [`ManualClock`], set to the
//! millisecond of each request of each simulated second; nothing waits on the wall.
//!
//! ```sh
//! cargo run --release -p shopping-tests --bin hot_keys -- --shape black-friday
//! ```
//!
//! Shapes: `small` (today's small tenant), `black-friday` (one merchant at 10,000 cart changes,
//! 1,000 completions and 2,000 order changes a second, one webhook subscription, 50 list
//! reads a second), `ramp` (0 to that in 10 minutes, then a minute at the peak).
//!
//! Sampling (`--sample N`; 10 for `black-friday`, 25 for `ramp`, none for `small`): only
//! every N-th draft — and everything that happens to it and to its order — runs through the
//! API, each at its full rate, so a key of one draft, order, customer, event guard or
//! idempotency key gets exactly its units. A key every draft or order shares (the list
//! partitions and their shards, the subscriptions, a subscription's deliveries) gets the units
//! of an N-th of the traffic: it is counted ×N, an unbiased estimate whose busiest second
//! runs high (a shard's sampled count varies more than its whole count would). The rate
//! limiter sees every request, sampled or not (the unsampled ones spend their token through
//! the same `Limiter::check` the middleware calls), so its key is exact; list reads are not
//! sampled either (their units count ×1).
//!
//! Prints the busiest keys against DynamoDB's per-partition limits (1,000 WCU/s, 3,000 RCU/s)
//! and, last, `busiest table key N WCU/s M RCU/s, busiest index key N WCU/s M RCU/s` (maxima
//! over all simulated seconds); exits 1 when one is over the limits.

use async_trait::async_trait;
use axum::body::Body;
use axum::http::Request;
use domain::table::{Index, Item, Key, WriteOp};
use functions::edge::auth::{sign, Auth, Claims};
use functions::edge::limit::Limiter;
use functions::edge::state::AppState;
use http_body_util::BodyExt;
use infra::clock::ManualClock;
use infra::{Clock, Page, Query, Store, StoreError};
use serde_json::{json, Value};
use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Instant;
use tower::ServiceExt;

/// DynamoDB's most write units a second one partition serves (GSI partitions included).
const MAX_WCU: f64 = 1000.0;
/// DynamoDB's most read units a second one partition serves.
const MAX_RCU: f64 = 3000.0;
/// The merchant every shape simulates.
const AID: &str = "T00000001";
/// Keys below this many units a second in every second are not listed (only the maxima).
const LISTED: f64 = 5.0;
const SECRET: &[u8] = b"hot-keys-secret-hot-keys-secret-hot";
const T0: i64 = 1_800_000_000;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
enum Space {
    Table,
    Gsi1,
    Gsi2,
}

impl Space {
    fn name(self) -> &'static str {
        match self {
            Self::Table => "table",
            Self::Gsi1 => "gsi1",
            Self::Gsi2 => "gsi2",
        }
    }
    fn of(index: Option<Index>) -> Self {
        match index {
            None => Self::Table,
            Some(Index::Gsi1) => Self::Gsi1,
            Some(Index::Gsi2) => Self::Gsi2,
        }
    }
}

/// Units one key received in one second.
#[derive(Debug, Default, Clone, Copy)]
struct Units {
    wcu: f64,
    rcu: f64,
}

/// A key's busiest second for writes and for reads, and when each was (the simulated
/// second): a peak in the first seconds is the shape's cold start, not its steady state.
#[derive(Debug, Default, Clone, Copy)]
struct Peak {
    units: Units,
    wcu_at: i64,
    rcu_at: i64,
}

/// A key one draft, order, customer or delivery round owns (exact under sampling), as
/// opposed to one the whole account shares (counted ×N): see the module's notes.
fn owned_by_one(pk: &str) -> bool {
    ["#D#", "#O#", "#ORDERID#", "#IDEM#", "#ONCE#", "#C#"].iter().any(|m| pk.contains(m)) || pk.ends_with("#LIMIT")
}

/// The meter: units per (space, key) in the current simulated second, and the maxima.
struct Meter {
    /// Shared keys count ×this (the sampling factor).
    scale: f64,
    /// While set, every key counts ×1 (unsampled requests: the list reads).
    unscaled: AtomicBool,
    second: Mutex<HashMap<(Space, String), Units>>,
    /// Per key, its most units in any one second (keys over [`LISTED`] only).
    peak: Mutex<HashMap<(Space, String), Peak>>,
    /// Per space (table, any index), the most units any key received in any second.
    max: Mutex<[Units; 2]>,
}

impl Meter {
    fn new(scale: f64) -> Self {
        Self {
            scale,
            unscaled: AtomicBool::new(false),
            second: Mutex::default(),
            peak: Mutex::default(),
            max: Mutex::default(),
        }
    }

    fn add(&self, space: Space, pk: &str, wcu: f64, rcu: f64) {
        let k = if owned_by_one(pk) || self.unscaled.load(Ordering::Relaxed) { 1.0 } else { self.scale };
        let mut m = self.second.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        let u = m.entry((space, pk.to_owned())).or_default();
        u.wcu += wcu * k;
        u.rcu += rcu * k;
    }

    /// Ends simulated second `at`: its units go into the maxima.
    fn close_second(&self, at: i64) {
        let second = std::mem::take(&mut *self.second.lock().unwrap_or_else(std::sync::PoisonError::into_inner));
        let mut peak = self.peak.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        let mut max = self.max.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        for ((space, pk), u) in second {
            let m = &mut max[usize::from(space != Space::Table)];
            m.wcu = m.wcu.max(u.wcu);
            m.rcu = m.rcu.max(u.rcu);
            if u.wcu >= LISTED || u.rcu >= LISTED {
                let p = peak.entry((space, pk)).or_default();
                if u.wcu > p.units.wcu {
                    (p.units.wcu, p.wcu_at) = (u.wcu, at);
                }
                if u.rcu > p.units.rcu {
                    (p.units.rcu, p.rcu_at) = (u.rcu, at);
                }
            }
        }
    }
}

fn kb(bytes: usize) -> f64 {
    bytes.div_ceil(1024).max(1) as f64
}

fn read_units(bytes: usize) -> f64 {
    bytes.max(1).div_ceil(4096) as f64
}

/// The store port in front of the embedded engine, metering by key.
struct Metered {
    inner: Arc<infra::sqlite::SqliteStore>,
    meter: Arc<Meter>,
}

impl Metered {
    /// What a write costs the indexes: for each index whose entry of the item changes (its
    /// keys or what it projects), the new entry (1 WCU per KB projected) and, when the entry's
    /// key moves or goes, the old one's delete (1 WCU).
    fn index_writes(&self, before: Option<&Item>, after: Option<&Item>) {
        if before.map(Item::projected) == after.map(Item::projected) {
            return;
        }
        for (index, space) in [(Index::Gsi1, Space::Gsi1), (Index::Gsi2, Space::Gsi2)] {
            let old = before.and_then(|i| i.index_key(index));
            let new = after.and_then(|i| i.index_key(index));
            if let (Some(item), Some((pk, _))) = (after, new) {
                self.meter.add(space, pk, kb(infra::limits::projected_size(item)), 0.0);
            }
            if let Some((pk, sk)) = old {
                if new != Some((pk, sk)) {
                    self.meter.add(space, pk, 1.0, 0.0);
                }
            }
        }
    }
}

#[async_trait]
impl Store for Metered {
    async fn get(&self, key: &Key) -> Result<Option<Item>, StoreError> {
        let r = self.inner.get(key).await?;
        self.meter.add(Space::Table, &key.pk, 0.0, read_units(r.as_ref().map_or(0, infra::dynamo::item_size)));
        Ok(r)
    }

    async fn get_many(&self, keys: &[Key]) -> Result<Vec<Item>, StoreError> {
        let r = self.inner.get_many(keys).await?;
        // BatchGetItem prices each item on its own.
        for i in &r {
            self.meter.add(Space::Table, &i.pk, 0.0, read_units(infra::dynamo::item_size(i)));
        }
        Ok(r)
    }

    async fn query(&self, q: &Query) -> Result<Page, StoreError> {
        let r = self.inner.query(q).await?;
        let units = read_units(r.items.iter().map(infra::dynamo::item_size).sum());
        let units = if q.index.is_some() { units / 2.0 } else { units };
        self.meter.add(Space::of(q.index), &q.pk, 0.0, units);
        Ok(r)
    }

    async fn write(&self, ops: Vec<WriteOp>) -> Result<(), StoreError> {
        let factor = if ops.len() > 1 { 2.0 } else { 1.0 };
        let mut before = Vec::with_capacity(ops.len());
        for op in &ops {
            let old = self.inner.get(&op.key()).await?;
            let units = match op {
                WriteOp::Put { item, .. } => kb(infra::dynamo::item_size(item)),
                WriteOp::Delete { .. } => kb(old.as_ref().map_or(0, infra::dynamo::item_size)),
                WriteOp::Check { .. } => 1.0,
            };
            // A refused conditional write is billed too.
            self.meter.add(Space::Table, &op.key().pk, units * factor, 0.0);
            before.push(old);
        }
        let changes: Vec<(Option<Item>, Option<Item>)> = ops
            .iter()
            .zip(before)
            .filter_map(|(op, old)| match op {
                WriteOp::Put { item, .. } => Some((old, Some(item.clone()))),
                WriteOp::Delete { .. } => Some((old, None)),
                WriteOp::Check { .. } => None,
            })
            .collect();
        self.inner.write(ops).await?;
        for (old, new) in &changes {
            self.index_writes(old.as_ref(), new.as_ref());
        }
        Ok(())
    }
}

/// A load shape: rates at the peak, how long it ramps and holds.
struct Shape {
    name: &'static str,
    /// Cart changes a second (draft creations, items added or changed).
    carts: f64,
    completions: f64,
    /// Order changes a second: captures and status changes (close), half each.
    order_changes: f64,
    lists: f64,
    /// Seconds from 0 to the peak, then seconds at the peak.
    ramp: i64,
    hold: i64,
    /// One in this many drafts runs through the API.
    sample: u64,
    /// The merchant's request limit (an override when not the default).
    limit: domain::ratelimit::Limit,
    /// A webhook subscription to completions and order updates.
    webhook: bool,
}

impl Shape {
    fn named(name: &str, sample: Option<u64>) -> Option<Self> {
        let big = |name, ramp| Shape {
            name,
            carts: 10_000.0,
            completions: 1_000.0,
            order_changes: 2_000.0,
            lists: 50.0,
            ramp,
            hold: 70,
            // The ramp's 660 s run at a quarter of the black-friday's sampled requests a
            // second so it fits its 10 minutes too.
            sample: sample.unwrap_or(if ramp > 0 { 25 } else { 10 }),
            limit: domain::ratelimit::Limit::new(20_000, 40_000),
            webhook: true,
        };
        Some(match name {
            // Today's small tenant: well inside the default limit of 100 a second.
            "small" => Shape {
                name: "small",
                carts: 20.0,
                completions: 2.0,
                order_changes: 4.0,
                lists: 1.0,
                ramp: 0,
                hold: 70,
                sample: sample.unwrap_or(1),
                limit: domain::ratelimit::Limit::DEFAULT,
                webhook: true,
            },
            "black-friday" => big("black-friday", 0),
            "ramp" => big("ramp", 600),
            _ => return None,
        })
    }

    /// The share of the peak at simulated second `s`.
    fn level(&self, s: i64) -> f64 {
        if self.ramp == 0 || s >= self.ramp {
            1.0
        } else {
            (s as f64 + 0.5) / self.ramp as f64
        }
    }
}

/// A reproducible stream of choices (splitmix64): the same shape makes the same run.
struct Dice(u64);

impl Dice {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    fn below(&mut self, n: usize) -> usize {
        usize::try_from(self.next() % (n.max(1) as u64)).unwrap_or(0)
    }
}

/// Whole events from a rate: carries the fraction over to the next second.
#[derive(Default)]
struct Carry(f64);

impl Carry {
    fn take(&mut self, rate: f64) -> usize {
        self.0 += rate;
        let n = self.0.floor();
        self.0 -= n;
        n as usize
    }
}

#[derive(Debug, Clone)]
enum Action {
    Create,
    CartChange,
    Complete,
    Capture,
    Close,
    ListOrders,
    ListDrafts,
}

struct Sim {
    shape: Shape,
    clock: Arc<ManualClock>,
    inner: Arc<infra::sqlite::SqliteStore>,
    meter: Arc<Meter>,
    /// The AWS deliverer's instance.
    deliverer: AppState,
    /// One per simulated function instance: its router and its limiter.
    instances: Vec<(axum::Router, Arc<Limiter>)>,
    next_instance: usize,
    token: String,
    dice: Dice,
    /// Open drafts (id, lines, the simulated second of their last change), oldest first.
    drafts: VecDeque<(String, u32, i64)>,
    /// The simulated second.
    now_s: i64,
    /// Orders completed, waiting for their capture; then for their close.
    to_capture: VecDeque<String>,
    to_close: VecDeque<String>,
    customers: u64,
    requests: u64,
    failures: u64,
}

fn item(line: u32) -> Value {
    json!({"line_id": line, "id": format!("SKU-{line:05}"), "description": "Stoneware mug, 35 cl, blue",
        "quantity": 1, "gross_amount": 19900, "tax_lines": [{"percentage": 25}], "groups": [{"id": "kitchen", "name": "Kitchen"}]})
}

impl Sim {
    async fn call(&mut self, method: &str, path: &str, body: Option<Value>) -> Option<Value> {
        let (router, _) = &self.instances[self.next_instance % self.instances.len()];
        self.next_instance = self.next_instance.wrapping_add(1);
        let req = Request::builder()
            .method(method)
            .uri(format!("/v1/accounts/{AID}{path}"))
            .header("authorization", format!("Bearer {}", self.token))
            .header("content-type", "application/json")
            .body(body.map_or_else(Body::empty, |b| Body::from(b.to_string())))
            .ok()?;
        self.requests += 1;
        let res = router.clone().oneshot(req).await.ok()?;
        let ok = res.status().is_success();
        let status = res.status();
        let bytes = res.into_body().collect().await.ok()?.to_bytes();
        if !ok {
            self.failures += 1;
            if self.failures <= 5 {
                eprintln!("{method} {path}: {status} {}", String::from_utf8_lossy(&bytes));
            }
            return None;
        }
        serde_json::from_slice(&bytes).ok()
    }

    /// One request of the merchant that is not sampled: it spends its token all the same.
    async fn unsampled(&mut self) {
        let (_, limiter) = &self.instances[self.next_instance % self.instances.len()];
        self.next_instance = self.next_instance.wrapping_add(1);
        limiter.check(AID, self.clock.epoch_ms()).await;
    }

    async fn act(&mut self, a: Action) {
        let base = "/shopping/draft_orders";
        match a {
            Action::Create => {
                self.customers += 1;
                let body = json!({"order": {"currency": "NOK",
                    "customer": {"id": format!("cust-{}", self.customers), "email": "kari@example.com", "first_name": "Kari"},
                    "shipping_address": {"address_line": "Storgata 1", "postal_code": "0155", "postal_place": "Oslo", "country": "NO"},
                    "items": [item(1)]}});
                if let Some(d) = self.call("POST", base, Some(body)).await {
                    if let Some(id) = d["id"].as_str() {
                        self.drafts.push_back((id.to_owned(), 1, self.now_s));
                    }
                }
            }
            Action::CartChange => {
                // A shopper changes their cart at most once a second: a draft changed this
                // second already is not picked again; when none is free, a new cart starts.
                let free = (0..8)
                    .map(|_| self.dice.below(self.drafts.len()))
                    .find(|&k| self.drafts.get(k).is_some_and(|d| d.2 < self.now_s));
                let Some(k) = free else { return Box::pin(self.act(Action::Create)).await };
                self.drafts[k].2 = self.now_s;
                let (id, lines, _) = self.drafts[k].clone();
                // Two in three add a line (up to 10), one changes the first line's quantity.
                if lines < 10 && self.dice.below(3) < 2 {
                    self.drafts[k].1 += 1;
                    self.call("POST", &format!("{base}/{id}/items"), Some(item(lines + 1))).await;
                } else {
                    // A quantity changed: the net amount moves, as every cart change does.
                    let mut line = item(1);
                    let quantity = 2 + self.dice.below(5);
                    line["quantity"] = json!(quantity);
                    // `gross_amount` is the line's total.
                    line["gross_amount"] = json!(19900 * quantity);
                    self.call("PUT", &format!("{base}/{id}/items/1"), Some(line)).await;
                }
            }
            Action::Complete => {
                let Some((id, _, _)) = self.drafts.pop_front() else { return };
                if let Some(done) = self.call("PUT", &format!("{base}/{id}/complete"), None).await {
                    if let Some(oid) = done["orders"][0]["id"].as_str() {
                        self.to_capture.push_back(oid.to_owned());
                    }
                }
            }
            Action::Capture => {
                let Some(oid) = self.to_capture.pop_front() else { return };
                let body = json!({"items": [{"line_id": 1, "amount": 19900}], "processed_at": "2026-11-27T12:00:00Z",
                    "processed_by": "dintero-checkout", "payment_details": {"psp": "Bambora", "payment_product_type": "bambora.creditcard",
                    "card": {"masked_pan": "4444 **** **** 4448", "brand": "Visa"}}});
                if self.call("POST", &format!("/shopping/orders/{oid}/captures"), Some(body)).await.is_some() {
                    self.to_close.push_back(oid);
                }
            }
            Action::Close => {
                let Some(oid) = self.to_close.pop_front() else { return };
                self.call("POST", &format!("/shopping/orders/{oid}/close"), None).await;
            }
            Action::ListOrders | Action::ListDrafts => {
                let path = if matches!(a, Action::ListOrders) {
                    "/shopping/orders?limit=10"
                } else {
                    "/shopping/draft_orders?limit=10"
                };
                self.meter.unscaled.store(true, Ordering::Relaxed);
                self.call("GET", path, None).await;
                self.meter.unscaled.store(false, Ordering::Relaxed);
            }
        }
    }

    /// The stream publisher and the AWS deliverer, as they follow the second's writes: history
    /// items, then per event the subscriptions read, and per delivery the guard read, claimed
    /// and ended, the subscription read and the attempt recorded (the receiver answers 200 at
    /// once; no HTTP is made).
    async fn follow(&mut self) -> Result<(), StoreError> {
        use functions::workers::{deliverer, publisher};
        // The deliverer's own instance: its store shards as the API's does, and it reads an
        // account's subscriptions once per batch of ten queue messages (as its SQS handler).
        let state = self.deliverer.clone();
        let store: &dyn Store = state.store.as_ref();
        let mut recent = functions::app::subscriptions::Recent::default();
        let mut in_batch = 0;
        loop {
            let entries = self.inner.outbox_read(1000).await?;
            let Some(last) = entries.last().map(|e| e.seq) else { return Ok(()) };
            for e in &entries {
                if e.removed || e.item.events.is_none() {
                    continue;
                }
                publisher::record_history(store, &e.item).await?;
                let events = publisher::webhook_events(store, &e.item).await?;
                let now_ms = self.clock.epoch_ms();
                let epoch = self.clock.epoch();
                for ev in &events {
                    if in_batch == 10 {
                        recent = functions::app::subscriptions::Recent::default();
                        in_batch = 0;
                    }
                    in_batch += 1;
                    // One bus message per event: the deliverer fans it out into jobs.
                    for p in deliverer::fan_out_recent(&state, &recent, std::slice::from_ref(ev), now_ms).await? {
                        let guard_id = p.guard_id();
                        let read = store.get(&domain::hooks::guard_key(&p.aid, &guard_id)).await?;
                        let domain::hooks::Verdict::Claim(claim) =
                            domain::hooks::verdict(&p.aid, &guard_id, read.as_ref(), epoch)
                        else {
                            continue;
                        };
                        let Some((sub, _)) = deliverer::receiving_recent(&state, &recent, &p).await.ok().flatten()
                        else {
                            continue;
                        };
                        store.write(vec![claim.take(epoch)]).await?;
                        let headers = deliverer::headers(&p, sub.secret.as_deref());
                        let d = domain::hooks::Delivery {
                            id: deliverer::delivery_id(now_ms),
                            hook_id: p.hook_id.clone(),
                            event_id: p.event_id.clone(),
                            event: p.event.clone(),
                            event_delivery: p.event_delivery.clone(),
                            attempt: 1,
                            created_at: domain::ids::timestamp(self.clock.now()),
                            request: domain::hooks::DeliveryRequest {
                                url: sub.sub.config.url.clone(),
                                headers: headers.into_iter().collect(),
                                body: p.body.clone(),
                            },
                            response: Some(domain::hooks::DeliveryResponse {
                                status: 200,
                                headers: Default::default(),
                                body: String::new(),
                            }),
                            duration_ms: 40,
                            outcome: domain::hooks::Outcome::Delivered,
                            reason: None,
                        };
                        store.write(vec![claim.end(true, epoch)]).await?;
                        store
                            .write(vec![WriteOp::Put { item: deliverer::delivery_item(&p.aid, &d, epoch), cond: None }])
                            .await?;
                    }
                }
            }
            self.inner.outbox_ack(last).await?;
        }
    }
}

fn arg(name: &str) -> Option<String> {
    let mut it = std::env::args().skip(1);
    while let Some(a) = it.next() {
        if a == name {
            return it.next();
        }
    }
    None
}

#[tokio::main(flavor = "current_thread")]
async fn main() {
    let name = arg("--shape").unwrap_or_else(|| "small".into());
    let sample = arg("--sample").and_then(|s| s.parse().ok()).filter(|&n: &u64| n >= 1);
    let Some(shape) = Shape::named(&name, sample) else {
        eprintln!("unknown shape {name} (small, black-friday, ramp)");
        std::process::exit(2);
    };
    let started = Instant::now();
    let peak_rps = shape.carts + shape.completions + shape.order_changes + shape.lists;
    let shm = std::path::Path::new("/dev/shm");
    let dir = if shm.is_dir() { tempfile::tempdir_in(shm) } else { tempfile::tempdir() };
    let Ok(dir) = dir else {
        eprintln!("no temporary directory");
        std::process::exit(2);
    };
    let clock = Arc::new(ManualClock::at(T0));
    let inner = match infra::sqlite::SqliteStore::open(&dir.path().join("s.db"), clock.clone()) {
        Ok(s) => Arc::new(s),
        Err(e) => {
            eprintln!("store: {e}");
            std::process::exit(2);
        }
    };
    let meter = Arc::new(Meter::new(shape.sample as f64));
    let store = Arc::new(Metered { inner: inner.clone(), meter: meter.clone() });
    if shape.limit != domain::ratelimit::Limit::DEFAULT {
        // The operator's override for the big merchant (`tenant limit`), before the clock runs.
        if let Err(e) = functions::edge::limit::write_policy(inner.as_ref(), AID, shape.limit).await {
            eprintln!("limit: {e}");
            std::process::exit(2);
        }
    }
    // Function instances, each leasing its own tokens of the merchant's limit. Lambda would
    // run ~260 at this peak (one request each at a time, ~20 ms a request); the shapes run 16
    // by default, and `--instances 261` prices the limiter's bucket at Lambda's count
    // (BENCHMARKS.md, "Hot keys": leases sized by each instance's demand keep it under the
    // partition's limit there).
    let instances: usize =
        arg("--instances").and_then(|s| s.parse().ok()).unwrap_or(if peak_rps > 1000.0 { 16 } else { 1 });
    let instances = (0..instances.max(1))
        .map(|_| {
            let limiter =
                Limiter::new(store.clone(), clock.clone(), domain::ratelimit::Limit::DEFAULT).timed_by_clock();
            let state = AppState::local(store.clone(), clock.clone(), Auth::hs256(SECRET)).with_limiter(limiter);
            let limiter = state.limiter.clone();
            (functions::app(state), limiter)
        })
        .collect();
    let claims = Claims {
        aid: AID.into(),
        scope: "admin:shopping admin:hooks".into(),
        sub: "hot-keys".into(),
        exp: T0 + 100_000,
    };
    let Ok(token) = sign(&claims, SECRET) else { std::process::exit(2) };
    let deliverer = AppState::local(store.clone(), clock.clone(), Auth::hs256(SECRET));
    let mut sim = Sim {
        deliverer,
        shape,
        clock: clock.clone(),
        inner,
        meter: meter.clone(),
        instances,
        next_instance: 0,
        token,
        dice: Dice(39),
        drafts: VecDeque::new(),
        now_s: 0,
        to_capture: VecDeque::new(),
        to_close: VecDeque::new(),
        customers: 0,
        requests: 0,
        failures: 0,
    };
    if sim.shape.webhook {
        let body = json!({"events": ["shopping_draft_complete", "shopping_order_update"],
            "config": {"url": "https://hooks.example.com/in", "secret": "s3cret"}});
        if sim.call("POST", "/hooks/subscriptions", Some(body)).await.is_none() {
            eprintln!("the webhook subscription could not be made");
            std::process::exit(2);
        }
        // Its ping is the local queue's; the simulation follows the AWS deliverer.
        if let Err(e) = sim.follow().await {
            eprintln!("publisher: {e}");
        }
    }
    meter.second.lock().unwrap_or_else(std::sync::PoisonError::into_inner).clear();

    let n = sim.shape.sample as f64;
    let (mut carts, mut completions, mut changes, mut lists) =
        (Carry::default(), Carry::default(), Carry::default(), Carry::default());
    let mut unsampled = Carry::default();
    let seconds = sim.shape.ramp + sim.shape.hold;
    for s in 0..seconds {
        let level = sim.shape.level(s);
        sim.now_s = s;
        let c = completions.take(sim.shape.completions * level / n);
        let cart = carts.take(sim.shape.carts * level / n);
        let oc = changes.take(sim.shape.order_changes * level / n);
        let l = lists.take(sim.shape.lists * level);
        let mut actions: Vec<Action> = Vec::with_capacity(c + cart + oc + l);
        // A new draft for each completion (a cart's first change), the rest add or change items.
        actions.extend((0..c.min(cart)).map(|_| Action::Create));
        actions.extend((0..cart.saturating_sub(c)).map(|_| Action::CartChange));
        actions.extend((0..c).map(|_| Action::Complete));
        actions.extend((0..oc).map(|k| if k % 2 == 0 { Action::Capture } else { Action::Close }));
        actions.extend((0..l).map(|k| if k % 5 == 4 { Action::ListDrafts } else { Action::ListOrders }));
        // Spread over the second in a shuffled order.
        for k in (1..actions.len()).rev() {
            let j = sim.dice.below(k + 1);
            actions.swap(k, j);
        }
        let merchant = (sim.shape.carts + sim.shape.completions + sim.shape.order_changes) * level;
        let others = unsampled.take(merchant * (1.0 - 1.0 / n));
        let total = actions.len() + others;
        let mut sampled_done = 0usize;
        for k in 0..total {
            let ms = (T0 + s) * 1000 + i64::try_from(k * 1000 / total.max(1)).unwrap_or(0);
            clock.set_ms(ms);
            // Bresenham: the sampled actions evenly among all the merchant's requests.
            let due = (k + 1) * actions.len() / total.max(1);
            if due > sampled_done {
                let a = actions[sampled_done].clone();
                sampled_done += 1;
                sim.act(a).await;
            } else {
                sim.unsampled().await;
            }
        }
        clock.set_ms((T0 + s) * 1000 + 999);
        if let Err(e) = sim.follow().await {
            eprintln!("publisher: {e}");
        }
        meter.close_second(s);
    }

    let shape = &sim.shape;
    println!(
        "shape {}: {} simulated seconds ({} at the peak), 1 in {} drafts sampled (shared keys ×{}), {} API requests \
         run ({} failed), {} function instances, {:.0} s wall",
        shape.name,
        seconds,
        shape.hold,
        shape.sample,
        shape.sample,
        sim.requests,
        sim.failures,
        sim.instances.len(),
        started.elapsed().as_secs_f64()
    );
    let peak = meter.peak.lock().unwrap_or_else(std::sync::PoisonError::into_inner).clone();
    let mut keys: Vec<_> = peak.into_iter().collect();
    keys.sort_by(|a, b| {
        let heat = |p: &Peak| (p.units.wcu / MAX_WCU).max(p.units.rcu / MAX_RCU);
        heat(&b.1).total_cmp(&heat(&a.1)).then_with(|| a.0.cmp(&b.0))
    });
    println!("| space | partition key | busiest second WCU (at second) | busiest second RCU (at second) | over |");
    println!("|---|---|---|---|---|");
    for ((space, pk), p) in keys.iter().take(12) {
        let u = p.units;
        let over = if u.wcu > MAX_WCU || u.rcu > MAX_RCU { "**yes**" } else { "no" };
        println!("| {} | `{pk}` | {:.0} ({}) | {:.1} ({}) | {over} |", space.name(), u.wcu, p.wcu_at, u.rcu, p.rcu_at);
    }
    let max = *meter.max.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
    let over = max.iter().any(|m| m.wcu > MAX_WCU || m.rcu > MAX_RCU);
    println!(
        "busiest table key {:.0} WCU/s {:.0} RCU/s, busiest index key {:.0} WCU/s {:.0} RCU/s",
        max[0].wcu, max[0].rcu, max[1].wcu, max[1].rcu
    );
    if over || sim.failures > 0 {
        std::process::exit(1);
    }
}
