//! The crash loop: a real `shopping-local` takes concurrent writes (drafts, items,
//! completions) and is killed with SIGKILL at random moments, several times, then restarted
//! on the same data dir. Afterwards every acknowledged write is present exactly once, and no
//! half-write is visible: every draft version has exactly its one event, every acknowledged
//! completion has its order, and a write that was never answered is either whole or absent.
//!
//! The workers' writes are group-committed (several answered writes share one transaction and
//! one fsync); the loop checks from `/metrics` that they did share commits.
//!
//! The seed is printed; `CRASH_LOOP_SEED=<n>` replays a run, `CRASH_LOOP_ROUNDS=<n>` runs longer.

mod common;

use common::{start, try_http, BIN};
use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::process::Command;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

const DRAFTS: &str = "/v1/accounts/T12345678/shopping/draft_orders";
const WORKERS: usize = 8;

fn token(dir: &Path) -> String {
    let out = Command::new(BIN)
        .args(["token", "--account", "T12345678", "--expires-in", "86400", "--data-dir"])
        .arg(dir)
        .output()
        .expect("token");
    String::from_utf8(out.stdout).expect("utf8").trim().to_owned()
}

/// One exchange with a JSON answer; `None` when the server did not answer (it was killed).
fn http(port: u16, method: &str, path: &str, token: &str, body: &str) -> Option<(u16, serde_json::Value)> {
    let (status, body) = try_http(port, method, path, token, body)?;
    Some((status, serde_json::from_str(&body).unwrap_or(serde_json::Value::Null)))
}

/// The embedded store's (commits, writes) from `/metrics`.
fn commit_counts(port: u16) -> Option<(u64, u64)> {
    let (_, text) = try_http(port, "GET", "/metrics", "", "")?;
    let value = |name: &str| {
        text.lines().find_map(|l| l.strip_prefix(name).and_then(|v| v.trim().parse::<u64>().ok())).unwrap_or(0)
    };
    Some((value("shopping_store_commits_total "), value("shopping_store_writes_total ")))
}

/// What the workers were told (acknowledged) and what they sent without an answer.
#[derive(Default)]
struct Ledger {
    /// customer id → draft id, for acknowledged creates.
    created: BTreeMap<String, String>,
    /// customer ids of creates that got no answer.
    unacked_creates: BTreeSet<String>,
    /// draft id → line ids acknowledged as added.
    items: BTreeMap<String, BTreeSet<i64>>,
    /// draft id → order ids of acknowledged completions.
    completed: BTreeMap<String, Vec<String>>,
}

struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
}

