//! Webhook delivery: which subscriptions an event goes to, one signed attempt and its record,
//! and the two deliverers around them. Locally, a background task of `shopping-local` over a
//! queue in the embedded store: retries with growing pauses, then a dead state, visible and
//! redeliverable in the deliveries list. On AWS, the `deliverer` Lambda fed by the SQS queue
//! an EventBridge rule fills: an event from the bus fans out into one job message per
//! subscription, so each subscription is retried (visibility timeout) and dead-lettered (the
//! queue's DLQ) on its own.
//!
//! Every attempt of one event to one subscription sends the same bytes with the same
//! `event-delivery` (one id per event and subscription), `webhook-id` (the event's id) and
//! `webhook-timestamp` (its first attempt), so receivers de-duplicate; each attempt is its
//! own record, with its own id, in the deliveries list.
//!
//! On AWS every hop hands things on at least once (a stream record, a bus event, a queue
//! message may come twice, a job even to two deliverers at once), so a job message passes
//! its delivery guard first (`domain::hooks::guard`): a copy of a job already delivered is
//! acknowledged without a POST, a record or a meter; one whose attempt is under way elsewhere
//! is seen again shortly; only the copy that claims the guard attempts, and marks it
//! delivered or failed after. Locally the queue's key does that work (see [`enqueue`]).

use crate::app::subscriptions::{self, job, Recent};
use crate::app::write::write_retried;
use crate::app::AppError;
use crate::edge::state::AppState;
use domain::hooks::{
    self, Claim, Delivery, DeliveryRequest, DeliveryResponse, Outcome, Pending, SubscriptionRecord, Verdict,
};
use domain::table::{Condition, Item, WriteOp};
use domain::webhook::WebhookEvent;
use infra::queue::{JobQueue, SqsQueue};
use infra::webhook::{sign_sha1, sign_standard, WebhookClient};
use infra::{query_all, Query, SkCond, Store, StoreError};
use lambda_http::aws_lambda_events::event::sqs::{BatchItemFailure, SqsBatchResponse, SqsEvent, SqsMessage};
use std::collections::HashSet;
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// The clock's now in epoch milliseconds.
pub fn now_ms(clock: &dyn infra::Clock) -> i64 {
    clock.epoch_ms()
}

fn doc<T: serde::Serialize>(v: &T) -> String {
    serde_json::to_string(v).unwrap_or_default()
}

/// One job per active subscription of each event's account that takes the event.
pub async fn fan_out(store: &dyn Store, events: &[WebhookEvent], now_ms: i64) -> Result<Vec<Pending>, StoreError> {
    let mut jobs = Vec::new();
    let mut subs_of: std::collections::HashMap<String, Vec<SubscriptionRecord>> = Default::default();
    for ev in events {
        if !subs_of.contains_key(&ev.account_id) {
            subs_of.insert(ev.account_id.clone(), subscriptions::all(store, &ev.account_id).await?);
        }
        let subs = subs_of.get(&ev.account_id).into_iter().flatten().filter(|s| hooks::wants(s, &ev.event));
        jobs.extend(subs.map(|sub| job(sub, ev, now_ms)));
    }
    Ok(jobs)
}

/// [`fan_out`] on AWS: the account's subscriptions as read once for the batch of messages
/// being handled ([`subscriptions::Recent`]), not again for every event.
pub async fn fan_out_recent(
    state: &AppState,
    recent: &Recent,
    events: &[WebhookEvent],
    now_ms: i64,
) -> Result<Vec<Pending>, StoreError> {
    let mut jobs = Vec::new();
    for ev in events {
        let subs = recent.of(state.store.as_ref(), &ev.account_id, now_ms).await?;
        jobs.extend(subs.iter().filter(|(s, _)| hooks::wants(s, &ev.event)).map(|(sub, _)| job(sub, ev, now_ms)));
    }
    Ok(jobs)
}

/// [`receiving`] on AWS, from the subscriptions read for the batch being handled.
pub async fn receiving_recent(
    state: &AppState,
    recent: &Recent,
    p: &Pending,
) -> Result<Option<(SubscriptionRecord, u64)>, AppError> {
    let subs = recent.of(state.store.as_ref(), &p.aid, now_ms(state.clock.as_ref())).await?;
    Ok(subs.iter().find(|(s, _)| s.sub.id == p.hook_id && s.sub.active).cloned())
}

