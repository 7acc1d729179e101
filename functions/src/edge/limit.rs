//! Per-account request limits at the edge: every instance of every API function spends
//! tokens leased in blocks from the account's bucket in the table (see [`domain::ratelimit`]
//! and `domain/DECISIONS.md`, "Per-account limits"), so the limit holds across instances with
//! one conditional write per block. A request over the limit is answered 429 with
//! `Retry-After` before any handler runs: it changes nothing and is metered as throttled.
//! Every answer under `/v1/accounts/{aid}/` carries the IETF RateLimit header fields
//! (draft-ietf-httpapi-ratelimit-headers-10):
//! `RateLimit-Policy: "default";q=100;w=10` and `RateLimit: "default";r=50;t=30`.

use super::error::ApiError;
use super::state::AppState;
use axum::extract::Request;
use axum::http::HeaderValue;
use axum::response::{IntoResponse, Response};
use domain::ratelimit::{ratelimit_header, retry_after_seconds, Bucket, Lease, Limit, Policy};
use domain::table::{bucket_key, limit_pk, limit_policy_key, limit_register_key, Condition, Item, WriteOp};
use infra::{Clock, Store, StoreError};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};

/// How long leased tokens stay usable when the bucket runs low: an override reaches an
/// instance at its next lease, and tokens an instance leased but did not spend are lost
/// after it (never over-admitted).
pub const LEASE_MS: i64 = 2000;

/// How many times longer a lease lasts when the bucket was at least half full: a tenant
/// well under its limit loses nothing by the tokens an instance holds, and an instance asked
/// once a second still spends its block of ten before the lease ends (one write per ten
/// requests). An override reaches every instance within `LEASE_MS` × this.
pub const PLENTIFUL_LEASES: i64 = 5;

/// How many times a lease is retried when another instance wrote the bucket first.
const LEASE_ATTEMPTS: usize = 4;

/// A response extension: this answer is a refusal of the limiter (metered as throttled).
#[derive(Debug, Clone, Copy)]
pub struct Throttled;

/// What one instance holds of an account's bucket.
#[derive(Debug, Clone, Copy)]
struct Held {
    limit: Limit,
    /// Leased tokens not yet spent, usable until `until_ms`.
    tokens: u32,
    until_ms: i64,
    /// The shared bucket as last seen (for `RateLimit`'s `r` and `t`).
    shared: Bucket,
    /// Refused without asking the table until then.
    empty_until_ms: i64,
    /// Requests this instance saw since its last lease attempt, from `since_ms`: its demand,
    /// which sizes its next lease when the bucket runs low ([`Bucket::lease`]).
    seen: u32,
    since_ms: i64,
}

/// How long a lease should last when the bucket runs low: half a lease, so an instance
/// spends what it takes before the lease ends.
const LEASE_TARGET_MS: i64 = LEASE_MS / 2;

impl Held {
    /// The tokens this instance would spend in [`LEASE_TARGET_MS`] at the rate it has been
    /// asked (a gap shorter than 100 ms counts as 100 ms, so one quick pair of requests does
    /// not read as a flood).
    fn demand(&self, now_ms: i64) -> u32 {
        let elapsed = (now_ms - self.since_ms).max(100);
        u32::try_from((i64::from(self.seen) * LEASE_TARGET_MS + elapsed - 1) / elapsed).unwrap_or(u32::MAX)
    }
}

/// The limiter's verdict on one request.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Decision {
    pub allowed: bool,
    pub limit: Limit,
    /// Tokens left (this instance's plus the shared bucket's, as last seen).
    pub remaining: u64,
    /// Seconds until the quota is restored (a refusal: until a retry can succeed).
    pub reset_seconds: u64,
}

pub struct Limiter {
    /// The table, unmetered: the limiter's reads and writes are the platform's, not a tenant's.
    store: Arc<dyn Store>,
    /// The stack's default (`TenantRateLimit`, `TenantBurstLimit`).
    pub default: Limit,
    pub lease_ms: i64,
    /// For the bucket item's `ttl` (the store's notion of expiry).
    clock: Arc<dyn Clock>,
    /// Requests are timed by `clock` instead of the wall (a capacity simulation's simulated
    /// time; hosts and tests time them by the wall).
    timed_by_clock: bool,
    /// Where the account's list shard count goes each time its override is read (the sharded
    /// store reads it there, so API requests pay no read of their own for it).
    shards: Arc<infra::sharded::ShardCounts>,
    held: Mutex<HashMap<String, Arc<tokio::sync::Mutex<Option<Held>>>>>,
}

