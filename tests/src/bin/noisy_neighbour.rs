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
//! `--stack DIR` runs the same against a running `tests/stack up --data-dir DIR`: each tenant's
//! token comes from the stack's token endpoint for a client made by `tests/stack client create`,
//! and the noisy tenant's limit is set in the stack's table (`shopping-local tenant limit
//! --table`). The gateway's stage limit (`ApiRateLimit`, 500 a second by default) is shared by
//! all tenants, so the noisy tenant's ten times its limit is kept below it: its limit is 50, or
//! the largest below a tenth of `ApiRateLimit` (49 at the default). `--noisy-limit N` sets it.
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
    /// A running `tests/stack up --data-dir DIR` instead of a `shopping-local` of our own.
    stack: Option<std::path::PathBuf>,
    noisy_limit: Option<u32>,
}

fn args() -> Result<Args, String> {
    // beside this bench's own binary: target/release/shopping-local
    let server = std::env::current_exe()
        .ok()
        .and_then(|p| p.parent().map(|d| d.join("shopping-local")))
        .map_or_else(|| "target/release/shopping-local".into(), |p| p.display().to_string());
    let mut a = Args { seconds: 30, server, unlimited: false, stack: None, noisy_limit: None };
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
            "--stack" => a.stack = Some(v.into()),
            "--noisy-limit" => a.noisy_limit = Some(v.parse().ok().filter(|n| *n > 0).ok_or_else(bad)?),
            _ => {
                return Err(format!(
                    "unknown flag {flag} (--seconds, --server, --unlimited, --stack DIR, --noisy-limit N)"
                ))
            }
        }
    }
    Ok(a)
}

fn run_cmd(server: &str, args: &[&str], dir: &std::path::Path) -> Result<String, String> {
    let mut cmd = Command::new(server);
    cmd.args(args).arg("--data-dir").arg(dir);
    output(cmd, server, args)
}

