//! Adapters to the outside world: the storage port and its two engines (embedded SQLite for
//! laptops and tests, DynamoDB for AWS), EventBridge and SQS for events and webhook delivery
//! jobs, the webhook HTTP client, and the clock.
#![cfg_attr(not(test), deny(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing, clippy::panic))]

pub mod aws;
pub mod bus;
pub mod clock;
pub mod dynamo;
pub mod kms;
pub mod limits;
pub mod memo;
pub mod port;
pub mod queue;
pub mod sharded;
pub mod sqlite;
pub mod webhook;

pub use clock::{Clock, SystemClock};
pub use port::{query_all, BoxError, Cursor, Limit, Page, Query, SkCond, Store, StoreError};
