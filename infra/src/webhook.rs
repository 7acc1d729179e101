//! The webhook HTTP client: signs a delivery, refuses addresses a webhook must never reach
//! (SSRF guard), and posts with a timeout and without following redirects.
//!
//! The guard: a URL whose host is a literal IP in a blocked range (or `localhost`) is refused
//! before anything is sent; a host name is resolved by the client's own resolver, which refuses
//! the whole name when any address is blocked and hands the connector only the addresses it
//! checked — the connection goes where the check looked, so a name cannot be re-pointed
//! between check and connect (DNS rebinding). The resolver is injectable, so tests never reach
//! the network.

use base64::Engine as _;
use hmac::{Hmac, KeyInit, Mac};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// A delivery gives up after this long.
pub const TIMEOUT: Duration = Duration::from_secs(15);
/// How much of a receiver's answer a delivery record keeps.
pub const EXCERPT: usize = 1024;

/// Why an address may not be reached, or `None` when it may.
pub fn blocked(ip: IpAddr, allow_loopback: bool) -> Option<&'static str> {
    match ip {
        IpAddr::V4(v4) => blocked_v4(v4, allow_loopback),
        IpAddr::V6(v6) => {
            if let Some(v4) = v6.to_ipv4_mapped() {
                return blocked_v4(v4, allow_loopback).map(|_| "an IPv4-mapped address in a blocked range");
            }
            let seg0 = v6.segments().first().copied().unwrap_or(0);
            if v6.is_loopback() {
                (!allow_loopback).then_some("a loopback address")
            } else if v6.is_unspecified() || v6.is_multicast() {
                Some("an unspecified or multicast address")
            } else if seg0 & 0xfe00 == 0xfc00 {
                Some("a unique-local address")
            } else if seg0 & 0xffc0 == 0xfe80 {
                Some("a link-local address")
            } else if v6 == Ipv6Addr::new(0xfd00, 0xec2, 0, 0, 0, 0, 0, 0x254) {
                Some("the cloud metadata address")
            } else {
                None
            }
        }
    }
}

fn blocked_v4(ip: Ipv4Addr, allow_loopback: bool) -> Option<&'static str> {
    let [a, b, ..] = ip.octets();
    if ip.is_loopback() {
        (!allow_loopback).then_some("a loopback address")
    } else if ip.is_private() || (a == 100 && (64..128).contains(&b)) {
        Some("a private address")
    } else if ip.is_link_local() {
        Some("a link-local or cloud metadata address")
    } else if ip.is_unspecified() || ip.is_broadcast() || ip.is_multicast() || a == 0 || a >= 240 {
        Some("an unspecified, broadcast, multicast or reserved address")
    } else {
        None
    }
}

/// A URL's host as a literal IP, when it is one.
fn literal_ip(host: &str) -> Option<IpAddr> {
    host.trim_start_matches('[').trim_end_matches(']').parse().ok()
}

/// Checks a subscription URL when it is created or changed: `http`/`https`, a host, and no
/// literal IP in a blocked range (nor `localhost`). A host name is checked at each delivery.
pub fn check_url(url: &str, allow_loopback: bool) -> Result<(), String> {
    let parsed = reqwest::Url::parse(url).map_err(|e| format!("is not a URL: {e}"))?;
    if !matches!(parsed.scheme(), "http" | "https") {
        return Err("must be an http or https URL".into());
    }
    let host = parsed.host_str().filter(|h| !h.is_empty()).ok_or("must name a host")?;
    if host.eq_ignore_ascii_case("localhost") || host.to_ascii_lowercase().ends_with(".localhost") {
        return if allow_loopback { Ok(()) } else { Err("must not point at localhost".into()) };
    }
    if let Some(ip) = literal_ip(host) {
        if let Some(why) = blocked(ip, allow_loopback) {
            return Err(format!("must not point at {why}"));
        }
    }
    Ok(())
}

/// Resolves host names for deliveries (the system's resolver in production).
#[async_trait::async_trait]
pub trait Resolver: Send + Sync {
    async fn resolve(&self, host: &str) -> std::io::Result<Vec<IpAddr>>;
}

