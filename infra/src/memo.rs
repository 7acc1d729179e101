//! Answers derived from one partition (an order as `GET` renders it), kept in memory while
//! nothing in that partition changes. Only for an engine every write of which passes through
//! this process and tells the memo of it, before and after its commit ([`Changes`]): the
//! embedded store of `shopping-local`, which owns its data dir. A Lambda instance sees
//! neither the other instances' writes nor the stream's, so the AWS host keeps none.
//!
//! A value read before a change is never kept after it: a fill takes a [`Ticket`] before its
//! read, and a partition being written, or written since that ticket, refuses it. The memo is
//! bounded in entries and bytes and forgets first-in first-out; forgetting a partition's last
//! write raises a floor below which every ticket is refused, so nothing forgotten is trusted.

use std::collections::{HashMap, VecDeque};
use std::sync::Mutex;

/// Told of every write of the engine, by partition key: `writing` before the write begins,
/// `written` once it is over (committed or not), both before the writer is answered.
pub trait Changes: Send + Sync {
    fn writing(&self, pks: &[&str]);
    fn written(&self, pks: &[&str]);
}

/// When a fill began its read: every change the memo was told of after it refuses the fill.
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
    /// Tickets below this are refused: a partition written after them was forgotten.
    floor: u64,
    bytes: usize,
    slots: HashMap<String, Slot<T>>,
    /// The slots' keys, oldest first (the order they are forgotten in).
    order: VecDeque<String>,
}

