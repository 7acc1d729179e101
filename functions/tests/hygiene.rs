//! Connection hygiene of `shopping-local serve` (issue 40): a stalled head and a stalled body
//! are closed or refused within their timeouts, the connection cap holds, and every request
//! carries a request id (the caller's when it is sound, else a new one), echoed and logged.

mod common;

use common::{token, BIN};
use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const DRAFTS: &str = "/v1/accounts/T12345678/shopping/draft_orders";

/// The server with `flags`, its log in `dir/log`; returns it and its port.
fn serve(dir: &Path, flags: &[&str]) -> (Child, u16) {
    let log = std::fs::File::create(dir.join("log")).expect("log file");
    let mut child = Command::new(BIN)
        .args(["serve", "--addr", "127.0.0.1:0"])
        .args(flags)
        .arg("--data-dir")
        .arg(dir)
        .env("RUST_LOG", "info")
        .env("TENANT_RATE_LIMIT", "1000000")
        .env("TENANT_BURST_LIMIT", "1000000")
        .stdout(Stdio::piped())
        .stderr(log)
        .spawn()
        .expect("spawn shopping-local");
    let mut line = String::new();
    BufReader::new(child.stdout.take().expect("stdout")).read_line(&mut line).expect("listening line");
    let port = line.trim().rsplit(':').next().and_then(|p| p.parse().ok()).expect("port");
    (child, port)
}

fn stop(mut child: Child) {
    let _ = child.kill();
    let _ = child.wait();
}

fn log(dir: &Path) -> String {
    std::fs::read_to_string(dir.join("log")).unwrap_or_default()
}

/// Reads until the server closes the connection (or `limit` passes): what it sent, and how
/// long it took.
fn read_until_closed(s: &mut TcpStream, limit: Duration) -> (String, Duration) {
    let started = Instant::now();
    s.set_read_timeout(Some(limit)).expect("timeout");
    let mut raw = Vec::new();
    let _ = s.read_to_end(&mut raw);
    (String::from_utf8_lossy(&raw).into_owned(), started.elapsed())
}

/// A full request on a fresh connection: (status, head, body).
fn request(port: u16, head_lines: &str, method: &str, path: &str, body: &str) -> (u16, String, String) {
    let mut s = TcpStream::connect(("127.0.0.1", port)).expect("connect");
    write!(
        s,
        "{method} {path} HTTP/1.1\r\nHost: x\r\n{head_lines}Content-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )
    .expect("write");
    let (raw, _) = read_until_closed(&mut s, Duration::from_secs(20));
    let (head, body) = raw.split_once("\r\n\r\n").unwrap_or((raw.as_str(), ""));
    let status = head.split_whitespace().nth(1).and_then(|s| s.parse().ok()).unwrap_or(0);
    (status, head.to_owned(), body.to_owned())
}

fn header<'a>(head: &'a str, name: &str) -> Option<&'a str> {
    head.lines().find_map(|l| l.split_once(':').filter(|(n, _)| n.eq_ignore_ascii_case(name)).map(|(_, v)| v.trim()))
}

#[test]
fn a_stalled_head_is_closed_within_the_idle_timeout() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (server, port) = serve(dir.path(), &["--idle-timeout", "1", "--header-timeout", "5"]);
    let mut s = TcpStream::connect(("127.0.0.1", port)).expect("connect");
    s.write_all(b"GET /openapi.json HTTP/1.1\r\nHost: x\r\n").expect("write");
    let (answer, took) = read_until_closed(&mut s, Duration::from_secs(10));
    stop(server);
    assert!(answer.is_empty(), "a stalled head gets no answer, only a close: {answer:?}");
    assert!(took >= Duration::from_millis(900) && took < Duration::from_secs(3), "closed after {took:?}");
}

#[test]
fn a_trickling_head_is_closed_within_the_header_timeout() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (server, port) = serve(dir.path(), &["--idle-timeout", "1", "--header-timeout", "2"]);
    let mut s = TcpStream::connect(("127.0.0.1", port)).expect("connect");
    s.set_read_timeout(Some(Duration::from_millis(300))).expect("timeout");
    let started = Instant::now();
    // One byte every 300 ms: never idle for a second, never done.
    let mut closed_after = None;
    for b in b"GET /openapi.json HTTP/1.1\r\nHost: x\r\nX-Slow: aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa".iter().cycle()
    {
        if started.elapsed() > Duration::from_secs(8) {
            break;
        }
        let mut buf = [0u8; 512];
        match s.read(&mut buf) {
            Ok(0) => {
                closed_after = Some(started.elapsed());
                break;
            }
            Ok(_) => {}
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock || e.kind() == std::io::ErrorKind::TimedOut => {}
            Err(_) => {
                closed_after = Some(started.elapsed());
                break;
            }
        }
        if s.write_all(&[*b]).is_err() {
            closed_after = Some(started.elapsed());
            break;
        }
    }
    stop(server);
    let took = closed_after.expect("the server closed the trickling connection");
    assert!(took >= Duration::from_millis(1900) && took < Duration::from_secs(4), "closed after {took:?}");
}

