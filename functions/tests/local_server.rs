//! `shopping-local` as a user runs it: a real process on a real port. An acknowledged write
//! survives `kill -9` and a restart on the same data dir.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const BIN: &str = env!("CARGO_BIN_EXE_shopping-local");

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").and_then(|l| l.local_addr()).map(|a| a.port()).expect("port")
}

fn start(dir: &Path, port: u16) -> Child {
    let child = Command::new(BIN)
        .args(["serve", "--addr", &format!("127.0.0.1:{port}"), "--data-dir"])
        .arg(dir)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn shopping-local");
    let deadline = Instant::now() + Duration::from_secs(20);
    while TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(Instant::now() < deadline, "server did not start");
        std::thread::sleep(Duration::from_millis(50));
    }
    child
}

fn token(dir: &Path) -> String {
    let out =
        Command::new(BIN).args(["token", "--account", "T12345678", "--data-dir"]).arg(dir).output().expect("token");
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
    let port = free_port();
    let mut server = start(dir.path(), port);
    let t = token(dir.path());
    let (status, body) =
        http(port, "POST", "/v1/accounts/T12345678/shopping/draft_orders", &t, r#"{"order":{"currency":"NOK"}}"#);
    assert_eq!(status, 200, "{body}");
    let id = body.split("\"id\":\"").nth(1).and_then(|r| r.split('"').next()).expect("id").to_owned();
    server.kill().expect("kill -9");
    server.wait().expect("reap");

    let port = free_port();
    let mut server = start(dir.path(), port);
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
