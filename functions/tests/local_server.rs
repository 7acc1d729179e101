//! `shopping-local` as a user runs it: a real process on a real port. An acknowledged write
//! survives `kill -9` and a restart on the same data dir.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::Path;
use std::process::{Child, Command, Stdio};

const BIN: &str = env!("CARGO_BIN_EXE_shopping-local");

/// Starts the server on a port of its choosing; returns it with the port it printed.
fn start(dir: &Path) -> (Child, u16) {
    start_at(dir, 0)
}

/// Starts the server with its clock shifted by `offset` seconds.
fn start_at(dir: &Path, offset: i64) -> (Child, u16) {
    let mut child = Command::new(BIN)
        .args(["serve", "--addr", "127.0.0.1:0", "--data-dir"])
        .arg(dir)
        .env("SHOPPING_CLOCK_OFFSET_SECONDS", offset.to_string())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn shopping-local");
    let mut line = String::new();
    BufReader::new(child.stdout.take().expect("stdout")).read_line(&mut line).expect("listening line");
    let port =
        line.trim().rsplit(':').next().and_then(|p| p.parse().ok()).unwrap_or_else(|| panic!("no port in {line:?}"));
    (child, port)
}

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
    let mut s = TcpStream::connect(("127.0.0.1", port)).expect("connect");
    write!(
        s,
        "{method} {path} HTTP/1.1\r\nHost: localhost\r\nAuthorization: Bearer {token}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )
    .expect("write");
    let mut raw = String::new();
    s.read_to_string(&mut raw).expect("read");
    let status = raw.split_whitespace().nth(1).and_then(|c| c.parse().ok()).expect("status");
    let body = raw.split_once("\r\n\r\n").map(|(_, b)| b.to_owned()).unwrap_or_default();
    (status, body)
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
