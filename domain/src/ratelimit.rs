//! Per-account request limits: a token bucket of `rate` tokens a second holding at most
//! `burst`, with time passed in (epoch milliseconds), so the arithmetic is tested without a
//! clock. The bucket is shared by every instance of every API function through one item in
//! the table; an instance leases tokens from it a block at a time ([`Bucket::lease`]) and
//! spends them locally, so the table sees one conditional write per block, not per request
//! (`domain/DECISIONS.md`, "Per-account limits").
//!
//! The limit is announced in the IETF RateLimit header fields, syntax of
//! draft-ietf-httpapi-ratelimit-headers-10 (the latest revision):
//! `RateLimit-Policy: "default";q=100;w=10` (a quota of `q` units per window of `w` seconds)
//! and `RateLimit: "default";r=50;t=30` (`r` units left, the quota restored in `t` seconds).
//! A bucket reads as `q` = its burst and `w` = the seconds its rate takes to refill the burst.

use serde::{Deserialize, Serialize};

/// A rate (tokens a second) and a burst (the most tokens held).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Limit {
    pub rate: u32,
    pub burst: u32,
}

impl Limit {
    /// Stripe's 100 operations a second, with two seconds of burst.
    pub const DEFAULT: Limit = Limit { rate: 100, burst: 200 };

    /// A rate and burst of at least one each.
    pub fn new(rate: u32, burst: u32) -> Self {
        Self { rate: rate.max(1), burst: burst.max(1) }
    }

    /// The tokens an instance leases at once: a tenth of a second's rate and at least 10
    /// (never more than the burst), so a steady tenant costs the table at most one write
    /// per 10 requests (0.1 write units a request).
    pub fn block(self) -> u32 {
        (self.rate / 10).clamp(1, self.burst).max(10.min(self.burst))
    }

    /// The policy's window: the seconds the rate takes to refill the burst, at least one.
    pub fn window_seconds(self) -> u64 {
        u64::from(self.burst).div_ceil(u64::from(self.rate)).max(1)
    }

    /// `RateLimit-Policy`: `"default";q={burst};w={window}`.
    pub fn policy_header(self) -> String {
        format!("\"default\";q={};w={}", self.burst, self.window_seconds())
    }

    /// Milliseconds the rate takes to add `tokens`.
    fn ms_for(self, tokens: f64) -> i64 {
        if tokens <= 0.0 {
            return 0;
        }
        (tokens * 1000.0 / f64::from(self.rate)).ceil() as i64
    }
}

/// What an account's stored override (`A#{aid}#LIMIT` / `POLICY`) says: its limit, and how
/// many shards its list partitions are spread over ([`crate::table::index_shards_for`] its
/// rate, or more if an earlier, higher limit set more: the count never shrinks, since entries
/// already written to a shard are found only while the shard is read).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Policy {
    #[serde(flatten)]
    pub limit: Limit,
    #[serde(default)]
    pub index_shards: u32,
}

impl Policy {
    /// The override `limit`, replacing `before` (the stored one, if any).
    pub fn new(limit: Limit, before: Option<&Policy>) -> Self {
        let shards = crate::table::index_shards_for(limit.rate).max(before.map_or(1, Policy::shards));
        Self { limit, index_shards: shards }
    }

    /// The list shards of an account with this override (an override stored before shards
    /// existed: as its rate needs).
    pub fn shards(&self) -> u32 {
        self.index_shards.max(crate::table::index_shards_for(self.limit.rate))
    }
}

/// The shared bucket as stored: its tokens at a moment.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Bucket {
    pub tokens: f64,
    pub at_ms: i64,
}

/// What a lease attempt found.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Lease {
    /// `tokens` taken; the bucket to store in their place.
    Granted { tokens: u32, after: Bucket },
    /// Too few tokens: try again in `wait_ms` (the bucket is unchanged; nothing is written).
    Empty { wait_ms: i64, tokens: f64 },
}

