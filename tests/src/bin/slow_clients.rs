//! The slow-client bench (issue 40): `--slow` connections each send a partial request head
//! (`GET /openapi.json HTTP/1.1\r\nHost: x\r\n` and nothing more) to a release
//! `shopping-local`, five more send a request head and half a body, and meanwhile normal
//! clients read an order on keep-alive connections. It reports when the server closed the
//! slow connections (seconds after each one's last byte), what the stalled bodies got, the
//! normal requests' latency, and the server's resident memory throughout. Not a CI gate; see
//! BENCHMARKS.md.
//!
//! ```sh
//! cargo build --release -p functions --bin shopping-local -p shopping-tests --bin slow_clients
//! target/release/slow_clients --slow 2000 --seconds 40
//! ```

use shopping_tests::{call, client, pct, proc_kib, start_local};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

const DRAFTS: &str = "/v1/accounts/T12345678/shopping/draft_orders";
const DRAFT: &str = r#"{"order":{"currency":"NOK","customer":{"id":"slow-1"},"items":[{"line_id":1,"gross_amount":100,"tax_lines":[{"percentage":25}]}]}}"#;
const STALLED_BODIES: usize = 5;

struct Args {
    slow: usize,
    seconds: u64,
    connections: usize,
    server: String,
}

fn args() -> Result<Args, String> {
    let mut a = Args { slow: 2000, seconds: 40, connections: 4, server: "target/release/shopping-local".into() };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let v = it.next().ok_or_else(|| format!("{flag} needs a value"))?;
        let bad = || format!("bad value for {flag}: {v}");
        match flag.as_str() {
            "--slow" => a.slow = v.parse().map_err(|_| bad())?,
            "--seconds" => a.seconds = v.parse().map_err(|_| bad())?,
            "--connections" => a.connections = v.parse().map_err(|_| bad())?,
            "--server" => a.server = v,
            _ => return Err(format!("unknown flag {flag} (--slow, --seconds, --connections, --server)")),
        }
    }
    Ok(a)
}

/// Sends `head`, then waits (up to `limit`) for the server to answer or close: what it
/// sent, and the seconds from the last byte written to the close (`None`: still open).
async fn stall(addr: String, head: Vec<u8>, limit: Duration) -> Option<(String, Option<f64>)> {
    let mut s = TcpStream::connect(&addr).await.ok()?;
    s.write_all(&head).await.ok()?;
    let last_byte = Instant::now();
    let mut got = Vec::new();
    let mut buf = [0u8; 1024];
    let closed = loop {
        match tokio::time::timeout_at((last_byte + limit).into(), s.read(&mut buf)).await {
            Ok(Ok(0) | Err(_)) => break Some(last_byte.elapsed().as_secs_f64()),
            Ok(Ok(n)) => got.extend_from_slice(buf.get(..n).unwrap_or_default()),
            Err(_) => break None,
        }
    };
    Some((String::from_utf8_lossy(&got).into_owned(), closed))
}

