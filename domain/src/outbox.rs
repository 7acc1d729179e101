//! The outbox: how the events of a change travel, so that a change costs one single-item write.
//!
//! The event a change produces rides inside the item it changes (`Item::events`, a JSON list
//! of [`EventRecord`]s), written by the same conditional put; an event therefore exists if and
//! only if its change does. The table's stream (on the embedded engine, its outbox table)
//! hands every new item image to the outbox consumer, which writes the event's history item
//! `EVENT#{version}` and, later, publishes it. Reads merge the history items of a partition
//! with the records still riding in its item ([`Timeline`]), so a read shows the event its
//! write produced before any history item exists.
//!
//! A record keeps riding, version after version, until a read of the partition shows its
//! history item: whatever the consumer's lag, no event is ever missing from a read. When more
//! than [`MAX_RIDING`] records would ride (the consumer is down or far behind), the change
//! writes the older ones' history items itself, in the same (then transactional) write, so an
//! item never grows without bound.

use crate::model::Event;
use crate::table::{self, Item, Key, WriteOp};
use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;
use std::collections::BTreeMap;

/// At most this many records ride in one item; older unflushed ones are written out.
pub const MAX_RIDING: usize = 4;

/// One event with the webhook event names it produces.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EventRecord {
    pub event: Event,
    #[serde(default)]
    pub webhooks: Vec<String>,
}

impl EventRecord {
    pub fn new(event: Event, webhooks: &[&str]) -> Self {
        Self { event, webhooks: webhooks.iter().map(|s| s.to_string()).collect() }
    }

    pub fn version(&self) -> u64 {
        self.event.version.unwrap_or(0)
    }
}

/// How a record is stored: a request body that is JSON is kept as JSON rather than as an
/// escaped string, so that deflate matches it against the document the request produced
/// (an item is billed by the stored KB). Reading restores the exact text.
#[derive(Serialize, Deserialize)]
struct Stored<'a> {
    event: std::borrow::Cow<'a, Event>,
    #[serde(default)]
    webhooks: std::borrow::Cow<'a, [String]>,
    #[serde(default, skip_serializing_if = "Option::is_none", borrow)]
    body: Option<&'a RawValue>,
}

impl<'a> Stored<'a> {
    fn of(rec: &'a EventRecord) -> Self {
        let text = rec.event.request.as_ref().and_then(|r| r.body.as_deref());
        // Only when the text survives as it is (no surrounding whitespace to lose).
        let raw = text.and_then(|t| serde_json::from_str::<&RawValue>(t).ok().filter(|r| r.get() == t));
        match raw {
            Some(raw) => {
                let mut event = rec.event.clone();
                if let Some(r) = event.request.as_mut() {
                    r.body = None;
                }
                Self { event: std::borrow::Cow::Owned(event), webhooks: (&rec.webhooks[..]).into(), body: Some(raw) }
            }
            None => {
                Self { event: std::borrow::Cow::Borrowed(&rec.event), webhooks: (&rec.webhooks[..]).into(), body: None }
            }
        }
    }

    fn into_record(self) -> EventRecord {
        let mut event = self.event.into_owned();
        if let (Some(raw), Some(r)) = (self.body, event.request.as_mut()) {
            r.body = Some(raw.get().to_owned());
        }
        EventRecord { event, webhooks: self.webhooks.into_owned() }
    }
}

fn encode_all(recs: &[EventRecord]) -> String {
    let stored: Vec<Stored<'_>> = recs.iter().map(Stored::of).collect();
    // Serialising plain data structs to JSON cannot fail.
    serde_json::to_string(&stored).unwrap_or_default()
}

/// The stored text of one record (a history item's document).
pub fn encode(rec: &EventRecord) -> String {
    serde_json::to_string(&Stored::of(rec)).unwrap_or_default()
}

/// A record from its stored text.
pub fn decode(text: &str) -> Result<EventRecord, serde_json::Error> {
    serde_json::from_str::<Stored<'_>>(text).map(Stored::into_record)
}

/// The history item of one event in partition `pk`. History never changes, so writing it
/// again (a redelivered stream record) is harmless and needs no condition.
pub fn history_item(pk: &str, rec: &EventRecord) -> Item {
    let version = rec.version();
    Item::new(Key::new(pk, table::event_sk(version)), version, encode(rec))
}

/// Lets `new` ride in `item` together with the records still unflushed; when too many would
/// ride, the oldest get their history items written by `ops` instead.
pub fn attach(item: &mut Item, mut unflushed: Vec<EventRecord>, new: EventRecord, ops: &mut Vec<WriteOp>) {
    unflushed.retain(|r| r.version() != new.version());
    unflushed.sort_by_key(EventRecord::version);
    let keep_from = unflushed.len().saturating_sub(MAX_RIDING.saturating_sub(1));
    for rec in unflushed.drain(..keep_from) {
        ops.push(WriteOp::Put { item: history_item(&item.pk, &rec), cond: None });
    }
    unflushed.push(new);
    item.events = Some(encode_all(&unflushed));
}