impl Bucket {
    /// A full bucket at `now_ms` (a tenant's first request, or one idle long enough that its
    /// item expired).
    pub fn full(limit: Limit, now_ms: i64) -> Self {
        Self { tokens: f64::from(limit.burst), at_ms: now_ms }
    }

    /// The bucket refilled up to `now_ms` (never beyond the burst; a clock behind the stored
    /// moment adds nothing).
    pub fn at(self, limit: Limit, now_ms: i64) -> Self {
        let elapsed = now_ms.saturating_sub(self.at_ms).max(0) as f64;
        let tokens = (self.tokens + elapsed * f64::from(limit.rate) / 1000.0).min(f64::from(limit.burst));
        Self { tokens, at_ms: now_ms.max(self.at_ms) }
    }

    /// Leases tokens at `now_ms` for an instance that spends about `demand` tokens in the
    /// time a lease should last. While the bucket is at least half full the tenant is well
    /// under its limit: the instance takes a whole block ([`Limit::block`]; what it does not
    /// spend before its lease ends is lost, which cannot starve anyone then). Below half, it
    /// takes its demand (at least one token, at most a block) or what there is of it, so
    /// tokens are neither stranded in instances that will not spend them in time (with many
    /// instances each asked a few times a second, as a flood spread over a stack is, whole
    /// blocks would leave most of the rate unspent) nor left in the bucket while instances
    /// wait for a whole demand. Less than one token: refused, nothing written, until one
    /// has been added.
    pub fn lease(self, limit: Limit, now_ms: i64, demand: u32) -> Lease {
        let now = self.at(limit, now_ms);
        let want = if now.plentiful(limit) { limit.block() } else { demand.clamp(1, limit.block()) };
        let take = want.min(now.tokens as u32);
        if take >= 1 {
            Lease::Granted { tokens: take, after: Bucket { tokens: now.tokens - f64::from(take), ..now } }
        } else {
            Lease::Empty { wait_ms: limit.ms_for(1.0 - now.tokens).max(1), tokens: now.tokens }
        }
    }

    /// At least half full: the tenant is well under its limit, and what an instance holds of
    /// it unspent starves nobody (whole blocks, long leases).
    pub fn plentiful(self, limit: Limit) -> bool {
        self.tokens >= f64::from(limit.burst) / 2.0
    }

    /// Seconds until the bucket is full again (the `t` of `RateLimit`).
    pub fn full_in_seconds(self, limit: Limit, now_ms: i64) -> u64 {
        let now = self.at(limit, now_ms);
        (limit.ms_for(f64::from(limit.burst) - now.tokens).max(0) as u64).div_ceil(1000)
    }
}

/// `RateLimit`: `"default";r={remaining};t={seconds}`.
pub fn ratelimit_header(remaining: u64, reset_seconds: u64) -> String {
    format!("\"default\";r={remaining};t={reset_seconds}")
}

