//! The outbox consumer: for every new item image that carries events (a DynamoDB stream
//! record on AWS, an outbox entry of the embedded engine locally) it writes the history item
//! of the event that image's write produced, so reads stop needing the rider and the next
//! change of the item sheds it, and it publishes the webhook events of that write: onto the
//! EventBridge bus on AWS (the `publisher` Lambda), into the local delivery queue in
//! `shopping-local` (a background task). An order header removed by its TTL (a REMOVE record;
//! locally, a removal entry the sweep writes) publishes the order's expiry and cleans up the
//! order's remaining items.
//!
//! Delivery is at least once: a repeated image rewrites identical history and publishes
//! events with the same ids, which receivers de-duplicate.

use crate::app::write::write_retried;
use domain::model::Order;
use domain::outbox;
use domain::table::{self, Item, WriteOp};
use domain::webhook::{Needs, Related, WebhookEvent};
use infra::bus::EventSink;
use infra::sqlite::SqliteStore;
use infra::{query_all, Query, SkCond, Store, StoreError};
use lambda_http::aws_lambda_events::event::dynamodb::Event as StreamEvent;
use lambda_http::aws_lambda_events::event::streams::{DynamoDbBatchItemFailure, DynamoDbEventResponse};
use std::time::Duration;

/// Writes the history items of the events `image`'s write produced; returns how many. Each
/// is a put of the event's own key (`EVENT#{version}`), so a repeated image rewrites the same
/// item and never adds a second entry; a throttled or contended put is retried here rather
/// than failing the whole batch back to the stream.
pub async fn record_history(store: &dyn Store, image: &Item) -> Result<usize, StoreError> {
    let fresh = outbox::fresh(image).map_err(|e| StoreError::Corrupt(e.into()))?;
    for rec in &fresh {
        write_retried(store, vec![WriteOp::Put { item: outbox::history_item(&image.pk, rec), cond: None }]).await?;
    }
    Ok(fresh.len())
}

/// The webhook events of an image's riding records, with what each shows besides the image
/// read from `store` (an order's operations as of the image's version; a completion's orders).
/// An event that cannot be built is logged and skipped: it would fail the same way forever.
pub async fn webhook_events(store: &dyn Store, image: &Item) -> Result<Vec<WebhookEvent>, StoreError> {
    let Ok(fresh) = outbox::fresh(image) else { return Ok(Vec::new()) };
    let needs: Vec<Needs> = fresh.iter().map(|rec| domain::webhook::needs(image, rec)).collect();
    // The operations are the order's at the image's version, the same for each record: read once.
    let mut related = Related::default();
    if needs.iter().any(|n| n.operations) {
        let items = crate::app::aggregate::operation_items(store, &image.pk).await?;
        related.operations = domain::webhook::operations_as_of(items, image.version);
    }
    let mut out = Vec::new();
    for (rec, need) in fresh.iter().zip(&needs) {
        related.orders = completed_orders(store, image, &need.orders).await?;
        match domain::webhook::events_of(image, rec, &related) {
            Ok(evs) => out.extend(evs),
            Err(e) => tracing::error!(error = %e, "an event that cannot be built is skipped"),
        }
    }
    Ok(out)
}

/// The orders a completion created, as the complete endpoint answered them.
async fn completed_orders(store: &dyn Store, image: &Item, ids: &[String]) -> Result<Vec<Order>, StoreError> {
    let aid = table::account_of(&image.pk).unwrap_or_default();
    let mut orders = Vec::new();
    for id in ids {
        match crate::app::aggregate::read_order_view(store, aid, id, &None).await {
            Ok((_, order)) => orders.push(order),
            Err(crate::app::AppError::Store(e)) => return Err(e),
            // Gone already (its retention cannot end this soon, but a lost order must not
            // hold every later event back): the event still names it in `order_ids`.
            Err(e) => tracing::error!(error = %e, order = %id, "a completed order cannot be read"),
        }
    }
    Ok(orders)
}

/// What an image with riding events makes: its history items written, then its webhook events.
async fn image_events(store: &dyn Store, image: &Item) -> Result<Vec<WebhookEvent>, StoreError> {
    record_history(store, image).await?;
    webhook_events(store, image).await
}

/// At most this many deletes go in one write of the cleanup.
const CLEANUP_CHUNK: usize = 25;

