//! Answers derived from one partition (an order as `GET` renders it), kept in memory while
//! nothing in that partition changes. Only for an engine every write of which passes through
//! this process and tells the memo of it, before and after its commit ([`Changes`]): the
//! embedded store of `shopping-local`, which owns its data dir. A Lambda instance sees
//! neither the other instances' writes nor the stream's, so the AWS host keeps none.
//!
//! A value read before a change is never kept after it. A fill takes a [`Ticket`] for its
//! partition before its read, which makes the memo track that partition's writes from then
//! on; the fill is refused when the partition is being written, was written since the
//! ticket, or was forgotten meanwhile. Writes to partitions nobody asked for cost a counter,
//! and no entry. Bounded in entries and bytes; the oldest entries are forgotten first.

use std::collections::{HashMap, VecDeque};
use std::sync::Mutex;

/// Told of every write of the engine, by partition key: `writing` before the write begins,
/// `written` once it is over (committed or not), both before the writer is answered.
pub trait Changes: Send + Sync {
    fn writing(&self, pks: &[&str]);
    fn written(&self, pks: &[&str]);
}

/// When a fill began its read: a write of its partition that ends after it refuses the fill.
#[derive(Debug, Clone, Copy)]
pub struct Ticket(u64);

pub struct Memo<T> {
    inner: Mutex<Inner<T>>,
    max_entries: usize,
    max_bytes: usize,
}

struct Inner<T> {
    /// Counts the writes that ended: tickets are taken from it.
    seq: u64,
    /// Writes under way, by partition (however many at once).
    writing: HashMap<String, u32>,
    bytes: usize,
    slots: HashMap<String, Slot<T>>,
    /// The slots' keys, oldest first (the order they are forgotten in).
    order: VecDeque<String>,
}

/// A partition the memo tracks: since a fill's ticket, or holding a value.
struct Slot<T> {
    /// `seq` when the slot was made: a ticket older than that predates it, and the writes
    /// between are unknown.
    born: u64,
    /// `seq` when its last write ended.
    written: u64,
    kept: Option<Kept<T>>,
}

struct Kept<T> {
    value: T,
    size: usize,
    /// Epoch seconds from which the value is stale: the earliest `ttl` of the items it was
    /// derived from (a read no longer shows an item once its `ttl` is reached).
    expires: Option<i64>,
}