/// The records riding in an item.
pub fn riding(item: &Item) -> Result<Vec<EventRecord>, serde_json::Error> {
    match &item.events {
        Some(json) => {
            let stored: Vec<Stored<'_>> = serde_json::from_str(json)?;
            Ok(stored.into_iter().map(Stored::into_record).collect())
        }
        None => Ok(Vec::new()),
    }
}

/// What the outbox consumer takes from one new item image: the records of the item's own
/// version, i.e. those its write produced (older riders were taken from earlier images).
pub fn fresh(item: &Item) -> Result<Vec<EventRecord>, serde_json::Error> {
    Ok(riding(item)?.into_iter().filter(|r| r.version() == item.version).collect())
}

/// The events of one partition as a read finds them: history items, plus the records riding
/// in the partition's item.
#[derive(Debug, Clone, Default)]
pub struct Timeline {
    history: BTreeMap<u64, Event>,
    riding: Vec<EventRecord>,
}

impl Timeline {
    pub fn add_history(&mut self, rec: EventRecord) {
        self.history.insert(rec.version(), rec.event);
    }

    /// Replaces the riding records with those of a fresher read of the item.
    pub fn set_riding(&mut self, riding: Vec<EventRecord>) {
        self.riding = riding;
    }

    /// The newest version with a history item seen: a re-read needs only later ones.
    pub fn last_flushed(&self) -> Option<u64> {
        self.history.keys().next_back().copied()
    }

    /// Every event, oldest first, each version once.
    pub fn events(&self) -> Vec<Event> {
        let mut all = self.history.clone();
        for r in &self.riding {
            all.entry(r.version()).or_insert_with(|| r.event.clone());
        }
        all.into_values().collect()
    }

    /// The riding records whose history item this read did not see: they ride on.
    pub fn unflushed(&self) -> Vec<EventRecord> {
        self.riding.iter().filter(|r| !self.history.contains_key(&r.version())).cloned().collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rec(v: u64) -> EventRecord {
        EventRecord::new(Event { version: Some(v), ..Default::default() }, &["shopping_draft_update"])
    }

    #[test]
    fn riding_is_bounded_and_the_rest_is_written_out() {
        let mut item = Item::new(Key::new("A#T1#D#x", "DRAFT"), 9, "{}".into());
        let mut ops = Vec::new();
        attach(&mut item, (3..9).map(rec).collect(), rec(9), &mut ops);
        let kept: Vec<u64> = riding(&item).unwrap().iter().map(EventRecord::version).collect();
        assert_eq!(kept, vec![6, 7, 8, 9]);
        let written: Vec<String> = ops.iter().map(|o| o.key().sk).collect();
        assert_eq!(written, vec![table::event_sk(3), table::event_sk(4), table::event_sk(5)]);
        assert_eq!(fresh(&item).unwrap(), vec![rec(9)]);
    }

    #[test]
    fn a_json_request_body_is_stored_as_json_and_read_back_exactly() {
        for body in [r#"{"order": {"currency":"NOK"}}"#, " {\"padded\": 1} ", "not json", "\"a string\""] {
            let mut r = rec(1);
            r.event.request = Some(crate::model::EventRequest { body: Some(body.into()), ..Default::default() });
            let text = encode(&r);
            assert_eq!(decode(&text).unwrap(), r, "{body}");
            let mut item = Item::new(Key::new("p", "DRAFT"), 1, "{}".into());
            attach(&mut item, Vec::new(), r.clone(), &mut Vec::new());
            assert_eq!(riding(&item).unwrap(), vec![r]);
        }
        let mut r = rec(1);
        r.event.request = Some(crate::model::EventRequest { body: Some(r#"{"a":1}"#.into()), ..Default::default() });
        assert!(encode(&r).contains(r#""body":{"a":1}"#));
    }

    #[test]
    fn a_read_merges_history_and_riders_once_each() {
        let mut t = Timeline::default();
        t.add_history(rec(0));
        t.add_history(rec(1));
        t.set_riding(vec![rec(1), rec(2)]);
        let versions: Vec<Option<u64>> = t.events().iter().map(|e| e.version).collect();
        assert_eq!(versions, vec![Some(0), Some(1), Some(2)]);
        assert_eq!(t.unflushed(), vec![rec(2)]);
        assert_eq!(t.last_flushed(), Some(1));
    }
}
