//! Adapters to the outside world: the storage port and its two engines (embedded SQLite for
//! laptops and tests, DynamoDB for AWS), and the clock.

pub mod clock;
pub mod dynamo;
pub mod port;
pub mod sqlite;

pub use clock::{Clock, SystemClock};
pub use port::{query_all, Cursor, Page, Query, SkCond, Store, StoreError};