/// Whole seconds to wait for `ms` (at least one): `Retry-After` and the `t` of a refusal.
pub fn retry_after_seconds(ms: i64) -> u64 {
    (ms.max(1) as u64).div_ceil(1000)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_policy_keeps_its_shards_when_its_limit_falls() {
        let big = Policy::new(Limit::new(20_000, 40_000), None);
        assert_eq!(big.shards(), 40);
        let lowered = Policy::new(Limit::DEFAULT, Some(&big));
        assert_eq!((lowered.limit, lowered.shards()), (Limit::DEFAULT, 40));
        // Stored before shards existed: `{"rate":..,"burst":..}` reads as its rate needs.
        let old: Policy = serde_json::from_str(r#"{"rate":1200,"burst":2400}"#).unwrap();
        assert_eq!((old.limit, old.shards()), (Limit::new(1200, 2400), 3));
        let stored: Limit = serde_json::from_str(&serde_json::to_string(&big).unwrap()).unwrap();
        assert_eq!(stored, big.limit, "readers of the limit alone still read it");
    }

    const L: Limit = Limit { rate: 50, burst: 100 };

    #[test]
    fn a_full_bucket_leases_blocks_until_it_is_empty_then_refills_at_the_rate() {
        let mut b = Bucket::full(L, 0);
        let mut granted = 0;
        while let Lease::Granted { tokens, after } = b.lease(L, 0, 10) {
            granted += tokens;
            b = after;
        }
        assert_eq!(granted, 100, "the burst, no more");
        let Lease::Empty { wait_ms, .. } = b.lease(L, 0, 10) else { panic!("empty") };
        assert_eq!(wait_ms, 20, "a token at 50/s");
        assert!(matches!(b.lease(L, 19, 10), Lease::Empty { .. }));
        assert!(matches!(b.lease(L, 20, 10), Lease::Granted { tokens: 1, .. }), "what there is");
        assert!(matches!(b.lease(L, 200, 10), Lease::Granted { tokens: 10, .. }));
    }

    #[test]
    fn over_a_long_run_the_granted_rate_is_the_rate() {
        let mut b = Bucket::full(L, 0);
        let mut granted = 0u64;
        for now in (0..60_000).step_by(7) {
            if let Lease::Granted { tokens, after } = b.lease(L, now, 10) {
                granted += u64::from(tokens);
                b = after;
            }
        }
        // the burst plus 60 s at 50/s
        assert!((3050..=3100).contains(&granted), "{granted}");
    }

    #[test]
    fn a_bucket_half_full_or_more_leases_whole_blocks_below_half_only_the_demand() {
        let full = Bucket::full(L, 0);
        assert!(matches!(full.lease(L, 0, 1), Lease::Granted { tokens: 10, .. }), "plenty: a whole block");
        let low = Bucket { tokens: 30.0, at_ms: 0 };
        assert!(matches!(low.lease(L, 0, 2), Lease::Granted { tokens: 2, .. }), "low: the demand");
        assert!(matches!(low.lease(L, 0, 0), Lease::Granted { tokens: 1, .. }), "at least one");
        assert!(matches!(low.lease(L, 0, 500), Lease::Granted { tokens: 10, .. }), "at most a block");
        let few = Bucket { tokens: 3.5, at_ms: 0 };
        assert!(matches!(few.lease(L, 0, 5), Lease::Granted { tokens: 3, .. }), "what there is of it");
        let nearly = Bucket { tokens: 0.5, at_ms: 0 };
        let Lease::Empty { wait_ms, .. } = nearly.lease(L, 0, 1) else { panic!("empty") };
        assert_eq!(wait_ms, 10, "half a token at 50/s");
    }

    #[test]
    fn the_bucket_never_holds_more_than_its_burst_and_a_clock_going_back_adds_nothing() {
        let b = Bucket { tokens: 3.0, at_ms: 10_000 };
        assert_eq!(b.at(L, 1_000_000).tokens, 100.0);
        assert_eq!(b.at(L, 5_000).tokens, 3.0);
        assert_eq!(b.full_in_seconds(L, 10_000), 2);
    }

    #[test]
    fn headers_follow_the_draft_syntax() {
        assert_eq!(Limit::DEFAULT.policy_header(), "\"default\";q=200;w=2");
        assert_eq!(ratelimit_header(50, 30), "\"default\";r=50;t=30");
        assert_eq!(retry_after_seconds(200), 1);
        assert_eq!(retry_after_seconds(1500), 2);
    }

    #[test]
    fn blocks_are_a_tenth_of_a_second_but_never_more_than_the_burst() {
        assert_eq!(Limit::new(100, 200).block(), 10);
        assert_eq!(Limit::new(1000, 2000).block(), 100);
        assert_eq!(Limit::new(5, 3).block(), 3);
        assert_eq!(Limit::new(0, 0), Limit { rate: 1, burst: 1 });
        assert_eq!(Limit::new(1, 1).block(), 1);
    }
}
