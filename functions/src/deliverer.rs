//! Webhook delivery: which subscriptions an event goes to, one signed attempt and its record,
//! and the local deliverer (a background task of `shopping-local` over a queue in the
//! embedded store: retries with growing pauses, then a dead state, visible and redeliverable
//! in the deliveries list).
//!
//! Every attempt of one event to one subscription sends the same bytes with the same
//! `webhook-id` (the event's id) and `webhook-timestamp` (its first attempt), so receivers
//! de-duplicate; each attempt has its own `event-delivery` id.

use crate::state::AppState;
use domain::hooks::{self, Delivery, DeliveryRequest, DeliveryResponse, Pending, SubscriptionRecord};
use domain::table::{Condition, Item, WriteOp};
use domain::webhook::WebhookEvent;
use infra::webhook::{sign_sha1, sign_standard, WebhookClient};
use infra::{query_all, Query, SkCond, Store, StoreError};
use std::collections::HashSet;
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// The clock's now in epoch milliseconds.
pub fn now_ms(clock: &dyn infra::Clock) -> i64 {
    i64::try_from(clock.now().unix_timestamp_nanos().div_euclid(1_000_000)).unwrap_or(i64::MAX)
}

fn doc<T: serde::Serialize>(v: &T) -> String {
    serde_json::to_string(v).unwrap_or_default()
}

/// The account's subscriptions.
pub async fn subscriptions(store: &dyn Store, aid: &str) -> Result<Vec<SubscriptionRecord>, StoreError> {
    let items = query_all(store, Query::partition(hooks::hooks_pk(aid))).await?;
    Ok(items.iter().filter_map(|i| serde_json::from_str(&i.doc).ok()).collect())
}

/// A subscription as stored: the record and its item's version (what a change is
/// conditioned on).
pub async fn subscription(
    store: &dyn Store,
    aid: &str,
    hid: &str,
) -> Result<Option<(SubscriptionRecord, u64)>, StoreError> {
    let Some(item) = store.get(&hooks::hook_key(aid, hid)).await? else { return Ok(None) };
    let rec = serde_json::from_str(&item.doc).map_err(|e| StoreError::Corrupt(e.into()))?;
    Ok(Some((rec, item.version)))
}

/// The item that stores a subscription at `version`.
pub fn subscription_item(aid: &str, rec: &SubscriptionRecord, version: u64) -> Item {
    Item::new(hooks::hook_key(aid, &rec.sub.id), version, doc(rec))
}

/// The queue item that makes `event` wait for its first attempt to `hook_id`.
pub fn pending_item(aid: &str, hook_id: &str, event: &WebhookEvent, now_ms: i64) -> Item {
    let pending = Pending {
        aid: aid.to_owned(),
        hook_id: hook_id.to_owned(),
        event_id: event.id.clone(),
        event: event.event.clone(),
        body: doc(event),
        attempts: 0,
        timestamp: now_ms.div_euclid(1000),
        due_ms: now_ms,
    };
    Item::new(hooks::queue_key(aid, hook_id, &event.id), 0, doc(&pending))
}

/// Queues `events` for every active subscription of their account that takes them. Already
/// queued (a replayed outbox entry) is fine: the same key, so nothing doubles.
pub async fn enqueue(store: &dyn Store, events: &[WebhookEvent], now_ms: i64) -> Result<usize, StoreError> {
    let mut queued = 0;
    let mut subs_of: std::collections::HashMap<String, Vec<SubscriptionRecord>> = Default::default();
    for ev in events {
        if !subs_of.contains_key(&ev.account_id) {
            subs_of.insert(ev.account_id.clone(), subscriptions(store, &ev.account_id).await?);
        }
        for sub in subs_of.get(&ev.account_id).into_iter().flatten().filter(|s| hooks::wants(s, &ev.event)) {
            let item = pending_item(&ev.account_id, &sub.sub.id, ev, now_ms);
            match store.write(vec![WriteOp::Put { item, cond: Some(Condition::NotExists) }]).await {
                Ok(()) => queued += 1,
                Err(StoreError::ConditionFailed { .. }) => {}
                Err(e) => return Err(e),
            }
        }
    }
    Ok(queued)
}

