//! The subscription repository: webhook subscriptions as stored, for the hooks API and the
//! deliverer alike — read one or an account's, write one conditioned on the version read
//! (through the write loop), and what a delivery job of one event to one subscription is.

use super::error::{parse, AppError, Result};
use super::write::{run, write_or_lost, Step};
use domain::hooks::{Pending, SubscriptionRecord};
use domain::table::{self, Condition, Item, WriteOp};
use domain::webhook::WebhookEvent;
use infra::{query_all, Query, Store, StoreError};

fn doc<T: serde::Serialize>(v: &T) -> String {
    serde_json::to_string(v).unwrap_or_default()
}

/// The account's subscriptions (not the deleted ones).
pub async fn all(store: &dyn Store, aid: &str) -> Result<Vec<SubscriptionRecord>, StoreError> {
    let items = query_all(store, Query::partition(table::hooks_pk(aid))).await?;
    Ok(items
        .iter()
        .filter_map(|i| serde_json::from_str::<SubscriptionRecord>(&i.doc).ok())
        .filter(|r| !r.deleted())
        .collect())
}

/// How long a [`Recent`] serves what it read (a batch of messages is handled well within it).
pub const RECENT_MS: i64 = 1000;

/// An account's subscriptions (records and versions) as read once for one batch of the AWS
/// deliverer's messages (up to ten, received together): at a busy account's thousands of
/// events a second, reading its one subscriptions partition for every event and every job is
/// over DynamoDB's 3,000 read units a second per partition (`hot_keys`, BENCHMARKS.md); once
/// a batch, it is a tenth of that. Each batch reads afresh, so a subscription created,
/// changed or deleted is seen by the next batch — never a second late, as a cache kept across
/// batches would be (a new subscription would miss the events of that second). Locally,
/// where there is one deliverer and no such rate, nothing is kept.
#[derive(Debug, Default)]
pub struct Recent(std::sync::Mutex<std::collections::HashMap<String, Held>>);

type Held = (i64, std::sync::Arc<Vec<(SubscriptionRecord, u64)>>);

impl Recent {
    /// The account's live subscriptions, read at most once per [`RECENT_MS`] of `now_ms`.
    pub async fn of(
        &self,
        store: &dyn Store,
        aid: &str,
        now_ms: i64,
    ) -> Result<std::sync::Arc<Vec<(SubscriptionRecord, u64)>>, StoreError> {
        let lock = || self.0.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        if let Some((at, subs)) = lock().get(aid) {
            if (0..RECENT_MS).contains(&now_ms.saturating_sub(*at)) {
                return Ok(subs.clone());
            }
        }
        let items = query_all(store, Query::partition(table::hooks_pk(aid))).await?;
        let subs: Vec<(SubscriptionRecord, u64)> = items
            .iter()
            .filter_map(|i| serde_json::from_str::<SubscriptionRecord>(&i.doc).ok().map(|r| (r, i.version)))
            .filter(|(r, _)| !r.deleted())
            .collect();
        let subs = std::sync::Arc::new(subs);
        lock().insert(aid.to_owned(), (now_ms, subs.clone()));
        Ok(subs)
    }
}

/// A subscription as stored: the record and its item's version (what a change is
/// conditioned on); `None` when there is none or it was deleted.
pub async fn find(store: &dyn Store, aid: &str, hid: &str) -> Result<Option<(SubscriptionRecord, u64)>> {
    let Some(item) = store.get(&table::hook_key(aid, hid)).await? else { return Ok(None) };
    let rec: SubscriptionRecord = parse("subscription", &item.doc)?;
    Ok((!rec.deleted()).then_some((rec, item.version)))
}

/// [`find`], with a missing subscription a not-found.
pub async fn get(store: &dyn Store, aid: &str, hid: &str) -> Result<(SubscriptionRecord, u64)> {
    find(store, aid, hid).await?.ok_or(AppError::NotFound("subscription"))
}

/// The item that stores a subscription at `version`.
pub fn item(aid: &str, rec: &SubscriptionRecord, version: u64) -> Item {
    Item::new(table::hook_key(aid, &rec.sub.id), version, doc(rec))
}

/// Stores a new subscription.
pub async fn insert(store: &dyn Store, aid: &str, rec: &SubscriptionRecord) -> Result<()> {
    let put = WriteOp::Put { item: item(aid, rec, 0), cond: Some(Condition::NotExists) };
    Ok(store.write(vec![put]).await?)
}

/// Changes a subscription through the write loop: `f` on the record as read, written
/// conditioned on its version, again from a fresh read when another change came first.
pub async fn change(
    store: &dyn Store,
    aid: &str,
    hid: &str,
    f: impl Fn(SubscriptionRecord) -> SubscriptionRecord,
) -> Result<SubscriptionRecord> {
    let f = &f;
    run(
        get(store, aid, hid).await?,
        |(rec, prev)| async move {
            let next = f(rec);
            let put =
                WriteOp::Put { item: item(aid, &next, prev.saturating_add(1)), cond: Some(Condition::VersionIs(prev)) };
            Ok(if write_or_lost(store, vec![put]).await? { Step::Done(next) } else { Step::Lost(()) })
        },
        |()| get(store, aid, hid),
    )
    .await
}

/// The `event_delivery` of `event_id` sent to subscription `hook_id`: a GUID derived from
/// both, so every retry, redelivery and replay carries the same one.
pub fn event_delivery(event_id: &str, hook_id: &str) -> String {
    uuid::Uuid::new_v5(&uuid::Uuid::NAMESPACE_OID, format!("{event_id}/{hook_id}").as_bytes()).to_string()
}

/// `ev` ready for its first attempt to `sub`.
pub fn job(sub: &SubscriptionRecord, ev: &WebhookEvent, now_ms: i64) -> Pending {
    Pending::new(sub, ev, &event_delivery(&ev.id, &sub.sub.id), now_ms)
}
