//! DynamoDB's limits, enforced by the storage port on every engine so that the embedded store
//! refuses exactly what DynamoDB would, and a request that breaks one gets a 4xx naming the
//! cause instead of an opaque store failure.
//!
//! Sizes are those of the item as the DynamoDB engine stores it ([`item_size`] is that
//! engine's own size function): attribute names plus values, with documents of
//! [`COMPRESS_FROM`] bytes or more stored deflated when that is smaller.

use domain::table::{Item, Key, WriteOp};

/// An item holds at most 400 KB, attribute names included.
pub const MAX_ITEM_BYTES: usize = 400 * 1024;
/// A partition key value (table or index) is at most 2048 bytes.
pub const MAX_PARTITION_KEY_BYTES: usize = 2048;
/// A sort key value (table or index) is at most 1024 bytes.
pub const MAX_SORT_KEY_BYTES: usize = 1024;
/// One transaction holds at most 100 items...
pub const MAX_WRITE_ITEMS: usize = 100;
/// ...and at most 4 MB.
pub const MAX_WRITE_BYTES: usize = 4 * 1024 * 1024;
/// Documents at least this long are stored deflated: JSON shrinks three- to five-fold, and
/// write units are billed per KB (twice in a transaction, again for each index).
pub const COMPRESS_FROM: usize = 512;

/// Which limit a write breaks. Permanent: retrying the same request cannot help.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Limit {
    #[error("item {key:?} would be {size} bytes as stored; an item holds at most {MAX_ITEM_BYTES}")]
    ItemTooLarge { key: Key, size: usize },
    #[error("key attribute {attribute} would be {bytes} bytes; at most {max} are allowed")]
    KeyTooLong { attribute: &'static str, bytes: usize, max: usize },
    #[error("one write holds 1..={MAX_WRITE_ITEMS} items, not {count}")]
    TooManyItems { count: usize },
    #[error("one write would be {bytes} bytes; at most {MAX_WRITE_BYTES} are allowed")]
    WriteTooLarge { bytes: usize },
    /// DynamoDB refused the request for a limit this module does not model.
    #[error("the store refused the request: {0}")]
    Refused(String),
}

/// What the DynamoDB engine stores as an item's `doc` (or deflated, `docz`): the document and,
/// when events ride in the item, a newline and their JSON. Compact JSON never holds a raw
/// newline, so the split is exact; and one deflate stream over both lets an api-event's copy
/// of the request shrink against the document that request produced.
pub fn payload(i: &Item) -> std::borrow::Cow<'_, str> {
    match &i.events {
        Some(ev) => format!("{}\n{ev}", i.doc).into(),
        None => i.doc.as_str().into(),
    }
}

/// The document and riding events of a stored payload.
pub fn split_payload(mut text: String) -> (String, Option<String>) {
    match text.find('\n') {
        Some(at) => {
            let events = text.split_off(at);
            (text, events.get(1..).map(str::to_owned))
        }
        None => (text, None),
    }
}

/// The deflated form of a document, when it is worth storing instead of the text.
pub fn pack(doc: &str) -> Option<Vec<u8>> {
    (doc.len() >= COMPRESS_FROM).then(|| deflate(doc.as_bytes())).flatten().filter(|z| z.len() < doc.len())
}

/// The deflate level documents are stored at.
const LEVEL: i32 = 6;

std::thread_local! {
    /// One compressor per thread: libdeflate's holds its match-finder tables (some 300 KB),
    /// which a fresh one would allocate for every document. It compresses a whole buffer in
    /// one call, keeping no state between documents.
    static COMPRESSOR: std::cell::RefCell<Option<libdeflater::Compressor>> = const { std::cell::RefCell::new(None) };
}

/// Raw deflate of `input` at [`LEVEL`], by libdeflate: at the same level it writes what
/// miniz_oxide did within a few bytes, in about 60 % of the time (a draft's 1.2 KB: 13 against
/// 22 µs; 5 KB: 26 against 43 µs; BENCHMARKS.md, "Local load"), and a create deflates its
/// draft to bill it.
fn deflate(input: &[u8]) -> Option<Vec<u8>> {
    let run = |c: &mut libdeflater::Compressor| {
        let mut out = vec![0; c.deflate_compress_bound(input.len())];
        let n = c.deflate_compress(input, &mut out).ok()?;
        out.truncate(n);
        Some(out)
    };
    let reused = COMPRESSOR.try_with(|cell| {
        let mut slot = cell.try_borrow_mut().ok()?;
        run(slot.get_or_insert_with(compressor))
    });
    // Without the thread's compressor (torn down, or in use further up this thread's stack):
    // a fresh one, the same bytes. (`None` only if libdeflate failed with room for its
    // bound: the text is then stored as it is.)
    reused.ok().flatten().or_else(|| run(&mut compressor()))
}

