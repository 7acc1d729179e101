//! Running `shopping-local` as a user does: a real process on a port of its choosing, spoken
//! to over plain HTTP/1.1.

#![allow(dead_code)]

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

pub const BIN: &str = env!("CARGO_BIN_EXE_shopping-local");

/// Starts the server on `dir` with its clock shifted by `offset` seconds; returns it with the
/// port it printed.
pub fn start_at(dir: &Path, offset: i64) -> (Child, u16) {
    start_with(dir, offset, &[])
}

/// [`start_at`] with more `serve` flags.
pub fn start_with(dir: &Path, offset: i64, flags: &[&str]) -> (Child, u16) {
    let mut child = Command::new(BIN)
        .args(["serve", "--addr", "127.0.0.1:0"])
        .args(flags)
        .arg("--data-dir")
        .arg(dir)
        .env("SHOPPING_CLOCK_OFFSET_SECONDS", offset.to_string())
        // These tests drive one account far past the default per-account limit on purpose.
        .env("TENANT_RATE_LIMIT", "1000000")
        .env("TENANT_BURST_LIMIT", "1000000")
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

pub fn start(dir: &Path) -> (Child, u16) {
    start_at(dir, 0)
}

/// A token with `scopes` for T12345678 from `shopping-local token` on `dir`.
pub fn token(dir: &Path, scopes: &str) -> String {
    let out = Command::new(BIN)
        .args(["token", "--account", "T12345678", "--scopes", scopes, "--data-dir"])
        .arg(dir)
        .output()
        .expect("token");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8(out.stdout).expect("utf8").trim().to_owned()
}

/// One HTTP/1.1 exchange: (status, body), or `None` when the server did not answer (it was
/// killed, say).
pub fn try_http(port: u16, method: &str, path: &str, token: &str, body: &str) -> Option<(u16, String)> {
    let mut s = TcpStream::connect(("127.0.0.1", port)).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(20))).ok()?;
    write!(
        s,
        "{method} {path} HTTP/1.1\r\nHost: localhost\r\nAuthorization: Bearer {token}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )
    .ok()?;
    let mut raw = String::new();
    s.read_to_string(&mut raw).ok()?;
    let status = raw.split_whitespace().nth(1)?.parse().ok()?;
    let body = raw.split_once("\r\n\r\n").map(|(_, b)| b.to_owned()).unwrap_or_default();
    Some((status, body))
}

/// One HTTP/1.1 POST with the given extra header lines: (status, body).
pub fn post_with(port: u16, path: &str, headers: &[&str], content_type: &str, body: &str) -> (u16, String) {
    let mut s = TcpStream::connect(("127.0.0.1", port)).expect("connect");
    s.set_read_timeout(Some(Duration::from_secs(20))).expect("timeout");
    let extra: String = headers.iter().map(|h| format!("{h}\r\n")).collect();
    write!(
        s,
        "POST {path} HTTP/1.1\r\nHost: localhost\r\n{extra}Content-Type: {content_type}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )
    .expect("write");
    let mut raw = String::new();
    s.read_to_string(&mut raw).expect("read");
    let status = raw.split_whitespace().nth(1).and_then(|s| s.parse().ok()).expect("status");
    (status, raw.split_once("\r\n\r\n").map(|(_, b)| b.to_owned()).unwrap_or_default())
}
