//! The workers: what runs beside the API rather than in answer to a request — the stream
//! publisher (the outbox's events onto the bus, or locally into the delivery queue) and the
//! webhook deliverer.

pub mod deliverer;
pub mod publisher;
