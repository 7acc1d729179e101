//! The one audited place where amounts, quantities and `line_id`s are added, subtracted or
//! incremented. Every accepted integer lies within ±(2^53 − 1) — exact in every JSON client —
//! and every result is checked against that range, so nothing ever wraps: a sum that would
//! leave it is an error naming the field, which the edge answers with a 400.
//!
//! The rest of the domain must not use `+`, `-` or `*` on amounts; `clippy::arithmetic_side_effects`
//! is denied for the crate and allowed only here.
#![allow(clippy::arithmetic_side_effects)]

use crate::error::FieldError;

/// 2^53 − 1: the largest integer every JSON client represents exactly.
pub const MAX_SAFE: i64 = 9_007_199_254_740_991;

pub fn in_range(v: i64) -> bool {
    (-MAX_SAFE..=MAX_SAFE).contains(&v)
}

fn out_of_range(path: &str) -> FieldError {
    FieldError::new(
        path,
        "OUT_OF_RANGE",
        format!("the result would leave the supported range of ±{MAX_SAFE}; use smaller amounts"),
    )
}

/// `a + b`, within range, or an error naming `path`.
pub fn add(a: i64, b: i64, path: &str) -> Result<i64, FieldError> {
    a.checked_add(b).filter(|v| in_range(*v)).ok_or_else(|| out_of_range(path))
}

/// `a − b`, within range, or an error naming `path`.
pub fn sub(a: i64, b: i64, path: &str) -> Result<i64, FieldError> {
    a.checked_sub(b).filter(|v| in_range(*v)).ok_or_else(|| out_of_range(path))
}

/// Σ `values`, within range at every step, or an error naming `path`.
pub fn sum(values: impl IntoIterator<Item = i64>, path: &str) -> Result<i64, FieldError> {
    values.into_iter().try_fold(0i64, |acc, v| add(acc, v, path))
}

/// `a − b` floored at zero, for the remaining amounts of `payment_details` (never negative).
/// Saturating, so even out-of-range stored data cannot wrap.
pub fn remaining(a: i64, b: i64) -> i64 {
    a.saturating_sub(b).max(0)
}

/// Σ `values`, saturating: for figures derived from amounts that were range-checked when
/// they were accepted, where an error could only come from corrupt stored data.
pub fn total(values: impl IntoIterator<Item = i64>) -> i64 {
    values.into_iter().fold(0i64, i64::saturating_add)
}

/// The number after the highest `line_id` in use (1 when none is), for items sent without one.
pub fn next_line_id(used: impl IntoIterator<Item = i64>, path: &str) -> Result<i64, FieldError> {
    match used.into_iter().max() {
        None => Ok(1),
        Some(m) => m.checked_add(1).filter(|v| in_range(*v)).ok_or_else(|| {
            FieldError::new(
                path,
                "OUT_OF_RANGE",
                format!("no line_id is left after {m}; send an unused line_id explicitly"),
            )
        }),
    }
}

/// The `line_id` after `n` (used while numbering several new items).
pub fn following_line_id(n: i64, path: &str) -> Result<i64, FieldError> {
    next_line_id([n], path)
}

/// Version arithmetic (a resource's `version` counter): saturating, since a counter of writes
/// cannot realistically reach 2^64 and must never wrap to a lower version if it did.
pub fn next_version(v: u64) -> u64 {
    v.saturating_add(1)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sums_are_checked_against_the_json_safe_range() {
        assert_eq!(sum([1, 2, 3], "x"), Ok(6));
        assert_eq!(sum([MAX_SAFE, 0], "x"), Ok(MAX_SAFE));
        assert_eq!(sum([MAX_SAFE, 1], "x").unwrap_err().path, "x");
        assert!(sum([i64::MAX, i64::MAX], "x").is_err());
        assert!(sub(-MAX_SAFE, 1, "y").is_err());
        assert_eq!(sub(5, 7, "y"), Ok(-2));
    }

    #[test]
    fn line_ids_never_wrap() {
        assert_eq!(next_line_id([], "l"), Ok(1));
        assert_eq!(next_line_id([3, 9, 2], "l"), Ok(10));
        assert!(next_line_id([MAX_SAFE], "l").is_err());
        assert!(next_line_id([i64::MAX], "l").is_err());
    }

    #[test]
    fn remaining_amounts_floor_at_zero_and_saturate() {
        assert_eq!(remaining(10, 3), 7);
        assert_eq!(remaining(3, 10), 0);
        assert_eq!(remaining(i64::MIN, i64::MAX), 0);
    }
}
