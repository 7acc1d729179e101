//! What every AWS SDK client of ours shares: region and credentials straight from the Lambda
//! environment (no aws-config provider chain: profiles, SSO, STS and IMDS are never needed in
//! a Lambda, and leaving them out keeps them out of the binary and of start-up), the SDK's
//! standard endpoint variables (`AWS_ENDPOINT_URL_<SERVICE>`, then `AWS_ENDPOINT_URL`, unless
//! `AWS_IGNORE_CONFIGURED_ENDPOINT_URLS=true`), one HTTPS client for all of them, built on
//! first use, and the local emulator's fixed settings for tests.

use aws_sdk_dynamodb::config::{Credentials, Region};
use aws_smithy_runtime_api::client::http::SharedHttpClient;

/// The settings a client is built from.
#[derive(Clone)]
pub struct SdkParts {
    pub region: Region,
    pub credentials: Credentials,
    pub endpoint: Option<String>,
    pub http: SharedHttpClient,
}

impl SdkParts {
    /// `AWS_REGION` and the execution role's `AWS_ACCESS_KEY_ID` / `AWS_SECRET_ACCESS_KEY` /
    /// `AWS_SESSION_TOKEN`, as Lambda sets them, and the endpoint the standard variables name
    /// for `service` (the SDK's environment name: `DYNAMODB`, `SQS`, `EVENTBRIDGE`).
    pub fn from_env(service: &str) -> Result<Self, String> {
        let var = |name: &str| std::env::var(name).map_err(|_| format!("{name} is not set"));
        let region = var("AWS_REGION").or_else(|_| var("AWS_DEFAULT_REGION"))?;
        let credentials = Credentials::new(
            var("AWS_ACCESS_KEY_ID")?,
            var("AWS_SECRET_ACCESS_KEY")?,
            std::env::var("AWS_SESSION_TOKEN").ok(),
            None,
            "lambda-environment",
        );
        let endpoint = configured_endpoint(service, |name| std::env::var(name).ok());
        Ok(Self { region: Region::new(region), credentials, endpoint, http: shared_https() })
    }

    /// A local emulator (moto) at `endpoint`: fixed region, dummy credentials.
    pub fn emulator(endpoint: &str) -> Self {
        Self {
            region: Region::new("us-east-1"),
            credentials: Credentials::new("test", "test", None, None, "emulator"),
            endpoint: Some(endpoint.to_owned()),
            // Its own: tests run many async runtimes in one process, and a pooled connection
            // belongs to the runtime that opened it.
            http: SharedHttpClient::new(LazyHttpsClient::default()),
        }
    }
}

/// The endpoint the SDK's standard variables name for `service`, as the AWS SDKs read them:
/// the service's own variable first, then the general one; none when told to ignore them.
pub fn configured_endpoint(service: &str, var: impl Fn(&str) -> Option<String>) -> Option<String> {
    let set = |name: &str| var(name).map(|v| v.trim().to_owned()).filter(|v| !v.is_empty());
    if set("AWS_IGNORE_CONFIGURED_ENDPOINT_URLS").is_some_and(|v| v.eq_ignore_ascii_case("true")) {
        return None;
    }
    set(&format!("AWS_ENDPOINT_URL_{service}")).or_else(|| set("AWS_ENDPOINT_URL"))
}

/// An SDK client built on first use. Building one is not free: the SDK's endpoint resolver
/// parses the partition table (JSON, with regular expressions) when the client's config is
/// built, measured at a fifth of a function's init (BENCHMARKS.md, "Lambda cold start"); a
/// function that never calls a service never pays for it.
pub enum LazyClient<C> {
    /// Built already (tests hand one in).
    Ready(C),
    /// Built from `parts` by `make` when first needed.
    Lazy { cell: std::sync::OnceLock<C>, parts: SdkParts, make: fn(SdkParts) -> C },
}

impl<C> LazyClient<C> {
    /// A client `make` builds from `parts` when it is first needed.
    pub fn new(parts: SdkParts, make: fn(SdkParts) -> C) -> Self {
        Self::Lazy { cell: std::sync::OnceLock::new(), parts, make }
    }

    /// A client already built.
    pub fn ready(client: C) -> Self {
        Self::Ready(client)
    }

    pub fn get(&self) -> &C {
        match self {
            Self::Ready(client) => client,
            Self::Lazy { cell, parts, make } => cell.get_or_init(|| make(parts.clone())),
        }
    }
}