/// Queues `events` in the local queue for every subscription that takes them. Already
/// queued (a replayed outbox entry) is fine: the same key, so nothing doubles.
pub async fn enqueue(store: &dyn Store, events: &[WebhookEvent], now_ms: i64) -> Result<usize, StoreError> {
    let jobs = fan_out(store, events, now_ms).await?;
    let writes = jobs.iter().map(|job| vec![WriteOp::Put { item: job.item(0), cond: Some(Condition::NotExists) }]);
    let mut queued = 0;
    for result in store.write_each(writes.collect()).await {
        match result {
            Ok(()) => queued += 1,
            Err(StoreError::ConditionFailed { .. }) => {}
            Err(e) => return Err(e),
        }
    }
    Ok(queued)
}

/// Names the sender and its version to receivers (and their firewalls and logs).
pub const USER_AGENT: &str = concat!("Shopping-Webhooks/", env!("CARGO_PKG_VERSION"));

/// The headers of one attempt (without secrets).
pub fn headers(p: &Pending, secret: Option<&str>) -> Vec<(String, String)> {
    let body = p.body.as_bytes();
    let mut h = vec![
        ("content-type".to_owned(), hooks::CONTENT_TYPE.to_owned()),
        ("user-agent".to_owned(), USER_AGENT.to_owned()),
        ("event".to_owned(), p.event.clone()),
        ("event-delivery".to_owned(), p.event_delivery.clone()),
        ("webhook-id".to_owned(), p.event_id.clone()),
        ("webhook-timestamp".to_owned(), p.timestamp.to_string()),
    ];
    if let Some(secret) = secret {
        h.push(("event-signature".to_owned(), sign_sha1(secret, body)));
        h.push(("webhook-signature".to_owned(), sign_standard(secret, &p.event_id, p.timestamp, body)));
    }
    h
}

/// A sortable delivery id: epoch milliseconds, then random.
pub fn delivery_id(now_ms: i64) -> String {
    format!("{now_ms:013}-{}", uuid::Uuid::new_v4().simple())
}

/// Makes one attempt of `p` to `sub`, the last one if it is attempt `max_attempts`;
/// answers the delivery record.
pub async fn attempt(
    client: &WebhookClient,
    sub: &SubscriptionRecord,
    p: &Pending,
    max_attempts: u32,
    now_ms: i64,
    now: &str,
) -> Delivery {
    let headers = headers(p, sub.secret.as_deref());
    let a = client.post(&sub.sub.config.url, &headers, p.body.clone().into_bytes()).await;
    let attempt = p.attempts.saturating_add(1);
    let outcome = match (&a.failure, a.blocked) {
        (None, _) => Outcome::Delivered,
        (Some(_), _) if attempt >= max_attempts => Outcome::Dead,
        (Some(_), true) => Outcome::Blocked,
        (Some(_), false) => Outcome::Failed,
    };
    Delivery {
        id: delivery_id(now_ms),
        hook_id: sub.sub.id.clone(),
        event_id: p.event_id.clone(),
        event: p.event.clone(),
        event_delivery: p.event_delivery.clone(),
        attempt,
        created_at: now.to_owned(),
        request: DeliveryRequest {
            url: sub.sub.config.url.clone(),
            headers: headers.into_iter().collect(),
            body: p.body.clone(),
        },
        response: a.status.map(|status| DeliveryResponse { status, headers: a.headers, body: a.body_excerpt }),
        duration_ms: a.duration_ms,
        outcome,
        reason: a.failure,
    }
}

/// The record of an attempt, kept for the deliveries list.
pub fn delivery_item(aid: &str, d: &Delivery, now_epoch: i64) -> Item {
    let mut item = Item::new(hooks::delivery_key(aid, &d.hook_id, &d.id), 0, doc(d));
    item.ttl = Some(now_epoch.saturating_add(hooks::DELIVERY_RETENTION_SECONDS));
    item
}

