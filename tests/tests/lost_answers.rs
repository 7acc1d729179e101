//! Writes whose answer is lost after they committed, on DynamoDB (through the emulator): a
//! proxy between the SDK and the emulator forwards a `PutItem`, lets it commit, and closes the
//! connection instead of answering. The SDK retries; the retry fails its condition against the
//! item its first attempt wrote. The engine must report the write as applied, once; a rival
//! write at the same version must still lose, even one storing an identical item. (Multi-item writes are transactions, which the
//! SDK retries with the same client request token.)

mod common;

use domain::table::{Condition, Item, Key, WriteOp};
use infra::clock::ManualClock;
use infra::{Store, StoreError};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::{TcpListener, TcpStream};

/// Starts the proxy; it drops the answers of the next `drops` PutItem calls. Returns its URL.
async fn lossy_proxy(upstream: String, drops: Arc<AtomicUsize>) -> String {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let url = format!("http://{}", listener.local_addr().expect("addr"));
    let upstream = upstream.trim_start_matches("http://").to_owned();
    tokio::spawn(async move {
        while let Ok((client, _)) = listener.accept().await {
            let (upstream, drops) = (upstream.clone(), drops.clone());
            tokio::spawn(async move {
                let _ = relay(client, &upstream, &drops).await;
            });
        }
    });
    url
}

/// Relays requests on one client connection; the emulator closes after each answer.
async fn relay(client: TcpStream, upstream: &str, drops: &AtomicUsize) -> std::io::Result<()> {
    let mut client = BufReader::new(client);
    loop {
        let mut head = Vec::new();
        loop {
            let mut line = Vec::new();
            if client.read_until(b'\n', &mut line).await? == 0 {
                return Ok(());
            }
            let end = line == b"\r\n";
            head.extend_from_slice(&line);
            if end {
                break;
            }
        }
        let text = String::from_utf8_lossy(&head).to_ascii_lowercase();
        let len: usize = text
            .lines()
            .find_map(|l| l.strip_prefix("content-length:").map(|v| v.trim().parse().unwrap_or(0)))
            .unwrap_or(0);
        let mut body = vec![0u8; len];
        client.read_exact(&mut body).await?;
        let mut up = TcpStream::connect(upstream).await?;
        // One request per upstream connection, so the answer ends when the emulator closes.
        let head = String::from_utf8_lossy(&head).replace("\r\n\r\n", "\r\nconnection: close\r\n\r\n");
        up.write_all(head.as_bytes()).await?;
        up.write_all(&body).await?;
        let mut answer = Vec::new();
        up.read_to_end(&mut answer).await?;
        let is_put = text.contains("dynamodb_20120810.putitem");
        if is_put && drops.fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1)).is_ok() {
            // Committed upstream; the caller never hears of it.
            return Ok(());
        }
        client.get_mut().write_all(&answer).await?;
    }
}

async fn lossy_store(drops: Arc<AtomicUsize>) -> Arc<dyn Store> {
    let url = lossy_proxy(common::emulator_endpoint(), drops).await;
    common::dynamo_store_via(&url, Arc::new(ManualClock::at(common::T0))).await
}

#[tokio::test]
async fn a_put_whose_answer_was_lost_counts_as_applied_once() {
    let drops = Arc::new(AtomicUsize::new(0));
    let store = lossy_store(drops.clone()).await;
    let key = Key::new("A#T1#D#x", "DRAFT");
    let v1 = Item::new(key.clone(), 1, r#"{"n":1,"id":"first"}"#.into());
    drops.store(1, Ordering::SeqCst);
    store.write(vec![WriteOp::Put { item: v1.clone(), cond: Some(Condition::NotExists) }]).await.expect("applied");
    assert_eq!(drops.load(Ordering::SeqCst), 0, "the answer was really dropped");
    assert_eq!(store.get(&key).await.expect("get"), Some(v1));

    let v2 = Item::new(key.clone(), 2, r#"{"n":2}"#.into());
    drops.store(1, Ordering::SeqCst);
    store.write(vec![WriteOp::Put { item: v2.clone(), cond: Some(Condition::VersionIs(1)) }]).await.expect("applied");
    assert_eq!(store.get(&key).await.expect("get"), Some(v2.clone()));

    // Another writer's put at the same version is still a lost race, not a success — even
    // when it would store exactly the same item (two writers computing the same next state).
    let rival = v2.clone();
    let err = store.write(vec![WriteOp::Put { item: rival, cond: Some(Condition::VersionIs(1)) }]).await.unwrap_err();
    assert!(matches!(err, StoreError::ConditionFailed { index: 0, .. }), "{err:?}");
}