impl Limiter {
    pub fn new(store: Arc<dyn Store>, clock: Arc<dyn Clock>, default: Limit) -> Self {
        Self {
            store,
            default,
            lease_ms: LEASE_MS,
            clock,
            timed_by_clock: false,
            shards: Arc::default(),
            held: Mutex::default(),
        }
    }

    /// Times requests by the injected clock instead of the wall (`hot_keys`' simulated time).
    pub fn timed_by_clock(self) -> Self {
        Self { timed_by_clock: true, ..self }
    }

    /// Tells `shards` each account's list shard count whenever a lease reads its override.
    pub fn with_shards(self, shards: Arc<infra::sharded::ShardCounts>) -> Self {
        Self { shards, ..self }
    }

    /// Now in epoch milliseconds, as this limiter times requests.
    pub fn now_ms(&self) -> i64 {
        if self.timed_by_clock {
            self.clock.epoch_ms()
        } else {
            now_ms()
        }
    }

    /// The default from `TENANT_RATE_LIMIT` and `TENANT_BURST_LIMIT` ([`Limit::DEFAULT`]
    /// where unset or unreadable; a burst unset is two seconds of the rate).
    pub fn default_from_env() -> Limit {
        let read = |k: &str| std::env::var(k).ok().and_then(|v| v.trim().parse::<u32>().ok());
        let rate = read("TENANT_RATE_LIMIT").unwrap_or(Limit::DEFAULT.rate);
        let burst = read("TENANT_BURST_LIMIT").unwrap_or(rate.saturating_mul(2));
        Limit::new(rate, burst)
    }

    fn slot(&self, aid: &str) -> Arc<tokio::sync::Mutex<Option<Held>>> {
        let mut m = self.held.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        m.entry(aid.to_owned()).or_default().clone()
    }

    /// Spends one token of `aid` at `now_ms`, leasing a block from the table when this
    /// instance holds none. A table that cannot be reached lets the request through (the
    /// limiter never makes an outage of its own; the fault is logged).
    pub async fn check(&self, aid: &str, now_ms: i64) -> Decision {
        let slot = self.slot(aid);
        let mut held = slot.lock().await;
        if let Some(h) = held.as_mut() {
            h.seen = h.seen.saturating_add(1);
        }
        if let Some(h) = held.as_mut().filter(|h| now_ms < h.until_ms) {
            if h.tokens > 0 {
                h.tokens -= 1;
                return decision(h, true, now_ms);
            }
            if now_ms < h.empty_until_ms {
                return decision(h, false, now_ms);
            }
        }
        let demand = held.as_ref().map_or(1, |h| h.demand(now_ms));
        let asked = held.as_ref().map(|h| (h.seen, h.since_ms));
        match self.lease(aid, now_ms, demand).await {
            Ok(mut h) => {
                let allowed = h.tokens > 0;
                if let (false, Some((seen, since_ms))) = (allowed, asked) {
                    // Refused: the demand keeps counting from the last lease.
                    (h.seen, h.since_ms) = (seen, since_ms);
                }
                h.tokens = h.tokens.saturating_sub(1);
                let d = decision(&h, allowed, now_ms);
                *held = Some(h);
                d
            }
            // Every attempt lost to another instance's lease: the account's tokens are going
            // as fast as instances can take them, so this request waits its turn.
            Err(StoreError::Contention | StoreError::ConditionFailed { .. }) => {
                let limit = held.as_ref().map_or(self.default, |h| h.limit);
                Decision { allowed: false, limit, remaining: 0, reset_seconds: 1 }
            }
            Err(e) => {
                tracing::warn!(error = %e, "rate limit lease failed; request let through");
                let limit = held.as_ref().map_or(self.default, |h| h.limit);
                Decision { allowed: true, limit, remaining: u64::from(limit.burst), reset_seconds: 0 }
            }
        }
    }