/// The write that records a subscription's failure streak, when it changes: a success ends
/// it; one that lasts [`hooks::DISABLE_AFTER_SECONDS`] disables the subscription (not
/// deleted). Conditioned on the version read: a concurrent change of the subscription wins.
fn streak_write(
    aid: &str,
    sub: &SubscriptionRecord,
    version: u64,
    delivered: bool,
    now_epoch: i64,
) -> Option<Vec<WriteOp>> {
    let mut next = sub.clone();
    match (delivered, sub.failing_since) {
        (true, None) => return None,
        (true, Some(_)) => next.failing_since = None,
        (false, None) => next.failing_since = Some(now_epoch),
        (false, Some(since)) if now_epoch.saturating_sub(since) >= hooks::DISABLE_AFTER_SECONDS && sub.sub.active => {
            tracing::warn!(hook = %sub.sub.id, "subscription failing for days: disabled");
            next.sub.active = false;
        }
        (false, Some(_)) => return None,
    }
    let item = subscriptions::item(aid, &next, version.saturating_add(1));
    Some(vec![WriteOp::Put { item, cond: Some(Condition::VersionIs(version)) }])
}

/// One attempt made, and the writes that record it.
pub struct Attempted {
    pub delivery: Delivery,
    /// The delivery record: it must be written for the attempt to count as done with.
    pub record: Vec<WriteOp>,
    /// The subscription's failure streak, when it changed (best effort).
    pub streak: Option<Vec<WriteOp>>,
}

impl Attempted {
    /// The delivery, and its writes: the record first, then the streak when it changed.
    fn into_writes(self) -> (Delivery, Vec<Vec<WriteOp>>) {
        let mut writes = vec![self.record];
        writes.extend(self.streak);
        (self.delivery, writes)
    }
}

/// The subscription a job goes to and its item's version; `None` when it is gone or
/// disabled: nothing to deliver.
async fn receiving(state: &AppState, p: &Pending) -> Result<Option<(SubscriptionRecord, u64)>, AppError> {
    let found = subscriptions::find(state.store.as_ref(), &p.aid, &p.hook_id).await?;
    Ok(found.filter(|(s, _)| s.sub.active))
}

/// Makes one attempt of `p` (its `attempts` so far counted) and answers it with the writes
/// that record it; the caller writes them. `None` when the subscription is gone or disabled:
/// nothing to deliver.
pub async fn deliver(
    state: &AppState,
    client: &WebhookClient,
    p: &Pending,
    max_attempts: u32,
) -> Result<Option<Attempted>, AppError> {
    let Some((sub, version)) = receiving(state, p).await? else { return Ok(None) };
    Ok(Some(deliver_to(state, client, &sub, version, p, max_attempts).await))
}

/// [`deliver`] to the subscription `sub` as read at `version`. Each attempt made is metered
/// here, once: the guard sees to it that a duplicated job makes none.
async fn deliver_to(
    state: &AppState,
    client: &WebhookClient,
    sub: &SubscriptionRecord,
    version: u64,
    p: &Pending,
    max_attempts: u32,
) -> Attempted {
    let now_ms = now_ms(state.clock.as_ref());
    let now = domain::ids::timestamp(state.clock.now());
    let d = attempt(client, sub, p, max_attempts, now_ms, &now).await;
    let epoch = state.clock.epoch();
    tracing::info!(hook = %sub.sub.id, event = %p.event, attempt = d.attempt, outcome = ?d.outcome, "webhook delivery");
    let attempt = crate::metering::Counts { webhooks: 1, ..Default::default() };
    state.usage.record(&p.aid, &attempt, now_ms);
    let record = vec![WriteOp::Put { item: delivery_item(&p.aid, &d, epoch), cond: None }];
    let streak = streak_write(&p.aid, sub, version, d.outcome == Outcome::Delivered, epoch);
    Attempted { delivery: d, record, streak }
}

/// Writes an attempt's record, retried while the store only asks to be called again (a
/// fresh key: the same put however late it lands), then its streak once; the record's
/// failure is the answer (a lost streak update only delays a disable).
async fn record(store: &dyn Store, a: Attempted) -> Result<Delivery, StoreError> {
    let Attempted { delivery, record, streak } = a;
    write_retried(store, record).await?;
    if let Some(streak) = streak {
        if let Err(e) = store.write(streak).await {
            tracing::warn!(error = %e, hook = %delivery.hook_id, "failure streak not updated");
        }
    }
    Ok(delivery)
}

/// At most this many bookkeeping writes go into one commit of the local deliverer.
const BATCH_MAX: usize = 512;

type Batch = (Vec<Vec<WriteOp>>, tokio::sync::oneshot::Sender<Vec<Result<(), StoreError>>>);

