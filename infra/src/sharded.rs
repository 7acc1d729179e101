//! An account's list partitions spread over shards, in front of either engine: every draft or
//! order change that moves its list entry writes the account's one list partition
//! (`A#{aid}#DRAFTS`, `A#{aid}#ORDERS`), and one DynamoDB partition takes at most 1,000 write
//! units a second, GSIs included — a big merchant's Black Friday is over it (`hot_keys`,
//! BENCHMARKS.md). This store writes each entry to shard `shard_of(item pk, n)` of its list
//! (`domain::table::shard_pk`; shard 0 is the partition of old) and answers a query of a list
//! partition with one round of parallel queries of its `n` shards, merged
//! ([`domain::list::merge`]) and cut where the merge is exact; the page's cursor is its last
//! entry, from which every shard resumes. `n` is the account's (`domain::ratelimit::Policy`):
//! 1 unless an override's rate needs more, so a small tenant's writes and reads are what they
//! were, key for key. The domain keeps naming the list partition; only this store knows shards.
//!
//! A subscription's deliveries partition (`A#{aid}#HOOK#{hook_id}`, every attempt recorded
//! there) is the same shape on the table: each record goes to shard `shard_of(its sort key,
//! n)` of it, a query reads every shard in one round (the whole page from each, so the
//! single-query "last 100" stays exact), and a get reads the record's shard — or, when the
//! count grew since the record was written, every shard in one batch.

use crate::clock::Clock;
use crate::port::{Cursor, Page, Query, Store, StoreError};
use async_trait::async_trait;
use domain::list::merge::{merge, ShardPage};
use domain::table::{self, Index, Item, Key, WriteOp};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};

/// How long a shard count read from the table is used before it is read again (the limiter
/// refreshes it at every lease, every 2 s of a busy account, for free).
pub const SHARDS_TTL_MS: i64 = 10_000;

/// Each account's list shard count as last read, with when.
#[derive(Debug, Default)]
pub struct ShardCounts(Mutex<HashMap<String, (u32, i64)>>);

impl ShardCounts {
    pub fn record(&self, aid: &str, shards: u32, now_ms: i64) {
        let mut m = self.0.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        m.insert(aid.to_owned(), (shards.max(1), now_ms));
    }

    /// The count read within [`SHARDS_TTL_MS`] of `now_ms`, if any.
    pub fn fresh(&self, aid: &str, now_ms: i64) -> Option<u32> {
        let m = self.0.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        m.get(aid).filter(|(_, at)| now_ms.saturating_sub(*at) < SHARDS_TTL_MS).map(|(n, _)| *n)
    }
}

/// The store that shards list partitions (see the module's notes).
pub struct ShardedStore {
    inner: Arc<dyn Store>,
    counts: Arc<ShardCounts>,
    clock: Arc<dyn Clock>,
}

impl ShardedStore {
    pub fn new(inner: Arc<dyn Store>, counts: Arc<ShardCounts>, clock: Arc<dyn Clock>) -> Self {
        Self { inner, counts, clock }
    }

    /// The account's shard count: as last read, else from its override (one read).
    async fn shards(&self, aid: &str) -> Result<u32, StoreError> {
        let now = self.clock.epoch_ms();
        if let Some(n) = self.counts.fresh(aid, now) {
            return Ok(n);
        }
        let policy = self.inner.get(&table::limit_policy_key(aid)).await?;
        let n = policy
            .and_then(|i| serde_json::from_str::<domain::ratelimit::Policy>(&i.doc).ok())
            .map_or(1, |p| p.shards());
        self.counts.record(aid, n, now);
        Ok(n)
    }

    /// `key` of a delivery record, in the shard it is written to now (`None`: not a record).
    async fn record_key(&self, key: &Key) -> Result<Option<(Key, u32)>, StoreError> {
        let Some(aid) = table::sharded_deliveries(&key.pk) else { return Ok(None) };
        let n = self.shards(aid).await?;
        Ok(Some((Key::new(table::shard_pk(&key.pk, table::shard_of(&key.sk, n)), key.sk.clone()), n)))
    }

    /// `ops` with each list entry, and each delivery record, moved to its shard.
    async fn placed(&self, mut ops: Vec<WriteOp>) -> Result<Vec<WriteOp>, StoreError> {
        for op in &mut ops {
            match op {
                WriteOp::Put { item, .. } => {
                    if let Some((key, _)) = self.record_key(&item.key()).await? {
                        item.pk = key.pk;
                    }
                    let Some(aid) = item.gsi1pk.as_deref().and_then(table::sharded_list) else { continue };
                    let n = self.shards(aid).await?;
                    if n > 1 {
                        let list = item.gsi1pk.take().unwrap_or_default();
                        item.gsi1pk = Some(table::shard_pk(&list, table::shard_of(&item.pk, n)));
                    }
                }
                WriteOp::Delete { key, .. } | WriteOp::Check { key, .. } => {
                    if let Some((placed, _)) = self.record_key(key).await? {
                        *key = placed;
                    }
                }
            }
        }
        Ok(ops)
    }

