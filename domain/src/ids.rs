//! Injected sources of identity and time, so that commands are exact in tests.

use time::OffsetDateTime;

/// Produces fresh identifiers. Production draws them from the OS; tests use counters.
pub trait Ids: Send {
    /// A UUID v4 in canonical lower-case text.
    fn uuid(&mut self) -> String;
    /// Nine characters of `0-9A-Z` (the `ALPHANUMERIC_9` order ids).
    fn alphanumeric9(&mut self) -> String;
}

/// Server timestamps: RFC 3339 in UTC with milliseconds, fixed width so they sort as text.
/// A moment whose UTC date falls outside years 0–9999 (only reachable from parsed input, which
/// [`checked_timestamp`] refuses) keeps its own offset rather than panicking.
pub fn timestamp(t: OffsetDateTime) -> String {
    checked_timestamp(t).unwrap_or_else(|| t.to_string())
}

/// [`timestamp`], or `None` when the moment's UTC date is outside years 0–9999 (e.g.
/// `9999-12-31T23:59:59-01:00`, which is in year 10000 in UTC).
pub fn checked_timestamp(t: OffsetDateTime) -> Option<String> {
    let t = t.checked_to_offset(time::UtcOffset::UTC).filter(|t| (0..=9999).contains(&t.year()))?;
    Some(format!(
        "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}.{:03}Z",
        t.year(),
        u8::from(t.month()),
        t.day(),
        t.hour(),
        t.minute(),
        t.second(),
        t.millisecond()
    ))
}

/// Deterministic ids for tests: `00000000-0000-4000-8000-{n:012}` and `A{n:08}`.
#[derive(Debug, Default, Clone)]
pub struct SequentialIds {
    pub next: u64,
}

impl Ids for SequentialIds {
    fn uuid(&mut self) -> String {
        self.next = self.next.saturating_add(1);
        format!("00000000-0000-4000-8000-{:012}", self.next)
    }
    fn alphanumeric9(&mut self) -> String {
        self.next = self.next.saturating_add(1);
        format!("A{:08}", self.next)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn moments_beyond_year_9999_in_utc_are_refused_not_panicked_on() {
        let t = time::macros::datetime!(9999-12-31 23:59:59 -01:00);
        assert_eq!(checked_timestamp(t), None);
        assert!(!timestamp(t).is_empty());
    }

    #[test]
    fn timestamps_are_fixed_width_utc() {
        let t = time::macros::datetime!(2026-01-02 03:04:05.006 +01:00);
        assert_eq!(timestamp(t), "2026-01-02T02:04:05.006Z");
    }
}
