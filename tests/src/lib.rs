//! Black-box tests live in `tests/tests/`. This library holds what the load tools in
//! `src/bin` share: an HTTP/1 client, a release `shopping-local` started on a free port with
//! a token, and the process and latency figures they report.

use http_body_util::{BodyExt, Full};
use hyper::body::Bytes;
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use std::io::BufRead;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};

pub type Http = Client<hyper_util::client::legacy::connect::HttpConnector, Full<Bytes>>;

/// A keep-alive client with room for `connections` idle connections.
pub fn client(connections: usize) -> Http {
    Client::builder(TokioExecutor::new()).pool_max_idle_per_host(connections).build_http()
}

/// One request; `None` when no answer came.
pub async fn call(
    client: &Http,
    base: &str,
    token: &str,
    method: &str,
    path: &str,
    body: String,
) -> Option<(u16, Bytes)> {
    let req = hyper::Request::builder()
        .method(method)
        .uri(format!("{base}{path}"))
        .header("authorization", format!("Bearer {token}"))
        .header("content-type", "application/json")
        .body(Full::new(Bytes::from(body)))
        .ok()?;
    let res = client.request(req).await.ok()?;
    let status = res.status().as_u16();
    let bytes = res.into_body().collect().await.ok()?.to_bytes();
    Some((status, bytes))
}

/// A field of `/proc/{pid}/status` in KiB (`VmRSS`, `VmHWM`).
pub fn proc_kib(pid: u32, field: &str) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|s| s.lines().find(|l| l.starts_with(field)).map(str::to_owned))
        .and_then(|l| l.split_whitespace().nth(1).and_then(|n| n.parse().ok()))
        .unwrap_or(0)
}

/// The `p` quantile of sorted microseconds, in milliseconds.
pub fn pct(sorted: &[u64], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i.min(sorted.len() - 1)] as f64 / 1000.0
}

/// A server process started on 127.0.0.1 with a free port, killed (and its data removed) on drop.
pub struct Server {
    pub child: Child,
    pub base: String,
    pub token: String,
    dir: Option<PathBuf>,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        if let Some(d) = &self.dir {
            let _ = std::fs::remove_dir_all(d);
        }
    }
}

/// Starts `cmd` and reads the base URL from the first line it prints (`... http://addr`).
pub fn spawn(mut cmd: Command, token: String, dir: Option<PathBuf>) -> Result<Server, String> {
    let mut child = cmd.stdout(Stdio::piped()).stderr(Stdio::null()).spawn().map_err(|e| e.to_string())?;
    let mut line = String::new();
    std::io::BufReader::new(child.stdout.take().ok_or("no stdout")?).read_line(&mut line).map_err(|e| e.to_string())?;
    let base = line.trim().rsplit(' ').next().unwrap_or_default().to_owned();
    let server = Server { child, base, token, dir };
    if !server.base.starts_with("http://") {
        // It stopped (a flag it does not take, say) or printed something else first.
        return Err(format!("no address in its first line: {:?}", line.trim()));
    }
    Ok(server)
}

/// A release `shopping-local` (binary `server`) on a fresh data dir, with an admin token.
pub fn start_local(server: &str, tag: &str) -> Result<Server, String> {
    start_local_with(server, tag, &[])
}

/// [`start_local`] with more `serve` flags.
pub fn start_local_with(server: &str, tag: &str, flags: &[&str]) -> Result<Server, String> {
    let dir = std::env::temp_dir().join(format!("shopping-{tag}-{}", std::process::id()));
    let token = Command::new(server)
        .args(["token", "--account", "T12345678", "--expires-in", "604800", "--data-dir"])
        .arg(&dir)
        .output()
        .map_err(|e| {
            format!("cannot run {server}: {e} (build it with cargo build --release -p functions --bin shopping-local)")
        })?;
    let token = String::from_utf8_lossy(&token.stdout).trim().to_owned();
    // The benches measure the server, not the per-account limit: the account they drive gets
    // an override far above what they send (README, "Per-account limits").
    let limit = Command::new(server)
        .args(["tenant", "limit", "--account", "T12345678", "--rate", "1000000", "--burst", "1000000", "--data-dir"])
        .arg(&dir)
        .output()
        .map_err(|e| format!("cannot run {server} tenant limit: {e}"))?;
    if !limit.status.success() {
        return Err(format!("{server} tenant limit: {}", String::from_utf8_lossy(&limit.stderr)));
    }
    let mut cmd = Command::new(server);
    cmd.args(["serve", "--addr", "127.0.0.1:0"]).args(flags).arg("--data-dir").arg(&dir).env("RUST_LOG", "warn");
    spawn(cmd, token, Some(dir))
}