/// What the removal of `header` (an order's last image, gone by its TTL) publishes: the
/// order's expiry event. Removes the order's remaining items first, all but the stub that
/// keeps the emptied order readable (history items, payment operations, … carry no TTL of
/// their own). Publishes its expiry update, then its `shopping_order_delete`. Anything else
/// removed publishes nothing.
pub async fn on_removed(store: &dyn Store, header: &Item) -> Result<Vec<WebhookEvent>, StoreError> {
    let events = match domain::webhook::expired(header) {
        Ok(evs) if evs.is_empty() => return Ok(evs),
        Ok(evs) => evs,
        Err(e) => {
            tracing::error!(error = %e, "an expired order that cannot be read is skipped");
            return Ok(Vec::new());
        }
    };
    let children = query_all(store, Query { sk: SkCond::Any, ..Query::partition(header.pk.clone()) }).await?;
    let doomed: Vec<WriteOp> = children
        .iter()
        .filter(|i| i.sk != table::STUB_SK && i.sk != table::ORDER_SK)
        .map(|i| WriteOp::Delete { key: i.key(), cond: None })
        .collect();
    for chunk in doomed.chunks(CLEANUP_CHUNK) {
        // Unconditional deletes: the same chunk again is harmless, however late.
        write_retried(store, chunk.to_vec()).await?;
    }
    if !doomed.is_empty() {
        tracing::info!(items = doomed.len(), "expired order cleaned up");
    }
    Ok(events)
}

/// Handles one batch of the table's stream: history, then every event of the batch onto the
/// bus (ten to a call, failed entries re-sent). The first record whose history or events
/// failed, and every later one (a stream is ordered per item), is reported back so Lambda
/// retries from there; what had been published before is published again then, with the
/// same ids. An image that cannot be read at all is logged and skipped, since retrying
/// cannot mend it.
pub async fn handle_stream(store: &dyn Store, bus: &dyn EventSink, event: StreamEvent) -> DynamoDbEventResponse {
    let records = event.records;
    let mut first_failed = records.len();
    // Each event with the index of the record it came from.
    let mut events: Vec<(usize, WebhookEvent)> = Vec::new();
    for (n, record) in records.iter().enumerate() {
        let sequence = record.change.sequence_number.as_deref();
        let removed = record.event_name == "REMOVE";
        let image = if removed { &record.change.old_image } else { &record.change.new_image };
        let image = match infra::dynamo::item_from_image(image.clone()) {
            Ok(image) => image,
            Err(e) => {
                tracing::error!(error = %e, ?sequence, "unreadable stream image skipped");
                continue;
            }
        };
        let made = if removed {
            on_removed(store, &image).await
        } else if image.events.is_some() {
            image_events(store, &image).await
        } else {
            Ok(Vec::new())
        };
        match made {
            Ok(evs) => events.extend(evs.into_iter().map(|ev| (n, ev))),
            Err(e) => {
                tracing::error!(error = %e, ?sequence, "stream record failed; the batch resumes here");
                first_failed = n;
                break;
            }
        }
    }
    let (owners, evs): (Vec<usize>, Vec<WebhookEvent>) = events.into_iter().unzip();
    for i in bus.publish(&evs).await {
        if let Some(&n) = owners.get(i) {
            tracing::error!(event = ?evs.get(i).map(|e| &e.id), "event not published; the batch resumes at its record");
            first_failed = first_failed.min(n);
        }
    }
    let mut response = DynamoDbEventResponse::default();
    for record in records.into_iter().skip(first_failed) {
        let mut f = DynamoDbBatchItemFailure::default();
        f.item_identifier = record.change.sequence_number;
        response.batch_item_failures.push(f);
    }
    response
}

/// Consumes the embedded engine's outbox once: up to `batch` entries, acknowledged after
/// their history is written and their webhook deliveries are queued. Returns how many
/// entries it took.
pub async fn drain_local(store: &SqliteStore, clock: &dyn infra::Clock, batch: usize) -> Result<usize, StoreError> {
    let entries = store.outbox_read(batch).await?;
    for e in &entries {
        let events = if e.removed { on_removed(store, &e.item).await? } else { image_events(store, &e.item).await? };
        crate::workers::deliverer::enqueue(store, &events, crate::workers::deliverer::now_ms(clock)).await?;
    }
    if let Some(last) = entries.last() {
        store.outbox_ack(last.seq).await?;
    }
    Ok(entries.len())
}

/// The local consumer: drains the outbox as entries arrive, pausing when it is empty and
/// backing off while the store fails.
pub async fn run_local(store: std::sync::Arc<SqliteStore>, clock: std::sync::Arc<dyn infra::Clock>) {
    loop {
        let pause = match drain_local(&store, clock.as_ref(), 100).await {
            Ok(0) => Duration::from_millis(50),
            Ok(_) => Duration::ZERO,
            Err(e) => {
                tracing::error!(error = %e, "outbox consumer failed; retrying");
                Duration::from_secs(1)
            }
        };
        tokio::time::sleep(pause).await;
    }
}
