//! Reading one list page from an index, the same way for every list (drafts, orders, the
//! customer and store views): newest first from a cursor, each entry's compact summary tested
//! first, then only the documents the page still needs fetched in batches and tested whole.
//! The first query reads `limit` entries and each next one four times more (up to
//! [`MAX_SCAN_PAGE`]), so an unfiltered page reads no more than it shows and a rare filter
//! still needs few round trips.

use super::error::{parse, Result};
use domain::list::Summary;
use domain::table::{Index, Item, Key};
use infra::{Cursor, Query, SkCond, Store};
use std::collections::HashMap;

/// Index entries read by the last and largest queries while a page fills.
pub const MAX_SCAN_PAGE: usize = 400;

/// Where a page reads: an index partition, a sort-key range, a starting point.
pub struct Scan {
    pub index: Index,
    pub pk: String,
    pub sk: SkCond,
    pub start: Option<Cursor>,
    pub limit: usize,
}

/// One page: at most `scan.limit` documents that `admits` lets through on their summary and
/// `matches` keeps (answering what the page shows of each), newest first.
pub async fn page<T>(
    store: &dyn Store,
    scan: Scan,
    admits: impl Fn(&Summary) -> bool,
    matches: impl Fn(&Item, &Summary) -> Result<Option<T>>,
) -> Result<Vec<(Item, T)>> {
    let Scan { index, pk, sk, start, limit: want } = scan;
    let mut cursor = start;
    let mut found: Vec<(Item, T)> = Vec::with_capacity(want);
    let mut read = want;
    loop {
        let q = Query {
            index: Some(index),
            pk: pk.clone(),
            sk: sk.clone(),
            forward: false,
            limit: read,
            start_after: cursor.take(),
        };
        read = read.saturating_mul(4).min(MAX_SCAN_PAGE);
        let page = store.query(&q).await?;
        let mut admitted = Vec::new();
        for entry in &page.items {
            let summary: Summary =
                entry.summary.as_deref().map(|s| parse("summary", s)).transpose()?.unwrap_or_default();
            if entry.summary.is_none() || admits(&summary) {
                admitted.push(entry.key());
            }
        }
        // Fetch only as many admitted documents as the page still needs, batch by batch.
        let mut rest = admitted.as_slice();
        while !rest.is_empty() && found.len() < want {
            let (batch, tail) = rest.split_at(want.saturating_sub(found.len()).clamp(1, rest.len()));
            rest = tail;
            let mut docs: HashMap<Key, Item> = store.get_many(batch).await?.into_iter().map(|i| (i.key(), i)).collect();
            for key in batch {
                let Some(item) = docs.remove(key) else { continue };
                let summary: Summary =
                    item.summary.as_deref().map(|s| parse("summary", s)).transpose()?.unwrap_or_default();
                if let Some(shown) = matches(&item, &summary)? {
                    found.push((item, shown));
                }
            }
        }
        match page.next {
            Some(c) if found.len() < want => cursor = Some(c),
            _ => break,
        }
    }
    Ok(found)
}
