//! The clock every engine and handler reads, so tests and retention drills can move time.

use domain::ids::Moment;

pub trait Clock: Send + Sync {
    fn now(&self) -> Moment;
    fn epoch(&self) -> i64 {
        self.now().timestamp()
    }
    /// Now in epoch milliseconds.
    fn epoch_ms(&self) -> i64 {
        self.now().timestamp_millis()
    }
}

/// Wall-clock time shifted by a fixed offset (`SHOPPING_CLOCK_OFFSET_SECONDS` locally).
#[derive(Debug, Clone, Copy, Default)]
pub struct SystemClock {
    pub offset_seconds: i64,
}

/// The largest offset `SystemClock` accepts: a hundred years either way.
pub const MAX_OFFSET_SECONDS: i64 = 3_155_760_000;

impl SystemClock {
    /// A clock shifted by `offset_seconds`, or `None` beyond ±[`MAX_OFFSET_SECONDS`].
    pub fn shifted(offset_seconds: i64) -> Option<Self> {
        (-MAX_OFFSET_SECONDS..=MAX_OFFSET_SECONDS).contains(&offset_seconds).then_some(Self { offset_seconds })
    }
}

impl Clock for SystemClock {
    fn now(&self) -> Moment {
        let now = chrono::Utc::now();
        chrono::TimeDelta::try_seconds(self.offset_seconds).and_then(|d| now.checked_add_signed(d)).unwrap_or(now)
    }
}

/// A clock tests can set and advance, to the millisecond (simulations spread requests over
/// each simulated second).
#[derive(Debug, Default)]
pub struct ManualClock(std::sync::atomic::AtomicI64);

impl ManualClock {
    pub fn at(epoch: i64) -> Self {
        Self(std::sync::atomic::AtomicI64::new(epoch.saturating_mul(1000)))
    }
    pub fn advance(&self, seconds: i64) {
        self.0.fetch_add(seconds.saturating_mul(1000), std::sync::atomic::Ordering::SeqCst);
    }
    /// Sets the clock to `epoch_ms` milliseconds after 1970-01-01 UTC.
    pub fn set_ms(&self, epoch_ms: i64) {
        self.0.store(epoch_ms, std::sync::atomic::Ordering::SeqCst);
    }
}

impl Clock for ManualClock {
    fn now(&self) -> Moment {
        let t = self.0.load(std::sync::atomic::Ordering::SeqCst);
        chrono::DateTime::from_timestamp_millis(t).unwrap_or_default()
    }
}
