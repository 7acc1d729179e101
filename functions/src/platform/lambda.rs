//! What every HTTP Lambda shares: configuration from the environment (failing fast when it is
//! wrong), clients built once, JSON logs, and `lambda_http::run`.

use crate::api::issuer::{published_key_ids, IssuerSettings};
use crate::edge::auth::Auth;
use crate::edge::state::AppState;
use crate::metering::Sink;
use axum::Router;
use infra::dynamo::DynamoStore;
use infra::queue::{JobQueue, NoQueue, SqsQueue};
use infra::SystemClock;
use std::sync::Arc;

#[derive(Debug, Clone)]
pub struct Config {
    pub table_name: String,
    /// Open the table's connection during init (`CONNECT_AT_INIT=true`; off by default).
    pub connect_at_init: bool,
}

impl Config {
    pub fn from_env() -> Result<Self, String> {
        Self::from_vars(|name| std::env::var(name).ok())
    }

    /// The configuration from the variables `var` answers.
    pub fn from_vars(var: impl Fn(&str) -> Option<String>) -> Result<Self, String> {
        let table_name = var("TABLE_NAME").ok_or("TABLE_NAME must name the DynamoDB table")?;
        if table_name.trim().is_empty() {
            return Err("TABLE_NAME is empty".into());
        }
        let connect_at_init = flag("CONNECT_AT_INIT", var("CONNECT_AT_INIT"))?;
        Ok(Self { table_name, connect_at_init })
    }
}

/// Targets held at `info` whatever `RUST_LOG` says: below it, the Lambda runtime logs each raw
/// event (a token request's Basic credentials among them), and the HTTP and AWS client crates
/// log requests, headers included.
pub const HELD_AT_INFO: &[&str] = &[
    "lambda_runtime",
    "lambda_runtime_api_client",
    "lambda_http",
    "aws_smithy_runtime",
    "aws_smithy_http_client",
    "aws_sdk_kms",
    "aws_sdk_dynamodb",
    "hyper",
    "hyper_util",
    "h2",
    "rustls",
];

/// `RUST_LOG` as target/level directives (`info`, `warn,functions=debug`), `info` when unset
/// or unreadable, with [`HELD_AT_INFO`] held at `info`. `Targets` rather than `EnvFilter`: no
/// regex engine in every binary.
pub fn log_filter() -> tracing_subscriber::filter::Targets {
    log_filter_of(std::env::var("RUST_LOG").ok().as_deref())
}

fn log_filter_of(directives: Option<&str>) -> tracing_subscriber::filter::Targets {
    let given = directives.and_then(|v| v.parse().ok());
    let filter = given.unwrap_or_else(|| tracing_subscriber::filter::Targets::new().with_default(tracing::Level::INFO));
    HELD_AT_INFO.iter().fold(filter, |f, target| f.with_target(*target, tracing::Level::INFO))
}

pub fn init_logs() {
    use tracing_subscriber::layer::SubscriberExt;
    use tracing_subscriber::util::SubscriberInitExt;
    let json = tracing_subscriber::fmt().json().without_time().with_current_span(false).finish();
    let _ = json.with(log_filter()).try_init();
}

/// Where a function's delivery jobs go.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Jobs {
    /// It queues none (a job would be an error, never lost silently).
    None,
    /// The SQS delivery queue named by `DELIVERY_QUEUE_URL`.
    Queue,
}

/// How long init waits for the connection to the table (see [`aws_state`]).
pub const CONNECT_WITHIN: std::time::Duration = std::time::Duration::from_millis(500);