#[tokio::main]
async fn main() -> Result<(), String> {
    let a = args()?;
    let local = start_local(&a.server, "slow")?;
    let pid = local.child.id();
    let addr = local.base.trim_start_matches("http://").to_owned();
    let http = client(a.connections);
    let (_, d) =
        call(&http, &local.base, &local.token, "POST", DRAFTS, DRAFT.to_owned()).await.ok_or("create failed")?;
    let id = serde_json::from_slice::<serde_json::Value>(&d).map_err(|e| e.to_string())?["id"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    let draft_path = format!("{DRAFTS}/{id}");
    let rss_start = proc_kib(pid, "VmRSS:");

    // Memory, sampled throughout.
    let done = Arc::new(AtomicBool::new(false));
    let peak = Arc::new(Mutex::new(rss_start));
    let sampler = {
        let (done, peak) = (done.clone(), peak.clone());
        tokio::spawn(async move {
            while !done.load(Ordering::Relaxed) {
                let rss = proc_kib(pid, "VmRSS:");
                if let Ok(mut p) = peak.lock() {
                    *p = (*p).max(rss);
                }
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        })
    };
    // Normal clients: read the draft over and over, on keep-alive connections.
    let normal: Vec<_> = (0..a.connections)
        .map(|_| {
            let (http, done, base, token, path) =
                (http.clone(), done.clone(), local.base.clone(), local.token.clone(), draft_path.clone());
            tokio::spawn(async move {
                let (mut micros, mut errors) = (Vec::new(), 0u64);
                while !done.load(Ordering::Relaxed) {
                    let t = Instant::now();
                    let ok = matches!(call(&http, &base, &token, "GET", &path, String::new()).await, Some((200, _)));
                    micros.push(t.elapsed().as_micros() as u64);
                    errors += u64::from(!ok);
                    tokio::time::sleep(Duration::from_millis(5)).await;
                }
                (micros, errors)
            })
        })
        .collect();

    let limit = Duration::from_secs(a.seconds);
    let started = Instant::now();
    let heads: Vec<_> = (0..a.slow)
        .map(|_| tokio::spawn(stall(addr.clone(), b"GET /openapi.json HTTP/1.1\r\nHost: x\r\n".to_vec(), limit)))
        .collect();
    let half = &DRAFT[..DRAFT.len() / 2];
    let body_head = format!(
        "POST {DRAFTS} HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {}\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{half}",
        local.token,
        DRAFT.len()
    );
    let bodies: Vec<_> =
        (0..STALLED_BODIES).map(|_| tokio::spawn(stall(addr.clone(), body_head.clone().into_bytes(), limit))).collect();

    let mut closed = Vec::new();
    let (mut open, mut failed) = (0usize, 0usize);
    for h in heads {
        match h.await.ok().flatten() {
            Some((_, Some(s))) => closed.push((s * 1e6) as u64),
            Some((_, None)) => open += 1,
            None => failed += 1,
        }
    }
    let mut refused = Vec::new();
    for b in bodies {
        if let Some((answer, at)) = b.await.ok().flatten() {
            let status = answer.split_whitespace().nth(1).unwrap_or("none").to_owned();
            refused.push(format!("{status} after {}", at.map_or("never (still open)".into(), |s| format!("{s:.1} s"))));
        }
    }
    let elapsed = started.elapsed().as_secs_f64();
    done.store(true, Ordering::Relaxed);
    let _ = sampler.await;
    let (mut micros, mut errors) = (Vec::new(), 0);
    for n in normal {
        if let Ok((m, e)) = n.await {
            micros.extend(m);
            errors += e;
        }
    }
    micros.sort_unstable();
    closed.sort_unstable();
    let peak = peak.lock().map(|p| *p).unwrap_or(0);

    println!(
        "{} slow heads and {STALLED_BODIES} stalled bodies against {}, waiting at most {} s\n",
        a.slow, a.server, a.seconds
    );
    println!(
        "slow heads: {} closed by the server (after their last byte: p50 {:.1} s, max {:.1} s), {open} still open at {} s, {failed} could not connect",
        closed.len(),
        pct(&closed, 0.5) / 1000.0,
        pct(&closed, 1.0) / 1000.0,
        a.seconds
    );
    println!("stalled bodies: {}", refused.join("; "));
    println!(
        "normal GETs meanwhile ({} connections, {elapsed:.0} s): {} requests, p50 {:.2} ms, p99 {:.2} ms, {errors} errors",
        a.connections,
        micros.len(),
        pct(&micros, 0.5),
        pct(&micros, 0.99)
    );
    println!(
        "shopping-local RSS: {:.1} MiB at start, {:.1} MiB peak (sampled every 50 ms; VmHWM {:.1} MiB)",
        rss_start as f64 / 1024.0,
        peak as f64 / 1024.0,
        proc_kib(pid, "VmHWM:") as f64 / 1024.0
    );
    println!(
        "budget (issue 40): every slow head closed within 30 s of its last byte, RSS ≤ 30 MiB, normal p99 ≤ 20 ms"
    );
    Ok(())
}
