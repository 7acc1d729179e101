//! The local load bench: requests per second and latency of `shopping-local` (release,
//! durable: SQLite WAL with `synchronous=FULL`) next to a bare axum JSON hello server on the
//! same machine and load, and the server's peak memory. Not a CI gate; see BENCHMARKS.md.
//!
//! ```sh
//! cargo build --release -p functions --bin shopping-local
//! cargo run --release -p shopping-tests --bin load -- --seconds 10 --connections 16
//! ```

use shopping_tests::{call, client, pct, proc_kib, spawn, start_local, start_local_with, Http, Server};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

const DRAFTS: &str = "/v1/accounts/T12345678/shopping/draft_orders";
const DRAFT: &str = r#"{"order":{"currency":"NOK","customer":{"id":"load-1","email":"k@example.com"},"items":[{"line_id":1,"gross_amount":19900,"quantity":2,"description":"Mug","tax_lines":[{"percentage":25}]}]}}"#;

struct Args {
    seconds: u64,
    connections: usize,
    server: String,
    hello: String,
}

fn args() -> Result<Args, String> {
    let mut a = Args {
        seconds: 10,
        connections: 16,
        server: "target/release/shopping-local".into(),
        hello: "target/release/hello_server".into(),
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let v = it.next().ok_or_else(|| format!("{flag} needs a value"))?;
        let bad = || format!("bad value for {flag}: {v}");
        match flag.as_str() {
            "--seconds" => a.seconds = v.parse().map_err(|_| bad())?,
            "--connections" => a.connections = v.parse().map_err(|_| bad())?,
            "--server" => a.server = v,
            "--hello" => a.hello = v,
            _ => return Err(format!("unknown flag {flag} (--seconds, --connections, --server, --hello)")),
        }
    }
    Ok(a)
}

struct Run {
    requests: u64,
    errors: u64,
    micros: Vec<u64>,
    seconds: f64,
}

/// `connections` loops sending the same request for `seconds`; any non-2xx is an error.
async fn run(a: &Args, server: &Server, method: &'static str, path: String, body: &'static str) -> Run {
    let http: Http = client(a.connections);
    let stop = Arc::new(AtomicBool::new(false));
    let results = Arc::new(Mutex::new((0u64, Vec::<u64>::new())));
    let workers: Vec<_> = (0..a.connections)
        .map(|_| {
            let (http, stop, results, path) = (http.clone(), stop.clone(), results.clone(), path.clone());
            let (base, token) = (server.base.clone(), server.token.clone());
            tokio::spawn(async move {
                let (mut errors, mut micros) = (0u64, Vec::new());
                while !stop.load(Ordering::Relaxed) {
                    let t = Instant::now();
                    let ok = matches!(
                        call(&http, &base, &token, method, &path, body.to_owned()).await,
                        Some((200..=299, _))
                    );
                    micros.push(t.elapsed().as_micros() as u64);
                    errors += u64::from(!ok);
                }
                let mut r = results.lock().expect("results");
                r.0 += errors;
                r.1.extend(micros);
            })
        })
        .collect();
    let started = Instant::now();
    tokio::time::sleep(Duration::from_secs(a.seconds)).await;
    stop.store(true, Ordering::Relaxed);
    for w in workers {
        let _ = w.await;
    }
    let seconds = started.elapsed().as_secs_f64();
    let (errors, mut micros) = std::mem::take(&mut *results.lock().expect("results"));
    micros.sort_unstable();
    Run { requests: micros.len() as u64, errors, micros, seconds }
}

fn row(name: &str, r: &Run, baseline: Option<&Run>) {
    let rps = r.requests as f64 / r.seconds;
    let ratio = baseline.map_or("–".to_owned(), |b| format!("{:.2}", rps / (b.requests as f64 / b.seconds)));
    println!(
        "| {name} | {:.0} | {:.2} | {:.2} | {} | {ratio} |",
        rps,
        pct(&r.micros, 0.5),
        pct(&r.micros, 0.99),
        r.errors
    );
}

