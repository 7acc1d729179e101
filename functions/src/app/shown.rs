//! How a write's answer shows the event history: which event types a response shows
//! (`include_events`), and, per resource, where the events the command added sit and how the
//! whole history is put back for the answer (and for a replay, which re-reads it).

use domain::model::{Draft, Event, Order, OrderSession};
use serde::de::DeserializeOwned;
use serde::Serialize;

/// Which event types a response shows (`include_events`); `None` shows none.
pub type Kinds = Option<Vec<&'static str>>;

/// A response a write answers with, and how it shows the event history.
pub trait Shown: Serialize + DeserializeOwned + Send {
    /// Takes the events the command added out of the response (`None`: it shows none).
    fn take_new(&mut self) -> Option<Vec<Event>> {
        None
    }
    /// Shows the history (`all`: every event up to the response's version) as asked;
    /// `had` tells whether the command's response showed events.
    fn present(&mut self, _had: bool, _all: Vec<Event>, _kinds: &Kinds) {}
    /// Whether a stored response re-reads its events on replay.
    fn replays_events(&self) -> bool {
        false
    }
}

impl Shown for Draft {
    fn take_new(&mut self) -> Option<Vec<Event>> {
        self.events.take()
    }
    fn present(&mut self, had: bool, all: Vec<Event>, _: &Kinds) {
        if had {
            self.events = Some(all);
        }
    }
    fn replays_events(&self) -> bool {
        // A completion answers with the draft envelope, which shows no events.
        self.orders.is_none()
    }
}

impl Shown for Order {
    fn take_new(&mut self) -> Option<Vec<Event>> {
        self.state = None;
        self.events.take()
    }
    fn present(&mut self, _: bool, all: Vec<Event>, kinds: &Kinds) {
        show_order_events(self, all, kinds);
    }
    fn replays_events(&self) -> bool {
        true
    }
}

impl Shown for Event {}
impl Shown for OrderSession {}
impl Shown for domain::model::PaymentOperation {}

/// Puts the events `kinds` asks for, and their combined `state`, on an order.
pub fn show_order_events(order: &mut Order, all: Vec<Event>, kinds: &Kinds) {
    if let Some(kinds) = kinds {
        let events: Vec<Event> =
            all.into_iter().filter(|e| kinds.contains(&e.event_type.as_deref().unwrap_or(""))).collect();
        order.state = Some(domain::events::combined_state(&events).to_owned());
        order.events = Some(events);
    }
}
