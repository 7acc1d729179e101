//! The local server's accept loop: HTTP/1.1 over hyper with limits a slow or silent client
//! meets and a normal one never does, so that neither can pin the server (issue 40).
//!
//! - the request head must be complete within the header-read timeout of the server starting
//!   to wait for it: from the accept for the first head (this loop's clock), from the previous
//!   answer for a kept-alive connection's next one (hyper's `header_read_timeout`);
//! - a body that stops arriving for the body-read timeout ends in a 408 and is not applied
//!   (`tower_http`'s request-body timeout; the edge maps its error);
//! - a connection with no request in progress and nothing received for the idle timeout is
//!   closed (a silent kept-alive connection, or a head that stalled);
//! - at most `max_connections` connections are open; beyond that new ones wait in the
//!   kernel's accept queue until one closes; reaching the cap is logged with the number (at
//!   most once a minute).
//!
//! A connection reaches hyper once its first request head is complete. Until then it is a
//! socket, a small task and the bytes received so far: hyper allocates two 8 KiB buffers and
//! its connection state up front, which for thousands of connections that never finish a
//! head would be most of the server's memory (BENCHMARKS.md, "Slow clients").

use std::pin::Pin;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{watch, OwnedSemaphorePermit, Semaphore};

/// The limits of `shopping-local serve` (its flags, README "shopping-local").
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    pub header_timeout: Duration,
    pub body_timeout: Duration,
    pub idle_timeout: Duration,
    pub max_connections: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            header_timeout: Duration::from_secs(10),
            body_timeout: Duration::from_secs(10),
            idle_timeout: Duration::from_secs(5),
            max_connections: 4096,
        }
    }
}

/// How often reaching the connection cap is logged at most.
const CAP_LOG_EVERY: Duration = Duration::from_secs(60);

