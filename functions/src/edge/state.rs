//! What every handler shares: the store, the clock, how callers are authenticated, where
//! webhook delivery jobs go and where usage is recorded — built in one place,
//! [`AppState::new`], from the parts a host chooses, so no host overrides another's wiring.

use super::auth::{Auth, Verifier};
use crate::metering::{MeteredStore, Sink};
use axum::extract::FromRef;
use infra::queue::{JobQueue, StoreQueue};
use infra::sharded::{ShardCounts, ShardedStore};
use infra::{Clock, Store};
use std::sync::Arc;

/// The shared parts behind one `Arc`: axum clones the state for every layer a request
/// crosses, and one reference count is what a clone then costs (its eight `Arc`s, cloned
/// and dropped per layer, were 5 % of a GET's CPU on `shopping-local`; BENCHMARKS.md).
#[derive(Clone)]
pub struct AppState(Arc<Shared>);

#[derive(Clone)]
pub struct Shared {
    /// The store, metered: each request's read and write units are counted.
    pub store: Arc<dyn Store>,
    pub clock: Arc<dyn Clock>,
    pub auth: Arc<Auth>,
    /// Webhook URLs may point at loopback (`shopping-local --webhook-allow-loopback`).
    pub webhook_loopback: bool,
    /// Where webhook delivery jobs (pings, redeliveries, recoveries) go.
    pub jobs: Arc<dyn JobQueue>,
    /// Where per-tenant usage goes.
    pub usage: Sink,
    /// Per-account request limits (over the unmetered store).
    pub limiter: Arc<super::limit::Limiter>,
    /// Each account's list shard count, as the limiter last read it (the store reads it).
    pub shards: Arc<ShardCounts>,
    /// Rendered `GET` answers kept while their partition is unchanged: only where the store
    /// tells them of every write (`shopping-local`; see [`crate::app::answer`]).
    pub answers: Option<Arc<crate::app::answer::Answers>>,
}

impl std::ops::Deref for AppState {
    type Target = Shared;

    fn deref(&self) -> &Shared {
        &self.0
    }
}

impl AppState {
    /// The one builder: every host names its store, clock, authentication, queue and sink.
    ///
    /// The engine is wrapped twice: list partitions sharded per account (`infra::sharded`),
    /// then metered. The limiter reads the unsharded engine (its partition is no list) and
    /// tells the sharded store each account's shard count as it reads the override.
    pub fn new(store: Arc<dyn Store>, clock: Arc<dyn Clock>, auth: Auth, jobs: Arc<dyn JobQueue>, usage: Sink) -> Self {
        let shards = Arc::new(ShardCounts::default());
        let limiter = Arc::new(
            super::limit::Limiter::new(store.clone(), clock.clone(), super::limit::Limiter::default_from_env())
                .with_shards(shards.clone()),
        );
        let sharded = Arc::new(ShardedStore::new(store, shards.clone(), clock.clone()));
        let store = Arc::new(MeteredStore(sharded));
        Self(Arc::new(Shared {
            store,
            clock,
            auth: Arc::new(auth),
            webhook_loopback: false,
            jobs,
            usage,
            limiter,
            shards,
            answers: None,
        }))
    }

    /// A state whose delivery jobs go to the store's own queue (the local deliverer's) and
    /// whose usage is kept in memory (served at `/metrics`).
    pub fn local(store: Arc<dyn Store>, clock: Arc<dyn Clock>, auth: Auth) -> Self {
        let jobs = Arc::new(StoreQueue(store.clone()));
        Self::new(store, clock, auth, jobs, Sink::local())
    }

    /// This state with `change` made to its parts (the builders below; tests).
    pub fn with(self, change: impl FnOnce(&mut Shared)) -> Self {
        let mut shared = Arc::unwrap_or_clone(self.0);
        change(&mut shared);
        Self(Arc::new(shared))
    }

    /// Per-account limits with this default (tests, benches).
    pub fn with_limiter(self, limiter: super::limit::Limiter) -> Self {
        let limiter = Arc::new(limiter.with_shards(self.shards.clone()));
        self.with(|s| s.limiter = limiter)
    }

    /// Webhook URLs may point at loopback.
    pub fn allow_loopback(self, allow: bool) -> Self {
        self.with(|s| s.webhook_loopback = allow)
    }
}

impl FromRef<AppState> for Verifier {
    fn from_ref(state: &AppState) -> Self {
        Self { auth: state.auth.clone(), clock: state.clock.clone() }
    }
}
