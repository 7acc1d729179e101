//! The one optimistic write loop every resource group writes through (drafts, orders,
//! payments, hook subscriptions): read, decide, write conditioned on the version read; on a
//! lost race pause (jittered exponential back-off), re-read only what changed and decide
//! again, so no write is lost; after the retry budget, a 409. Around it, for the aggregates:
//! idempotent replay and answering with the events the request asked for. It answers a
//! [`Written`] (version and JSON body), which the api layer turns into a response.
//!
//! Beside it, for the workers' bookkeeping that needs no fresh decision (history items,
//! delivery records, the delivery guard): [`write_retried`], the same write again after the
//! same pauses while the store only asks to be called again.

use super::aggregate::{Aggregate, Loaded};
use super::error::{parse, AppError, Result};
use super::idempotency::{Idem, Replay};
use super::partition;
use super::retry::Backoff;
use super::shown::{Kinds, Shown};
use super::RandomIds;
use domain::change::{Ctx, Outcome};
use domain::ids::Ids;
use domain::model::Event;
use domain::table::{self, Key, WriteOp};
use infra::{Clock, SkCond, Store, StoreError};
use std::future::Future;

/// A write request as the use cases see it: who, when and through which request (`ctx`),
/// the version `If-Match` pinned, and the `Idempotency-Key`.
pub struct WriteRequest {
    pub ctx: Ctx,
    pub expected: Option<u64>,
    pub idem: Option<Idem>,
}

/// What a write answers: the resource's version (its `ETag`) and the JSON body.
pub struct Written {
    pub version: u64,
    pub body: String,
}

/// How one attempt of the loop ended: done, or a race lost, with what re-reading needs.
pub enum Step<R, T> {
    Done(T),
    Lost(R),
}

/// The write loop: `attempt` on what was read; after a lost race, a pause, then `reread`
/// and another attempt; after the retry budget, [`AppError::too_many_races`].
pub async fn run<S, R, T, A, AF, B, BF>(first: S, mut attempt: A, mut reread: B) -> Result<T>
where
    A: FnMut(S) -> AF,
    AF: Future<Output = Result<Step<R, T>>>,
    B: FnMut(R) -> BF,
    BF: Future<Output = Result<S>>,
{
    let mut backoff = Backoff::new();
    let mut read = first;
    loop {
        match attempt(read).await? {
            Step::Done(t) => return Ok(t),
            Step::Lost(again) => {
                if !backoff.pause().await {
                    return Err(AppError::too_many_races());
                }
                read = reread(again).await?;
            }
        }
    }
}

/// Writes `ops`; `false` when a condition failed or another write interfered (a lost race).
pub async fn write_or_lost(store: &dyn Store, ops: Vec<WriteOp>) -> Result<bool> {
    match store.write(ops).await {
        Ok(()) => Ok(true),
        Err(StoreError::ConditionFailed { .. } | StoreError::Contention) => Ok(false),
        Err(e) => Err(e.into()),
    }
}

/// Writes `ops`, again after a pause (the write loop's [`Backoff`]) while the store answers
/// that a retry will work — another transaction touched the items ([`StoreError::Contention`])
/// or it throttled the call past the SDK's retries ([`StoreError::Throttled`]) — for writes
/// that stay right however late they land (idempotent puts, or puts conditioned on a
/// version the caller holds). A failed condition or any other error is the answer.
pub async fn write_retried(store: &dyn Store, ops: Vec<WriteOp>) -> Result<(), StoreError> {
    let mut backoff = Backoff::new();
    loop {
        match store.write(ops.clone()).await {
            Err(StoreError::Contention | StoreError::Throttled(_)) if backoff.pause().await => {}
            done => return done,
        }
    }
}

/// Answers with a stored response. One stored without its events gets those up to its
/// version from the resource's partition, shown as this request asks.
async fn respond<T: Shown>(store: &dyn Store, replay: Replay, kinds: &Kinds) -> Result<Written> {
    let Some(pk) = replay.events_pk else { return Ok(Written { version: replay.version, body: replay.body }) };
    let mut shown: T = parse("stored response", &replay.body)?;
    let head = table::head_sk(&pk);
    let part = partition::read(store, pk, SkCond::Any, head).await?;
    let upto = |e: &Event| e.version.is_some_and(|v| v <= replay.version);
    shown.present(true, part.timeline.events().into_iter().filter(upto).collect(), kinds);
    Ok(Written { version: replay.version, body: to_json(&shown)? })
}

fn to_json<T: serde::Serialize>(v: &T) -> Result<String> {
    serde_json::to_string(v).map_err(|e| AppError::corrupt("response", e))
}

/// The stored response for the request's `Idempotency-Key`, when it has one that was used.
pub async fn replayed<T: Shown>(store: &dyn Store, req: &WriteRequest, kinds: &Kinds) -> Result<Option<Written>> {
    match Idem::lookup_if(req.idem.as_ref(), store).await? {
        Some(r) => respond::<T>(store, r, kinds).await.map(Some),
        None => Ok(None),
    }
}