/// Serves `app` on `listener` within `limits` until `shutdown` completes; then stops
/// accepting, lets each open connection finish its request, and returns once all are closed.
pub async fn serve(
    listener: TcpListener,
    app: axum::Router,
    limits: Limits,
    shutdown: impl std::future::Future<Output = ()>,
) {
    let permits = Arc::new(Semaphore::new(limits.max_connections));
    let (stop_tx, stop_rx) = watch::channel(false);
    let mut shutdown = std::pin::pin!(shutdown);
    let mut capped_logged: Option<Instant> = None;
    loop {
        let permit = match permits.clone().try_acquire_owned() {
            Ok(p) => p,
            Err(_) => {
                // Each time the cap is reached, at most once a minute: a flood held at the cap
                // would otherwise be a flood of log lines too.
                if capped_logged.is_none_or(|at| at.elapsed() >= CAP_LOG_EVERY) {
                    tracing::warn!(
                        max_connections = limits.max_connections,
                        "connection cap reached; new connections wait"
                    );
                    capped_logged = Some(Instant::now());
                }
                tokio::select! {
                    p = permits.clone().acquire_owned() => match p { Ok(p) => p, Err(_) => break },
                    () = &mut shutdown => break,
                }
            }
        };
        let stream = tokio::select! {
            r = listener.accept() => match r {
                Ok((stream, _)) => stream,
                Err(e) => {
                    // Out of file descriptors, say: back off rather than spin.
                    tracing::warn!(error = %e, "accept failed");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            },
            () = &mut shutdown => break,
        };
        let _ = stream.set_nodelay(true);
        tokio::spawn(connection(stream, app.clone(), limits, stop_rx.clone(), permit));
    }
    let _ = stop_tx.send(true);
    drop(listener);
    // Every connection holds a permit until it closes: all of them back means all closed.
    let all = u32::try_from(limits.max_connections).unwrap_or(u32::MAX);
    let _ = permits.acquire_many(all).await;
}

/// What the idle clock needs to know of one connection.
struct Activity {
    born: Instant,
    /// Milliseconds since `born` of the last byte received or answer finished.
    last: AtomicU64,
    in_flight: AtomicUsize,
}

impl Activity {
    fn touch(&self) {
        let ms = u64::try_from(self.born.elapsed().as_millis()).unwrap_or(u64::MAX);
        self.last.store(ms, Ordering::Relaxed);
    }

    /// When the connection becomes idle-expired, if nothing happens before then; `None`
    /// while a request is in progress.
    fn idle_deadline(&self, idle: Duration) -> Option<Instant> {
        (self.in_flight.load(Ordering::Acquire) == 0)
            .then(|| self.born + Duration::from_millis(self.last.load(Ordering::Relaxed)) + idle)
    }
}

/// Ends the in-progress mark of a request when its answer is made (or the request dropped).
struct InFlight(Arc<Activity>);

impl Drop for InFlight {
    fn drop(&mut self) {
        self.0.touch();
        self.0.in_flight.fetch_sub(1, Ordering::AcqRel);
    }
}

/// The longest first head read before hyper takes over (hyper refuses a longer one itself).
const FIRST_HEAD_MAX: usize = 64 * 1024;

async fn connection(
    stream: TcpStream,
    app: axum::Router,
    limits: Limits,
    mut stop: watch::Receiver<bool>,
    _permit: OwnedSemaphorePermit,
) {
    let Some(head) = first_head(&stream, &limits, &mut stop).await else { return };
    // Boxed: hyper's state is allocated only now, not in every connection's task.
    Box::pin(http(stream, head, app, limits, stop)).await;
}

/// The bytes of the first request head (and whatever followed them), read within the header
/// and idle timeouts; `None` when the client stalled, closed, or the server is stopping.
async fn first_head(stream: &TcpStream, limits: &Limits, stop: &mut watch::Receiver<bool>) -> Option<Vec<u8>> {
    let header_deadline = Instant::now() + limits.header_timeout;
    let mut last = Instant::now();
    let mut head = Vec::new();
    loop {
        let deadline = header_deadline.min(last + limits.idle_timeout);
        tokio::select! {
            r = stream.readable() => r.ok()?,
            () = tokio::time::sleep_until(deadline.into()) => return None,
            _ = stop.changed() => return None,
        }
        let old = head.len();
        head.resize(old + 1024, 0);
        let read = stream.try_read(head.get_mut(old..).unwrap_or_default());
        head.truncate(old + *read.as_ref().unwrap_or(&0));
        match read {
            Ok(0) => return None,
            Ok(_) => {
                last = Instant::now();
                let tail = head.get(old.saturating_sub(3)..).unwrap_or_default();
                if tail.windows(4).any(|w| w == b"\r\n\r\n") || head.len() >= FIRST_HEAD_MAX {
                    return Some(head);
                }
            }
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {}
            Err(_) => return None,
        }
        // A stalled head keeps only what it sent.
        head.shrink_to_fit();
    }
}

/// The connection under hyper, from its first head on.
async fn http(stream: TcpStream, head: Vec<u8>, app: axum::Router, limits: Limits, mut stop: watch::Receiver<bool>) {
    use tower::ServiceExt;
    let activity = Arc::new(Activity { born: Instant::now(), last: AtomicU64::new(0), in_flight: AtomicUsize::new(0) });
    let io = hyper_util::rt::TokioIo::new(Watched { inner: stream, replay: head, at: 0, activity: activity.clone() });
    let service = {
        let activity = activity.clone();
        let app = tower_http::timeout::RequestBodyTimeout::new(app, limits.body_timeout);
        hyper::service::service_fn(move |req: hyper::Request<hyper::body::Incoming>| {
            activity.in_flight.fetch_add(1, Ordering::AcqRel);
            let mark = InFlight(activity.clone());
            let app = app.clone();
            async move {
                let res = app.oneshot(req).await;
                drop(mark);
                res
            }
        })
    };
    let mut http = hyper::server::conn::http1::Builder::new();
    http.timer(hyper_util::rt::TokioTimer::new()).header_read_timeout(limits.header_timeout);
    let conn = http.serve_connection(io, service);
    let mut conn = std::pin::pin!(conn);
    let mut closing = false;
    loop {
        let deadline = activity.idle_deadline(limits.idle_timeout);
        // While a request runs, only the body timeout and the handler bound it.
        let idle = async {
            match deadline {
                Some(at) => tokio::time::sleep_until(at.into()).await,
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            r = conn.as_mut() => {
                if let Err(e) = r {
                    tracing::debug!(error = %e, "connection ended");
                }
                return;
            }
            // Wake now and then during a request, to re-arm the idle clock once it ends.
            () = tokio::time::sleep(limits.idle_timeout), if deadline.is_none() => {}
            () = idle => {
                if activity.idle_deadline(limits.idle_timeout).is_some_and(|at| at <= Instant::now()) {
                    // Nothing is in progress, so dropping the connection loses nothing; hyper's
                    // graceful shutdown would wait for a head that has begun to arrive.
                    return;
                }
            }
            r = stop.changed(), if !closing => {
                // A dropped sender is a stop too.
                let _ = r;
                conn.as_mut().graceful_shutdown();
                closing = true;
            }
        }
    }
}

/// The TCP stream, replaying the first head read before hyper took over, and noting when
/// bytes arrive (the idle clock restarts on each).
struct Watched {
    inner: TcpStream,
    replay: Vec<u8>,
    at: usize,
    activity: Arc<Activity>,
}

impl AsyncRead for Watched {
    fn poll_read(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<std::io::Result<()>> {
        let this = self.get_mut();
        if let Some(rest) = this.replay.get(this.at..).filter(|r| !r.is_empty()) {
            let n = rest.len().min(buf.remaining());
            buf.put_slice(rest.get(..n).unwrap_or_default());
            this.at += n;
            if this.at == this.replay.len() {
                this.replay = Vec::new();
                this.at = 0;
            }
            return Poll::Ready(Ok(()));
        }
        let before = buf.filled().len();
        let r = Pin::new(&mut this.inner).poll_read(cx, buf);
        if buf.filled().len() > before {
            this.activity.touch();
        }
        r
    }
}

impl AsyncWrite for Watched {
    fn poll_write(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.get_mut().inner).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[std::io::IoSlice<'_>],
    ) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.get_mut().inner).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_shutdown(cx)
    }
}
