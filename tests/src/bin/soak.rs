//! The soak: a mixed workload against a release `shopping-local` for N minutes on loopback,
//! reporting every interval the requests, errors by status, p50/p99 latency and the server's
//! resident memory, then a verdict: no 5xx, and memory that levels off instead of growing
//! with the number of requests served. Not a CI gate; see README "Reliability".
//!
//! ```sh
//! cargo build --release -p functions --bin shopping-local
//! cargo run --release -p shopping-tests --bin soak -- --minutes 5 --connections 16
//! ```

use shopping_tests::{call, client, pct, proc_kib, start_local, Http};
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

const DRAFTS: &str = "/v1/accounts/T12345678/shopping/draft_orders";

struct Args {
    minutes: f64,
    connections: usize,
    interval: u64,
    server: String,
}

fn args() -> Result<Args, String> {
    let mut a = Args { minutes: 2.0, connections: 16, interval: 10, server: "target/release/shopping-local".into() };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let v = it.next().ok_or_else(|| format!("{flag} needs a value"))?;
        let bad = || format!("bad value for {flag}: {v}");
        match flag.as_str() {
            "--minutes" => a.minutes = v.parse().map_err(|_| bad())?,
            "--connections" => a.connections = v.parse().map_err(|_| bad())?,
            "--interval" => a.interval = v.parse().map_err(|_| bad())?,
            "--server" => a.server = v,
            _ => return Err(format!("unknown flag {flag} (--minutes, --connections, --interval, --server)")),
        }
    }
    Ok(a)
}

#[derive(Default)]
struct Stats {
    by_status: BTreeMap<u16, u64>,
    failed: u64,
    micros: Vec<u64>,
}

/// One connection's loop: create drafts, add items, read, list and complete, in a fixed mix.
async fn worker(client: Http, base: String, token: String, stats: Arc<Mutex<Stats>>, stop: Arc<AtomicBool>, n: usize) {
    let mut drafts: Vec<String> = Vec::new();
    let mut step: u64 = n as u64;
    while !stop.load(Ordering::Relaxed) {
        step = step.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
        let pick = (step >> 33) % 10;
        let current = drafts.last().cloned();
        let (method, path, body) = match (pick, &current) {
            (0..=2, _) | (_, None) => (
                "POST",
                DRAFTS.to_owned(),
                format!(
                    r#"{{"order":{{"currency":"NOK","customer":{{"id":"soak-{n}","email":"s@example.com"}},"items":[{{"line_id":1,"gross_amount":19900,"quantity":2,"description":"Mug","tax_lines":[{{"percentage":25}}]}}]}}}}"#
                ),
            ),
            (3 | 4, Some(d)) => (
                "POST",
                format!("{DRAFTS}/{d}/items"),
                r#"{"gross_amount":4900,"description":"Lid","tax_lines":[{"percentage":25}]}"#.to_owned(),
            ),
            (5..=7, Some(d)) => ("GET", format!("{DRAFTS}/{d}"), String::new()),
            (8, _) => ("GET", format!("{DRAFTS}?limit=20"), String::new()),
            (_, Some(d)) => ("PUT", format!("{DRAFTS}/{d}/complete"), String::new()),
        };
        let started = Instant::now();
        let answer = call(&client, &base, &token, method, &path, body).await;
        let micros = started.elapsed().as_micros() as u64;
        if let Some((status, bytes)) = &answer {
            if method == "POST" && path == DRAFTS && *status == 200 {
                if let Some(id) = serde_json::from_slice::<serde_json::Value>(bytes)
                    .ok()
                    .and_then(|v| v["id"].as_str().map(str::to_owned))
                {
                    drafts.push(id);
                }
            }
            if method == "PUT" {
                drafts.pop();
            }
            // Keep the working set small: a draft grows with every item added.
            if drafts.len() > 50 {
                drafts.remove(0);
            }
        }
        let mut s = stats.lock().expect("stats");
        match answer {
            Some((status, _)) => *s.by_status.entry(status).or_default() += 1,
            None => s.failed += 1,
        }
        s.micros.push(micros);
    }
}

#[tokio::main]
async fn main() -> Result<(), String> {
    let a = args()?;
    let server = start_local(&a.server, "soak")?;
    let (base, token) = (server.base.clone(), server.token.clone());
    let pid = server.child.id();
    println!("soak: {} connections for {} min against {base} (pid {pid})", a.connections, a.minutes);
    println!(
        "{:>6} {:>9} {:>8} {:>8} {:>8} {:>9}  statuses",
        "t (s)", "requests", "req/s", "p50 ms", "p99 ms", "RSS MiB"
    );

    let stats = Arc::new(Mutex::new(Stats::default()));
    let stop = Arc::new(AtomicBool::new(false));
    let client: Http = client(a.connections);
    let workers: Vec<_> = (0..a.connections)
        .map(|n| tokio::spawn(worker(client.clone(), base.clone(), token.clone(), stats.clone(), stop.clone(), n)))
        .collect();
    let started = Instant::now();
    let end = Duration::from_secs_f64(a.minutes * 60.0);
    let (mut total, mut server_errors, mut failed) = (0u64, 0u64, 0u64);
    let mut rss_samples = Vec::new();
    let mut all_statuses: BTreeMap<u16, u64> = BTreeMap::new();
    while started.elapsed() < end {
        tokio::time::sleep(Duration::from_secs(a.interval).min(end.saturating_sub(started.elapsed()))).await;
        let s = std::mem::take(&mut *stats.lock().expect("stats"));
        let mut micros = s.micros;
        micros.sort_unstable();
        let n: u64 = s.by_status.values().sum::<u64>() + s.failed;
        total += n;
        failed += s.failed;
        server_errors += s.by_status.iter().filter(|(k, _)| **k >= 500).map(|(_, v)| v).sum::<u64>();
        for (k, v) in &s.by_status {
            *all_statuses.entry(*k).or_default() += v;
        }
        let rss = proc_kib(pid, "VmRSS:");
        rss_samples.push(rss);
        println!(
            "{:>6.0} {:>9} {:>8.0} {:>8.2} {:>8.2} {:>9.1}  {:?}{}",
            started.elapsed().as_secs_f64(),
            n,
            n as f64 / a.interval as f64,
            pct(&micros, 0.50),
            pct(&micros, 0.99),
            rss as f64 / 1024.0,
            s.by_status,
            if s.failed > 0 { format!(" + {} without answer", s.failed) } else { String::new() }
        );
    }
    stop.store(true, Ordering::Relaxed);
    for w in workers {
        let _ = w.await;
    }
    drop(server);

    // Memory levels off: the last sample is within 25 % (+8 MiB) of the one at mid-run.
    let mid = rss_samples.get(rss_samples.len() / 2).copied().unwrap_or(0);
    let last = rss_samples.last().copied().unwrap_or(0);
    let bounded = last <= mid + mid / 4 + 8 * 1024;
    println!(
        "soak: {total} requests, statuses {all_statuses:?}, {server_errors} 5xx, {failed} without answer; RSS {:.1} MiB at mid-run, {:.1} MiB at the end: {}",
        mid as f64 / 1024.0,
        last as f64 / 1024.0,
        if bounded { "levels off" } else { "still growing" }
    );
    if server_errors > 0 || failed > 0 || !bounded {
        return Err("the soak failed".into());
    }
    Ok(())
}
