//! The operator's per-account limits on `shopping-local`, as an operator meets them:
//! `tenant limit` on the data dir of a running server takes effect without a restart (within
//! a lease, 10 s), `tenant show` lists it, and the account over it gets 429 with `Retry-After`
//! and the RateLimit header fields while another account is unaffected.

mod common;

use common::{start, token, BIN};
use std::io::{Read, Write};
use std::net::TcpStream;
use std::process::Command;
use std::time::Duration;

const AID: &str = "T12345678";

/// (status, the raw head) of one GET.
fn get(port: u16, path: &str, token: &str) -> (u16, String) {
    let mut s = TcpStream::connect(("127.0.0.1", port)).expect("connect");
    s.set_read_timeout(Some(Duration::from_secs(20))).expect("timeout");
    write!(s, "GET {path} HTTP/1.1\r\nHost: localhost\r\nAuthorization: Bearer {token}\r\nConnection: close\r\n\r\n")
        .expect("write");
    let mut raw = String::new();
    s.read_to_string(&mut raw).expect("read");
    let status = raw.split_whitespace().nth(1).and_then(|s| s.parse().ok()).expect("status");
    (status, raw.split_once("\r\n\r\n").map(|(h, _)| h.to_ascii_lowercase()).unwrap_or_default())
}

fn tenant(dir: &std::path::Path, args: &[&str]) -> String {
    let out = Command::new(BIN).arg("tenant").args(args).arg("--data-dir").arg(dir).output().expect("tenant");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8(out.stdout).expect("utf8")
}

#[test]
fn an_override_set_on_a_running_server_limits_that_account_alone() {
    let dir = tempfile::tempdir().expect("tempdir");
    let token = token(dir.path(), "admin:shopping");
    let (mut server, port) = start(dir.path());
    let drafts = format!("/v1/accounts/{AID}/shopping/draft_orders");
    let (status, head) = get(port, &drafts, &token);
    assert_eq!(status, 200);
    // the test server's default (common::start) is far above anything sent here
    assert!(head.contains("ratelimit-policy: \"default\";q=1000000;w=1"), "{head}");
    assert!(head.contains("\r\nratelimit: \"default\";r="), "{head}");

    let set = tenant(dir.path(), &["limit", "--account", AID, "--rate", "1", "--burst", "3"]);
    assert!(set.contains("rate=1 burst=3"), "{set}");
    let shown = tenant(dir.path(), &["show"]);
    assert!(shown.lines().any(|l| l.starts_with(&format!("{AID}\t1\t3\toverride"))), "{shown}");
    let one = tenant(dir.path(), &["show", "--account", "T87654321"]);
    assert!(one.contains("T87654321\t") && one.contains("default"), "{one}");

    // no restart: the server takes it at its next lease (10 s: the account was under its
    // limit, so its instance holds a long one)
    std::thread::sleep(Duration::from_millis(10_100));
    let statuses: Vec<u16> = (0..5).map(|_| get(port, &drafts, &token).0).collect();
    assert_eq!(statuses, [200, 200, 200, 429, 429], "a burst of 3");
    let (status, head) = get(port, &drafts, &token);
    assert_eq!(status, 429);
    assert!(head.contains("retry-after: "), "{head}");
    assert!(head.contains("ratelimit-policy: \"default\";q=3;w=3"), "{head}");
    assert!(head.contains("\r\nratelimit: \"default\";r=0;t="), "{head}");

    let _ = server.kill();
    let _ = server.wait();
}

#[test]
fn a_limit_names_a_valid_account() {
    let dir = tempfile::tempdir().expect("tempdir");
    let out = Command::new(BIN)
        .args(["tenant", "limit", "--account", "nope", "--rate", "1", "--burst", "1", "--data-dir"])
        .arg(dir.path())
        .output()
        .expect("run");
    assert_eq!(out.status.code(), Some(2));
}