    /// The headers' view of `aid` without spending (requests not authorized for it).
    pub async fn peek(&self, aid: &str, now_ms: i64) -> Decision {
        let slot = self.slot(aid);
        let held = slot.lock().await;
        match held.as_ref() {
            Some(h) => decision(h, true, now_ms),
            None => Decision {
                allowed: true,
                limit: self.default,
                remaining: u64::from(self.default.burst),
                reset_seconds: 0,
            },
        }
    }

    /// The account's limit: its override, or the default.
    pub async fn limit_of(&self, aid: &str) -> Result<Limit, StoreError> {
        Ok(read_policy(self.store.as_ref(), aid).await?.unwrap_or(self.default))
    }

    /// One lease: read the bucket and the override, take a block, write the bucket back on
    /// the condition that nobody else did meanwhile.
    async fn lease(&self, aid: &str, now_ms: i64, demand: u32) -> Result<Held, StoreError> {
        let mut last = None;
        for _ in 0..LEASE_ATTEMPTS {
            // One query reads the bucket and the override (every API function may query).
            let items = self.store.query(&infra::Query::partition(limit_pk(aid))).await?.items;
            let find = |sk: &str| items.iter().find(|i| i.sk == sk);
            let limit = match find("POLICY") {
                Some(i) => parse_limit(i)?,
                None => self.default,
            };
            let shards =
                find("POLICY").and_then(|i| serde_json::from_str::<Policy>(&i.doc).ok()).map_or(1, |p| p.shards());
            self.shards.record(aid, shards, self.clock.epoch_ms());
            let (bucket, version) = match find("BUCKET") {
                Some(i) => (
                    serde_json::from_str::<Bucket>(&i.doc).map_err(|e| StoreError::Corrupt(e.into()))?,
                    Some(i.version),
                ),
                None => (Bucket::full(limit, now_ms), None),
            };
            let plentiful = bucket.at(limit, now_ms).plentiful(limit);
            let (tokens, after, empty_until_ms) = match bucket.lease(limit, now_ms, demand) {
                Lease::Granted { tokens, after } => (tokens, after, now_ms),
                Lease::Empty { wait_ms, .. } => {
                    // Nothing taken, nothing written; asked again once a token is there.
                    let shared = bucket.at(limit, now_ms);
                    return Ok(Held {
                        limit,
                        tokens: 0,
                        until_ms: now_ms + wait_ms,
                        shared,
                        empty_until_ms: now_ms + wait_ms,
                        seen: 0,
                        since_ms: now_ms,
                    });
                }
            };
            let mut item = Item::new(
                bucket_key(aid),
                version.unwrap_or(0) + 1,
                serde_json::to_string(&after).map_err(|e| StoreError::Invalid(e.to_string()))?,
            );
            // Idle for an hour, the bucket is full again: its item goes and costs nothing.
            item.ttl = Some(self.clock.epoch() + 3600 + i64::try_from(limit.window_seconds()).unwrap_or(0));
            let cond = Some(version.map_or(Condition::NotExists, Condition::VersionIs));
            match self.store.write(vec![WriteOp::Put { item, cond }]).await {
                Ok(()) => {
                    return Ok(Held {
                        limit,
                        tokens,
                        until_ms: now_ms + if plentiful { self.lease_ms * PLENTIFUL_LEASES } else { self.lease_ms },
                        shared: after,
                        empty_until_ms,
                        seen: 0,
                        since_ms: now_ms,
                    });
                }
                Err(e @ (StoreError::ConditionFailed { .. } | StoreError::Contention)) => last = Some(e),
                Err(e) => return Err(e),
            }
        }
        Err(last.unwrap_or(StoreError::Contention))
    }
}

fn parse_limit(i: &Item) -> Result<Limit, StoreError> {
    serde_json::from_str::<Limit>(&i.doc)
        .map(|l| Limit::new(l.rate, l.burst))
        .map_err(|e| StoreError::Corrupt(e.into()))
}

