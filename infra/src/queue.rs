//! The delivery queue: where webhook delivery jobs (one event for one subscription) wait for
//! the deliverer. Locally, the embedded store's queue partition, which the local deliverer
//! polls; on AWS, the SQS queue that feeds the deliverer Lambda, with its dead-letter queue
//! behind it.

use crate::aws::resend_failed;
use crate::port::{BoxError, Store, StoreError};
use async_trait::async_trait;
use aws_sdk_sqs::types::SendMessageBatchRequestEntry;
use domain::hooks::Pending;
use domain::table::WriteOp;
use std::sync::Arc;

/// At most 10 messages and 1 MiB of them go in one `SendMessageBatch` call (the service's
/// limits; a message alone may be 1 MiB too since 2025).
const BATCH_LIMIT: crate::aws::CallLimit = crate::aws::CallLimit { entries: 10, bytes: 1 << 20 };
const ROUNDS: u32 = 4;

/// Why jobs could not be queued (or a received one not postponed).
#[derive(Debug, thiserror::Error)]
pub enum QueueError {
    /// The function was built without a delivery queue: a wiring fault.
    #[error("this function has no delivery queue (DELIVERY_QUEUE_URL)")]
    NotConfigured,
    /// The local queue's store failed.
    #[error("the local delivery queue failed")]
    Store(#[from] StoreError),
    /// SQS failed or refused some jobs; retrying later may work.
    #[error("the delivery queue is unavailable")]
    Unavailable(#[source] BoxError),
}

#[async_trait]
pub trait JobQueue: Send + Sync {
    /// Queues `jobs` for their first attempt; an error means some may not be queued.
    async fn submit(&self, jobs: &[Pending]) -> Result<(), QueueError>;
}

/// The local queue: items of the store's queue partition.
pub struct StoreQueue(pub Arc<dyn Store>);

#[async_trait]
impl JobQueue for StoreQueue {
    async fn submit(&self, jobs: &[Pending]) -> Result<(), QueueError> {
        // A fresh version, so an attempt of the same event in flight cannot overwrite it.
        let writes =
            jobs.iter().map(|p| vec![WriteOp::Put { item: p.item(u64::try_from(p.due_ms).unwrap_or(0)), cond: None }]);
        self.0
            .write_each(writes.collect())
            .await
            .into_iter()
            .collect::<Result<(), StoreError>>()
            .map_err(QueueError::from)
    }
}

/// For functions that queue nothing: says so instead of losing a job.
pub struct NoQueue;

#[async_trait]
impl JobQueue for NoQueue {
    async fn submit(&self, _: &[Pending]) -> Result<(), QueueError> {
        Err(QueueError::NotConfigured)
    }
}

/// The SQS delivery queue.
pub struct SqsQueue {
    client: crate::aws::LazyClient<aws_sdk_sqs::Client>,
    url: String,
}

impl SqsQueue {
    pub fn new(client: aws_sdk_sqs::Client, url: impl Into<String>) -> Self {
        Self::lazy(crate::aws::LazyClient::ready(client), url)
    }

    fn lazy(client: crate::aws::LazyClient<aws_sdk_sqs::Client>, url: impl Into<String>) -> Self {
        Self { client, url: url.into() }
    }

    /// The queue at `url`, with a client from the Lambda environment.
    pub fn from_env(url: &str) -> Result<Self, String> {
        Ok(Self::lazy(crate::lazy_sdk_client!(aws_sdk_sqs, crate::aws::SdkParts::from_env("SQS")?), url))
    }

    /// The queue at `url` on a local emulator.
    pub fn emulator(endpoint: &str, url: &str) -> Self {
        Self::new(crate::sdk_client!(aws_sdk_sqs, crate::aws::SdkParts::emulator(endpoint)), url)
    }

    pub fn client(&self) -> &aws_sdk_sqs::Client {
        self.client.get()
    }

    /// Keeps a received message invisible for `seconds` more: the back-off before its next
    /// attempt (each receive counts one attempt; past the redrive policy's count, SQS moves
    /// the message to the dead-letter queue).
    pub async fn postpone(&self, receipt_handle: &str, seconds: i32) -> Result<(), QueueError> {
        self.client
            .get()
            .change_message_visibility()
            .queue_url(&self.url)
            .receipt_handle(receipt_handle)
            .visibility_timeout(seconds)
            .send()
            .await
            .map(drop)
            .map_err(|e| QueueError::Unavailable(aws_sdk_sqs::error::DisplayErrorContext(e).to_string().into()))
    }

    async fn send(&self, bodies: &[String], ids: Vec<usize>) -> Vec<usize> {
        let entries: Result<Vec<_>, _> = ids
            .iter()
            .filter_map(|i| bodies.get(*i).map(|b| (i, b)))
            .map(|(i, b)| SendMessageBatchRequestEntry::builder().id(i.to_string()).message_body(b).build())
            .collect();
        let Ok(entries) = entries else { return ids };
        match self.client.get().send_message_batch().queue_url(&self.url).set_entries(Some(entries)).send().await {
            Ok(out) => out.failed().iter().filter_map(|f| f.id().parse().ok()).collect(),
            Err(e) => {
                tracing::warn!(error = %aws_sdk_sqs::error::DisplayErrorContext(&e), "SendMessageBatch failed");
                ids
            }
        }
    }
}

#[async_trait]
impl JobQueue for SqsQueue {
    async fn submit(&self, jobs: &[Pending]) -> Result<(), QueueError> {
        let bodies: Vec<String> = jobs.iter().map(|p| serde_json::to_string(p).unwrap_or_default()).collect();
        let sizes: Vec<usize> = bodies.iter().map(String::len).collect();
        let failed = resend_failed(&sizes, BATCH_LIMIT, ROUNDS, |ids| self.send(&bodies, ids)).await;
        if failed.is_empty() {
            Ok(())
        } else {
            Err(QueueError::Unavailable(format!("{} delivery jobs could not be queued", failed.len()).into()))
        }
    }
}
