//! Pauses between attempts of a write that lost a race: exponential with jitter, so writers
//! that collided once do not collide again in lockstep, and bounded, so a request that keeps
//! losing answers 409 instead of hanging.

use backon::{BackoffBuilder, ExponentialBuilder};
use std::time::Duration;

/// Attempts in all (the first plus the retries).
pub const MAX_ATTEMPTS: usize = 24;

/// The pauses before each retry: from 2 ms doubling up to 200 ms, each jittered.
pub struct Backoff(backon::ExponentialBackoff);

impl Backoff {
    pub fn new() -> Self {
        Self(
            ExponentialBuilder::new()
                .with_jitter()
                .with_min_delay(Duration::from_millis(2))
                .with_max_delay(Duration::from_millis(200))
                .with_max_times(MAX_ATTEMPTS.saturating_sub(1))
                .build(),
        )
    }

    /// Waits before the next attempt; `false` when no attempt is left.
    pub async fn pause(&mut self) -> bool {
        match self.0.next() {
            Some(d) => {
                tokio::time::sleep(d).await;
                true
            }
            None => false,
        }
    }
}

impl Default for Backoff {
    fn default() -> Self {
        Self::new()
    }
}