struct Slot<T> {
    /// Writes of this partition under way.
    writing: u32,
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
    /// At most `max_entries` partitions known and `max_bytes` of values kept.
    pub fn new(max_entries: usize, max_bytes: usize) -> Self {
        let inner = Inner { seq: 0, floor: 0, bytes: 0, slots: HashMap::new(), order: VecDeque::new() };
        Self { inner: Mutex::new(inner), max_entries: max_entries.max(1), max_bytes }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner<T>> {
        // A panic while holding the lock leaves counters, never a half-made value: go on.
        self.inner.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Take before reading what a value is derived from.
    pub fn ticket(&self) -> Ticket {
        Ticket(self.lock().seq)
    }

    /// The value kept for `pk`, unless it is stale at `now` (epoch seconds).
    pub fn get(&self, pk: &str, now: i64) -> Option<T> {
        let mut inner = self.lock();
        let inner = &mut *inner;
        let slot = inner.slots.get_mut(pk)?;
        let kept = slot.kept.as_ref()?;
        if kept.expires.is_some_and(|at| now >= at) {
            let size = slot.kept.take().map_or(0, |k| k.size);
            inner.bytes = inner.bytes.saturating_sub(size);
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
        if ticket.0 < inner.floor {
            return;
        }
        let inner = &mut *inner;
        let slot = match inner.slots.get_mut(pk) {
            Some(slot) if slot.writing > 0 || slot.written > ticket.0 => return,
            Some(slot) => slot,
            None => {
                inner.order.push_back(pk.to_owned());
                inner.slots.entry(pk.to_owned()).or_insert(Slot { writing: 0, written: 0, kept: None })
            }
        };
        let old = slot.kept.replace(Kept { value, size, expires }).map_or(0, |k| k.size);
        inner.bytes = inner.bytes.saturating_sub(old).saturating_add(size);
        self.trim(inner);
    }

    /// Forgets the oldest partitions until the bounds hold, raising the floor to the last
    /// write of each (a ticket taken before that write ended is below it). One being written stays (its `written` is still to come).
    fn trim(&self, inner: &mut Inner<T>) {
        let mut passes = inner.order.len();
        while (inner.slots.len() > self.max_entries || inner.bytes > self.max_bytes) && passes > 0 {
            passes -= 1;
            let Some(pk) = inner.order.pop_front() else { break };
            match inner.slots.get(&pk) {
                Some(slot) if slot.writing > 0 => inner.order.push_back(pk),
                Some(_) => {
                    if let Some(slot) = inner.slots.remove(&pk) {
                        inner.floor = inner.floor.max(slot.written);
                        inner.bytes = inner.bytes.saturating_sub(slot.kept.map_or(0, |k| k.size));
                    }
                }
                None => {}
            }
        }
    }
}

impl<T: Clone + Send> Changes for Memo<T> {
    fn writing(&self, pks: &[&str]) {
        let mut inner = self.lock();
        let inner = &mut *inner;
        for pk in pks {
            let slot = match inner.slots.get_mut(*pk) {
                Some(slot) => slot,
                None => {
                    inner.order.push_back((*pk).to_owned());
                    inner.slots.entry((*pk).to_owned()).or_insert(Slot { writing: 0, written: 0, kept: None })
                }
            };
            slot.writing = slot.writing.saturating_add(1);
            let size = slot.kept.take().map_or(0, |k| k.size);
            inner.bytes = inner.bytes.saturating_sub(size);
        }
        self.trim(inner);
    }

    fn written(&self, pks: &[&str]) {
        let mut inner = self.lock();
        let inner = &mut *inner;
        inner.seq = inner.seq.saturating_add(1);
        for pk in pks {
            if let Some(slot) = inner.slots.get_mut(*pk) {
                slot.writing = slot.writing.saturating_sub(1);
                slot.written = inner.seq;
            } else {
                // Cannot happen (a slot being written is never forgotten); be safe anyway.
                inner.floor = inner.floor.max(inner.seq);
            }
        }
        self.trim(inner);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_value_read_before_a_write_is_not_kept_after_it() {
        let memo = Memo::<u32>::new(16, 1024);
        let before = memo.ticket();
        memo.writing(&["A"]);
        memo.written(&["A"]);
        memo.keep("A", before, 1, 1, None);
        assert_eq!(memo.get("A", 0), None, "the read may predate the write");
        let after = memo.ticket();
        memo.keep("A", after, 2, 1, None);
        assert_eq!(memo.get("A", 0), Some(2));
    }

    #[test]
    fn a_write_under_way_drops_the_value_and_refuses_fills_until_it_ends() {
        let memo = Memo::<u32>::new(16, 1024);
        memo.keep("A", memo.ticket(), 1, 1, None);
        memo.writing(&["A"]);
        assert_eq!(memo.get("A", 0), None);
        memo.keep("A", memo.ticket(), 2, 1, None);
        assert_eq!(memo.get("A", 0), None, "filled while the write was under way");
        memo.written(&["A"]);
        memo.keep("A", memo.ticket(), 3, 1, None);
        assert_eq!(memo.get("A", 0), Some(3));
    }

    #[test]
    fn other_partitions_writes_leave_a_value_alone() {
        let memo = Memo::<u32>::new(16, 1024);
        let t = memo.ticket();
        memo.writing(&["B"]);
        memo.written(&["B"]);
        memo.keep("A", t, 1, 1, None);
        assert_eq!(memo.get("A", 0), Some(1));
    }

    #[test]
    fn a_value_is_stale_from_its_expiry() {
        let memo = Memo::<u32>::new(16, 1024);
        memo.keep("A", memo.ticket(), 1, 1, Some(100));
        assert_eq!(memo.get("A", 99), Some(1));
        assert_eq!(memo.get("A", 100), None);
    }

    #[test]
    fn forgetting_a_written_partition_refuses_every_older_ticket() {
        let memo = Memo::<u32>::new(2, 1024);
        let old = memo.ticket();
        memo.writing(&["A"]);
        memo.written(&["A"]);
        // Two more partitions push A's write out of the memo.
        memo.keep("B", memo.ticket(), 1, 1, None);
        memo.keep("C", memo.ticket(), 1, 1, None);
        memo.keep("A", old, 9, 1, None);
        assert_eq!(memo.get("A", 0), None, "A's write was forgotten, so the old ticket is not trusted");
    }

    #[test]
    fn the_bounds_hold() {
        let memo = Memo::<u32>::new(3, 10);
        for (i, pk) in ["A", "B", "C", "D", "E"].iter().enumerate() {
            memo.keep(pk, memo.ticket(), i as u32, 4, None);
        }
        let kept: Vec<_> = ["A", "B", "C", "D", "E"].iter().filter_map(|pk| memo.get(pk, 0)).collect();
        assert_eq!(kept, vec![3, 4], "two values of 4 bytes fit in 10, the newest kept");
        memo.keep("F", memo.ticket(), 5, 11, None);
        assert_eq!(memo.get("F", 0), None, "bigger than the whole memo");
    }
}