/// Group commit for the local deliverer's bookkeeping: attempts hand their writes in, and
/// whatever has gathered while the previous commit was being made durable goes into the next
/// one — one transaction and one fsync for a whole burst of attempts, each write still atomic
/// on its own and acknowledged only once it is durable.
#[derive(Clone)]
pub struct Bookkeeper(tokio::sync::mpsc::UnboundedSender<Batch>);

impl Bookkeeper {
    pub fn start(store: Arc<dyn Store>) -> Self {
        let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<Batch>();
        tokio::spawn(async move {
            while let Some(first) = rx.recv().await {
                let mut batch = vec![first];
                let mut writes = batch.first().map_or(0, |(w, _)| w.len());
                while writes < BATCH_MAX {
                    let Ok(next) = rx.try_recv() else { break };
                    writes = writes.saturating_add(next.0.len());
                    batch.push(next);
                }
                let mut all = Vec::with_capacity(writes);
                let mut replies = Vec::with_capacity(batch.len());
                for (w, reply) in batch {
                    replies.push((w.len(), reply));
                    all.extend(w);
                }
                let mut results = store.write_each(all).await.into_iter();
                for (size, reply) in replies {
                    let _ = reply.send(results.by_ref().take(size).collect());
                }
            }
        });
        Self(tx)
    }

    /// Writes `writes` in the next commit; answers each one's result once it is durable.
    pub async fn write(&self, writes: Vec<Vec<WriteOp>>) -> Vec<Result<(), StoreError>> {
        let n = writes.len();
        let (reply, answer) = tokio::sync::oneshot::channel();
        let gone = || (0..n).map(|_| Err(StoreError::unavailable("the bookkeeper stopped"))).collect();
        if self.0.send((writes, reply)).is_err() {
            return gone();
        }
        answer.await.unwrap_or_else(|_| gone())
    }
}

/// Processes one job of the local queue: attempt it, then — in the same commit as the
/// attempt's record — either remove it (delivered, or dead: no attempt left) or reschedule it
/// after a growing pause.
pub async fn process(
    state: &AppState,
    books: &Bookkeeper,
    client: &WebhookClient,
    queued: Item,
) -> Result<(), AppError> {
    let Ok(p) = serde_json::from_str::<Pending>(&queued.doc) else {
        tracing::error!("unreadable queued delivery dropped");
        return Ok(state.store.write(vec![WriteOp::Delete { key: queued.key(), cond: None }]).await?);
    };
    let attempted = deliver(state, client, &p, hooks::LOCAL_MAX_ATTEMPTS).await?;
    // Conditioned on the job as read: a redelivery queued meanwhile is not lost.
    let held = Some(Condition::VersionIs(queued.version));
    let next = match &attempted {
        Some(a) if a.delivery.outcome.retried() => {
            let now_ms = now_ms(state.clock.as_ref());
            let attempt = a.delivery.attempt;
            let next =
                Pending { attempts: attempt, due_ms: now_ms.saturating_add(hooks::local_backoff_ms(attempt)), ..p };
            WriteOp::Put { item: next.item(queued.version.saturating_add(1)), cond: held }
        }
        _ => WriteOp::Delete { key: queued.key(), cond: held },
    };
    // The record first: when it fails, so does the job's change, and the job is tried again.
    let mut writes = attempted.map(|a| a.into_writes().1).unwrap_or_default();
    let recorded = !writes.is_empty();
    writes.push(vec![next]);
    let results = books.write(writes).await;
    if recorded {
        if let Some(Err(e)) = results.first() {
            return Err(StoreError::unavailable(e.to_string()).into());
        }
    }
    match results.last() {
        Some(Ok(()) | Err(StoreError::ConditionFailed { .. })) | None => Ok(()),
        Some(Err(e)) => Err(StoreError::unavailable(e.to_string()).into()),
    }
}

/// How many local deliveries are in flight at most.
const IN_FLIGHT_MAX: usize = 256;

/// The due time of a queued job, read without its body.
#[derive(serde::Deserialize)]
struct Due {
    #[serde(default)]
    due_ms: i64,
}

/// What the local deliverer has taken: each queued job's version it took last, and how many
/// attempts are running. A job is taken once per version: a poll that read the queue before
/// an attempt finished still sees that job, and must not send it again.
#[derive(Default)]
struct Taken {
    versions: std::collections::HashMap<String, u64>,
    running: usize,
}

