//! One page of a partition spread over shards (an account's lists, a subscription's deliveries): a page from each shard (queried in one
//! round, in parallel), merged in the index's order — newest first for the lists — and cut
//! where it is still exact. A shard that has more entries than it returned may hold entries
//! that sort after its last returned one, so the merged page keeps only the entries that sort
//! before every such shard's last returned entry (at least that shard's own entries survive,
//! so a page is never empty while entries remain). The page's cursor is the key of the last
//! entry it returns, never a shard's own position: every shard resumes after that entry's
//! index sort key, which orders entries the same in every shard (`{created_at}#{id}`, then the
//! table key), so paging neither skips nor repeats an entry, and entries added meanwhile sort
//! before the cursor and are not shown, as on a single partition.

use crate::table::{Index, Item};
use std::cmp::Ordering;

/// What one shard answered: its entries in the index's order, and whether more follow.
#[derive(Debug, Clone, Default)]
pub struct ShardPage {
    pub items: Vec<Item>,
    pub more: bool,
}

/// A partition's order of two entries, ascending: on an index, its sort key, then the table
/// key (as both engines and DynamoDB order an index partition); on the table, the sort key.
fn order(index: Option<Index>, a: &Item, b: &Item) -> Ordering {
    match index {
        Some(index) => {
            let key = |i: &Item| (i.index_key(index).map(|(_, sk)| sk.to_owned()), i.pk.clone(), i.sk.clone());
            key(a).cmp(&key(b))
        }
        None => a.sk.cmp(&b.sk).then_with(|| a.pk.cmp(&b.pk)),
    }
}

/// Merges the shards' pages into at most `limit` entries in the query's direction
/// (`forward` = ascending); answers them and whether more may follow.
pub fn merge(pages: Vec<ShardPage>, index: Option<Index>, forward: bool, limit: usize) -> (Vec<Item>, bool) {
    let directed = |a: &Item, b: &Item| if forward { order(index, a, b) } else { order(index, b, a) };
    // The earliest (in the query's direction) of the last entries of shards with more: past
    // it, an entry not yet read might come first.
    let mut cut: Option<Item> = None;
    let mut more = false;
    let mut all = Vec::new();
    for page in pages {
        if page.more {
            more = true;
            if let Some(last) = page.items.last() {
                if cut.as_ref().is_none_or(|c| directed(last, c) == Ordering::Less) {
                    cut = Some(last.clone());
                }
            }
        }
        all.extend(page.items);
    }
    all.sort_by(directed);
    if let Some(cut) = &cut {
        let safe = all.iter().take_while(|i| directed(i, cut) != Ordering::Greater).count();
        all.truncate(safe);
    }
    if all.len() > limit {
        all.truncate(limit);
        more = true;
    }
    (all, more)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::table::Key;

    fn entry(shard: u32, at: u32) -> Item {
        let mut i = Item::new(Key::new(format!("A#T12345678#O#{at:04}"), "ORDER"), 1, String::new());
        i.gsi1pk = Some(format!("A#T12345678#ORDERS#{shard}"));
        i.gsi1sk = Some(format!("2026-11-27T12:00:{at:04}#{at:04}"));
        i
    }

    /// Newest first over shards, page by page, with the cursor the last entry returned: every
    /// entry once, in order, whatever the shards' interleaving and the page size.
    #[test]
    fn paging_through_interleaved_shards_shows_each_entry_once_in_order() {
        // 3 shards, entries 0..60 dealt unevenly (runs of one shard, then alternation).
        let owner = |at: u32| {
            if at < 20 {
                0
            } else if at < 25 {
                2
            } else {
                at % 3
            }
        };
        let shards: Vec<Vec<Item>> =
            (0..3).map(|s| (0..60).rev().filter(|&at| owner(at) == s).map(|at| entry(s, at)).collect()).collect();
        for (limit, per_shard) in [(10, 10), (10, 3), (7, 1), (1, 1), (25, 4)] {
            let mut shown = Vec::new();
            let mut after: Option<Item> = None;
            loop {
                let pages = shards
                    .iter()
                    .map(|entries| {
                        let rest: Vec<Item> = entries
                            .iter()
                            .filter(|i| after.as_ref().is_none_or(|a| order(Some(Index::Gsi1), i, a) == Ordering::Less))
                            .cloned()
                            .collect();
                        ShardPage { more: rest.len() > per_shard, items: rest.into_iter().take(per_shard).collect() }
                    })
                    .collect();
                let (page, more) = merge(pages, Some(Index::Gsi1), false, limit);
                assert!(page.len() <= limit);
                assert!(!page.is_empty() || !more, "an empty page only at the end");
                after = page.last().cloned().or(after);
                shown.extend(page.iter().map(|i| i.pk.clone()));
                if !more {
                    break;
                }
            }
            let want: Vec<String> = (0..60).rev().map(|at| format!("A#T12345678#O#{at:04}")).collect();
            assert_eq!(shown, want, "limit {limit}, {per_shard} a shard");
        }
    }

    #[test]
    fn a_shard_with_more_holds_the_page_back_to_its_last_entry() {
        let a = ShardPage { items: vec![entry(0, 50), entry(0, 40)], more: true };
        let b = ShardPage { items: vec![entry(1, 45), entry(1, 10)], more: false };
        let (page, more) = merge(vec![a, b], Some(Index::Gsi1), false, 10);
        let ats: Vec<&str> = page.iter().map(|i| i.pk.as_str()).collect();
        assert_eq!(ats, ["A#T12345678#O#0050", "A#T12345678#O#0045", "A#T12345678#O#0040"]);
        assert!(more);
        let (page, more) = merge(vec![ShardPage::default(), ShardPage::default()], Some(Index::Gsi1), false, 10);
        assert!(page.is_empty() && !more);
    }
}
