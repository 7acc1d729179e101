//! What every handler shares: the store, the clock, how callers are authenticated, and where
//! webhook delivery jobs go.

use crate::auth::Auth;
use infra::queue::{JobQueue, StoreQueue};
use infra::{Clock, Store};
use std::sync::Arc;

#[derive(Clone)]
pub struct AppState {
    pub store: Arc<dyn Store>,
    pub clock: Arc<dyn Clock>,
    pub auth: Arc<Auth>,
    /// Webhook URLs may point at loopback (`shopping-local --webhook-allow-loopback`).
    pub webhook_loopback: bool,
    /// Where webhook delivery jobs (pings, redeliveries) go.
    pub jobs: Arc<dyn JobQueue>,
    /// Where per-tenant usage goes.
    pub usage: crate::usage::Sink,
}

impl AppState {
    /// A state whose delivery jobs go to the store's own queue (the local deliverer's).
    pub fn local(store: Arc<dyn Store>, clock: Arc<dyn Clock>, auth: Auth) -> Self {
        let jobs = Arc::new(StoreQueue(store.clone()));
        let store = Arc::new(crate::usage::MeteredStore(store));
        Self { store, clock, auth: Arc::new(auth), webhook_loopback: false, jobs, usage: crate::usage::Sink::local() }
    }
}

/// Ids from the operating system's random source.
pub struct RandomIds;

impl domain::ids::Ids for RandomIds {
    fn uuid(&mut self) -> String {
        uuid::Uuid::new_v4().to_string()
    }

    fn alphanumeric9(&mut self) -> String {
        const ALPHABET: &[u8] = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ";
        let mut out = String::with_capacity(9);
        while out.len() < 9 {
            let mut buf = [0u8; 16];
            if getrandom::fill(&mut buf).is_err() {
                // Fall back to a v4 UUID's random bytes; both come from the OS.
                buf = *uuid::Uuid::new_v4().as_bytes();
            }
            // Rejection sampling keeps every character equally likely.
            for b in buf {
                if out.len() < 9 && b < 252 {
                    if let Some(c) = ALPHABET.get(usize::from(b % 36)) {
                        out.push(char::from(*c));
                    }
                }
            }
        }
        out
    }
}
