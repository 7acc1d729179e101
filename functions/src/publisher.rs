//! The outbox consumer: for every new item image that carries events (a DynamoDB stream
//! record on AWS, an outbox entry of the embedded engine locally) it writes the history item
//! of the event that image's write produced, so reads stop needing the rider and the next
//! change of the item sheds it. The same code serves the `publisher` Lambda and a background
//! task of `shopping-local`. Delivery is at least once: a repeated image rewrites identical
//! history, which is harmless.

use domain::outbox;
use domain::table::{Item, WriteOp};
use infra::sqlite::SqliteStore;
use infra::{Store, StoreError};
use lambda_http::aws_lambda_events::event::dynamodb::Event as StreamEvent;
use lambda_http::aws_lambda_events::event::streams::{DynamoDbBatchItemFailure, DynamoDbEventResponse};
use std::time::Duration;

/// Writes the history items of the events `image`'s write produced; returns how many.
pub async fn record_history(store: &dyn Store, image: &Item) -> Result<usize, StoreError> {
    let fresh = outbox::fresh(image).map_err(|e| StoreError::Corrupt(e.into()))?;
    for rec in &fresh {
        store.write(vec![WriteOp::Put { item: outbox::history_item(&image.pk, rec), cond: None }]).await?;
    }
    Ok(fresh.len())
}

/// Handles one batch of the table's stream. A record that fails, and every later one (a
/// stream is ordered per item), is reported back so Lambda retries from there; an image that
/// cannot be read at all is logged and skipped, since retrying cannot mend it.
pub async fn handle_stream(store: &dyn Store, event: StreamEvent) -> DynamoDbEventResponse {
    let mut response = DynamoDbEventResponse::default();
    let mut failed = false;
    for record in event.records {
        let id = record.change.sequence_number.clone();
        if !failed && record.event_name != "REMOVE" {
            match infra::dynamo::item_from_image(record.change.new_image) {
                Ok(image) if image.events.is_some() => {
                    if let Err(e) = record_history(store, &image).await {
                        tracing::error!(error = %e, sequence = ?id, "history write failed; the batch resumes here");
                        failed = true;
                    }
                }
                Ok(_) => {}
                Err(e) => tracing::error!(error = %e, sequence = ?id, "unreadable stream image skipped"),
            }
        }
        if failed {
            let mut f = DynamoDbBatchItemFailure::default();
            f.item_identifier = id;
            response.batch_item_failures.push(f);
        }
    }
    response
}

/// The webhook events of the records `image`'s write produced (see `domain::webhook`).
pub fn webhook_events(image: &Item) -> Vec<domain::webhook::WebhookEvent> {
    let Ok(fresh) = outbox::fresh(image) else { return Vec::new() };
    let mut out = Vec::new();
    for rec in &fresh {
        match domain::webhook::events_of(image, rec) {
            Ok(evs) => out.extend(evs),
            Err(e) => tracing::error!(error = %e, "an event that cannot be built is skipped"),
        }
    }
    out
}

/// Consumes the embedded engine's outbox once: up to `batch` entries, acknowledged after
/// their history is written and their webhook deliveries are queued. Returns how many
/// entries it took.
pub async fn drain_local(store: &SqliteStore, clock: &dyn infra::Clock, batch: usize) -> Result<usize, StoreError> {
    let entries = store.outbox_read(batch).await?;
    for e in &entries {
        record_history(store, &e.item).await?;
        crate::deliverer::enqueue(store, &webhook_events(&e.item), crate::deliverer::now_ms(clock)).await?;
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