impl<T: Clone> Memo<T> {
    /// At most `max_entries` partitions tracked and `max_bytes` of values kept.
    pub fn new(max_entries: usize, max_bytes: usize) -> Self {
        let inner = Inner { seq: 0, writing: HashMap::new(), bytes: 0, slots: HashMap::new(), order: VecDeque::new() };
        Self { inner: Mutex::new(inner), max_entries: max_entries.max(1), max_bytes }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner<T>> {
        // A panic while holding the lock leaves counters, never a half-made value: go on.
        self.inner.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Take before reading what a value of `pk` is derived from: `pk`'s writes are tracked
    /// from now on.
    pub fn ticket(&self, pk: &str) -> Ticket {
        let mut inner = self.lock();
        let inner = &mut *inner;
        let seq = inner.seq;
        if !inner.slots.contains_key(pk) {
            inner.order.push_back(pk.to_owned());
            inner.slots.insert(pk.to_owned(), Slot { born: seq, written: 0, kept: None });
            self.trim(inner);
        }
        Ticket(seq)
    }

    /// The value kept for `pk`, unless it is stale at `now` (epoch seconds).
    pub fn get(&self, pk: &str, now: i64) -> Option<T> {
        let mut inner = self.lock();
        let inner = &mut *inner;
        let kept = inner.slots.get(pk)?.kept.as_ref()?;
        if kept.expires.is_some_and(|at| now >= at) {
            inner.drop_value(pk);
            return None;
        }
        Some(kept.value.clone())
    }

    /// Keeps `value`, derived from `pk` by a read that began at `ticket`, unless `pk` changed
    /// (or may have) since; `size` is what it counts against the memo's bytes.
    pub fn keep(&self, pk: &str, ticket: Ticket, value: T, size: usize, expires: Option<i64>) {
        if size > self.max_bytes {
            return;
        }
        let mut inner = self.lock();
        let inner = &mut *inner;
        if inner.writing.contains_key(pk) {
            return;
        }
        let Some(slot) = inner.slots.get_mut(pk) else { return };
        if slot.born > ticket.0 || slot.written > ticket.0 {
            return;
        }
        let old = slot.kept.replace(Kept { value, size, expires }).map_or(0, |k| k.size);
        inner.bytes = inner.bytes.saturating_sub(old).saturating_add(size);
        self.trim(inner);
    }

    /// Forgets the oldest partitions until the bounds hold: over the count, any; over the
    /// bytes, only those holding a value (an empty one frees nothing).
    fn trim(&self, inner: &mut Inner<T>) {
        while inner.slots.len() > self.max_entries {
            let Some(pk) = inner.order.pop_front() else { break };
            inner.forget(&pk);
        }
        let mut passes = inner.order.len();
        while inner.bytes > self.max_bytes && passes > 0 {
            passes -= 1;
            let Some(pk) = inner.order.pop_front() else { break };
            match inner.slots.get(&pk) {
                Some(slot) if slot.kept.is_none() => inner.order.push_back(pk),
                _ => inner.forget(&pk),
            }
        }
    }
}

impl<T> Inner<T> {
    /// Drops the value kept for `pk`, if any; its partition stays tracked.
    fn drop_value(&mut self, pk: &str) {
        if let Some(kept) = self.slots.get_mut(pk).and_then(|slot| slot.kept.take()) {
            self.bytes = self.bytes.saturating_sub(kept.size);
        }
    }

    /// Stops tracking `pk` (its key already taken from `order`).
    fn forget(&mut self, pk: &str) {
        self.drop_value(pk);
        self.slots.remove(pk);
    }
}

impl<T: Clone + Send> Changes for Memo<T> {
    fn writing(&self, pks: &[&str]) {
        let mut inner = self.lock();
        let inner = &mut *inner;
        for pk in pks {
            *inner.writing.entry((*pk).to_owned()).or_insert(0) += 1;
            inner.drop_value(pk);
        }
    }

    fn written(&self, pks: &[&str]) {
        let mut inner = self.lock();
        let inner = &mut *inner;
        inner.seq = inner.seq.saturating_add(1);
        for pk in pks {
            if let Some(n) = inner.writing.get_mut(*pk) {
                *n = n.saturating_sub(1);
                if *n == 0 {
                    inner.writing.remove(*pk);
                }
            }
            if let Some(slot) = inner.slots.get_mut(*pk) {
                slot.written = inner.seq;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_value_read_before_a_write_is_not_kept_after_it() {
        let memo = Memo::<u32>::new(16, 1024);
        let before = memo.ticket("A");
        memo.writing(&["A"]);
        memo.written(&["A"]);
        memo.keep("A", before, 1, 1, None);
        assert_eq!(memo.get("A", 0), None, "the read may predate the write");
        let after = memo.ticket("A");
        memo.keep("A", after, 2, 1, None);
        assert_eq!(memo.get("A", 0), Some(2));
    }

    #[test]
    fn a_write_under_way_drops_the_value_and_refuses_fills_until_it_ends() {
        let memo = Memo::<u32>::new(16, 1024);
        memo.keep("A", memo.ticket("A"), 1, 1, None);
        memo.writing(&["A"]);
        assert_eq!(memo.get("A", 0), None);
        memo.keep("A", memo.ticket("A"), 2, 1, None);
        assert_eq!(memo.get("A", 0), None, "filled while the write was under way");
        memo.written(&["A"]);
        memo.keep("A", memo.ticket("A"), 3, 1, None);
        assert_eq!(memo.get("A", 0), Some(3));
    }

    #[test]
    fn a_partition_first_asked_for_during_its_write_is_not_filled_by_it() {
        let memo = Memo::<u32>::new(16, 1024);
        memo.writing(&["A"]);
        let during = memo.ticket("A");
        memo.keep("A", during, 1, 1, None);
        assert_eq!(memo.get("A", 0), None);
        memo.written(&["A"]);
        memo.keep("A", during, 1, 1, None);
        assert_eq!(memo.get("A", 0), None, "the ticket predates the write's end");
    }

    #[test]
    fn other_partitions_writes_leave_a_value_alone_and_take_no_entry() {
        let memo = Memo::<u32>::new(16, 1024);
        let t = memo.ticket("A");
        memo.writing(&["B"]);
        memo.written(&["B"]);
        memo.keep("A", t, 1, 1, None);
        assert_eq!(memo.get("A", 0), Some(1));
        assert_eq!(memo.lock().slots.len(), 1, "B was never asked for");
    }

    #[test]
    fn a_value_is_stale_from_its_expiry() {
        let memo = Memo::<u32>::new(16, 1024);
        memo.keep("A", memo.ticket("A"), 1, 1, Some(100));
        assert_eq!(memo.get("A", 99), Some(1));
        assert_eq!(memo.get("A", 100), None);
    }

    #[test]
    fn a_partition_forgotten_after_its_ticket_refuses_the_fill() {
        let memo = Memo::<u32>::new(2, 1024);
        let old = memo.ticket("A");
        // Two more partitions push A out; a write of A is then not tracked.
        memo.ticket("B");
        memo.ticket("C");
        memo.writing(&["A"]);
        memo.written(&["A"]);
        memo.keep("A", old, 9, 1, None);
        assert_eq!(memo.get("A", 0), None, "A was forgotten, so its old ticket is not trusted");
        // Asked for again, A's new slot is younger than the old ticket.
        memo.ticket("A");
        memo.keep("A", old, 9, 1, None);
        assert_eq!(memo.get("A", 0), None);
    }

    #[test]
    fn the_bounds_hold() {
        let memo = Memo::<u32>::new(3, 10);
        for (i, pk) in ["A", "B", "C", "D", "E"].iter().enumerate() {
            memo.keep(pk, memo.ticket(pk), i as u32, 4, None);
        }
        let kept: Vec<_> = ["A", "B", "C", "D", "E"].iter().filter_map(|pk| memo.get(pk, 0)).collect();
        assert_eq!(kept, vec![3, 4], "two values of 4 bytes fit in 10, the newest kept");
        memo.keep("F", memo.ticket("F"), 5, 11, None);
        assert_eq!(memo.get("F", 0), None, "bigger than the whole memo");
    }
}