pub struct SystemResolver;

#[async_trait::async_trait]
impl Resolver for SystemResolver {
    async fn resolve(&self, host: &str) -> std::io::Result<Vec<IpAddr>> {
        Ok(tokio::net::lookup_host((host, 0)).await?.map(|a| a.ip()).collect())
    }
}

/// The resolver reqwest uses: resolution, then the guard, then only checked addresses.
struct Guarded {
    inner: Arc<dyn Resolver>,
    allow_loopback: bool,
}

impl reqwest::dns::Resolve for Guarded {
    fn resolve(&self, name: reqwest::dns::Name) -> reqwest::dns::Resolving {
        let (inner, allow) = (self.inner.clone(), self.allow_loopback);
        Box::pin(async move {
            let host = name.as_str().to_owned();
            let ips = inner.resolve(&host).await?;
            if ips.is_empty() {
                return Err(format!("{host} has no address").into());
            }
            if let Some((ip, why)) = ips.iter().find_map(|ip| blocked(*ip, allow).map(|w| (ip, w))) {
                return Err(Box::new(Refused(format!("{host} resolves to {ip}, {why}")))
                    as Box<dyn std::error::Error + Send + Sync>);
            }
            let addrs: Vec<SocketAddr> = ips.into_iter().map(|ip| SocketAddr::new(ip, 0)).collect();
            Ok(Box::new(addrs.into_iter()) as reqwest::dns::Addrs)
        })
    }
}

/// A refused destination (the guard's reason).
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct Refused(pub String);

/// How one attempt ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Attempt {
    /// The receiver's status, when it answered.
    pub status: Option<u16>,
    /// The start of its answer.
    pub body_excerpt: String,
    /// Its answer's headers (the first few, values cut short).
    pub headers: std::collections::BTreeMap<String, String>,
    pub duration_ms: u64,
    /// `None` when delivered (a 2xx); else why not.
    pub failure: Option<String>,
    /// The guard refused the destination (no connection was made).
    pub blocked: bool,
}

/// Posts signed webhook deliveries.
#[derive(Clone)]
pub struct WebhookClient {
    /// Built on the first delivery, not at start: building it reads and parses the system's
    /// CA store (about 150 files), which would otherwise sit on every cold start's init.
    http: Arc<std::sync::OnceLock<Result<reqwest::Client, String>>>,
    resolver: Arc<dyn Resolver>,
    allow_loopback: bool,
}

impl WebhookClient {
    pub fn new(resolver: Arc<dyn Resolver>, allow_loopback: bool) -> Result<Self, String> {
        Ok(Self { http: Arc::default(), resolver, allow_loopback })
    }

    fn http(&self) -> Result<&reqwest::Client, &str> {
        self.http
            .get_or_init(|| {
                // reqwest is built without a crypto provider of its own: the process's default
                // is ring, as for the SDK clients (an already installed default is kept).
                let _ = rustls::crypto::ring::default_provider().install_default();
                reqwest::Client::builder()
                    .redirect(reqwest::redirect::Policy::none())
                    .timeout(TIMEOUT)
                    .dns_resolver(Arc::new(Guarded {
                        inner: self.resolver.clone(),
                        allow_loopback: self.allow_loopback,
                    }))
                    .no_proxy()
                    .build()
                    .map_err(|e| format!("the webhook client could not be built: {e}"))
            })
            .as_ref()
            .map_err(String::as_str)
    }

