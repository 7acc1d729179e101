//! The noisy-neighbour bench (issue 38): does one tenant's flood degrade another's requests?
//! Starts a release `shopping-local` on a fresh data dir, gives the noisy tenant a limit of
//! 50 requests a second (`tenant limit`), runs a quiet tenant alone at a steady 20 requests a
//! second (80 % reads) for 30 s to take its baseline, then again while the noisy tenant sends
//! ten times its limit. Not a CI gate; see BENCHMARKS.md.
//!
//! ```sh
//! cargo build --release -p functions --bin shopping-local
//! cargo run --release -p shopping-tests --bin noisy_neighbour [-- --seconds 30]
//! cargo run --release -p shopping-tests --bin noisy_neighbour -- --unlimited   # the "before"
//! ```
//!
//! `--unlimited` lifts the noisy tenant's limit (an override of a million a second): the same
//! flood of ten times 50 a second, unrefused, for comparison.
//!
//! The last line reads: `quiet tenant: N of M answered 2xx, p99 X ms (alone Y ms); noisy
//! tenant: R/s accepted of a L/s limit, 429 with Retry-After and RateLimit: yes|no`.

use http_body_util::{BodyExt, Full};
use hyper::body::Bytes;
use shopping_tests::{client, pct, spawn, Http};
use std::process::Command;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

const QUIET: &str = "T11111111";
const NOISY: &str = "T22222222";
const NOISY_LIMIT: u32 = 50;
const QUIET_RATE: u32 = 20;
const DRAFT: &str = r#"{"order":{"currency":"NOK","items":[{"line_id":1,"gross_amount":19900,"quantity":2,"description":"Mug","tax_lines":[{"percentage":25}]}]}}"#;

struct Args {
    seconds: u64,
    server: String,
    /// The "before": the noisy tenant's limit lifted (an override of a million a second).
    unlimited: bool,
}

fn args() -> Result<Args, String> {
    // beside this bench's own binary: target/release/shopping-local
    let server = std::env::current_exe()
        .ok()
        .and_then(|p| p.parent().map(|d| d.join("shopping-local")))
        .map_or_else(|| "target/release/shopping-local".into(), |p| p.display().to_string());
    let mut a = Args { seconds: 30, server, unlimited: false };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        if flag == "--unlimited" {
            a.unlimited = true;
            continue;
        }
        let v = it.next().ok_or_else(|| format!("{flag} needs a value"))?;
        let bad = || format!("bad value for {flag}: {v}");
        match flag.as_str() {
            "--seconds" => a.seconds = v.parse().map_err(|_| bad())?,
            "--server" => a.server = v,
            _ => {
                return Err(format!("unknown flag {flag} (--seconds, --server, --unlimited; --stack is not built yet)"))
            }
        }
    }
    Ok(a)
}

fn run_cmd(server: &str, args: &[&str], dir: &std::path::Path) -> Result<String, String> {
    let out = Command::new(server).args(args).arg("--data-dir").arg(dir).output().map_err(|e| {
        format!("cannot run {server}: {e} (build it with cargo build --release -p functions --bin shopping-local)")
    })?;
    if !out.status.success() {
        return Err(format!("{server} {}: {}", args.join(" "), String::from_utf8_lossy(&out.stderr)));
    }
    Ok(String::from_utf8_lossy(&out.stdout).trim().to_owned())
}

/// One request: status, whether it carried `Retry-After` and `RateLimit`, and the body.
async fn call(
    http: &Http,
    base: &str,
    token: &str,
    method: &str,
    path: &str,
    body: &str,
) -> Option<(u16, bool, Bytes)> {
    let req = hyper::Request::builder()
        .method(method)
        .uri(format!("{base}{path}"))
        .header("authorization", format!("Bearer {token}"))
        .header("content-type", "application/json")
        .body(Full::new(Bytes::from(body.to_owned())))
        .ok()?;
    let res = http.request(req).await.ok()?;
    let status = res.status().as_u16();
    let headed = res.headers().contains_key("retry-after") && res.headers().contains_key("ratelimit");
    let bytes = res.into_body().collect().await.ok()?.to_bytes();
    Some((status, headed, bytes))
}

/// Creates a draft for `aid`; answers the path that reads it.
async fn create(http: &Http, base: &str, token: &str, aid: &str) -> Result<String, String> {
    let drafts = format!("/v1/accounts/{aid}/shopping/draft_orders");
    let (status, _, body) = call(http, base, token, "POST", &drafts, DRAFT).await.ok_or("no answer to a create")?;
    let id = serde_json::from_slice::<serde_json::Value>(&body)
        .ok()
        .and_then(|v| v["id"].as_str().map(str::to_owned))
        .ok_or_else(|| format!("create answered {status}"))?;
    Ok(format!("{drafts}/{id}"))
}

struct Quiet {
    ok: u64,
    sent: u64,
    micros: Vec<u64>,
}

/// The quiet tenant at a steady [`QUIET_RATE`] a second for `seconds`: four reads of a draft
/// for every create, each request on its own task (an open loop: a slow answer does not slow
/// the sending).
async fn quiet(http: &Http, base: &str, token: &str, draft_path: &str, seconds: u64) -> Quiet {
    let results = Arc::new(Mutex::new((0u64, Vec::<u64>::new())));
    let mut tick = tokio::time::interval(Duration::from_millis(1000 / u64::from(QUIET_RATE)));
    let total = seconds * u64::from(QUIET_RATE);
    let mut tasks = Vec::new();
    for n in 0..total {
        tick.tick().await;
        let (http, base, token, results) = (http.clone(), base.to_owned(), token.to_owned(), results.clone());
        let (method, path, body) = if n % 5 == 4 {
            ("POST", format!("/v1/accounts/{QUIET}/shopping/draft_orders"), DRAFT)
        } else {
            ("GET", draft_path.to_owned(), "")
        };
        tasks.push(tokio::spawn(async move {
            let started = Instant::now();
            let answer = call(&http, &base, &token, method, &path, body).await;
            let us = started.elapsed().as_micros() as u64;
            let mut r = results.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
            r.1.push(us);
            if answer.is_some_and(|(s, _, _)| (200..300).contains(&s)) {
                r.0 += 1;
            }
        }));
    }
    for t in tasks {
        let _ = t.await;
    }
    let (ok, mut micros) = std::mem::take(&mut *results.lock().unwrap_or_else(std::sync::PoisonError::into_inner));
    micros.sort_unstable();
    Quiet { ok, sent: total, micros }
}