/// The local deliverer: every 100 ms (at once again while jobs wait for a free slot) takes the
/// queued deliveries that are due and not yet taken, each in a task of its own, so one slow
/// or dead receiver delays nobody else; their bookkeeping is committed in batches.
pub async fn run_local(state: AppState, client: WebhookClient) {
    let books = Bookkeeper::start(state.store.clone());
    let taken: Arc<Mutex<Taken>> = Arc::default();
    loop {
        let now_ms = now_ms(state.clock.as_ref());
        let mut saturated = false;
        match query_all(state.store.as_ref(), Query { sk: SkCond::Any, ..Query::partition(hooks::QUEUE_PK) }).await {
            Ok(items) => {
                let Ok(mut t) = taken.lock() else { return };
                // Jobs gone from the queue are done with.
                let present: HashSet<&str> = items.iter().map(|i| i.sk.as_str()).collect();
                t.versions.retain(|sk, _| present.contains(sk.as_str()));
                for item in &items {
                    if t.versions.get(&item.sk) == Some(&item.version) {
                        continue;
                    }
                    if serde_json::from_str::<Due>(&item.doc).map_or(0, |d| d.due_ms) > now_ms {
                        continue;
                    }
                    if t.running >= IN_FLIGHT_MAX {
                        saturated = true;
                        break;
                    }
                    t.versions.insert(item.sk.clone(), item.version);
                    t.running = t.running.saturating_add(1);
                    let (state, books, client, taken) = (state.clone(), books.clone(), client.clone(), taken.clone());
                    let item = item.clone();
                    tokio::spawn(async move {
                        if let Err(e) = process(&state, &books, &client, item).await {
                            tracing::error!(error = %e, "delivery bookkeeping failed; retrying later");
                        }
                        if let Ok(mut t) = taken.lock() {
                            t.running = t.running.saturating_sub(1);
                        }
                    });
                }
            }
            Err(e) => tracing::error!(error = %e, "webhook queue unreadable; retrying"),
        }
        let pause = if saturated { 10 } else { 100 };
        tokio::time::sleep(Duration::from_millis(pause)).await;
    }
}

/// An event from the bus as the rule's SQS target receives it.
#[derive(serde::Deserialize)]
struct BusMessage {
    #[serde(rename = "detail-type")]
    _detail_type: String,
    detail: WebhookEvent,
}

/// One SQS message: an event from the bus is fanned out into job messages; a job is
/// attempted. `Ok(true)` = done with; `Ok(false)` = attempt again later (the message was
/// postponed by the back-off, or has no attempt left and goes on to the dead-letter queue).
async fn handle_message(
    state: &AppState,
    recent: &Recent,
    client: &WebhookClient,
    queue: &SqsQueue,
    msg: &SqsMessage,
) -> Result<bool, AppError> {
    let body = msg.body.as_deref().unwrap_or_default();
    if let Ok(bus) = serde_json::from_str::<BusMessage>(body) {
        let jobs = fan_out_recent(state, recent, &[bus.detail], now_ms(state.clock.as_ref())).await?;
        queue.submit(&jobs).await?;
        return Ok(true);
    }
    let Ok(mut p) = serde_json::from_str::<Pending>(body) else {
        tracing::error!(message = ?msg.message_id, "unreadable delivery message: left for the dead-letter queue");
        return Ok(false);
    };
    // Each receive is one attempt; a job queued by a redelivery counts afresh.
    let received: u32 = msg.attributes.get("ApproximateReceiveCount").and_then(|n| n.parse().ok()).unwrap_or(1);
    p.attempts = p.attempts.saturating_add(received.saturating_sub(1));
    let store = state.store.as_ref();
    let guard_id = p.guard_id();
    let read = store.get(&hooks::guard_key(&p.aid, &guard_id)).await?;
    let claim = match hooks::verdict(&p.aid, &guard_id, read.as_ref(), state.clock.epoch()) {
        Verdict::Done => {
            tracing::info!(hook = %p.hook_id, event = %p.event_id, "already delivered: a duplicate job acknowledged");
            return Ok(true);
        }
        Verdict::Wait { seconds } => return look_again(queue, msg, seconds).await,
        Verdict::Claim(claim) => claim,
    };
    // Read before claiming: a job to a subscription gone or disabled is done with, at no
    // write's cost.
    let Some((sub, version)) = receiving_recent(state, recent, &p).await? else { return Ok(true) };
    // The claim: without it two copies received at once would both POST.
    match write_retried(store, vec![claim.take(state.clock.epoch())]).await {
        Ok(()) => {}
        Err(StoreError::ConditionFailed { current, .. }) => {
            // Another copy claimed it first: what it wrote says when to look again.
            return match current.map(|c| hooks::verdict(&p.aid, &guard_id, Some(&c), state.clock.epoch())) {
                Some(Verdict::Done) => Ok(true),
                Some(Verdict::Wait { seconds }) => look_again(queue, msg, seconds).await,
                _ => look_again(queue, msg, hooks::GUARD_RECHECK_SECONDS as i32).await,
            };
        }
        Err(e) => return Err(e.into()),
    }
    let a = deliver_to(state, client, &sub, version, &p, hooks::AWS_MAX_ATTEMPTS).await;
    // The claim's end, before the record: `delivered` is what keeps a later copy from
    // sending again, so it must not wait on (or be lost with) anything else.
    end_claim(store, &claim, a.delivery.outcome == Outcome::Delivered, state.clock.epoch()).await;
    let d = record(store, a).await?;
    if d.outcome.retried() {
        return look_again(queue, msg, hooks::aws_backoff_seconds(d.attempt)).await;
    }
    // Dead: seen again only by SQS's redrive policy, which moves it to the dead-letter queue.
    Ok(d.outcome != Outcome::Dead)
}

