//! Shared test wiring: stores on both engines.

#![allow(dead_code)]

use infra::clock::Clock;
use infra::Store;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Arc;

/// The emulator endpoint the test script exported. Missing is a failure, never a skip.
pub fn emulator_endpoint() -> String {
    std::env::var("SHOPPING_TEST_DYNAMODB_ENDPOINT").expect(
        "SHOPPING_TEST_DYNAMODB_ENDPOINT is not set: run the suite with ./tests/run.sh, which starts the local AWS emulator",
    )
}

/// A DynamoDB store on a fresh table of its own (unique per test, so tests run in parallel).
pub async fn dynamo_store(clock: Arc<dyn Clock>) -> Arc<dyn Store> {
    static N: AtomicU32 = AtomicU32::new(0);
    let client = infra::dynamo::emulator_client(&emulator_endpoint()).await;
    let table = format!("shopping-test-{}-{}", std::process::id(), N.fetch_add(1, Ordering::SeqCst));
    infra::dynamo::create_table(&client, &table).await.expect("create table on the emulator");
    Arc::new(infra::dynamo::DynamoStore::new(client, table, clock))
}
