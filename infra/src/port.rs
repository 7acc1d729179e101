//! The storage port: item-level and shaped like DynamoDB, so the key design lives once (in
//! `domain::table`) and both engines obey the same rules:
//! - an expired item (`ttl` ≤ now) is never returned and counts as absent for conditions;
//! - a write is atomic; a failed condition aborts all of it and names the failing op;
//! - reads after a successful write see it;
//! - indexes project only keys, `ttl` and the summary;
//! - every put of an item that carries events reaches the outbox consumer once (the table's
//!   stream on DynamoDB, an outbox table on the embedded engine);
//! - a write is applied at most once, even when the engine's client retries it after a lost
//!   answer (transactions carry a client request token; a single put whose condition fails
//!   against exactly the item it writes counts as applied).

pub use crate::limits::Limit;
use async_trait::async_trait;
pub use domain::table::{Condition, Index, Item, Key, WriteOp};

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SkCond {
    Any,
    Eq(String),
    BeginsWith(String),
    Between(String, String),
    Lt(String),
    Le(String),
    Gt(String),
    Ge(String),
}

/// Where a page ended: the keys of its last item (table keys plus the index keys).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cursor {
    pub pk: String,
    pub sk: String,
    pub index_pk: Option<String>,
    pub index_sk: Option<String>,
}

impl Cursor {
    pub fn after(item: &Item, index: Option<Index>) -> Self {
        let ik = index.and_then(|i| item.index_key(i));
        Self {
            pk: item.pk.clone(),
            sk: item.sk.clone(),
            index_pk: ik.map(|(p, _)| p.to_owned()),
            index_sk: ik.map(|(_, s)| s.to_owned()),
        }
    }
}

#[derive(Debug, Clone)]
pub struct Query {
    /// `None` queries the table; otherwise the index partition `pk` of that index.
    pub index: Option<Index>,
    pub pk: String,
    pub sk: SkCond,
    pub forward: bool,
    pub limit: usize,
    pub start_after: Option<Cursor>,
}

impl Query {
    pub fn partition(pk: impl Into<String>) -> Self {
        Self { index: None, pk: pk.into(), sk: SkCond::Any, forward: true, limit: 1000, start_after: None }
    }
}

#[derive(Debug, Clone, Default)]
pub struct Page {
    pub items: Vec<Item>,
    /// Set when more items may follow; pass it back as `start_after`.
    pub next: Option<Cursor>,
}

/// The source of a store failure, kept whole for the logs (never shown to callers).
pub type BoxError = Box<dyn std::error::Error + Send + Sync>;

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The condition of op `index` failed; `current` is that item as stored, when known.
    #[error("the condition of write {index} failed")]
    ConditionFailed { index: usize, current: Option<Box<Item>> },
    /// Another write touched the same items at the same moment; retrying is safe.
    #[error("concurrent write, retry")]
    Contention,
    /// The write breaks one of the store's limits: permanent, the request must change.
    #[error(transparent)]
    Limit(#[from] Limit),
    /// A request the code should never make (a bug), e.g. the same item twice in one write.
    #[error("invalid store request: {0}")]
    Invalid(String),
    /// A stored item that cannot be read back (corrupt or foreign data).
    #[error("unreadable stored item")]
    Corrupt(#[source] BoxError),
    /// The store is throttling this caller; retrying after a pause will work.
    #[error("store throttled")]
    Throttled(#[source] BoxError),
    /// The store cannot be reached or failed internally; retrying later may work.
    #[error("store unavailable")]
    Unavailable(#[source] BoxError),
}

impl StoreError {
    pub fn unavailable(e: impl Into<BoxError>) -> Self {
        Self::Unavailable(e.into())
    }
}

#[async_trait]
pub trait Store: Send + Sync {
    async fn get(&self, key: &Key) -> Result<Option<Item>, StoreError>;
    /// The live items of these keys, in no particular order (absent and expired ones are
    /// left out); each read is strongly consistent.
    async fn get_many(&self, keys: &[Key]) -> Result<Vec<Item>, StoreError>;
    /// A table query returns whole items; an index query returns what the index projects
    /// (see [`Item::projected`]).
    async fn query(&self, q: &Query) -> Result<Page, StoreError>;
    /// Applies all ops atomically, or none.
    async fn write(&self, ops: Vec<WriteOp>) -> Result<(), StoreError>;
    /// Applies several independent writes, each atomic on its own as [`Store::write`] is (a
    /// failed condition fails only its own write), in order; answers each one's result.
    /// Bookkeeping that comes in bursts (webhook attempts, queued jobs) uses it so an engine
    /// that can make them durable together does so once: the embedded engine commits them in
    /// one transaction with one fsync. Elsewhere they are written one after another.
    async fn write_each(&self, writes: Vec<Vec<WriteOp>>) -> Vec<Result<(), StoreError>> {
        let mut results = Vec::with_capacity(writes.len());
        for ops in writes {
            results.push(self.write(ops).await);
        }
        results
    }
}

/// Every item a query matches, following cursors page by page.
pub async fn query_all(store: &dyn Store, mut q: Query) -> Result<Vec<Item>, StoreError> {
    let mut items = Vec::new();
    loop {
        let page = store.query(&q).await?;
        items.extend(page.items);
        match page.next {
            Some(c) => q.start_after = Some(c),
            None => return Ok(items),
        }
    }
}

/// Rejects writes the DynamoDB engine would reject (its limits, and one item twice), so both
/// engines agree.
pub fn check_write(ops: &[WriteOp]) -> Result<(), StoreError> {
    crate::limits::check(ops)?;
    let mut seen = std::collections::HashSet::new();
    for op in ops {
        if !seen.insert(op.key()) {
            return Err(StoreError::Invalid("one write touches the same item twice".into()));
        }
    }
    Ok(())
}
