//! `shopping-local`: the whole API on one server over the embedded store, and the token tool.

use crate::app::answer::Answers;
use crate::edge::auth::{sign, Auth, Claims};
use crate::edge::state::AppState;
use infra::sqlite::SqliteStore;
use infra::webhook::{SystemResolver, WebhookClient};
use infra::{Clock, SystemClock};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;

pub const STORE_FILE: &str = "shopping.db";
pub const SECRET_FILE: &str = "signing-secret";
/// Held (locked) by the server serving the data dir, for as long as it runs.
pub const LOCK_FILE: &str = "serve.lock";
/// Partitions the memo of answers tracks at most: those asked for (see `infra::memo`).
pub const ANSWERS_MAX_PARTITIONS: usize = 4096;

#[derive(Debug, thiserror::Error)]
pub enum LocalError {
    #[error("data directory {0}: {1}")]
    DataDir(PathBuf, std::io::Error),
    #[error("store: {0}")]
    Store(#[from] infra::StoreError),
    #[error("data directory {0} is being served by another shopping-local (it holds {LOCK_FILE} there)")]
    InUse(PathBuf),
    #[error("SHOPPING_CLOCK_OFFSET_SECONDS must be an integer number of seconds within ±100 years")]
    ClockOffset,
    #[error("--expires-in must be a positive number of seconds within 100 years")]
    ExpiresIn,
    #[error("cannot listen on {0}: {1}")]
    Listen(String, std::io::Error),
    #[error("{0}")]
    Webhooks(String),
    #[error("token: {0}")]
    Token(#[from] jsonwebtoken::errors::Error),
}

/// `SHOPPING_CLOCK_OFFSET_SECONDS=N` shifts the clock forward (a testing aid for retention).
pub fn clock_from_env() -> Result<SystemClock, LocalError> {
    match std::env::var("SHOPPING_CLOCK_OFFSET_SECONDS") {
        Ok(v) => v.trim().parse().ok().and_then(SystemClock::shifted).ok_or(LocalError::ClockOffset),
        Err(_) => Ok(SystemClock::default()),
    }
}

/// The signing secret of a data dir, created (random, owner-only) on first use.
pub fn secret(data_dir: &Path) -> Result<Vec<u8>, LocalError> {
    let io = |e| LocalError::DataDir(data_dir.to_owned(), e);
    std::fs::create_dir_all(data_dir).map_err(io)?;
    let path = data_dir.join(SECRET_FILE);
    if let Ok(s) = std::fs::read(&path) {
        if s.len() >= 32 {
            return Ok(s);
        }
    }
    let mut s = [0u8; 32];
    getrandom::fill(&mut s).map_err(|e| io(std::io::Error::other(e.to_string())))?;
    let hex: String = s.iter().map(|b| format!("{b:02x}")).collect();
    let mut opts = std::fs::OpenOptions::new();
    opts.write(true).create(true).truncate(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut opts, 0o600);
    let mut f = opts.open(&path).map_err(io)?;
    f.write_all(hex.as_bytes()).and_then(|_| f.sync_all()).map_err(io)?;
    Ok(hex.into_bytes())
}

/// The state of the local server: embedded store in `data_dir`, verified HS256 tokens, a
/// memo of rendered answers of `answers_bytes` (0: none); and the store itself, whose outbox
/// the background consumer drains.
pub fn state(
    data_dir: &Path,
    key: &[u8],
    clock: Arc<dyn Clock>,
    webhook_loopback: bool,
    answers_bytes: usize,
) -> Result<(AppState, Arc<SqliteStore>), LocalError> {
    let store = Arc::new(SqliteStore::open(&data_dir.join(STORE_FILE), clock.clone())?);
    let state = AppState::local(store.clone(), clock, Auth::hs256(key)).allow_loopback(webhook_loopback);
    // Every write of this store passes through this process (`serve` holds the data dir).
    let state = remember_answers(state, &store, answers_bytes);
    Ok((state, store))
}

/// `state` keeping up to `bytes` of rendered answers (0: none), told of every write by
/// `store`, which must be the engine under `state`'s store and written by this process alone.
/// A store already telling another listener keeps `state` as it is: a memo nobody tells of
/// writes would answer stale.
pub fn remember_answers(state: AppState, store: &SqliteStore, bytes: usize) -> AppState {
    if bytes == 0 {
        return state;
    }
    let answers = Arc::new(Answers::new(ANSWERS_MAX_PARTITIONS, bytes));
    if !store.tell(answers.clone()) {
        tracing::warn!("the store already tells another listener of its writes; answers are not kept");
        return state;
    }
    state.with(|s| s.answers = Some(answers))
}

pub async fn serve(
    addr: &str,
    data_dir: &Path,
    webhook_loopback: bool,
    limits: super::listener::Limits,
    answers_bytes: usize,
) -> Result<(), LocalError> {
    // One server per data dir: its memo of answers trusts that every write is its own, and
    // two servers would both drain the one outbox. The lock goes when the process does.
    let _serving = hold(data_dir)?;
    let clock = Arc::new(clock_from_env()?);
    if clock.offset_seconds != 0 {
        tracing::warn!(offset_seconds = clock.offset_seconds, "clock shifted by SHOPPING_CLOCK_OFFSET_SECONDS");
    }
    let key = secret(data_dir)?;
    let (state, store) = state(data_dir, &key, clock.clone(), webhook_loopback, answers_bytes)?;
    let client = WebhookClient::new(Arc::new(SystemResolver), webhook_loopback).map_err(LocalError::Webhooks)?;
    tokio::spawn(crate::workers::publisher::run_local(store.clone(), clock));
    tokio::spawn(crate::workers::deliverer::run_local(state.clone(), client));
    let app = router(state, key, Some(store.clone()));
    tokio::spawn(sweep(store));
    let listener = tokio::net::TcpListener::bind(addr).await.map_err(|e| LocalError::Listen(addr.to_owned(), e))?;
    let bound = listener.local_addr().map_or_else(|_| addr.to_owned(), |a| a.to_string());
    tracing::info!(addr = %bound, data_dir = %data_dir.display(), "shopping-local listening");
    // One plain line on stdout, for people and scripts (e.g. with `--addr 127.0.0.1:0`).
    println!("shopping-local listening on http://{bound}");
    super::listener::serve(listener, app, limits, async {
        let _ = tokio::signal::ctrl_c().await;
    })
    .await;
    Ok(())
}

/// Locks the data dir's [`LOCK_FILE`] for this process, or says who holds it.
fn hold(data_dir: &Path) -> Result<std::fs::File, LocalError> {
    std::fs::create_dir_all(data_dir).map_err(|e| LocalError::DataDir(data_dir.to_owned(), e))?;
    let path = data_dir.join(LOCK_FILE);
    let file = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&path)
        .map_err(|e| LocalError::DataDir(path.clone(), e))?;
    match file.try_lock() {
        Ok(()) => Ok(file),
        Err(std::fs::TryLockError::WouldBlock) => Err(LocalError::InUse(data_dir.to_owned())),
        Err(std::fs::TryLockError::Error(e)) => Err(LocalError::DataDir(path, e)),
    }
}

/// The local server's router: the whole API, the token endpoint, `/metrics`, `/openapi.json`
/// and `/docs`.
pub fn app(state: AppState, key: Vec<u8>) -> axum::Router {
    router(state, key, None)
}

/// [`app`], with the embedded store's group-commit counters on `/metrics` when given.
fn router(state: AppState, key: Vec<u8>, store: Option<Arc<SqliteStore>>) -> axum::Router {
    let issuer = Arc::new(crate::api::issuer::token::Issuer {
        store: state.store.clone(),
        clock: state.clock.clone(),
        legacy_key: crate::app::clients::LegacyKey::Fixed(key.clone()),
        signer: Some(Arc::new(crate::api::issuer::signing::SharedSecret(key))),
    });
    let usage = state.usage.clone();
    let metrics = axum::Router::new().route(
        "/metrics",
        axum::routing::get(move || {
            let usage = usage.clone();
            let store = store.clone();
            async move {
                let mut text = match &usage {
                    crate::metering::Sink::Registry(r) => r.prometheus(),
                    crate::metering::Sink::Emf => String::new(),
                };
                if let Some(store) = store {
                    text.push_str(&commit_metrics(store.commit_stats()));
                }
                ([(axum::http::header::CONTENT_TYPE, "text/plain; version=0.0.4")], text)
            }
        }),
    );
    // The routes beside the API get the same request line and id (the API's routers have
    // theirs from `crate::finish`).
    let others = crate::api::issuer::token::router(issuer)
        .merge(metrics)
        .merge(crate::api::reference::router())
        .layer(axum::middleware::from_fn(crate::edge::http::log_request));
    crate::app(state).merge(others)
}

/// The writer's counters in Prometheus text: writes over commits is the group-commit factor.
fn commit_metrics(s: infra::sqlite::CommitStats) -> String {
    format!(
        "# HELP shopping_store_commits_total Transactions the embedded store committed (each one fsync).\n\
         # TYPE shopping_store_commits_total counter\n\
         shopping_store_commits_total {}\n\
         # HELP shopping_store_writes_total API writes those transactions carried.\n\
         # TYPE shopping_store_writes_total counter\n\
         shopping_store_writes_total {}\n",
        s.commits, s.writes
    )
}

/// The embedded store of `data_dir` and the key its legacy client hashes were made with.
pub fn client_store(
    data_dir: &Path,
    clock: Arc<dyn Clock>,
) -> Result<(Arc<dyn infra::Store>, crate::app::clients::LegacyKey), LocalError> {
    let key = secret(data_dir)?;
    let store = SqliteStore::open(&data_dir.join(STORE_FILE), clock)?;
    Ok((Arc::new(store), crate::app::clients::LegacyKey::Fixed(key)))
}

/// How often the embedded store's expired items are removed.
const SWEEP_EVERY: std::time::Duration = std::time::Duration::from_secs(60);

/// Removes expired items now and then, as DynamoDB's TTL does (reads never show them anyway).
async fn sweep(store: Arc<SqliteStore>) {
    let mut every = tokio::time::interval(SWEEP_EVERY);
    loop {
        every.tick().await;
        match store.sweep().await {
            Ok(0) => {}
            Ok(n) => tracing::info!(removed = n, "expired items swept"),
            Err(e) => tracing::warn!(error = %e, "sweep failed; retrying later"),
        }
    }
}

pub fn token(data_dir: &Path, account: &str, scopes: &str, expires_in: i64) -> Result<String, LocalError> {
    let key = secret(data_dir)?;
    let now = clock_from_env()?.epoch();
    if !(1..=infra::clock::MAX_OFFSET_SECONDS).contains(&expires_in) {
        return Err(LocalError::ExpiresIn);
    }
    let claims = Claims {
        aid: account.to_owned(),
        scope: scopes.to_owned(),
        sub: "local-developer".into(),
        exp: now.saturating_add(expires_in),
    };
    Ok(sign(&claims, &key)?)
}