/// The headers of one attempt (without secrets).
pub fn headers(p: &Pending, delivery_id: &str, secret: Option<&str>) -> Vec<(String, String)> {
    let body = p.body.as_bytes();
    let mut h = vec![
        ("content-type".to_owned(), "application/json".to_owned()),
        ("event".to_owned(), p.event.clone()),
        ("event-delivery".to_owned(), delivery_id.to_owned()),
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

/// Makes one attempt of `p` to `sub`; answers the delivery record (outcome `delivered`,
/// `failed`, `dead` when no attempt is left, or `blocked`).
pub async fn attempt(
    client: &WebhookClient,
    sub: &SubscriptionRecord,
    p: &Pending,
    now_ms: i64,
    now: &str,
) -> Delivery {
    let id = delivery_id(now_ms);
    let headers = headers(p, &id, sub.secret.as_deref());
    let a = client.post(&sub.sub.config.url, &headers, p.body.clone().into_bytes()).await;
    let attempt = p.attempts.saturating_add(1);
    let outcome = match (&a.failure, a.blocked) {
        (None, _) => "delivered",
        (Some(_), _) if attempt >= hooks::MAX_ATTEMPTS => "dead",
        (Some(_), true) => "blocked",
        (Some(_), false) => "failed",
    };
    Delivery {
        id,
        hook_id: sub.sub.id.clone(),
        event_id: p.event_id.clone(),
        event: p.event.clone(),
        attempt,
        created_at: now.to_owned(),
        request: DeliveryRequest { url: sub.sub.config.url.clone(), headers, body: p.body.clone() },
        response: a.status.map(|status| DeliveryResponse { status, body: a.body_excerpt.clone() }),
        duration_ms: a.duration_ms,
        outcome: outcome.to_owned(),
        reason: a.failure,
    }
}

/// The record of an attempt, kept for the deliveries list.
pub fn delivery_item(aid: &str, d: &Delivery, now_epoch: i64) -> Item {
    let mut item = Item::new(hooks::delivery_key(aid, &d.hook_id, &d.id), 0, doc(d));
    item.ttl = Some(now_epoch.saturating_add(hooks::DELIVERY_RETENTION_SECONDS));
    item
}

/// Records a subscription's failure streak: a success ends it; one that lasts
/// [`hooks::DISABLE_AFTER_SECONDS`] disables the subscription (not deleted). Best effort: a
/// concurrent change of the subscription wins.
async fn note_outcome(
    store: &dyn Store,
    aid: &str,
    sub: &SubscriptionRecord,
    version: u64,
    delivered: bool,
    now_epoch: i64,
) {
    let mut next = sub.clone();
    match (delivered, sub.failing_since) {
        (true, None) => return,
        (true, Some(_)) => next.failing_since = None,
        (false, None) => next.failing_since = Some(now_epoch),
        (false, Some(since)) if now_epoch.saturating_sub(since) >= hooks::DISABLE_AFTER_SECONDS && sub.sub.active => {
            tracing::warn!(hook = %sub.sub.id, "subscription failing for days: disabled");
            next.sub.active = false;
        }
        (false, Some(_)) => return,
    }
    let item = subscription_item(aid, &next, version.saturating_add(1));
    let _ = store.write(vec![WriteOp::Put { item, cond: Some(Condition::VersionIs(version)) }]).await;
}

/// Processes one queued delivery: attempt it, record the attempt, and either remove it
/// (delivered, or dead: no attempt left) or reschedule it after a growing pause.
pub async fn process(state: &AppState, client: &WebhookClient, queued: Item) -> Result<(), StoreError> {
    let Ok(p) = serde_json::from_str::<Pending>(&queued.doc) else {
        tracing::error!("unreadable queued delivery dropped");
        return state.store.write(vec![WriteOp::Delete { key: queued.key(), cond: None }]).await;
    };
    let found = subscription(state.store.as_ref(), &p.aid, &p.hook_id).await?;
    let Some((sub, version)) = found.filter(|(s, _)| s.sub.active) else {
        // Deleted or disabled since: nothing to deliver.
        return state.store.write(vec![WriteOp::Delete { key: queued.key(), cond: None }]).await;
    };
    let now_ms = now_ms(state.clock.as_ref());
    let now = domain::ids::timestamp(state.clock.now());
    let d = attempt(client, &sub, &p, now_ms, &now).await;
    let epoch = state.clock.epoch();
    // Conditioned on the queued item as read: a redelivery queued meanwhile is not lost.
    let held = Some(Condition::VersionIs(queued.version));
    let mut ops = vec![WriteOp::Put { item: delivery_item(&p.aid, &d, epoch), cond: None }];
    if d.outcome == "failed" || d.outcome == "blocked" {
        let next = Pending {
            attempts: d.attempt,
            due_ms: now_ms.saturating_add(hooks::local_backoff_ms(d.attempt)),
            ..p.clone()
        };
        let item = Item::new(queued.key(), queued.version.saturating_add(1), doc(&next));
        ops.insert(0, WriteOp::Put { item, cond: held });
    } else {
        ops.insert(0, WriteOp::Delete { key: queued.key(), cond: held });
    }
    tracing::info!(hook = %sub.sub.id, event = %p.event, attempt = d.attempt, outcome = %d.outcome, "webhook delivery");
    match state.store.write(ops).await {
        Ok(()) | Err(StoreError::ConditionFailed { .. }) => {}
        Err(e) => return Err(e),
    }
    note_outcome(state.store.as_ref(), &p.aid, &sub, version, d.outcome == "delivered", epoch).await;
    Ok(())
}

/// The local deliverer: every 100 ms takes the queued deliveries that are due and not in
/// flight, each in a task of its own, so one slow or dead receiver delays nobody else.
pub async fn run_local(state: AppState, client: WebhookClient) {
    let in_flight: Arc<Mutex<HashSet<String>>> = Arc::default();
    loop {
        let now_ms = now_ms(state.clock.as_ref());
        match query_all(state.store.as_ref(), Query { sk: SkCond::Any, ..Query::partition(hooks::QUEUE_PK) }).await {
            Ok(items) => {
                for item in items {
                    let due = serde_json::from_str::<Pending>(&item.doc).map_or(0, |p| p.due_ms);
                    let fresh = in_flight.lock().map(|mut f| f.insert(item.sk.clone())).unwrap_or(false);
                    if due > now_ms || !fresh {
                        if fresh {
                            let _ = in_flight.lock().map(|mut f| f.remove(&item.sk));
                        }
                        continue;
                    }
                    let (state, client, in_flight) = (state.clone(), client.clone(), in_flight.clone());
                    tokio::spawn(async move {
                        let sk = item.sk.clone();
                        if let Err(e) = process(&state, &client, item).await {
                            tracing::error!(error = %e, "delivery bookkeeping failed; retrying later");
                        }
                        let _ = in_flight.lock().map(|mut f| f.remove(&sk));
                    });
                }
            }
            Err(e) => tracing::error!(error = %e, "webhook queue unreadable; retrying"),
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}
