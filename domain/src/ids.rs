//! Injected sources of identity and time, so that commands are exact in tests.

use chrono::{DateTime, Datelike, Utc};

/// A moment in time, in UTC: what the clock gives and what timestamps are made from.
pub type Moment = DateTime<Utc>;

/// Parses an RFC 3339 date-time (any offset) into UTC. Strict: `T` (or `t`) between date and
/// time, never a space, as the wire format has always required.
pub fn parse_rfc3339(s: &str) -> Option<Moment> {
    if !matches!(s.as_bytes().get(10), Some(b'T' | b't')) {
        return None;
    }
    DateTime::parse_from_rfc3339(s).ok().map(|t| t.with_timezone(&Utc))
}

/// The moment `epoch` seconds after 1970-01-01 UTC, if representable.
pub fn from_epoch(epoch: i64) -> Option<Moment> {
    DateTime::from_timestamp(epoch, 0)
}

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
pub fn timestamp(t: Moment) -> String {
    checked_timestamp(t).unwrap_or_else(|| t.to_rfc3339())
}

/// [`timestamp`], or `None` when the moment's UTC date is outside years 0–9999 (e.g.
/// `9999-12-31T23:59:59-01:00`, which is in year 10000 in UTC).
pub fn checked_timestamp(t: Moment) -> Option<String> {
    // chrono's RFC 3339 writer rather than a strftime pattern, which it parses on every call
    // (a create stamps several times; the parse showed in its profile). Same text: UTC with
    // `Z`, milliseconds cut, not rounded.
    (0..=9999).contains(&t.year()).then(|| t.to_rfc3339_opts(chrono::SecondsFormat::Millis, true))
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
        let t = parse_rfc3339("9999-12-31T23:59:59-01:00").unwrap();
        assert_eq!(checked_timestamp(t), None);
        assert!(!timestamp(t).is_empty());
    }

    #[test]
    fn timestamps_are_fixed_width_utc() {
        let t = parse_rfc3339("2026-01-02T03:04:05.006+01:00").unwrap();
        assert_eq!(timestamp(t), "2026-01-02T02:04:05.006Z");
        // whole seconds still show three digits; sub-millisecond digits are cut, not rounded
        assert_eq!(timestamp(parse_rfc3339("0001-02-03T04:05:06Z").unwrap()), "0001-02-03T04:05:06.000Z");
        assert_eq!(timestamp(parse_rfc3339("2026-11-22T12:00:00.9999Z").unwrap()), "2026-11-22T12:00:00.999Z");
        assert_eq!(timestamp(from_epoch(1_800_000_000).unwrap()), "2027-01-15T08:00:00.000Z");
    }

    /// The RFC 3339 writer gives the text the strftime pattern gave, across the years and
    /// sub-second digits a timestamp can have.
    #[test]
    fn timestamps_match_the_pattern_they_replace() {
        let mut ms: i64 = -62_135_596_800_000; // 0001-01-01
        while ms < 253_402_300_799_000 {
            let t =
                DateTime::from_timestamp_millis(ms).unwrap() + chrono::Duration::nanoseconds(ms.rem_euclid(997_001));
            assert_eq!(timestamp(t), t.format("%Y-%m-%dT%H:%M:%S%.3fZ").to_string());
            ms += 7_777_777_777_777 / 97;
        }
        // Year 0 (the first a timestamp may have) and a leap second (chrono keeps it as
        // 1,000 ms and more into the 59th second).
        let year0 = chrono::NaiveDate::from_ymd_opt(0, 1, 1).unwrap().and_hms_milli_opt(0, 0, 0, 7).unwrap().and_utc();
        let leap = chrono::NaiveDate::from_ymd_opt(2016, 12, 31)
            .unwrap()
            .and_hms_milli_opt(23, 59, 59, 1_500)
            .unwrap()
            .and_utc();
        assert_eq!(timestamp(year0), "0000-01-01T00:00:00.007Z");
        for t in [year0, leap] {
            assert_eq!(timestamp(t), t.format("%Y-%m-%dT%H:%M:%S%.3fZ").to_string());
        }
    }

    #[test]
    fn only_rfc3339_date_times_parse() {
        for ok in ["2026-11-22T12:00:00Z", "2026-11-22t12:00:00z", "2026-11-22T12:00:00.5+05:30"] {
            assert!(parse_rfc3339(ok).is_some(), "{ok}");
        }
        for bad in ["2026-11-22 12:00:00Z", "2026-11-22", "2026-11-22T12:00:00", "2026-13-01T00:00:00Z", "x"] {
            assert!(parse_rfc3339(bad).is_none(), "{bad}");
        }
    }
}