/// One worker's round: create drafts, add items, complete them, until the server dies.
fn work(port: u16, token: &str, worker: usize, round: usize, ledger: &Mutex<Ledger>, stop: &AtomicBool) {
    let lock = || ledger.lock().expect("ledger");
    for n in 0.. {
        if stop.load(Ordering::SeqCst) {
            return;
        }
        let cid = format!("w{worker}-r{round}-n{n}");
        let body = format!(
            r#"{{"order":{{"currency":"NOK","customer":{{"id":"{cid}"}},"items":[{{"line_id":1,"gross_amount":100,"tax_lines":[{{"percentage":25}}]}}]}}}}"#
        );
        let Some((200, d)) = http(port, "POST", DRAFTS, token, &body) else {
            lock().unacked_creates.insert(cid);
            return;
        };
        let id = d["id"].as_str().expect("draft id").to_owned();
        lock().created.insert(cid, id.clone());
        lock().items.insert(id.clone(), BTreeSet::from([1]));
        for line in 2..=3 {
            let item = format!(r#"{{"line_id":{line},"gross_amount":50,"tax_lines":[{{"percentage":25}}]}}"#);
            match http(port, "POST", &format!("{DRAFTS}/{id}/items"), token, &item) {
                Some((200, _)) => {
                    lock().items.entry(id.clone()).or_default().insert(line);
                }
                Some((status, body)) => panic!("add item answered {status}: {body}"),
                None => return,
            }
        }
        match http(port, "PUT", &format!("{DRAFTS}/{id}/complete"), token, "") {
            Some((200, done)) => {
                let orders = done["orders"].as_array().into_iter().flatten();
                let ids = orders.filter_map(|o| o["id"].as_str().map(str::to_owned)).collect();
                lock().completed.insert(id, ids);
            }
            Some((status, body)) => panic!("complete answered {status}: {body}"),
            None => return,
        }
    }
}

/// Every draft of the account, through the list (all statuses, every page).
fn all_drafts(port: u16, token: &str) -> Vec<serde_json::Value> {
    let mut out = Vec::new();
    let mut after = String::new();
    loop {
        let path = format!("{DRAFTS}?limit=100&status=open,completed,deleted{after}");
        let (status, page) = http(port, "GET", &path, token, "").expect("list");
        assert_eq!(status, 200, "{page}");
        let drafts = page["draft_orders"].as_array().cloned().unwrap_or_default();
        let Some(last) = drafts.last().and_then(|d| d["id"].as_str()).map(str::to_owned) else { break };
        after = format!("&starting_after={last}");
        out.extend(drafts);
    }
    out
}

#[test]
fn acknowledged_writes_survive_repeated_sigkill() {
    let seed = std::env::var("CRASH_LOOP_SEED").ok().and_then(|s| s.parse().ok()).unwrap_or_else(|| {
        std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(7, |d| d.as_nanos() as u64) | 1
    });
    let rounds: usize = std::env::var("CRASH_LOOP_ROUNDS").ok().and_then(|s| s.parse().ok()).unwrap_or(5);
    eprintln!("crash loop: seed {seed}, {rounds} rounds");
    let mut rng = Rng(seed);
    let dir = tempfile::tempdir().expect("tempdir");
    let t = token(dir.path());
    let ledger = Arc::new(Mutex::new(Ledger::default()));
    let (mut commits, mut writes) = (0, 0);

    for round in 0..rounds {
        let (mut server, port) = start(dir.path());
        let stop = Arc::new(AtomicBool::new(false));
        let workers: Vec<_> = (0..WORKERS)
            .map(|w| {
                let (t, ledger, stop) = (t.clone(), ledger.clone(), stop.clone());
                std::thread::spawn(move || work(port, &t, w, round, &ledger, &stop))
            })
            .collect();
        std::thread::sleep(Duration::from_millis(100 + rng.next() % 500));
        if let Some((c, w)) = commit_counts(port) {
            commits += c;
            writes += w;
        }
        server.kill().expect("SIGKILL");
        server.wait().expect("reap");
        stop.store(true, Ordering::SeqCst);
        for w in workers {
            w.join().expect("worker");
        }
    }

    let (mut server, port) = start(dir.path());
    let ledger = ledger.lock().expect("ledger");
    let drafts = all_drafts(port, &t);
    let mut by_customer: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for d in &drafts {
        let cid = d["order"]["customer"]["id"].as_str().unwrap_or_default().to_owned();
        by_customer.entry(cid).or_default().push(d["id"].as_str().unwrap_or_default().to_owned());
    }
    assert!(!ledger.created.is_empty(), "the workers got some writes through");
    for (cid, id) in &ledger.created {
        assert_eq!(by_customer.get(cid), Some(&vec![id.clone()]), "acknowledged create {cid} exactly once");
    }
    for cid in &ledger.unacked_creates {
        assert!(by_customer.get(cid).map_or(0, Vec::len) <= 1, "unanswered create {cid} at most once");
    }
    // No half-writes: each draft's version has exactly its events, 0..=version, each once.
    for d in &drafts {
        let id = d["id"].as_str().unwrap_or_default();
        let (status, full) = http(port, "GET", &format!("{DRAFTS}/{id}"), &t, "").expect("get draft");
        assert_eq!(status, 200, "{full}");
        let version = full["version"].as_u64().expect("version");
        let versions: Vec<u64> =
            full["events"].as_array().into_iter().flatten().filter_map(|e| e["version"].as_u64()).collect();
        assert_eq!(versions, (0..=version).collect::<Vec<_>>(), "draft {id}: one event per version");
        let lines: Vec<i64> =
            full["order"]["items"].as_array().into_iter().flatten().filter_map(|i| i["line_id"].as_i64()).collect();
        let unique: BTreeSet<i64> = lines.iter().copied().collect();
        assert_eq!(unique.len(), lines.len(), "draft {id}: each item once");
        assert_eq!(
            lines.len() as u64,
            1 + version - u64::from(full["status"] == "completed"),
            "draft {id}: one item per add"
        );
        if let Some(acked) = ledger.items.get(id) {
            assert!(acked.is_subset(&unique), "draft {id}: every acknowledged item is there");
        }
    }
    for (id, orders) in &ledger.completed {
        let (_, full) = http(port, "GET", &format!("{DRAFTS}/{id}"), &t, "").expect("get draft");
        assert_eq!(full["status"], "completed", "acknowledged completion of {id}");
        for o in orders {
            let path = format!("/v1/accounts/T12345678/shopping/orders/{o}?include_events=true");
            let (status, order) = http(port, "GET", &path, &t, "").expect("get order");
            assert_eq!(status, 200, "{order}");
            assert_eq!(order["items"].as_array().map(Vec::len), Some(3));
            assert_eq!(order["events"][0]["draft_id"], id.as_str());
        }
    }
    eprintln!(
        "crash loop: {} drafts acknowledged, {} unanswered creates, {} completions acknowledged; \
         {writes} writes in {commits} commits",
        ledger.created.len(),
        ledger.unacked_creates.len(),
        ledger.completed.len()
    );
    assert!(writes > commits, "concurrent writers shared commits ({writes} writes in {commits} commits)");
    server.kill().expect("kill");
    let _ = server.wait();
}
