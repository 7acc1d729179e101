//! An item as this engine stores it: the port's item as DynamoDB attributes through
//! `serde_dynamo`, the payload deflated when that is smaller, and back.

use super::Attrs;
use crate::limits;
use crate::port::{Item, StoreError};

/// Inflating never produces more than DynamoDB's item limit could hold uncompressed many
/// times over; a corrupt or hostile value cannot exhaust memory.
const INFLATE_LIMIT: usize = 16 * 1024 * 1024;

/// The item as stored in DynamoDB: `doc` as text, or `docz` (raw deflate) when smaller.
#[derive(serde::Serialize, serde::Deserialize)]
struct Stored {
    pk: String,
    sk: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    gsi1pk: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    gsi1sk: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    gsi2pk: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    gsi2sk: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    ttl: Option<i64>,
    /// Absent from index projections, like the payload.
    #[serde(default)]
    version: u64,
    /// The list summary: with the keys and `ttl`, all the indexes project.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    sum: Option<String>,
    /// The payload (see [`limits::payload`]): the document and the riding events.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    doc: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none", with = "serde_bytes")]
    docz: Option<Vec<u8>>,
    /// Set when events ride in the payload: the stream's filter passes only these images.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    ev: Option<bool>,
    /// The id of the write that stored this version: lets a retried put recognise its own
    /// earlier attempt (see `put_one`). Not part of the port's item.
    #[serde(default, skip_serializing_if = "Option::is_none", with = "serde_bytes")]
    wid: Option<Vec<u8>>,
}

pub(super) fn to_attrs(i: &Item) -> Result<Attrs, StoreError> {
    let payload = limits::payload(i);
    let packed = limits::pack(&payload);
    let stored = Stored {
        pk: i.pk.clone(),
        sk: i.sk.clone(),
        gsi1pk: i.gsi1pk.clone(),
        gsi1sk: i.gsi1sk.clone(),
        gsi2pk: i.gsi2pk.clone(),
        gsi2sk: i.gsi2sk.clone(),
        ttl: i.ttl,
        version: i.version,
        sum: i.summary.clone(),
        doc: packed.is_none().then(|| payload.into_owned()),
        docz: packed,
        ev: i.events.is_some().then_some(true),
        wid: Some(uuid::Uuid::new_v4().as_bytes().to_vec()),
    };
    serde_dynamo::to_item(stored).map_err(|e| StoreError::Invalid(format!("cannot encode item: {e}")))
}

fn unreadable(e: &dyn std::fmt::Display) -> StoreError {
    StoreError::Corrupt(e.to_string().into())
}

pub(super) fn from_attrs(a: Attrs) -> Result<Item, StoreError> {
    from_stored(serde_dynamo::from_item(a).map_err(|e| unreadable(&e))?)
}

/// An item from a DynamoDB stream record's image (as Lambda delivers it).
pub fn item_from_image(image: impl Into<serde_dynamo::Item>) -> Result<Item, StoreError> {
    from_stored(serde_dynamo::from_item(image).map_err(|e| unreadable(&e))?)
}

fn from_stored(s: Stored) -> Result<Item, StoreError> {
    let payload = match (s.doc, s.docz) {
        (Some(d), _) => d,
        (None, Some(z)) => {
            let raw =
                miniz_oxide::inflate::decompress_to_vec_with_limit(&z, INFLATE_LIMIT).map_err(|e| unreadable(&e))?;
            String::from_utf8(raw).map_err(|e| unreadable(&e))?
        }
        // An index projection: keys, `ttl` and the summary only.
        (None, None) => String::new(),
    };
    let (doc, events) = limits::split_payload(payload);
    Ok(Item {
        pk: s.pk,
        sk: s.sk,
        gsi1pk: s.gsi1pk,
        gsi1sk: s.gsi1sk,
        gsi2pk: s.gsi2pk,
        gsi2sk: s.gsi2sk,
        ttl: s.ttl,
        version: s.version,
        doc,
        events,
        summary: s.sum,
    })
}
