//! Pauses between attempts of a write that lost a race: exponential with jitter, so writers
//! that collided once do not collide again in lockstep, and bounded, so a request that keeps
//! losing answers 409 instead of hanging: by a number of attempts and, on Lambda, by the
//! invocation's deadline — a write still retrying when the function times out would reach the
//! client as the gateway's bare 502, leaving it unsure whether the write happened.

use backon::{BackoffBuilder, ExponentialBuilder};
use std::time::{Duration, Instant};

/// Attempts in all (the first plus the retries).
pub const MAX_ATTEMPTS: usize = 24;

/// How long before the invocation's deadline the last retry must have ended: time for the
/// attempt's own store calls, the answer and the gateway.
pub const DEADLINE_MARGIN: Duration = Duration::from_secs(2);

tokio::task_local! {
    /// When the invocation serving this request times out (Lambda only).
    static DEADLINE: Instant;
}

/// Runs `f` knowing when the invocation times out, so that retries stop in time.
pub async fn within_deadline<F: std::future::Future>(deadline: Option<Instant>, f: F) -> F::Output {
    match deadline {
        Some(d) => DEADLINE.scope(d, f).await,
        None => f.await,
    }
}

/// The pauses before each retry: from 2 ms doubling up to 200 ms, each jittered.
pub struct Backoff {
    pauses: backon::ExponentialBackoff,
    /// No retry may end later than this (the invocation's deadline less the margin).
    until: Option<Instant>,
}

impl Backoff {
    /// Retries bounded by [`MAX_ATTEMPTS`] and, on Lambda, by the invocation's deadline.
    pub fn new() -> Self {
        Self::until(DEADLINE.try_with(|d| d.checked_sub(DEADLINE_MARGIN).unwrap_or(*d)).ok())
    }

    /// Retries none of which starts after `until`.
    pub fn until(until: Option<Instant>) -> Self {
        let pauses = ExponentialBuilder::new()
            .with_jitter()
            .with_min_delay(Duration::from_millis(2))
            .with_max_delay(Duration::from_millis(200))
            .with_max_times(MAX_ATTEMPTS.saturating_sub(1))
            .build();
        Self { pauses, until }
    }

    /// Waits before the next attempt; `false` when no attempt is left, in number or in time.
    pub async fn pause(&mut self) -> bool {
        match self.pauses.next() {
            Some(d) if self.until.is_none_or(|until| Instant::now() + d <= until) => {
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
    async fn retries_stop_before_the_deadline() {
        let mut due = Backoff::until(Some(Instant::now()));
        assert!(!due.pause().await, "no retry past the deadline");
        let mut soon = Backoff::until(Some(Instant::now() + Duration::from_millis(40)));
        let mut retries = 0;
        while soon.pause().await {
            retries += 1;
        }
        assert!((1..MAX_ATTEMPTS - 1).contains(&retries), "{retries} retries within 40 ms");
        let deadline = Instant::now() + DEADLINE_MARGIN;
        let inside = within_deadline(Some(deadline), async { Backoff::new().until }).await;
        assert_eq!(inside, Some(deadline - DEADLINE_MARGIN), "the invocation's deadline less the margin");
        assert_eq!(Backoff::new().until, None, "no deadline off Lambda: attempts alone bound it");
    }
}