/// A compressor at [`LEVEL`] (libdeflate's default level, should that ever be refused).
fn compressor() -> libdeflater::Compressor {
    libdeflater::Compressor::new(libdeflater::CompressionLvl::new(LEVEL).unwrap_or_default())
}

/// Bytes of a number attribute: DynamoDB stores up to 38 digits in (digits / 2) + 1 bytes.
fn number_size(n: i128) -> usize {
    n.unsigned_abs().to_string().len().div_ceil(2).saturating_add(1)
}

/// The billed size of an item as the DynamoDB engine stores it. `packed` is the deflated
/// document when the caller already has it.
pub fn stored_size(i: &Item, packed: Option<&[u8]>) -> usize {
    let text = |name: &str, v: &Option<String>| v.as_ref().map_or(0, |v| name.len().saturating_add(v.len()));
    let doc = match packed {
        Some(z) => "docz".len().saturating_add(z.len()),
        None => "doc".len().saturating_add(payload(i).len()),
    };
    [
        "pk".len().saturating_add(i.pk.len()),
        "sk".len().saturating_add(i.sk.len()),
        text("gsi1pk", &i.gsi1pk),
        text("gsi1sk", &i.gsi1sk),
        text("gsi2pk", &i.gsi2pk),
        text("gsi2sk", &i.gsi2sk),
        text("sum", &i.summary),
        i.ttl.map_or(0, |t| "ttl".len().saturating_add(number_size(t.into()))),
        "version".len().saturating_add(number_size(i.version.into())),
        // The write id every put carries (16 random bytes).
        "wid".len().saturating_add(16),
        // The stream filter's marker of an item carrying events.
        if i.events.is_some() { "ev".len().saturating_add(1) } else { 0 },
        doc,
    ]
    .into_iter()
    .fold(0usize, usize::saturating_add)
}

/// [`stored_size`] deciding the packing itself, as the engine does on write.
pub fn item_size(i: &Item) -> usize {
    stored_size(i, pack(&payload(i)).as_deref())
}

/// Bounds on [`item_size`] without deflating anything: exact for a document stored as text,
/// else from a deflated document of one byte up to the text (packing is kept only when
/// smaller). Billing rounds to whole units, so the bounds often settle it without the cost
/// of compressing.
pub fn item_size_bounds(i: &Item) -> (usize, usize) {
    let plain = stored_size(i, None);
    if payload(i).len() < COMPRESS_FROM {
        (plain, plain)
    } else {
        (stored_size(i, Some(&[0])).min(plain), plain)
    }
}

/// The billed size of what an index holds of an item (keys, `ttl`, summary): what one index
/// write of it costs, by the KB.
pub fn projected_size(i: &Item) -> usize {
    let text = |name: &str, v: &Option<String>| v.as_ref().map_or(0, |v| name.len().saturating_add(v.len()));
    [
        "pk".len().saturating_add(i.pk.len()),
        "sk".len().saturating_add(i.sk.len()),
        text("gsi1pk", &i.gsi1pk),
        text("gsi1sk", &i.gsi1sk),
        text("gsi2pk", &i.gsi2pk),
        text("gsi2sk", &i.gsi2sk),
        text("sum", &i.summary),
        i.ttl.map_or(0, |t| "ttl".len().saturating_add(number_size(t.into()))),
    ]
    .into_iter()
    .fold(0usize, usize::saturating_add)
}

/// The size used for limit checks: the plain size when that already fits (packing only ever
/// makes an item smaller), so the common case costs no compression.
fn checked_size(i: &Item) -> usize {
    let plain = stored_size(i, None);
    if plain <= MAX_ITEM_BYTES {
        plain
    } else {
        item_size(i)
    }
}

fn check_key(attribute: &'static str, v: Option<&str>, max: usize) -> Result<(), Limit> {
    match v {
        Some(v) if v.len() > max => Err(Limit::KeyTooLong { attribute, bytes: v.len(), max }),
        _ => Ok(()),
    }
}