/// The state of a Lambda on AWS: DynamoDB store, wall clock, claims from the authorizer,
/// usage as EMF lines, and the delivery queue when the function queues jobs.
///
/// With `CONNECT_AT_INIT=true` the connection to the table is opened here, during init, instead
/// of by the first request; bounded by [`CONNECT_WITHIN`], it never fails the init (the first
/// request then connects as it would have). Off by default: measured (BENCHMARKS.md, "Cold
/// request"), the first request's TLS work is ~3 ms of CPU on ring, which fits in one CPU
/// period's share even at 128 MB, so moving it saves nothing there, while init pays a round
/// trip. It pays where round trips are long (a table in another region).
pub async fn aws_state(config: &Config, jobs: Jobs) -> Result<AppState, String> {
    let clock = Arc::new(clock_from_env()?);
    let store = Arc::new(DynamoStore::from_env(config.table_name.clone(), clock.clone())?);
    if config.connect_at_init {
        if let Err(why) = store.connect(CONNECT_WITHIN).await {
            tracing::warn!(%why, "the table's connection was not opened during init; the first request opens it");
        }
    }
    let jobs: Arc<dyn JobQueue> = match jobs {
        Jobs::None => Arc::new(NoQueue),
        Jobs::Queue => Arc::new(SqsQueue::from_env(&env("DELIVERY_QUEUE_URL")?)?),
    };
    Ok(AppState::new(store, clock, Auth::ApiGateway, jobs, Sink::Emf).allow_loopback(webhook_loopback()?))
}

/// The function's clock: the wall clock, shifted by `SHOPPING_CLOCK_OFFSET_SECONDS` when that
/// is set (a testing aid of `tests/stack`, as of `shopping-local`; the template never sets it).
pub fn clock_from_env() -> Result<SystemClock, String> {
    super::local::clock_from_env().map_err(|e| e.to_string())
}

/// Whether webhooks may go to loopback receivers: only with `SHOPPING_WEBHOOK_ALLOW_LOOPBACK=true`
/// (set by `tests/stack up --webhook-allow-loopback`, never by the template), so that on AWS
/// the SSRF guard refuses every loopback, private and link-local address.
pub fn webhook_loopback() -> Result<bool, String> {
    flag("SHOPPING_WEBHOOK_ALLOW_LOOPBACK", std::env::var("SHOPPING_WEBHOOK_ALLOW_LOOPBACK").ok())
}

/// A `true`/`false` setting, off when unset or empty; anything else fails the start.
fn flag(name: &str, value: Option<String>) -> Result<bool, String> {
    match value.as_deref().map(str::trim) {
        None | Some("") | Some("false") => Ok(false),
        Some("true") => Ok(true),
        Some(other) => Err(format!("{name} must be true or false, not {other:?}")),
    }
}

/// Serves one resource group's router as this Lambda.
pub async fn run(group: Router<AppState>, jobs: Jobs) -> Result<(), lambda_http::Error> {
    init_logs();
    let config = Config::from_env()?;
    let state = aws_state(&config, jobs).await?;
    lambda_http::run(crate::edge::route_path::routed(crate::finish(group, state))).await
}

/// The token function's settings: the table, and the own issuer's when the stack is its own
/// issuer (`None`: tokens come from an outside identity provider, and the endpoint says so).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TokenConfig {
    pub table_name: String,
    pub own_issuer: Option<IssuerSettings>,
}

impl TokenConfig {
    pub fn from_vars(var: impl Fn(&str) -> Option<String>) -> Result<Self, String> {
        let table_name = Config::from_vars(&var)?.table_name;
        Ok(Self { table_name, own_issuer: IssuerSettings::from_vars(var)? })
    }
}

/// The token function's router: the token endpoint and the reference, no authorizer.
pub fn token_app(
    config: &TokenConfig,
    store: Arc<dyn infra::Store>,
    clock: Arc<dyn infra::Clock>,
    kms: Arc<infra::kms::KmsKeys>,
) -> Router {
    use crate::api::issuer::signing::{KmsSigner, TokenSigner};
    use crate::api::issuer::token::Issuer;
    let signer =
        config.own_issuer.clone().map(|settings| Arc::new(KmsSigner { keys: kms, settings }) as Arc<dyn TokenSigner>);
    let issuer = Issuer { store, clock, legacy_key: crate::app::clients::LegacyKey::stored(), signer };
    crate::api::issuer::token::router(Arc::new(issuer))
        .merge(crate::api::reference::router())
        .fallback(crate::edge::http::not_found)
        .method_not_allowed_fallback(crate::edge::http::method_not_allowed)
        .layer(axum::middleware::from_fn(crate::edge::http::log_request))
}