/// A [`LazyClient`] of SDK crate `$sdk` from [`SdkParts`] (and a service's own settings, see
/// [`sdk_client!`]).
#[macro_export]
macro_rules! lazy_sdk_client {
    ($sdk:ident, $parts:expr) => {
        $crate::aws::LazyClient::new($parts, |parts| $crate::sdk_client!($sdk, parts))
    };
    ($sdk:ident, $parts:expr, $tune:expr) => {
        $crate::aws::LazyClient::new($parts, |parts| $crate::sdk_client!($sdk, parts, $tune))
    };
}

/// A client of SDK crate `$sdk` from [`SdkParts`]; `$tune` (a `fn` from the service's config
/// builder to itself) adds what one service sets for itself, such as DynamoDB's retries.
#[macro_export]
macro_rules! sdk_client {
    ($sdk:ident, $parts:expr) => {
        $crate::sdk_client!($sdk, $parts, |conf| conf)
    };
    ($sdk:ident, $parts:expr, $tune:expr) => {{
        let tune: fn($sdk::config::Builder) -> $sdk::config::Builder = $tune;
        let parts: $crate::aws::SdkParts = $parts;
        let mut conf = $sdk::Config::builder()
            .behavior_version($sdk::config::BehaviorVersion::latest())
            .region(parts.region)
            .credentials_provider(parts.credentials)
            .http_client(parts.http);
        if let Some(url) = parts.endpoint {
            conf = conf.endpoint_url(url);
        }
        $sdk::Client::from_conf(tune(conf).build())
    }};
}

/// The process's one HTTPS client for the Lambda environment's clients: they share its TLS
/// configuration (the trust store is read and parsed once, not once per service) and its
/// connection pools.
fn shared_https() -> SharedHttpClient {
    static SHARED: std::sync::OnceLock<SharedHttpClient> = std::sync::OnceLock::new();
    SHARED.get_or_init(|| SharedHttpClient::new(LazyHttpsClient::default())).clone()
}

/// The SDK's HTTPS client, built on first use instead of when the SDK client is: the default
/// one builds its TLS connector (reading and parsing the system's CA store) while the client
/// is constructed, i.e. on every Lambda's init path, even for an invocation that never makes
/// a call. TLS is rustls on ring (see the workspace manifest for why not aws-lc).
#[derive(Debug, Default)]
struct LazyHttpsClient {
    inner: std::sync::OnceLock<SharedHttpClient>,
}

impl aws_smithy_runtime_api::client::http::HttpClient for LazyHttpsClient {
    fn http_connector(
        &self,
        settings: &aws_smithy_runtime_api::client::http::HttpConnectorSettings,
        components: &aws_smithy_runtime_api::client::runtime_components::RuntimeComponents,
    ) -> aws_smithy_runtime_api::client::http::SharedHttpConnector {
        use aws_smithy_http_client::tls::{rustls_provider::CryptoMode, Provider};
        self.inner
            .get_or_init(|| {
                aws_smithy_http_client::Builder::new().tls_provider(Provider::Rustls(CryptoMode::Ring)).build_https()
            })
            .http_connector(settings, components)
    }
}

/// How many entries, and how many bytes of them, one call may carry (a service's limits).
#[derive(Debug, Clone, Copy)]
pub struct CallLimit {
    pub entries: usize,
    pub bytes: usize,
}

/// Sends `sizes.len()` entries in calls within `limit` (an entry larger than `limit.bytes`
/// goes alone, for the service to refuse it by itself), re-sending only the entries a call
/// reports failed (a call that fails as a whole fails all of its entries), for at most
/// `rounds` rounds with a growing pause. `send` takes the indices of one call's entries and
/// answers the failed ones among them. Answers the indices that failed every round.
pub async fn resend_failed<F, Fut>(sizes: &[usize], limit: CallLimit, rounds: u32, mut send: F) -> Vec<usize>
where
    F: FnMut(Vec<usize>) -> Fut,
    Fut: std::future::Future<Output = Vec<usize>>,
{
    let mut pending: Vec<usize> = (0..sizes.len()).collect();
    for round in 0..rounds {
        if pending.is_empty() {
            break;
        }
        if round > 0 {
            tokio::time::sleep(std::time::Duration::from_millis(50u64 << round.min(6))).await;
        }
        let mut failed = Vec::new();
        for call in calls(&pending, sizes, limit) {
            failed.extend(send(call).await);
        }
        pending = failed;
    }
    pending
}

