//! The table's connection opened during a Lambda's init (`DynamoStore::connect`): it opens on
//! a reachable table and reads nothing there, and on a network that does not answer it gives
//! up within its bound, so the init goes on (the first request then connects as it would have).
//! And a store built from the Lambda environment, whose client is made on first use, works.

mod common;

use infra::clock::ManualClock;
use infra::dynamo::DynamoStore;
use std::sync::Arc;
use std::time::{Duration, Instant};

fn store(endpoint: &str, table: &str) -> DynamoStore {
    let clock = Arc::new(ManualClock::at(common::T0));
    DynamoStore::new(infra::dynamo::emulator_client(endpoint), table.to_owned(), clock)
}

#[tokio::test]
async fn the_connection_opens_on_the_table_and_the_probe_reads_nothing() {
    let endpoint = common::emulator_endpoint();
    let table = format!("shopping-connect-{}", std::process::id());
    infra::dynamo::create_table(&infra::dynamo::emulator_client(&endpoint), &table).await.expect("table");
    let s = store(&endpoint, &table);
    assert_eq!(s.connect(Duration::from_secs(5)).await, Ok(()));
    // The probe's partition holds nothing, and a store that was probed works as before.
    let probed = infra::Store::get(&s, &domain::table::Key::new(domain::table::CONNECTION_PROBE_PK, "x")).await;
    assert!(matches!(probed, Ok(None)), "{probed:?}");
}

#[tokio::test]
async fn a_network_that_does_not_answer_costs_the_bound_and_no_more() {
    // Accepts connections and never answers: the slow network's worst case.
    let silent = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = silent.local_addr().expect("addr");
    let held = tokio::spawn(async move {
        let mut open = Vec::new();
        while let Ok((conn, _)) = silent.accept().await {
            open.push(conn);
        }
    });
    let s = store(&format!("http://{addr}"), "t");
    let started = Instant::now();
    let result = s.connect(Duration::from_millis(300)).await;
    let took = started.elapsed();
    assert!(result.as_ref().is_err_and(|e| e.contains("no answer within 300 ms")), "{result:?}");
    assert!(took >= Duration::from_millis(300) && took < Duration::from_millis(1300), "{took:?}");
    held.abort();
}

#[tokio::test]
async fn a_refused_connection_is_reported_not_waited_for() {
    let port = std::net::TcpListener::bind("127.0.0.1:0").and_then(|l| l.local_addr()).expect("a free port").port();
    let s = store(&format!("http://127.0.0.1:{port}"), "t");
    let started = Instant::now();
    let result = s.connect(Duration::from_secs(10)).await;
    assert!(result.is_err(), "{result:?}");
    // The SDK's own retries (with backoff) still end well before the bound.
    assert!(started.elapsed() < Duration::from_secs(10), "{:?}", started.elapsed());
}

#[tokio::test]
async fn a_store_from_the_lambda_environment_builds_its_client_on_first_use() {
    let endpoint = common::emulator_endpoint();
    let table = format!("shopping-from-env-{}", std::process::id());
    infra::dynamo::create_table(&infra::dynamo::emulator_client(&endpoint), &table).await.expect("table");
    // This test binary's other tests do not read the environment.
    for (k, v) in [
        ("AWS_REGION", "us-east-1"),
        ("AWS_ACCESS_KEY_ID", "test"),
        ("AWS_SECRET_ACCESS_KEY", "test"),
        ("AWS_ENDPOINT_URL_DYNAMODB", endpoint.as_str()),
    ] {
        std::env::set_var(k, v);
    }
    let clock = Arc::new(ManualClock::at(common::T0));
    let s = DynamoStore::from_env(table, clock).expect("configured");
    let item = domain::table::Item::new(domain::table::Key::new("A#T12345678#x", "X"), 1, "{}".to_owned());
    let put = domain::table::WriteOp::Put { item: item.clone(), cond: None };
    infra::Store::write(&s, vec![put]).await.expect("written");
    assert_eq!(infra::Store::get(&s, &item.key()).await.expect("read"), Some(item));
}