fn output(mut cmd: Command, server: &str, args: &[&str]) -> Result<String, String> {
    let out = cmd.output().map_err(|e| {
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

/// Where the bench runs: its base URL, both tenants' tokens, the noisy tenant's limit, and
/// (locally) the server it started, stopped when dropped.
struct Host {
    base: String,
    quiet_token: String,
    noisy_token: String,
    limit: String,
    /// The noisy tenant's flood: ten times its limit (lifted or not).
    flood: u32,
    _server: Option<shopping_tests::Server>,
}

/// A `shopping-local` of the bench's own on a fresh data dir.
fn local_host(a: &Args) -> Result<Host, String> {
    let dir = std::env::temp_dir().join(format!("shopping-noisy-{}", std::process::id()));
    let quiet_token = run_cmd(&a.server, &["token", "--account", QUIET, "--expires-in", "86400"], &dir)?;
    let noisy_token = run_cmd(&a.server, &["token", "--account", NOISY, "--expires-in", "86400"], &dir)?;
    let flood = a.noisy_limit.unwrap_or(NOISY_LIMIT) * 10;
    let limit = noisy_limit(a, flood / 10);
    run_cmd(&a.server, &["tenant", "limit", "--account", NOISY, "--rate", &limit, "--burst", &limit], &dir)?;
    let mut cmd = Command::new(&a.server);
    cmd.args(["serve", "--addr", "127.0.0.1:0", "--data-dir"]).arg(&dir).env("RUST_LOG", "warn");
    let server = spawn(cmd, quiet_token.clone(), Some(dir))?;
    Ok(Host { base: server.base.clone(), quiet_token, noisy_token, limit, flood, _server: Some(server) })
}

fn noisy_limit(a: &Args, limit: u32) -> String {
    if a.unlimited {
        "1000000".to_owned()
    } else {
        limit.to_string()
    }
}

/// A running `tests/stack up --data-dir DIR`: its API, a client of each tenant, the noisy
/// tenant's limit in its table.
async fn stack_host(a: &Args, dir: &std::path::Path, http: &Http) -> Result<Host, String> {
    let state: serde_json::Value =
        std::fs::read(dir.join("stack.json")).ok().and_then(|b| serde_json::from_slice(&b).ok()).ok_or_else(|| {
            format!("no running stack in {} (no stack.json): start one with tests/stack up", dir.display())
        })?;
    let text = |v: &serde_json::Value| v.as_str().map(str::to_owned).ok_or("stack.json lacks a field");
    let base = text(&state["api"])?;
    let table = text(&state["resources"]["Table"])?;
    // The stage's limit, which every tenant shares (the template's default unless given).
    let stage: u32 = state["parameters"]["ApiRateLimit"].as_str().and_then(|v| v.parse().ok()).unwrap_or(500);
    let limit = a.noisy_limit.unwrap_or_else(|| NOISY_LIMIT.min(stage.saturating_sub(1) / 10)).max(1);
    if limit * 10 >= stage {
        return Err(format!(
            "ten times the noisy tenant's limit ({}/s) is not below the stage's ApiRateLimit ({stage}/s)",
            limit * 10
        ));
    }
    let flood = limit * 10;
    let limit = noisy_limit(a, limit);
    let token = |aid: &'static str| {
        let stack = concat!(env!("CARGO_MANIFEST_DIR"), "/stack");
        let mut cmd = Command::new(stack);
        cmd.args(["client", "create", "--account", aid, "--data-dir"]).arg(dir);
        let out = output(cmd, stack, &["client", "create"])?;
        let value =
            |k: &str| out.split_whitespace().find_map(|w| w.strip_prefix(k)).map(str::to_owned).ok_or("no client made");
        Ok::<_, String>((aid, value("client_id=")?, value("client_secret=")?))
    };
    let (quiet_client, noisy_client) = (token(QUIET)?, token(NOISY)?);
    let quiet_token = access_token(http, &base, quiet_client).await?;
    let noisy_token = access_token(http, &base, noisy_client).await?;
    let mut cmd = Command::new(&a.server);
    cmd.args(["tenant", "limit", "--account", NOISY, "--rate", &limit, "--burst", &limit, "--table", &table]);
    let credentials = &state["credentials"];
    cmd.env("AWS_ENDPOINT_URL", text(&state["endpoint"])?)
        .env("AWS_REGION", text(&state["region"])?)
        .env("AWS_ACCESS_KEY_ID", text(&credentials["aws_access_key_id"])?)
        .env("AWS_SECRET_ACCESS_KEY", text(&credentials["aws_secret_access_key"])?)
        .env_remove("AWS_PROFILE");
    output(cmd, &a.server, &["tenant", "limit"])?;
    // An override reaches every instance at its next lease: within 10 s (a long lease, held
    // by an instance when the tenant was under its limit, as in an earlier run).
    tokio::time::sleep(Duration::from_millis(10_500)).await;
    Ok(Host { base, quiet_token, noisy_token, limit, flood, _server: None })
}

/// A token from the stack's token endpoint for a client, as an upstream client gets one.
async fn access_token(http: &Http, base: &str, (aid, id, secret): (&str, String, String)) -> Result<String, String> {
    use base64::Engine as _;
    let req = hyper::Request::builder()
        .method("POST")
        .uri(format!("{base}/v1/accounts/{aid}/auth/token"))
        .header(
            "authorization",
            format!("Basic {}", base64::engine::general_purpose::STANDARD.encode(format!("{id}:{secret}"))),
        )
        .header("content-type", "application/json")
        .body(Full::new(Bytes::from_static(br#"{"grant_type":"client_credentials"}"#)))
        .map_err(|e| e.to_string())?;
    let res = http.request(req).await.map_err(|e| format!("token endpoint: {e}"))?;
    let status = res.status();
    let body = res.into_body().collect().await.map_err(|e| e.to_string())?.to_bytes();
    serde_json::from_slice::<serde_json::Value>(&body)
        .ok()
        .and_then(|v| v["access_token"].as_str().map(str::to_owned))
        .ok_or_else(|| format!("the token endpoint answered {status}"))
}

async fn bench(a: &Args) -> Result<(), String> {
    let http = client(64);
    let host = match &a.stack {
        Some(dir) => stack_host(a, dir, &http).await?,
        None => local_host(a)?,
    };
    let Host { base, quiet_token, noisy_token, limit, flood, .. } = &host;
    let flood = *flood;
    let (base, quiet_token, noisy_token, limit) =
        (base.clone(), quiet_token.clone(), noisy_token.clone(), limit.clone());

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

    eprintln!("quiet tenant beside the noisy one at {flood}/s, {} s …", a.seconds);
    let stop = Arc::new(AtomicBool::new(false));
    let (accepted, refused, headed) =
        (Arc::new(AtomicU64::new(0)), Arc::new(AtomicU64::new(0)), Arc::new(AtomicBool::new(true)));
    // answers neither 2xx nor 429 (a gateway's 5xx, a timeout): neither accepted nor refused
    let failed = Arc::new(AtomicU64::new(0));
    let noisy = {
        let (http, base, stop) = (http.clone(), base.clone(), stop.clone());
        let (accepted, refused, headed, failed) = (accepted.clone(), refused.clone(), headed.clone(), failed.clone());
        let path = noisy_path;
        tokio::spawn(async move {
            // ten times the limit (one request every 2 ms at 50/s), each on its own task
            let mut tick = tokio::time::interval(Duration::from_micros(1_000_000 / u64::from(flood)));
            let mut tasks = Vec::new();
            while !stop.load(Ordering::Relaxed) {
                tick.tick().await;
                let (http, base, token, path) = (http.clone(), base.clone(), noisy_token.clone(), path.clone());
                let (accepted, refused, headed, failed) =
                    (accepted.clone(), refused.clone(), headed.clone(), failed.clone());
                tasks.push(tokio::spawn(async move {
                    match call(&http, &base, &token, "GET", &path, "").await {
                        Some((429, with, _)) => {
                            refused.fetch_add(1, Ordering::Relaxed);
                            if !with {
                                headed.store(false, Ordering::Relaxed);
                            }
                        }
                        Some((200..=299, _, _)) => {
                            accepted.fetch_add(1, Ordering::Relaxed);
                        }
                        _ => {
                            failed.fetch_add(1, Ordering::Relaxed);
                        }
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
    // the flood's seconds: while it was sent (answers still coming in count, they were sent then)
    let noisy_secs = noisy_started.elapsed().as_secs_f64();
    let _ = noisy.await;
    let (acc, refd, fail) =
        (accepted.load(Ordering::Relaxed), refused.load(Ordering::Relaxed), failed.load(Ordering::Relaxed));
    eprintln!(
        "  quiet {} of {} 2xx, p50 {:.1} ms, p99 {:.1} ms; noisy {acc} accepted, {refd} refused, {fail} failed (neither 2xx nor 429) in {noisy_secs:.1} s (a burst of {} included)",
        beside.ok,
        beside.sent,
        pct(&beside.micros, 0.5),
        pct(&beside.micros, 0.99),
        flood / 10
    );
    drop(host);
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