/// Serves the token endpoint and the reference as the token function.
pub async fn run_token() -> Result<(), lambda_http::Error> {
    init_logs();
    let config = TokenConfig::from_vars(|name| std::env::var(name).ok())?;
    let clock = Arc::new(clock_from_env()?);
    let store = Arc::new(DynamoStore::from_env(config.table_name.clone(), clock.clone())?);
    let kms = Arc::new(infra::kms::KmsKeys::from_env()?);
    lambda_http::run(crate::edge::route_path::routed(token_app(&config, store, clock, kms))).await
}

/// The keys function's router: the issuer's discovery document and JWKS.
pub fn keys_app(key_ids: Vec<String>, kms: Arc<infra::kms::KmsKeys>) -> Router {
    let published = Arc::new(crate::api::issuer::keys::Published::new(kms, key_ids));
    crate::api::issuer::keys::router(published).layer(axum::middleware::from_fn(crate::edge::http::log_request))
}

/// Serves the issuer's keys as the keys function (behind its function URL).
pub async fn run_keys() -> Result<(), lambda_http::Error> {
    init_logs();
    let key_ids = published_key_ids(|name| std::env::var(name).ok())?;
    let kms = Arc::new(infra::kms::KmsKeys::from_env()?);
    lambda_http::run(keys_app(key_ids, kms)).await
}

/// A required setting from the environment.
pub fn env(name: &str) -> Result<String, String> {
    std::env::var(name).ok().filter(|v| !v.trim().is_empty()).ok_or_else(|| format!("{name} must be set"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(pairs: &[(&str, &str)]) -> Result<Config, String> {
        Config::from_vars(|name| pairs.iter().find(|(k, _)| *k == name).map(|(_, v)| (*v).to_owned()))
    }

    #[test]
    fn loopback_webhooks_are_refused_unless_explicitly_allowed() {
        let loopback = |v: Option<&str>| flag("SHOPPING_WEBHOOK_ALLOW_LOOPBACK", v.map(str::to_owned));
        assert_eq!(loopback(None), Ok(false));
        assert_eq!(loopback(Some("false")), Ok(false));
        assert_eq!(loopback(Some("true")), Ok(true));
        assert!(loopback(Some("yes")).is_err_and(|e| e.contains("must be true or false")));
    }

    #[test]
    fn the_connection_is_opened_at_init_only_when_asked() {
        assert!(config(&[("TABLE_NAME", "t")]).is_ok_and(|c| !c.connect_at_init));
        assert!(config(&[("TABLE_NAME", "t"), ("CONNECT_AT_INIT", "true")]).is_ok_and(|c| c.connect_at_init));
        assert!(config(&[("TABLE_NAME", "t"), ("CONNECT_AT_INIT", "false")]).is_ok_and(|c| !c.connect_at_init));
        let wrong = config(&[("TABLE_NAME", "t"), ("CONNECT_AT_INIT", "no")]);
        assert!(wrong.is_err_and(|e| e.contains("CONNECT_AT_INIT must be true or false")));
    }

    #[test]
    fn the_runtime_and_client_crates_never_log_below_info() {
        let trace = log_filter_of(Some("trace"));
        let at = |f: &tracing_subscriber::filter::Targets, target: &str, level| f.would_enable(target, &level);
        assert!(at(&trace, "functions", tracing::Level::TRACE), "RUST_LOG still governs our own crates");
        for target in ["lambda_runtime", "lambda_runtime::layers::trace", "aws_smithy_runtime", "hyper"] {
            assert!(!at(&trace, target, tracing::Level::DEBUG), "{target} is held at info");
            assert!(at(&trace, target, tracing::Level::INFO), "{target} still logs at info");
        }
        assert!(at(&log_filter_of(None), "issuer", tracing::Level::INFO), "the issuance log is on by default");
    }

    #[test]
    fn a_missing_or_empty_table_name_fails_the_start() {
        assert!(config(&[]).is_err_and(|e| e.contains("TABLE_NAME")));
        assert!(config(&[("TABLE_NAME", " ")]).is_err_and(|e| e.contains("TABLE_NAME is empty")));
    }
}
