//! Reading one resource's partition, the same way for every group: its head item (the draft
//! or the order) and its events, history items merged with the records still riding in the
//! head (see `domain::outbox`), so a read shows every event its writes produced.

use super::error::{AppError, Result};
use domain::outbox::{self, EventRecord, Timeline};
use domain::table::{self, Item};
use infra::{query_all, Query, SkCond, Store};

/// What one read of a partition found.
pub struct Partition {
    /// The head item (`DRAFT` or `ORDER`), when live.
    pub head: Option<Item>,
    /// Every other non-event item (e.g. an order's `STUB`).
    pub others: Vec<Item>,
    pub timeline: Timeline,
    /// The earliest `ttl` of the items read: from then on a read of them shows less.
    pub expires: Option<i64>,
}

/// The riding records of a head item.
pub fn riding(item: &Item) -> Result<Vec<EventRecord>> {
    outbox::riding(item).map_err(|e| AppError::corrupt("riding events", e))
}

/// Sorts the items of one partition query into head, others and events.
pub fn sort(items: Vec<Item>, head_sk: &str, timeline: &mut Timeline) -> Result<Partition> {
    let expires = items.iter().filter_map(|i| i.ttl).min();
    let mut part = Partition { head: None, others: Vec::new(), timeline: Timeline::default(), expires };
    for item in items {
        if item.sk.starts_with(table::EVENT_PREFIX) {
            timeline.add_history(outbox::decode(&item.doc).map_err(|e| AppError::corrupt("history item", e))?);
        } else if item.sk == head_sk {
            timeline.set_riding(riding(&item)?);
            part.head = Some(item);
        } else {
            part.others.push(item);
        }
    }
    part.timeline = std::mem::take(timeline);
    Ok(part)
}

/// Reads a partition (or the sort-key range `sk` of it) in one query.
pub async fn read(store: &dyn Store, pk: String, sk: SkCond, head_sk: &str) -> Result<Partition> {
    let q = Query { sk, ..Query::partition(pk) };
    let items = query_all(store, q).await?;
    sort(items, head_sk, &mut Timeline::default())
}

/// Re-reads a partition after a lost race: the head, and only the history items newer than
/// those `timeline` already holds (history never changes, so old request bodies are not read
/// again).
pub async fn refresh(store: &dyn Store, pk: String, head_sk: &str, mut timeline: Timeline) -> Result<Partition> {
    let head = store.get(&domain::table::Key::new(pk.clone(), head_sk)).await?;
    // Only event sort keys: an order's `ORDER` and `STUB` sort after them.
    let sk = match timeline.last_flushed() {
        Some(v) => SkCond::Between(table::event_sk(v.saturating_add(1)), format!("{}~", table::EVENT_PREFIX)),
        None => SkCond::BeginsWith(table::EVENT_PREFIX.to_owned()),
    };
    let mut items = query_all(store, Query { sk, ..Query::partition(pk) }).await?;
    items.extend(head);
    if !items.iter().any(|i| i.sk == head_sk) {
        // The head is gone (expired): nothing rides any more.
        timeline.set_riding(Vec::new());
    }
    sort(items, head_sk, &mut timeline)
}