/// Checks a write against every limit above.
pub fn check(ops: &[WriteOp]) -> Result<(), Limit> {
    if ops.is_empty() || ops.len() > MAX_WRITE_ITEMS {
        return Err(Limit::TooManyItems { count: ops.len() });
    }
    let mut total = 0usize;
    for op in ops {
        let key = op.key();
        check_key("pk", Some(&key.pk), MAX_PARTITION_KEY_BYTES)?;
        check_key("sk", Some(&key.sk), MAX_SORT_KEY_BYTES)?;
        if let WriteOp::Put { item, .. } = op {
            check_key("gsi1pk", item.gsi1pk.as_deref(), MAX_PARTITION_KEY_BYTES)?;
            check_key("gsi1sk", item.gsi1sk.as_deref(), MAX_SORT_KEY_BYTES)?;
            check_key("gsi2pk", item.gsi2pk.as_deref(), MAX_PARTITION_KEY_BYTES)?;
            check_key("gsi2sk", item.gsi2sk.as_deref(), MAX_SORT_KEY_BYTES)?;
            let size = checked_size(item);
            if size > MAX_ITEM_BYTES {
                return Err(Limit::ItemTooLarge { key, size });
            }
            total = total.saturating_add(size);
        }
    }
    if ops.len() > 1 && total > MAX_WRITE_BYTES {
        return Err(Limit::WriteTooLarge { bytes: total });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use domain::table::Condition;

    fn put(item: Item) -> WriteOp {
        WriteOp::Put { item, cond: Some(Condition::NotExists) }
    }

    /// `n` characters that deflate can hardly shrink: uniform over 90 printable symbols
    /// (~6.5 bits each), the same for the same `seed`.
    fn noise(n: usize, seed: u64) -> String {
        let mut x = seed.wrapping_add(0x9E37_79B9_7F4A_7C15);
        (0..n)
            .map(|_| {
                x = x.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
                char::from(b'!' + u8::try_from((x >> 33) % 90).unwrap_or(0))
            })
            .collect()
    }

    /// The reused compressor writes exactly what a fresh one does, document after document
    /// (nothing of the one before may carry over), for small, large and incompressible input,
    /// and what it writes inflates back to the document.
    #[test]
    fn a_reused_compressor_deflates_as_a_fresh_one() {
        let json = r#"{"id":"d1","items":[{"line_id":1,"description":"Mug","quantity":2}]}"#.repeat(40);
        let docs = [json.clone(), noise(700, 1), "x".repeat(600), json.repeat(50), noise(200_000, 2), json];
        for doc in &docs {
            let z = deflate(doc.as_bytes()).unwrap();
            let mut fresh = compressor();
            let mut out = vec![0; fresh.deflate_compress_bound(doc.len())];
            let n = fresh.deflate_compress(doc.as_bytes(), &mut out).unwrap();
            assert_eq!(z, out[..n]);
            assert_eq!(miniz_oxide::inflate::decompress_to_vec(&z).unwrap(), doc.as_bytes());
            // With the thread's compressor in use further up the stack, a fresh one writes
            // the same bytes.
            let nested = COMPRESSOR.with(|c| {
                let _held = c.borrow_mut();
                deflate(doc.as_bytes()).unwrap()
            });
            assert_eq!(nested, z);
        }
    }

    #[test]
    fn oversized_items_and_keys_are_refused() {
        let ok = Item::new(Key::new("A#T1#D#x", "DRAFT"), 1, "{}".into());
        assert_eq!(check(&[put(ok.clone())]), Ok(()));
        // Text that deflate cannot shrink below the limit.
        let big = Item { doc: noise(560_000, 3), ..ok.clone() };
        assert!(matches!(check(&[put(big)]), Err(Limit::ItemTooLarge { .. })));
        // Compressible text of the same length fits once deflated.
        let repetitive = Item { doc: "ab".repeat(MAX_ITEM_BYTES), ..ok.clone() };
        assert_eq!(check(&[put(repetitive)]), Ok(()));
        let long_index_key = Item { gsi2pk: Some("c".repeat(2049)), gsi2sk: Some("s".into()), ..ok.clone() };
        assert!(matches!(check(&[put(long_index_key)]), Err(Limit::KeyTooLong { attribute: "gsi2pk", .. })));
        let many: Vec<WriteOp> =
            (0..101).map(|n| put(Item::new(Key::new(format!("p{n}"), "s"), 0, "{}".into()))).collect();
        assert_eq!(check(&many), Err(Limit::TooManyItems { count: 101 }));
    }

    #[test]
    fn number_sizes_follow_dynamodb() {
        assert_eq!(number_size(0), 2);
        assert_eq!(number_size(12), 2);
        assert_eq!(number_size(123), 3);
        assert_eq!(number_size(1_800_000_000), 6);
    }
}