#[tokio::main]
async fn main() {
    let a = match args() {
        Ok(a) => a,
        Err(e) => {
            eprintln!("noisy_neighbour: {e}");
            std::process::exit(2);
        }
    };
    if let Err(e) = bench(&a).await {
        eprintln!("noisy_neighbour: {e}");
        std::process::exit(1);
    }
}

async fn bench(a: &Args) -> Result<(), String> {
    let dir = std::env::temp_dir().join(format!("shopping-noisy-{}", std::process::id()));
    let quiet_token = run_cmd(&a.server, &["token", "--account", QUIET, "--expires-in", "86400"], &dir)?;
    let noisy_token = run_cmd(&a.server, &["token", "--account", NOISY, "--expires-in", "86400"], &dir)?;
    let limit = if a.unlimited { "1000000".to_owned() } else { NOISY_LIMIT.to_string() };
    run_cmd(&a.server, &["tenant", "limit", "--account", NOISY, "--rate", &limit, "--burst", &limit], &dir)?;
    let mut cmd = Command::new(&a.server);
    cmd.args(["serve", "--addr", "127.0.0.1:0", "--data-dir"]).arg(&dir).env("RUST_LOG", "warn");
    let server = spawn(cmd, quiet_token.clone(), Some(dir))?;
    let base = server.base.clone();
    let http = client(64);

    // the drafts each tenant reads
    let draft_path = create(&http, &base, &quiet_token, QUIET).await?;
    let noisy_path = create(&http, &base, &noisy_token, NOISY).await?;

    eprintln!("quiet tenant alone, {} s at {QUIET_RATE}/s …", a.seconds);
    let alone = quiet(&http, &base, &quiet_token, &draft_path, a.seconds).await;
    eprintln!(
        "  {} of {} 2xx, p50 {:.1} ms, p99 {:.1} ms",
        alone.ok,
        alone.sent,
        pct(&alone.micros, 0.5),
        pct(&alone.micros, 0.99)
    );

    eprintln!("quiet tenant beside the noisy one at {}/s, {} s …", NOISY_LIMIT * 10, a.seconds);
    let stop = Arc::new(AtomicBool::new(false));
    let (accepted, refused, headed) =
        (Arc::new(AtomicU64::new(0)), Arc::new(AtomicU64::new(0)), Arc::new(AtomicBool::new(true)));
    let noisy = {
        let (http, base, stop) = (http.clone(), base.clone(), stop.clone());
        let (accepted, refused, headed) = (accepted.clone(), refused.clone(), headed.clone());
        let path = noisy_path;
        tokio::spawn(async move {
            // ten times the limit: one request every 2 ms, each on its own task
            let mut tick = tokio::time::interval(Duration::from_micros(1_000_000 / u64::from(NOISY_LIMIT * 10)));
            let mut tasks = Vec::new();
            while !stop.load(Ordering::Relaxed) {
                tick.tick().await;
                let (http, base, token, path) = (http.clone(), base.clone(), noisy_token.clone(), path.clone());
                let (accepted, refused, headed) = (accepted.clone(), refused.clone(), headed.clone());
                tasks.push(tokio::spawn(async move {
                    match call(&http, &base, &token, "GET", &path, "").await {
                        Some((429, with, _)) => {
                            refused.fetch_add(1, Ordering::Relaxed);
                            if !with {
                                headed.store(false, Ordering::Relaxed);
                            }
                        }
                        Some(_) => {
                            accepted.fetch_add(1, Ordering::Relaxed);
                        }
                        None => {}
                    }
                }));
            }
            for t in tasks {
                let _ = t.await;
            }
        })
    };
    let noisy_started = Instant::now();
    let beside = quiet(&http, &base, &quiet_token, &draft_path, a.seconds).await;
    stop.store(true, Ordering::Relaxed);
    let _ = noisy.await;
    let noisy_secs = noisy_started.elapsed().as_secs_f64();
    let (acc, refd) = (accepted.load(Ordering::Relaxed), refused.load(Ordering::Relaxed));
    eprintln!(
        "  quiet {} of {} 2xx, p50 {:.1} ms, p99 {:.1} ms; noisy {acc} accepted, {refd} refused in {noisy_secs:.1} s (a burst of {NOISY_LIMIT} included)",
        beside.ok,
        beside.sent,
        pct(&beside.micros, 0.5),
        pct(&beside.micros, 0.99)
    );
    drop(server);
    let yes = refd > 0 && headed.load(Ordering::Relaxed);
    println!(
        "quiet tenant: {} of {} answered 2xx, p99 {:.1} ms (alone {:.1} ms); noisy tenant: {:.1}/s accepted of a {limit}/s limit, 429 with Retry-After and RateLimit: {}",
        beside.ok,
        beside.sent,
        pct(&beside.micros, 0.99),
        pct(&alone.micros, 0.99),
        acc as f64 / noisy_secs,
        if yes { "yes" } else { "no" }
    );
    Ok(())
}