    /// One round of parallel queries of the `n` shards of `q.pk`, merged.
    async fn query_shards(&self, q: &Query, n: u32) -> Result<Page, StoreError> {
        // Each shard is asked for its share of the page and a little more, so one round
        // usually fills it; a short page still carries a cursor, and the caller reads on.
        let per_shard =
            q.limit.min(q.limit.div_ceil(usize::try_from(n).unwrap_or(1)).saturating_mul(2).saturating_add(2));
        let mut tasks = tokio::task::JoinSet::new();
        for shard in 0..n {
            let pk = table::shard_pk(&q.pk, shard);
            // Every shard resumes after the last entry returned, whichever shard held it.
            let start_after = q.start_after.clone().map(|c| match q.index {
                Some(_) => Cursor { index_pk: Some(pk.clone()), ..c },
                None => Cursor { pk: pk.clone(), ..c },
            });
            let sq = Query { pk, start_after, limit: per_shard, ..q.clone() };
            let inner = self.inner.clone();
            tasks.spawn(async move { (shard, inner.query(&sq).await) });
        }
        let mut pages: Vec<(u32, ShardPage)> = Vec::new();
        while let Some(joined) = tasks.join_next().await {
            let (shard, page) = joined.map_err(StoreError::unavailable)?;
            let page = page?;
            pages.push((shard, ShardPage { more: page.next.is_some(), items: page.items }));
        }
        pages.sort_by_key(|(shard, _)| *shard);
        let (items, more) = merge(pages.into_iter().map(|(_, p)| p).collect(), q.index, q.forward, q.limit);
        let next = if more { items.last().map(|last| Cursor::after(last, q.index)) } else { None };
        Ok(Page { items, next })
    }
}

#[async_trait]
impl Store for ShardedStore {
    async fn get(&self, key: &Key) -> Result<Option<Item>, StoreError> {
        let Some((placed, n)) = self.record_key(key).await? else { return self.inner.get(key).await };
        if n <= 1 {
            return self.inner.get(key).await;
        }
        if let Some(found) = self.inner.get(&placed).await? {
            return Ok(Some(found));
        }
        // Written while the account had fewer shards: in one of them.
        let every: Vec<Key> = (0..n).map(|s| Key::new(table::shard_pk(&key.pk, s), key.sk.clone())).collect();
        Ok(self.inner.get_many(&every).await?.into_iter().next())
    }

    async fn get_many(&self, keys: &[Key]) -> Result<Vec<Item>, StoreError> {
        if keys.iter().all(|k| table::sharded_deliveries(&k.pk).is_none()) {
            return self.inner.get_many(keys).await;
        }
        let mut found = Vec::with_capacity(keys.len());
        for key in keys {
            found.extend(self.get(key).await?);
        }
        Ok(found)
    }

    async fn query(&self, q: &Query) -> Result<Page, StoreError> {
        let sharded = match q.index {
            Some(Index::Gsi1) => table::sharded_list(&q.pk),
            None => table::sharded_deliveries(&q.pk),
            Some(Index::Gsi2) => None,
        };
        if let Some(aid) = sharded {
            let n = self.shards(aid).await?;
            if n > 1 {
                return self.query_shards(q, n).await;
            }
        }
        self.inner.query(q).await
    }

    async fn write(&self, ops: Vec<WriteOp>) -> Result<(), StoreError> {
        let ops = self.placed(ops).await?;
        self.inner.write(ops).await
    }

    async fn write_each(&self, writes: Vec<Vec<WriteOp>>) -> Vec<Result<(), StoreError>> {
        let mut placed = Vec::with_capacity(writes.len());
        let mut failed = Vec::with_capacity(writes.len());
        for ops in writes {
            match self.placed(ops).await {
                Ok(ops) => {
                    placed.push(ops);
                    failed.push(None);
                }
                Err(e) => failed.push(Some(e)),
            }
        }
        // Each write's own answer, in order: the ones that could not be placed fail alone.
        let mut written = self.inner.write_each(placed).await.into_iter();
        failed
            .into_iter()
            .map(|f| match f {
                Some(e) => Err(e),
                None => written.next().unwrap_or_else(|| Err(StoreError::Invalid("a write went unanswered".into()))),
            })
            .collect()
    }
}