/// Ends a claim after its attempt: `delivered`, or `failed` so the retry (the message's next
/// receive) may claim it at once. Retried while the store asks to be called again: losing
/// `delivered` would let a copy received after the lease send the event again.
async fn end_claim(store: &dyn Store, claim: &Claim, delivered: bool, now: i64) {
    match write_retried(store, vec![claim.end(delivered, now)]).await {
        Ok(()) => {}
        // The lease ran out and another copy took the guard over: its attempt decides.
        Err(StoreError::ConditionFailed { .. }) => tracing::warn!(delivered, "delivery guard taken over"),
        Err(e) if delivered => {
            tracing::error!(error = %e, "delivery guard not marked delivered: a copy after its lease may send again")
        }
        Err(e) => tracing::error!(error = %e, "delivery guard not released: the retry waits for its lease"),
    }
}

/// Keeps a message invisible for `seconds` more, so it is seen again then; `Ok(false)`: not
/// done with.
async fn look_again(queue: &SqsQueue, msg: &SqsMessage, seconds: i32) -> Result<bool, AppError> {
    if let Some(receipt) = msg.receipt_handle.as_deref() {
        queue.postpone(receipt, seconds).await?;
    }
    Ok(false)
}

/// The deliverer Lambda's handler: every message of the batch at once (one slow receiver
/// delays nobody), and the ones to see again reported as batch item failures.
pub async fn handle_sqs(
    state: &AppState,
    client: &WebhookClient,
    queue: &Arc<SqsQueue>,
    event: SqsEvent,
) -> SqsBatchResponse {
    let mut tasks = tokio::task::JoinSet::new();
    // Every message is a failure until its task says it is done with (a task that panicked
    // leaves its message to be seen again).
    let mut unfinished: HashSet<String> = event.records.iter().filter_map(|m| m.message_id.clone()).collect();
    // The batch's messages were received together: one read of an account's subscriptions
    // serves them all, and the next batch reads afresh (a subscription made or changed is
    // seen by the next batch, as by the next message before).
    let recent = Arc::new(Recent::default());
    for msg in event.records {
        let (state, client, queue, recent) = (state.clone(), client.clone(), queue.clone(), recent.clone());
        tasks.spawn(async move {
            let done = handle_message(&state, &recent, &client, &queue, &msg).await.unwrap_or_else(|e| {
                tracing::error!(error = %e, "delivery message failed; it will be seen again");
                false
            });
            (msg.message_id, done)
        });
    }
    while let Some(joined) = tasks.join_next().await {
        if let Ok((Some(id), true)) = joined {
            unfinished.remove(&id);
        }
    }
    let mut response = SqsBatchResponse::default();
    for id in unfinished {
        let mut f = BatchItemFailure::default();
        f.item_identifier = id;
        response.batch_item_failures.push(f);
    }
    response
}
