//! Pauses between attempts of a write that lost a race: exponential with jitter, so writers
//! that collided once do not collide again in lockstep, and bounded in attempts and in time,
//! so a request that keeps losing answers 409 instead of hanging — and well before the
//! function's timeout (10 s in the template), which would answer the client a bare 502 from the
//! gateway instead.

use backon::{BackoffBuilder, ExponentialBuilder};
use std::time::Duration;

/// Attempts in all (the first plus the retries).
pub const MAX_ATTEMPTS: usize = 24;

/// No retry starts this long after the first attempt did: a slow store (every attempt a
/// few hundred milliseconds under contention) would otherwise carry the request past the
/// function's 10 s timeout.
pub const TIME_BUDGET: Duration = Duration::from_secs(4);

/// The pauses before each retry: from 2 ms doubling up to 200 ms, each jittered.
pub struct Backoff {
    pauses: backon::ExponentialBackoff,
    started: std::time::Instant,
    budget: Duration,
}

impl Backoff {
    pub fn new() -> Self {
        Self::within(TIME_BUDGET)
    }

    /// A backoff whose retries all start within `budget` of now.
    pub fn within(budget: Duration) -> Self {
        let pauses = ExponentialBuilder::new()
            .with_jitter()
            .with_min_delay(Duration::from_millis(2))
            .with_max_delay(Duration::from_millis(200))
            .with_max_times(MAX_ATTEMPTS.saturating_sub(1))
            .build();
        Self { pauses, started: std::time::Instant::now(), budget }
    }

    /// Waits before the next attempt; `false` when no attempt is left, in number or in time.
    pub async fn pause(&mut self) -> bool {
        match self.pauses.next() {
            Some(d) if self.started.elapsed() + d <= self.budget => {
                tokio::time::sleep(d).await;
                true
            }
            _ => false,
        }
    }
}

impl Default for Backoff {
    fn default() -> Self {
        Self::new()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn retries_stop_when_the_time_budget_is_spent() {
        let mut spent = Backoff::within(Duration::ZERO);
        assert!(!spent.pause().await, "no retry once the budget is spent");
        let mut short = Backoff::within(Duration::from_millis(40));
        let mut retries = 0;
        while short.pause().await {
            retries += 1;
        }
        assert!((1..MAX_ATTEMPTS - 1).contains(&retries), "{retries} retries within 40 ms");
    }
}
