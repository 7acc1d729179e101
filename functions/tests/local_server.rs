//! `shopping-local` as a user runs it: a real process on a real port. An acknowledged write
//! survives `kill -9` and a restart on the same data dir.

mod common;

use common::{start, start_at, try_http, BIN};
use std::path::Path;
use std::process::Command;

fn token(dir: &Path) -> String {
    token_at(dir, 0)
}

fn token_at(dir: &Path, offset: i64) -> String {
    let out = Command::new(BIN)
        .args(["token", "--account", "T12345678", "--data-dir"])
        .arg(dir)
        .env("SHOPPING_CLOCK_OFFSET_SECONDS", offset.to_string())
        .output()
        .expect("token");
    assert!(out.status.success());
    String::from_utf8(out.stdout).expect("utf8").trim().to_owned()
}

/// A minimal HTTP/1.1 exchange: returns (status, body).
fn http(port: u16, method: &str, path: &str, token: &str, body: &str) -> (u16, String) {
    try_http(port, method, path, token, body).expect("an answer")
}

#[test]
fn acknowledged_writes_survive_kill_9_and_restart() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (mut server, port) = start(dir.path());
    let t = token(dir.path());
    let (status, body) =
        http(port, "POST", "/v1/accounts/T12345678/shopping/draft_orders", &t, r#"{"order":{"currency":"NOK"}}"#);
    assert_eq!(status, 200, "{body}");
    let id = body.split("\"id\":\"").nth(1).and_then(|r| r.split('"').next()).expect("id").to_owned();
    server.kill().expect("kill -9");
    server.wait().expect("reap");

    let (mut server, port) = start(dir.path());
    // the token minted before the restart still verifies: the secret lives in the data dir
    let (status, body) = http(port, "GET", &format!("/v1/accounts/T12345678/shopping/draft_orders/{id}"), &t, "");
    server.kill().expect("kill");
    let _ = server.wait();
    assert_eq!(status, 200, "{body}");
    assert!(body.contains(&id));
}

#[test]
fn token_refuses_a_malformed_account() {
    let dir = tempfile::tempdir().expect("tempdir");
    let out =
        Command::new(BIN).args(["token", "--account", "nope", "--data-dir"]).arg(dir.path()).output().expect("run");
    assert!(!out.status.success());
}

#[test]
fn clock_offset_lets_a_developer_watch_retention_expire() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (mut server, port) = start(dir.path());
    let body = r#"{"options":{"order_time_to_live":86400},"order":{"currency":"NOK"}}"#;
    let (status, created) =
        http(port, "POST", "/v1/accounts/T12345678/shopping/draft_orders", &token(dir.path()), body);
    server.kill().expect("kill");
    let _ = server.wait();
    assert_eq!(status, 200, "{created}");
    let id = created.split("\"id\":\"").nth(1).and_then(|r| r.split('"').next()).expect("id").to_owned();

    let (mut server, port) = start_at(dir.path(), 86_401);
    let t = token_at(dir.path(), 86_401);
    let (status, body) = http(port, "GET", &format!("/v1/accounts/T12345678/shopping/draft_orders/{id}"), &t, "");
    // a token minted on the unshifted clock has expired on the shifted one
    let (stale, _) =
        http(port, "GET", &format!("/v1/accounts/T12345678/shopping/draft_orders/{id}"), &token(dir.path()), "");
    server.kill().expect("kill");
    let _ = server.wait();
    assert_eq!(status, 404, "{body}");
    assert_eq!(stale, 401);
}