    /// One attempt: POST `body` to `url` with `headers`.
    pub async fn post(&self, url: &str, headers: &[(String, String)], body: Vec<u8>) -> Attempt {
        let started = Instant::now();
        let ms = |s: Instant| u64::try_from(s.elapsed().as_millis()).unwrap_or(u64::MAX);
        if let Err(why) = check_url(url, self.allow_loopback) {
            return Attempt {
                status: None,
                body_excerpt: String::new(),
                headers: Default::default(),
                duration_ms: 0,
                failure: Some(format!("blocked: the URL {why}")),
                blocked: true,
            };
        }
        let http = match self.http() {
            Ok(http) => http,
            Err(why) => {
                return Attempt {
                    status: None,
                    body_excerpt: String::new(),
                    headers: Default::default(),
                    duration_ms: 0,
                    failure: Some(why.to_owned()),
                    blocked: false,
                }
            }
        };
        let mut req = http.post(url).body(body);
        for (k, v) in headers {
            req = req.header(k.as_str(), v.as_str());
        }
        match req.send().await {
            Ok(res) => {
                let status = res.status();
                let headers = res
                    .headers()
                    .iter()
                    .take(32)
                    .map(|(k, v)| {
                        (k.as_str().to_owned(), String::from_utf8_lossy(v.as_bytes()).chars().take(256).collect())
                    })
                    .collect();
                let bytes = res.bytes().await.unwrap_or_default();
                let excerpt =
                    String::from_utf8_lossy(bytes.get(..bytes.len().min(EXCERPT)).unwrap_or_default()).into_owned();
                let failure = if status.is_success() {
                    None
                } else if status.is_redirection() {
                    Some(format!("answered {status}: a redirect is not followed"))
                } else {
                    Some(format!("answered {status}"))
                };
                Attempt {
                    status: Some(status.as_u16()),
                    body_excerpt: excerpt,
                    headers,
                    duration_ms: ms(started),
                    failure,
                    blocked: false,
                }
            }
            Err(e) => {
                let refused = source_chain(&e).find_map(|s| s.downcast_ref::<Refused>().map(|r| r.0.clone()));
                let (failure, blocked) = match refused {
                    Some(why) => (format!("blocked: {why}"), true),
                    None if e.is_timeout() => (format!("no answer within {} s", TIMEOUT.as_secs()), false),
                    None => (
                        format!(
                            "could not deliver: {}",
                            source_chain(&e).last().map_or_else(|| e.to_string(), |s| s.to_string())
                        ),
                        false,
                    ),
                };
                Attempt {
                    status: None,
                    body_excerpt: String::new(),
                    headers: Default::default(),
                    duration_ms: ms(started),
                    failure: Some(failure),
                    blocked,
                }
            }
        }
    }
}

fn source_chain<'a>(
    e: &'a (dyn std::error::Error + 'static),
) -> impl Iterator<Item = &'a (dyn std::error::Error + 'static)> {
    std::iter::successors(Some(e), |e| e.source())
}

/// `event-signature`: hex HMAC-SHA1 of the exact body bytes, keyed by the secret.
pub fn sign_sha1(secret: &str, body: &[u8]) -> String {
    let Ok(mut mac) = Hmac::<sha1::Sha1>::new_from_slice(secret.as_bytes()) else { return String::new() };
    mac.update(body);
    mac.finalize().into_bytes().iter().map(|b| format!("{b:02x}")).collect()
}

