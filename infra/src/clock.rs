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

/// A clock tests can set and advance.
#[derive(Debug, Default)]
pub struct ManualClock(std::sync::atomic::AtomicI64);

impl ManualClock {
    pub fn at(epoch: i64) -> Self {
        Self(std::sync::atomic::AtomicI64::new(epoch))
    }
    pub fn advance(&self, seconds: i64) {
        self.0.fetch_add(seconds, std::sync::atomic::Ordering::SeqCst);
    }
}

impl Clock for ManualClock {
    fn now(&self) -> Moment {
        let t = self.0.load(std::sync::atomic::Ordering::SeqCst);
        domain::ids::from_epoch(t).unwrap_or_default()
    }
}