/// A draft created and completed on `server`: its order's path.
async fn completed_order(http: &Http, server: &Server) -> Result<String, String> {
    let (_, d) =
        call(http, &server.base, &server.token, "POST", DRAFTS, DRAFT.to_owned()).await.ok_or("create failed")?;
    let id = serde_json::from_slice::<serde_json::Value>(&d).map_err(|e| e.to_string())?["id"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    let (_, done) = call(http, &server.base, &server.token, "PUT", &format!("{DRAFTS}/{id}/complete"), String::new())
        .await
        .ok_or("complete failed")?;
    let order = serde_json::from_slice::<serde_json::Value>(&done).map_err(|e| e.to_string())?["orders"][0]["id"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    Ok(format!("/v1/accounts/T12345678/shopping/orders/{order}"))
}

#[tokio::main]
async fn main() -> Result<(), String> {
    let a = args()?;
    let hello = spawn(std::process::Command::new(&a.hello), String::new(), None)
        .map_err(|e| format!("{e} (build it with cargo build --release -p shopping-tests --bin hello_server)"))?;
    let local = start_local(&a.server, "load")?;
    // The same server without its memo of answers: every GET read and rendered afresh (a
    // build from before the memo takes no such flag, and has no such row).
    let afresh = start_local_with(&a.server, "load-afresh", &["--answers-mib", "0"])
        .map_err(|e| eprintln!("no read-afresh row: {e}"))
        .ok();
    let http = client(1);
    let order_path = completed_order(&http, &local).await?;
    let afresh_path = match &afresh {
        Some(s) => Some(completed_order(&http, s).await?),
        None => None,
    };

    println!("{} connections, {} s per run, loopback, load generator on the same cores\n", a.connections, a.seconds);
    println!("| run | req/s | p50 ms | p99 ms | errors | × hello |");
    println!("|---|---|---|---|---|---|");
    let base = run(&a, &hello, "GET", "/".into(), "").await;
    row("bare axum hello (GET /)", &base, None);
    let get = run(&a, &local, "GET", order_path, "").await;
    row("shopping-local GET order (the answer kept in memory)", &get, Some(&base));
    if let (Some(server), Some(path)) = (&afresh, afresh_path) {
        let get = run(&a, server, "GET", path, "").await;
        row("shopping-local GET order, read afresh (`--answers-mib 0`)", &get, Some(&base));
    }
    drop(afresh);
    let create = run(&a, &local, "POST", DRAFTS.into(), DRAFT).await;
    row("shopping-local create draft (durable)", &create, Some(&base));
    // The group-commit factor, where the server counts it (`/metrics`, issue 40).
    if let Some((_, text)) = call(&http, &local.base, &local.token, "GET", "/metrics", String::new()).await {
        let text = String::from_utf8_lossy(&text);
        let value =
            |name: &str| text.lines().find_map(|l| l.strip_prefix(name).and_then(|v| v.trim().parse::<f64>().ok()));
        if let (Some(c), Some(w)) = (value("shopping_store_commits_total "), value("shopping_store_writes_total ")) {
            println!("\nshopping-local writes: {w:.0} in {c:.0} commits ({:.1} writes per commit)", w / c.max(1.0));
        }
    }
    let pid = local.child.id();
    println!(
        "\nshopping-local peak RSS (VmHWM): {:.1} MiB; hello server: {:.1} MiB",
        proc_kib(pid, "VmHWM:") as f64 / 1024.0,
        proc_kib(hello.child.id(), "VmHWM:") as f64 / 1024.0
    );
    println!(
        "budget (issue 6): GET order ≥ 0.5 × hello; create draft ≥ 3,000 req/s with p99 < 20 ms at 16 connections; peak RSS ≤ 60 MB"
    );
    Ok(())
}