#[test]
fn an_idle_kept_alive_connection_is_closed_and_a_busy_one_is_not() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (server, port) = serve(dir.path(), &["--idle-timeout", "1", "--header-timeout", "5"]);
    let mut s = TcpStream::connect(("127.0.0.1", port)).expect("connect");
    s.set_read_timeout(Some(Duration::from_secs(5))).expect("timeout");
    // Three requests on one connection, 600 ms apart: each well within the idle timeout.
    for _ in 0..3 {
        s.write_all(b"GET /v1/accounts/T12345678/shopping/draft_orders HTTP/1.1\r\nHost: x\r\n\r\n").expect("write");
        let mut buf = [0u8; 4096];
        let n = s.read(&mut buf).expect("an answer on the kept-alive connection");
        assert!(String::from_utf8_lossy(&buf[..n]).starts_with("HTTP/1.1 401"));
        std::thread::sleep(Duration::from_millis(600));
    }
    let (rest, took) = read_until_closed(&mut s, Duration::from_secs(5));
    stop(server);
    assert!(rest.is_empty(), "{rest:?}");
    assert!(took < Duration::from_secs(2), "closed after {took:?}");
}

#[test]
fn a_stalled_body_is_refused_with_408_and_not_applied() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (server, port) = serve(dir.path(), &["--body-timeout", "1", "--idle-timeout", "1"]);
    let t = token(dir.path(), "admin:shopping");
    let body = r#"{"order":{"currency":"NOK"}}"#;
    let mut s = TcpStream::connect(("127.0.0.1", port)).expect("connect");
    write!(
        s,
        "POST {DRAFTS} HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {t}\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{}",
        body.len(),
        &body[..10]
    )
    .expect("write");
    let (answer, took) = read_until_closed(&mut s, Duration::from_secs(10));
    let (_, listed_head, listed) = request(port, &format!("Authorization: Bearer {t}\r\n"), "GET", DRAFTS, "");
    stop(server);
    assert!(answer.starts_with("HTTP/1.1 408"), "{answer}");
    assert!(answer.contains(r#""code":"REQUEST_TIMEOUT""#), "{answer}");
    assert!(took >= Duration::from_millis(900) && took < Duration::from_secs(4), "answered after {took:?}");
    assert!(listed_head.starts_with("HTTP/1.1 200"), "{listed_head}");
    assert!(!listed.contains("\"id\""), "the stalled draft was not created: {listed}");
}

#[test]
fn the_connection_cap_holds_and_is_logged() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (server, port) =
        serve(dir.path(), &["--max-connections", "3", "--idle-timeout", "60", "--header-timeout", "60"]);
    let mut held: Vec<TcpStream> = (0..3)
        .map(|_| {
            let mut s = TcpStream::connect(("127.0.0.1", port)).expect("connect");
            s.write_all(b"GET /openapi.json HTTP/1.1\r\n").expect("write");
            s
        })
        .collect();
    std::thread::sleep(Duration::from_millis(300));
    // A fourth connection is accepted by the kernel but not served while three are open.
    let mut fourth = TcpStream::connect(("127.0.0.1", port)).expect("connect");
    fourth.write_all(b"GET /v1/accounts/T12345678/shopping/draft_orders HTTP/1.1\r\nHost: x\r\n\r\n").expect("write");
    fourth.set_read_timeout(Some(Duration::from_millis(1500))).expect("timeout");
    let mut buf = [0u8; 4096];
    let waited = fourth.read(&mut buf);
    assert!(waited.is_err(), "served beyond the cap: {waited:?}");
    // One closes: the fourth is served.
    drop(held.pop());
    fourth.set_read_timeout(Some(Duration::from_secs(5))).expect("timeout");
    let n = fourth.read(&mut buf).expect("served once a connection closed");
    let log = log(dir.path());
    stop(server);
    assert!(String::from_utf8_lossy(&buf[..n]).starts_with("HTTP/1.1 401"));
    assert!(log.contains("connection cap reached") && log.contains("max_connections=3"), "{log}");
}

#[test]
fn every_request_has_an_id_echoed_and_logged() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (server, port) = serve(dir.path(), &[]);
    let (_, given, _) = request(port, "X-Request-Id: trace-42.a:b\r\n", "GET", DRAFTS, "");
    let (_, bad, _) = request(port, "X-Request-Id: has space\"quote\r\n", "GET", DRAFTS, "");
    let (_, none, _) = request(port, "", "GET", DRAFTS, "");
    // Beside the API too: the document, and the token endpoint (whose issuer line it marks).
    let (_, doc, _) = request(port, "X-Request-Id: doc-1\r\n", "GET", "/openapi.json", "");
    let (_, tok, _) = request(
        port,
        "X-Request-Id: tok-1\r\n",
        "POST",
        "/v1/accounts/T12345678/auth/token",
        r#"{"grant_type":"client_credentials","client_id":"a","client_secret":"b"}"#,
    );
    std::thread::sleep(Duration::from_millis(200));
    let log = log(dir.path());
    stop(server);
    assert_eq!(header(&given, "x-request-id"), Some("trace-42.a:b"));
    let replaced = header(&bad, "x-request-id").expect("a replacement id");
    let generated = header(&none, "x-request-id").expect("a generated id");
    for id in [replaced, generated] {
        assert_eq!(id.len(), 36, "a UUID: {id}");
        assert_ne!(id, "has space\"quote");
    }
    assert_ne!(replaced, generated);
    assert_eq!(header(&doc, "x-request-id"), Some("doc-1"));
    assert_eq!(header(&tok, "x-request-id"), Some("tok-1"));
    assert!(
        log.lines().any(|l| l.contains("request_id=tok-1") && l.contains("issuer")),
        "the issuer's refusal line carries the id: {log}"
    );
    for id in ["trace-42.a:b", replaced, generated] {
        assert!(log.contains(&format!("request_id={id}")), "{id} not logged: {log}");
    }
    assert!(!log.contains("request_id= "), "a line without an id: {log}");
}
