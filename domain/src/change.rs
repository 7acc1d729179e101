//! What every command shares: who acts and when (`Ctx`), what a command returns (`Outcome`),
//! and the retention arithmetic.

use crate::error::{DomainError, Result};
use crate::ids::timestamp;
use crate::ids::Moment;
use crate::model::EventRequest;
use crate::table::{Key, WriteOp};
use crate::validate;
use chrono::Datelike;
use serde::Serialize;

/// Who acts, when, and through which request (recorded in the api-event).
#[derive(Debug, Clone)]
pub struct Ctx {
    pub aid: String,
    pub actor: String,
    pub now: Moment,
    pub request: EventRequest,
}

impl Ctx {
    pub fn now_str(&self) -> String {
        timestamp(self.now)
    }
    pub fn href(&self, rest: &str) -> String {
        format!("/v1/accounts/{}/shopping/{rest}", self.aid)
    }
}

/// The result of a command.
#[derive(Debug, Clone)]
pub struct Outcome<T> {
    pub resource: T,
    /// The version the change writes (the response's `ETag`), also when the response body
    /// does not show it (a completion).
    pub version: u64,
    pub ops: Vec<WriteOp>,
    /// The key of the write conditioned on the version the command read (the draft or the
    /// order item): when `If-Match` pinned that version and this write's condition fails,
    /// the answer is a 412, not a retry.
    pub pinned: Option<Key>,
    /// `ORDERID` keys of client-chosen order ids: a failed condition on one of these is a
    /// `DUPLICATE_ORDER_ID`, not a race to retry.
    pub custom_order_ids: Vec<(Key, String)>,
}

impl<T> Outcome<T> {
    /// The same change, answered with another resource (an order command whose response is
    /// the event, session or operation it added).
    pub fn with<U>(self, resource: U) -> Outcome<U> {
        Outcome {
            resource,
            version: self.version,
            ops: self.ops,
            pinned: self.pinned,
            custom_order_ids: self.custom_order_ids,
        }
    }
}

/// A document as stored (see [`crate::model::to_stored`]).
pub(crate) fn to_doc<T: Serialize>(v: &T) -> String {
    // Serialising plain data structs to JSON cannot fail.
    crate::model::to_stored(v).unwrap_or_default()
}

/// When a retention of `ttl` seconds from `now` ends. Validation bounds `time_to_live`, so
/// this fails only for data stored before the bound existed: still an error, never a panic.
pub(crate) fn expires_at(now: Moment, ttl: Option<i64>) -> Result<Option<Moment>> {
    match ttl {
        None => Ok(None),
        Some(s) => {
            let later = chrono::TimeDelta::try_seconds(s).and_then(|d| now.checked_add_signed(d));
            later.filter(|t| t.year() <= 9999).map(Some).ok_or_else(|| {
                DomainError::invalid(
                    "order.time_to_live",
                    format!("must be at most {} seconds", validate::MAX_TIME_TO_LIVE),
                )
            })
        }
    }
}
