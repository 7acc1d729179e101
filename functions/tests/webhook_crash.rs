//! Webhooks survive a crash: a real `shopping-local` with a subscription takes a burst of
//! writes and is killed with SIGKILL in the middle of it, several times. After the last
//! restart every acknowledged write's event reaches the receiver on 127.0.0.1 — none lost —
//! and an event delivered more than once carries the same `webhook-id` and bytes each time.

mod common;

use common::{start_with, try_http, BIN};
use std::collections::{BTreeMap, BTreeSet};
use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpListener;
use std::path::Path;
use std::process::Command;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

const AID: &str = "T12345678";
const WORKERS: usize = 4;

fn token(dir: &Path) -> String {
    let out = Command::new(BIN)
        .args(["token", "--account", AID, "--scopes", "admin:shopping admin:hooks", "--expires-in", "86400"])
        .arg("--data-dir")
        .arg(dir)
        .output()
        .expect("token");
    String::from_utf8(out.stdout).expect("utf8").trim().to_owned()
}

/// What the receiver got: (webhook-id, event type, body).
type Got = Arc<Mutex<Vec<(String, String, String)>>>;

/// A receiver on 127.0.0.1 that records every request and answers 200.
fn receiver() -> (u16, Got) {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = listener.local_addr().expect("addr").port();
    let got: Got = Arc::default();
    let g = got.clone();
    std::thread::spawn(move || {
        for stream in listener.incoming().flatten() {
            let g = g.clone();
            std::thread::spawn(move || {
                let mut reader = BufReader::new(stream);
                let (mut id, mut event, mut len) = (String::new(), String::new(), 0usize);
                loop {
                    let mut line = String::new();
                    if reader.read_line(&mut line).unwrap_or(0) == 0 || line == "\r\n" {
                        break;
                    }
                    let Some((k, v)) = line.trim_end().split_once(':') else { continue };
                    match k.to_ascii_lowercase().as_str() {
                        "webhook-id" => id = v.trim().to_owned(),
                        "event" => event = v.trim().to_owned(),
                        "content-length" => len = v.trim().parse().unwrap_or(0),
                        _ => {}
                    }
                }
                let mut body = vec![0; len];
                if reader.read_exact(&mut body).is_ok() {
                    g.lock().expect("got").push((id, event, String::from_utf8_lossy(&body).into_owned()));
                    let _ = reader
                        .get_mut()
                        .write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 0\r\nconnection: close\r\n\r\n");
                }
            });
        }
    });
    (port, got)
}

#[test]
fn every_acknowledged_write_is_delivered_across_sigkill() {
    let dir = tempfile::tempdir().expect("tempdir");
    let t = token(dir.path());
    let (hook_port, got) = receiver();
    let flags = ["--webhook-allow-loopback"];
    let (server, port) = start_with(dir.path(), 0, &flags);
    let sub = format!(
        r#"{{"events":["shopping_draft_add"],"config":{{"url":"http://127.0.0.1:{hook_port}/hook","secret":"whsec-crash"}}}}"#
    );
    let (status, body) =
        try_http(port, "POST", &format!("/v1/accounts/{AID}/hooks/subscriptions"), &t, &sub).expect("subscribe");
    assert_eq!(status, 200, "{body}");

    let acked: Arc<Mutex<BTreeSet<String>>> = Arc::default();
    let mut running = Some((server, port));
    for round in 0..3u64 {
        let (mut server, port) = running.take().unwrap_or_else(|| start_with(dir.path(), 0, &flags));
        let stop = Arc::new(AtomicBool::new(false));
        let workers: Vec<_> = (0..WORKERS)
            .map(|w| {
                let (t, acked, stop) = (t.clone(), acked.clone(), stop.clone());
                std::thread::spawn(move || {
                    let mut n = 0;
                    while !stop.load(Ordering::SeqCst) {
                        n += 1;
                        let body = format!(
                            r#"{{"order":{{"currency":"NOK","customer":{{"id":"c-{round}-{w}-{n}"}},"items":[{{"line_id":1,"gross_amount":100,"tax_lines":[{{"percentage":25}}]}}]}}}}"#
                        );
                        let path = format!("/v1/accounts/{AID}/shopping/draft_orders");
                        match try_http(port, "POST", &path, &t, &body) {
                            Some((200, b)) => {
                                let v: serde_json::Value = serde_json::from_str(&b).expect("JSON");
                                acked.lock().expect("acked").insert(v["id"].as_str().expect("id").to_owned());
                            }
                            Some(_) => {}
                            None => break,
                        }
                    }
                })
            })
            .collect();
        std::thread::sleep(Duration::from_millis(300 + 200 * round));
        server.kill().expect("SIGKILL");
        server.wait().expect("reap");
        stop.store(true, Ordering::SeqCst);
        for w in workers {
            w.join().expect("worker");
        }
    }

    let (mut server, _) = start_with(dir.path(), 0, &flags);
    let acked = acked.lock().expect("acked").clone();
    assert!(acked.len() >= 10, "the burst got writes through: {}", acked.len());
    let delivered = || -> BTreeMap<String, BTreeSet<String>> {
        // draft id → the webhook-ids it arrived with
        let mut m: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
        for (id, event, body) in got.lock().expect("got").iter() {
            if event == "shopping_draft_add" {
                let v: serde_json::Value = serde_json::from_str(body).expect("JSON body");
                let draft = v["draft"]["id"].as_str().unwrap_or("").to_owned();
                m.entry(draft).or_default().insert(id.clone());
            }
        }
        m
    };
    let start = Instant::now();
    while !acked.iter().all(|id| delivered().contains_key(id)) {
        assert!(start.elapsed() < Duration::from_secs(60), "some acknowledged writes' events never arrived");
        std::thread::sleep(Duration::from_millis(100));
    }
    server.kill().expect("kill");
    let _ = server.wait();

    for (draft, ids) in delivered() {
        assert_eq!(ids.len(), 1, "draft {draft}: every delivery of its event carries one webhook-id");
    }
    let mut bodies: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for (id, _, body) in got.lock().expect("got").iter() {
        bodies.entry(id.clone()).or_default().insert(body.clone());
    }
    assert!(bodies.values().all(|b| b.len() == 1), "a redelivered event has the same bytes");
    let total = got.lock().expect("got").len();
    eprintln!(
        "webhook crash: {} writes acknowledged, {} deliveries, {} distinct events",
        acked.len(),
        total,
        bodies.len()
    );
}