/// `pending` in order, cut into calls within `limit`.
fn calls(pending: &[usize], sizes: &[usize], limit: CallLimit) -> Vec<Vec<usize>> {
    let mut out: Vec<Vec<usize>> = Vec::new();
    let mut bytes = 0usize;
    for &i in pending {
        let size = sizes.get(i).copied().unwrap_or(0);
        match out.last_mut() {
            Some(call) if call.len() < limit.entries.max(1) && bytes.saturating_add(size) <= limit.bytes => {
                call.push(i);
                bytes = bytes.saturating_add(size);
            }
            _ => {
                out.push(vec![i]);
                bytes = size;
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Mutex;

    #[test]
    fn a_lazy_client_is_built_once_on_first_use() {
        use std::sync::atomic::{AtomicUsize, Ordering};
        static BUILT: AtomicUsize = AtomicUsize::new(0);
        let lazy = LazyClient::new(SdkParts::emulator("http://127.0.0.1:1"), |parts| {
            BUILT.fetch_add(1, Ordering::SeqCst);
            parts.endpoint
        });
        assert_eq!(BUILT.load(Ordering::SeqCst), 0, "nothing is built before it is needed");
        assert_eq!(lazy.get().as_deref(), Some("http://127.0.0.1:1"));
        assert_eq!(lazy.get().as_deref(), Some("http://127.0.0.1:1"));
        assert_eq!(BUILT.load(Ordering::SeqCst), 1);
        assert_eq!(LazyClient::ready(7).get(), &7);
    }

    #[test]
    fn the_standard_endpoint_variables_are_honoured() {
        let env = |pairs: &'static [(&'static str, &'static str)]| {
            move |name: &str| pairs.iter().find(|(k, _)| *k == name).map(|(_, v)| (*v).to_owned())
        };
        assert_eq!(configured_endpoint("DYNAMODB", env(&[])), None);
        let general = env(&[("AWS_ENDPOINT_URL", "https://all.example")]);
        assert_eq!(configured_endpoint("SQS", general).as_deref(), Some("https://all.example"));
        let both =
            env(&[("AWS_ENDPOINT_URL", "https://all.example"), ("AWS_ENDPOINT_URL_DYNAMODB", "https://ddb.example")]);
        assert_eq!(configured_endpoint("DYNAMODB", both).as_deref(), Some("https://ddb.example"));
        assert_eq!(configured_endpoint("SQS", both).as_deref(), Some("https://all.example"));
        let ignored =
            env(&[("AWS_ENDPOINT_URL", "https://all.example"), ("AWS_IGNORE_CONFIGURED_ENDPOINT_URLS", "true")]);
        assert_eq!(configured_endpoint("SQS", ignored), None);
    }

    #[tokio::test]
    async fn only_failed_entries_are_sent_again_and_calls_hold_at_most_a_chunk() {
        let calls: Mutex<Vec<Vec<usize>>> = Mutex::default();
        let flaky = Mutex::new(vec![3usize, 11, 12]);
        let left = resend_failed(&[1; 23], CallLimit { entries: 10, bytes: 1 << 20 }, 4, |ids| {
            calls.lock().unwrap().push(ids.clone());
            // 3, 11 and 12 fail once; 20 fails always.
            let mut f = flaky.lock().unwrap();
            let failed: Vec<usize> = ids.into_iter().filter(|i| *i == 20 || f.contains(i)).collect();
            f.retain(|i| !failed.contains(i));
            async move { failed }
        })
        .await;
        assert_eq!(left, vec![20]);
        let calls = calls.into_inner().unwrap();
        assert!(calls.iter().all(|c| c.len() <= 10));
        assert_eq!(calls[..3].concat(), (0..23).collect::<Vec<_>>());
        assert_eq!(calls[3], vec![3, 11, 12, 20], "the second round re-sends only what failed");
        assert_eq!(&calls[4..], &[vec![20], vec![20]]);
    }

    #[test]
    fn calls_hold_at_most_their_bytes_and_a_large_entry_goes_alone() {
        let limit = CallLimit { entries: 10, bytes: 100 };
        let sizes = [40, 40, 40, 500, 10, 10];
        assert_eq!(calls(&[0, 1, 2, 3, 4, 5], &sizes, limit), vec![vec![0, 1], vec![2], vec![3], vec![4, 5]]);
    }
}
