//! `Idempotency-Key` on POST/PUT: the first successful response is stored for 24 hours, in
//! the same atomic write as the change, so a retried request (same method, path and body)
//! gets that response again and changes nothing; the same key with a different request is a
//! 409 `IDEMPOTENCY_KEY_REUSED`.
//!
//! A response that embeds the resource's event history is stored without it, with the
//! partition to re-read it from: events are immutable, so the replay is the same response,
//! and the record stays small however long the history grows.

use super::error::{parse, AppError, Result};
use domain::table::{self, Condition, Item, Key, WriteOp};
use infra::Store;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

pub const HEADER: &str = "idempotency-key";
pub const RETENTION_SECONDS: i64 = 24 * 60 * 60;
const MAX_KEY: usize = 255;

/// The key of one request and the fingerprint of what it asked.
pub struct Idem {
    key: Key,
    fingerprint: String,
}

#[derive(Serialize, Deserialize)]
struct Record {
    fingerprint: String,
    version: u64,
    body: String,
    /// Where the response's `events` (those up to `version`) are re-read from on replay.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    events_pk: Option<String>,
}

/// A stored response: its version, its body, and where its events live when they were left
/// out of the body.
pub struct Replay {
    pub version: u64,
    pub body: String,
    pub events_pk: Option<String>,
}

impl Idem {
    /// The key a request sent (the header's value, when there was one) and the fingerprint
    /// of what it asked: method, path and body.
    pub fn from_request(
        aid: &str,
        header: Option<&[u8]>,
        method: &str,
        path: &str,
        body: &[u8],
    ) -> Result<Option<Self>> {
        let Some(v) = header else { return Ok(None) };
        let key = std::str::from_utf8(v)
            .ok()
            .map(str::trim)
            .filter(|k| !k.is_empty() && k.len() <= MAX_KEY && k.bytes().all(|b| b.is_ascii_graphic()))
            .ok_or_else(|| AppError::Invalid {
                path: "Idempotency-Key",
                message: "must be 1 to 255 visible ASCII characters".into(),
            })?;
        let mut h = Sha256::new();
        for part in [method.as_bytes(), b"\n", path.as_bytes(), b"\n", body] {
            h.update(part);
        }
        let fingerprint = h.finalize().iter().map(|b| format!("{b:02x}")).collect();
        Ok(Some(Self { key: table::idempotency_key(aid, key), fingerprint }))
    }

    /// The stored response for this key, if a request already used it.
    pub async fn lookup(&self, store: &dyn Store) -> Result<Option<Replay>> {
        let Some(item) = store.get(&self.key).await? else { return Ok(None) };
        let rec: Record = parse("idempotency record", &item.doc)?;
        if rec.fingerprint != self.fingerprint {
            return Err(AppError::Conflict {
                code: "IDEMPOTENCY_KEY_REUSED",
                message: "this Idempotency-Key was used for a different request".into(),
            });
        }
        Ok(Some(Replay { version: rec.version, body: rec.body, events_pk: rec.events_pk }))
    }

    /// `lookup` for a request that may carry no key.
    pub async fn lookup_if(idem: Option<&Self>, store: &dyn Store) -> Result<Option<Replay>> {
        match idem {
            Some(i) => i.lookup(store).await,
            None => Ok(None),
        }
    }

    /// The record to write together with the change.
    pub fn record(&self, now_epoch: i64, version: u64, body: String, events_pk: Option<String>) -> WriteOp {
        let rec = Record { fingerprint: self.fingerprint.clone(), version, body, events_pk };
        let mut item = Item::new(self.key.clone(), 0, serde_json::to_string(&rec).unwrap_or_default());
        item.ttl = Some(now_epoch.saturating_add(RETENTION_SECONDS));
        WriteOp::Put { item, cond: Some(Condition::NotExists) }
    }

    pub fn key(&self) -> &Key {
        &self.key
    }
}