/// Retention across a restart: an order with a one-day `time_to_live`, read by a server
/// restarted two days later, is emptied, its draft and children are gone and it has left
/// the lists; an order without retention is intact.
#[test]
fn orders_expire_across_a_restart_two_days_later() {
    let dir = tempfile::tempdir().expect("tempdir");
    let base = "/v1/accounts/T12345678/shopping";
    let json = |s: &str| serde_json::from_str::<serde_json::Value>(s).expect("JSON");
    let (mut server, port) = start(dir.path());
    let t = token(dir.path());
    let make = |options: &str| {
        let body = format!(
            r#"{{"options":{options},"order":{{"currency":"NOK","customer":{{"id":"c-9"}},"items":[{{"line_id":1,"gross_amount":100,"tax_lines":[{{"percentage":25}}]}}]}}}}"#
        );
        let (status, draft) = http(port, "POST", &format!("{base}/draft_orders"), &t, &body);
        assert_eq!(status, 200, "{draft}");
        let draft_id = json(&draft)["id"].as_str().expect("id").to_owned();
        let (status, done) = http(port, "PUT", &format!("{base}/draft_orders/{draft_id}/complete"), &t, "");
        assert_eq!(status, 200, "{done}");
        (draft_id, json(&done)["orders"][0]["id"].as_str().expect("order id").to_owned())
    };
    let (draft, expiring) = make(r#"{"order_time_to_live":86400}"#);
    let (_, kept) = make("{}");
    let (status, _) = http(port, "POST", &format!("{base}/orders/{expiring}/comments"), &t, r#"{"body":"hi"}"#);
    assert_eq!(status, 200);
    server.kill().expect("kill");
    let _ = server.wait();

    let (mut server, port) = start_at(dir.path(), 2 * 86_400);
    let t = token_at(dir.path(), 2 * 86_400);
    let get = |path: String| http(port, "GET", &path, &t, "");
    let (status, emptied) = get(format!("{base}/orders/{expiring}"));
    let (draft_status, _) = get(format!("{base}/draft_orders/{draft}"));
    let (_, events) = get(format!("{base}/orders/{expiring}/events"));
    let (_, filtered) = get(format!("{base}/orders?status=open"));
    let (_, by_customer) = get(format!("{base}/customers/c-9/orders"));
    let (_, intact) = get(format!("{base}/orders/{kept}"));
    server.kill().expect("kill");
    let _ = server.wait();
    assert_eq!(status, 200, "{emptied}");
    let emptied = json(&emptied);
    assert!(emptied["items"] == serde_json::json!([]) && emptied["comments"] == serde_json::json!([]), "{emptied}");
    assert!(emptied["deleted_at"].is_string());
    assert_eq!(draft_status, 404);
    assert_eq!(json(&events)["events"], serde_json::json!([]));
    let listed = |body: &str| -> Vec<String> {
        json(body)["orders"]
            .as_array()
            .expect("orders")
            .iter()
            .map(|o| o["id"].as_str().unwrap_or("").to_owned())
            .collect()
    };
    assert_eq!(listed(&filtered), std::slice::from_ref(&kept));
    assert_eq!(listed(&by_customer), std::slice::from_ref(&kept));
    assert_eq!(json(&intact)["items"].as_array().map(Vec::len), Some(1));
}

/// One server per data dir: a second `serve` on a served dir stops at once and says why
/// (both would drain the one outbox, and the first keeps answers in memory that only its
/// own writes can change); once the first is gone, the dir can be served again.
#[test]
fn a_second_server_on_a_served_data_dir_is_refused() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (mut first, _) = start(dir.path());
    let mut second = Command::new(BIN)
        .args(["serve", "--addr", "127.0.0.1:0", "--data-dir"])
        .arg(dir.path())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("run a second server");
    // Should the lock fail, the second server would serve on: stop it rather than hang.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    let status = loop {
        if let Some(status) = second.try_wait().expect("wait") {
            break Some(status);
        }
        if std::time::Instant::now() > deadline {
            let _ = second.kill();
            let _ = second.wait();
            break None;
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
    };
    first.kill().expect("kill");
    let _ = first.wait();
    let mut stderr = String::new();
    std::io::Read::read_to_string(&mut second.stderr.take().expect("stderr"), &mut stderr).expect("stderr");
    let status = status.expect("the second server was still running after 10 s");
    assert!(!status.success());
    assert!(stderr.contains("is being served by another shopping-local"), "{stderr}");
    let (mut again, port) = start(dir.path());
    let (code, _) = http(port, "GET", "/openapi.json", "", "");
    again.kill().expect("kill");
    let _ = again.wait();
    assert_eq!(code, 200);
}

/// `serve` on a data dir that does not exist yet (a fresh clone's `./.shopping`) makes it.
#[test]
fn serve_makes_its_data_dir() {
    let dir = tempfile::tempdir().expect("tempdir");
    let fresh = dir.path().join("fresh").join("nested");
    let (mut server, port) = start(&fresh);
    let (code, _) = http(port, "GET", "/openapi.json", "", "");
    server.kill().expect("kill");
    let _ = server.wait();
    assert_eq!(code, 200);
    assert!(fresh.join("serve.lock").exists());
}