/// Runs a command on the aggregate `key` names through the write loop.
pub async fn mutate<A: Aggregate, T: Shown>(
    store: &dyn Store,
    clock: &dyn Clock,
    req: &WriteRequest,
    key: &str,
    kinds: &Kinds,
    command: impl Fn(&Ctx, &mut dyn Ids, A::Record) -> domain::error::Result<Outcome<T>> + Send + Sync,
) -> Result<Written> {
    if let Some(done) = replayed::<T>(store, req, kinds).await? {
        return Ok(done);
    }
    let aid = &req.ctx.aid;
    let first = A::load(store, aid, key).await?;
    let command = &command;
    run(
        first,
        |loaded: Loaded<A::Record>| async move {
            let current = A::version(&loaded.rec);
            if req.expected.is_some_and(|v| v != current) {
                return Err(AppError::PreconditionFailed { current });
            }
            let Loaded { rec, timeline, pk } = loaded;
            let out = command(&req.ctx, &mut RandomIds, rec)?;
            Ok(match commit(store, clock, req, out, &timeline.events(), Some(&pk), kinds).await? {
                Some(done) => Step::Done(done),
                None => Step::Lost((pk, timeline)),
            })
        },
        |(pk, timeline)| A::reload(store, aid, pk, timeline),
    )
    .await
}

/// Runs a command that creates a resource under freshly drawn ids through the write loop:
/// only a drawn id can collide (a reserved `order_id`), so a lost race draws again.
pub async fn create<T: Shown>(
    store: &dyn Store,
    clock: &dyn Clock,
    req: &WriteRequest,
    command: impl Fn(&Ctx, &mut dyn Ids) -> domain::error::Result<Outcome<T>> + Send + Sync,
) -> Result<Written> {
    if let Some(done) = replayed::<T>(store, req, &None).await? {
        return Ok(done);
    }
    let command = &command;
    run(
        (),
        |()| async move {
            let out = command(&req.ctx, &mut RandomIds)?;
            let pk = out.ops.first().map(|op| op.key().pk);
            Ok(match commit(store, clock, req, out, &[], pk.as_deref(), &None).await? {
                Some(done) => Step::Done(done),
                None => Step::Lost(()),
            })
        },
        |()| async { Ok(()) },
    )
    .await
}

/// Writes an outcome (with the idempotency record, when the request has a key) and answers
/// with its resource. `Ok(None)` means a race was lost and the command should be re-applied.
/// `events_pk` is the partition the response's events live in.
async fn commit<T: Shown>(
    store: &dyn Store,
    clock: &dyn Clock,
    req: &WriteRequest,
    out: Outcome<T>,
    known: &[Event],
    events_pk: Option<&str>,
    kinds: &Kinds,
) -> Result<Option<Written>> {
    let idem = req.idem.as_ref();
    let mut shown = out.resource;
    let version = out.version;
    let mut ops = out.ops;
    let new = shown.take_new();
    // Stored without the history, which the replay re-reads (see `respond`).
    let lean = if idem.is_some() && !ops.is_empty() { Some(to_json(&shown)?) } else { None };
    let history_pk = events_pk.filter(|_| shown.replays_events()).map(str::to_owned);
    let had = new.is_some();
    let mut all = known.to_vec();
    all.extend(new.unwrap_or_default());
    shown.present(had, all, kinds);
    let body = to_json(&shown)?;
    if ops.is_empty() {
        // Nothing changes (e.g. a repeated create with a client-chosen id).
        return Ok(Some(Written { version, body }));
    }
    if let (Some(idem), Some(lean)) = (idem, lean) {
        ops.push(idem.record(clock.epoch(), version, lean, history_pk));
    }
    let keys: Vec<Key> = ops.iter().map(|o| o.key()).collect();
    match store.write(ops).await {
        Ok(()) => Ok(Some(Written { version, body })),
        Err(StoreError::ConditionFailed { index, current }) => {
            let failed = keys.get(index);
            if let (Some(idem), Some(k)) = (idem, failed) {
                if k == idem.key() {
                    // The same request raced itself: answer with what the winner stored.
                    let replay = idem
                        .lookup(store)
                        .await?
                        .ok_or_else(|| AppError::corrupt("idempotency record", "vanished after its put failed"))?;
                    return respond::<T>(store, replay, kinds).await.map(Some);
                }
            }
            if let Some((_, oid)) = out.custom_order_ids.iter().find(|(k, _)| Some(k) == failed) {
                return Err(AppError::Conflict {
                    code: "DUPLICATE_ORDER_ID",
                    message: format!("an order with order_id `{oid}` already exists"),
                });
            }
            if req.expected.is_some() && failed.is_some() && failed == out.pinned.as_ref() {
                // The resource moved on after If-Match was checked; the failed write returned it.
                let current = current.map_or(0, |c| c.version);
                return Err(AppError::PreconditionFailed { current });
            }
            Ok(None)
        }
        Err(StoreError::Contention) => Ok(None),
        Err(e) => Err(e.into()),
    }
}