/// The operator's override of `aid`'s limit, if any.
pub async fn read_policy(store: &dyn Store, aid: &str) -> Result<Option<Limit>, StoreError> {
    store.get(&limit_policy_key(aid)).await?.as_ref().map(parse_limit).transpose()
}

/// Sets (or replaces) `aid`'s override; running instances take it at their next lease. The
/// operator's register of overrides (`AUTH#LIMITS`, which `tenant show` lists) is written in
/// the same transaction.
///
/// The override also sets how many shards the account's list partitions are spread over
/// (`domain::ratelimit::Policy`): what its rate needs, never fewer than before.
pub async fn write_policy(store: &dyn Store, aid: &str, limit: Limit) -> Result<(), StoreError> {
    let before = store.get(&limit_policy_key(aid)).await?;
    let stored = before.as_ref().and_then(|i| serde_json::from_str::<Policy>(&i.doc).ok());
    let doc =
        serde_json::to_string(&Policy::new(limit, stored.as_ref())).map_err(|e| StoreError::Invalid(e.to_string()))?;
    let put = |key: domain::table::Key, version: u64| WriteOp::Put {
        item: Item::new(key, version + 1, doc.clone()),
        cond: Some(if version == 0 { Condition::NotExists } else { Condition::VersionIs(version) }),
    };
    let version_of = |i: Option<Item>| i.map_or(0, |i| i.version);
    let policy = version_of(before);
    let listed = version_of(store.get(&limit_register_key(aid)).await?);
    store.write(vec![put(limit_policy_key(aid), policy), put(limit_register_key(aid), listed)]).await
}

/// Every account's override, from the operator's register.
pub async fn list_policies(store: &dyn Store) -> Result<Vec<(String, Limit)>, StoreError> {
    let items = infra::query_all(store, infra::Query::partition(domain::table::LIMIT_REGISTER_PK)).await?;
    items.iter().map(|i| Ok((i.sk.clone(), parse_limit(i)?))).collect()
}

fn decision(h: &Held, allowed: bool, now_ms: i64) -> Decision {
    let shared = h.shared.at(h.limit, now_ms);
    if allowed {
        let remaining = (u64::from(h.tokens) + shared.tokens.max(0.0) as u64).min(u64::from(h.limit.burst));
        Decision { allowed, limit: h.limit, remaining, reset_seconds: shared.full_in_seconds(h.limit, now_ms) }
    } else {
        let wait = (h.empty_until_ms - now_ms).max(1);
        Decision { allowed, limit: h.limit, remaining: 0, reset_seconds: retry_after_seconds(wait) }
    }
}

/// The account named by a path under `/v1/accounts/{aid}/`.
fn account_in(path: &str) -> Option<&str> {
    let aid = path.strip_prefix("/v1/accounts/")?.split('/').next()?;
    domain::validate::is_account_id(aid).then_some(aid)
}

fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}

/// The limiter's part of the edge (inside the metering, which has verified the caller; see
/// [`super::http::edge`]): a request authorized for the account in its path spends a token or
/// is refused; any other request under `/v1/accounts/{aid}/` only reads the headers' view.
pub async fn limited<F, Fut>(state: &AppState, req: Request, inner: F) -> Response
where
    F: FnOnce(Request) -> Fut,
    Fut: std::future::Future<Output = Response>,
{
    let Some(aid) = account_in(req.uri().path()).map(str::to_owned) else { return inner(req).await };
    let authorized = req.extensions().get::<super::auth::Verified>().is_some_and(|v| v.0.aid == aid);
    let now = state.limiter.now_ms();
    let d = if authorized { state.limiter.check(&aid, now).await } else { state.limiter.peek(&aid, now).await };
    let mut res = if d.allowed {
        inner(req).await
    } else {
        let mut res = ApiError::RateLimited { retry_after: d.reset_seconds }.into_response();
        res.extensions_mut().insert(Throttled);
        res
    };
    let headers = res.headers_mut();
    for (name, value) in
        [("ratelimit-policy", d.limit.policy_header()), ("ratelimit", ratelimit_header(d.remaining, d.reset_seconds))]
    {
        if let Ok(v) = HeaderValue::from_str(&value) {
            headers.insert(name, v);
        }
    }
    res
}
