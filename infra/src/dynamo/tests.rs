//! What the DynamoDB engine makes of the service's failures, against a scripted DynamoDB on
//! 127.0.0.1 (the emulator cannot be told to throttle): throttling is absorbed by the
//! client's own retries, quickly; a cancelled transaction says whether another write or the
//! table's capacity cancelled it.

use super::*;
use crate::clock::ManualClock;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

const THROTTLED: (u16, &str) =
    (400, r#"{"__type":"com.amazonaws.dynamodb.v20120810#ThrottlingException","message":"Rate exceeded"}"#);
const NO_ITEM: (u16, &str) = (200, "{}");

/// A DynamoDB that answers its calls with `script`, in order (the last answer repeats);
/// answers its endpoint and how many calls it took.
async fn scripted(script: Vec<(u16, &'static str)>) -> (String, Arc<AtomicUsize>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let endpoint = format!("http://{}", listener.local_addr().expect("addr"));
    let calls = Arc::new(AtomicUsize::new(0));
    let counted = calls.clone();
    tokio::spawn(async move {
        while let Ok((mut conn, _)) = listener.accept().await {
            let n = counted.fetch_add(1, Ordering::SeqCst);
            let (status, body) = script.get(n).or(script.last()).copied().unwrap_or(NO_ITEM);
            tokio::spawn(async move {
                // The request: headers, then as many body bytes as it says.
                let mut got = Vec::new();
                let mut buf = [0u8; 4096];
                loop {
                    let Ok(read) = conn.read(&mut buf).await else { return };
                    if read == 0 {
                        return;
                    }
                    got.extend_from_slice(&buf[..read]);
                    let text = String::from_utf8_lossy(&got).to_ascii_lowercase();
                    if let Some(end) = text.find("\r\n\r\n") {
                        let len = text
                            .lines()
                            .find_map(|l| l.strip_prefix("content-length:"))
                            .and_then(|v| v.trim().parse::<usize>().ok())
                            .unwrap_or(0);
                        if got.len() >= end + 4 + len {
                            break;
                        }
                    }
                }
                let reason = if status == 200 { "OK" } else { "Bad Request" };
                let answer = format!(
                    "HTTP/1.1 {status} {reason}\r\ncontent-type: application/x-amz-json-1.0\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
                    body.len()
                );
                let _ = conn.write_all(answer.as_bytes()).await;
            });
        }
    });
    (endpoint, calls)
}

fn store(endpoint: &str) -> DynamoStore {
    DynamoStore::new(emulator_client(endpoint), "t", Arc::new(ManualClock::at(1_800_000_000)))
}

#[tokio::test]
async fn a_few_throttles_are_absorbed_by_the_clients_retries_in_milliseconds() {
    let (endpoint, calls) = scripted(vec![THROTTLED, THROTTLED, NO_ITEM]).await;
    let started = Instant::now();
    let read = store(&endpoint).get(&Key::new("A#T12345678#D#d", "DRAFT")).await;
    assert!(matches!(read, Ok(None)), "{read:?}");
    assert_eq!(calls.load(Ordering::SeqCst), 3, "two throttled attempts, then the one that worked");
    // At most 50 + 100 ms of pauses (the SDK's default would have been up to 1 s + 2 s).
    assert!(started.elapsed() < Duration::from_millis(800), "{:?}", started.elapsed());
}

#[tokio::test]
async fn a_call_throttled_on_every_attempt_fails_as_throttled_after_the_budget() {
    let (endpoint, calls) = scripted(vec![THROTTLED]).await;
    let started = Instant::now();
    let read = store(&endpoint).get(&Key::new("A#T12345678#D#d", "DRAFT")).await;
    assert!(matches!(read, Err(StoreError::Throttled(_))), "{read:?}");
    assert_eq!(calls.load(Ordering::SeqCst), MAX_ATTEMPTS as usize);
    assert!(started.elapsed() < Duration::from_secs(4), "the whole budget waits 3.55 s at most");
}

#[tokio::test]
async fn a_cancelled_transaction_says_whether_a_rival_or_the_capacity_cancelled_it() {
    let two = || {
        let put =
            |sk: &str| WriteOp::Put { item: Item::new(Key::new("A#T12345678#O#o", sk), 0, "{}".into()), cond: None };
        vec![put("ORDER"), put("ID")]
    };
    let conflict = r#"{"__type":"com.amazonaws.dynamodb.v20120810#TransactionCanceledException","Message":"Transaction cancelled","CancellationReasons":[{"Code":"None"},{"Code":"TransactionConflict","Message":"Transaction is ongoing for the item"}]}"#;
    let (endpoint, calls) = scripted(vec![(400, conflict)]).await;
    let written = store(&endpoint).write(two()).await;
    assert!(matches!(written, Err(StoreError::Contention)), "{written:?}");
    assert_eq!(calls.load(Ordering::SeqCst), 1, "the write loop, not the SDK, retries a lost race");

    let capacity = r#"{"__type":"com.amazonaws.dynamodb.v20120810#TransactionCanceledException","Message":"Transaction cancelled","CancellationReasons":[{"Code":"ThrottlingError","Message":"Throughput exceeds the current capacity"},{"Code":"None"}]}"#;
    let (endpoint, _) = scripted(vec![(400, capacity)]).await;
    let written = store(&endpoint).write(two()).await;
    assert!(matches!(written, Err(StoreError::Throttled(_))), "{written:?}");
}