/// `webhook-signature` (Standard Webhooks): `v1,` + base64 HMAC-SHA256 of
/// `{webhook-id}.{webhook-timestamp}.{body}`, keyed by the secret's UTF-8 bytes.
pub fn sign_standard(secret: &str, id: &str, timestamp: i64, body: &[u8]) -> String {
    let Ok(mut mac) = Hmac::<sha2::Sha256>::new_from_slice(secret.as_bytes()) else { return String::new() };
    mac.update(format!("{id}.{timestamp}.").as_bytes());
    mac.update(body);
    format!("v1,{}", base64::engine::general_purpose::STANDARD.encode(mac.finalize().into_bytes()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn blocked_ranges() {
        for ip in [
            "127.0.0.1",
            "10.1.2.3",
            "172.16.0.1",
            "192.168.1.1",
            "169.254.169.254",
            "100.64.0.1",
            "0.0.0.0",
            "::1",
            "fc00::1",
            "fe80::1",
            "::ffff:10.0.0.1",
            "::ffff:127.0.0.1",
        ] {
            assert!(blocked(ip.parse().unwrap(), false).is_some(), "{ip}");
        }
        for ip in ["93.184.216.34", "2606:2800:220:1:248:1893:25c8:1946"] {
            assert!(blocked(ip.parse().unwrap(), false).is_none(), "{ip}");
        }
        assert!(blocked("127.0.0.1".parse().unwrap(), true).is_none());
        assert!(blocked("10.0.0.1".parse().unwrap(), true).is_some());
    }

    #[test]
    fn urls_are_checked_when_given() {
        assert!(check_url("https://hooks.example.com/x", false).is_ok());
        assert!(check_url("http://127.0.0.1:9/x", false).is_err());
        assert!(check_url("http://127.0.0.1:9/x", true).is_ok());
        assert!(check_url("http://[::ffff:169.254.169.254]/", true).is_err());
        assert!(check_url("http://localhost/", false).is_err());
        assert!(check_url("ftp://example.com/", false).is_err());
        assert!(check_url("not a url", false).is_err());
    }

    #[test]
    fn signatures_follow_the_specs() {
        // HMAC-SHA1("key", "The quick brown fox jumps over the lazy dog")
        assert_eq!(
            sign_sha1("key", b"The quick brown fox jumps over the lazy dog"),
            "de7c9b85b8b78aa6bc8a7a36f70a90701c9db4d9"
        );
        let sig = sign_standard("secret", "msg_1", 1_700_000_000, b"{}");
        assert!(sig.starts_with("v1,") && sig.len() > 10);
    }

    /// A resolver that answers fixed addresses for every name, counting its calls.
    struct Fixed(Vec<IpAddr>);

    #[async_trait::async_trait]
    impl Resolver for Fixed {
        async fn resolve(&self, _host: &str) -> std::io::Result<Vec<IpAddr>> {
            Ok(self.0.clone())
        }
    }

    /// A receiver on 127.0.0.1 that counts the connections it accepts and answers 200.
    async fn counting_receiver() -> (u16, Arc<std::sync::atomic::AtomicUsize>) {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let accepted = Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let count = accepted.clone();
        tokio::spawn(async move {
            while let Ok((mut sock, _)) = listener.accept().await {
                count.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                let mut buf = [0u8; 4096];
                let _ = sock.read(&mut buf).await;
                let _ = sock.write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 0\r\nconnection: close\r\n\r\n").await;
            }
        });
        (port, accepted)
    }

    #[tokio::test]
    async fn a_refused_address_is_never_handed_to_the_connector() {
        let loopback = IpAddr::V4(Ipv4Addr::LOCALHOST);
        let (port, accepted) = counting_receiver().await;
        let url = format!("http://hooks.example:{port}/in");

        // The name resolves to the receiver's loopback address, which the guard refuses: no
        // connection is made.
        let guarded = WebhookClient::new(Arc::new(Fixed(vec![loopback])), false).unwrap();
        let a = guarded.post(&url, &[], b"{}".to_vec()).await;
        assert!(a.blocked, "{a:?}");
        assert!(a.failure.as_deref().unwrap_or("").contains("127.0.0.1"), "{a:?}");
        assert_eq!(accepted.load(std::sync::atomic::Ordering::SeqCst), 0);

        // One blocked address among the answers refuses the whole name: the resolver reqwest
        // connects through yields no address at all (called directly: nothing may connect).
        let public = IpAddr::V4(Ipv4Addr::new(93, 184, 216, 34));
        for bad in [IpAddr::V4(Ipv4Addr::new(169, 254, 169, 254)), IpAddr::V4(Ipv4Addr::new(10, 0, 0, 1)), loopback] {
            let g = Guarded { inner: Arc::new(Fixed(vec![public, bad])), allow_loopback: false };
            let name: reqwest::dns::Name = "mixed.example".parse().unwrap();
            assert!(reqwest::dns::Resolve::resolve(&g, name).await.is_err(), "{bad} slipped through");
        }

        // With loopback allowed, the connection goes to the address the check saw (the
        // injected answer), not to whatever the system's DNS would say of the name.
        let allowed = WebhookClient::new(Arc::new(Fixed(vec![loopback])), true).unwrap();
        let a = allowed.post(&url, &[], b"{}".to_vec()).await;
        assert_eq!((a.status, a.blocked), (Some(200), false), "{a:?}");
        assert_eq!(accepted.load(std::sync::atomic::Ordering::SeqCst), 1);
    }
}
