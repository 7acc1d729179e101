//! What every HTTP Lambda shares: configuration from the environment (failing fast when it is
//! wrong), clients built once, JSON logs, and `lambda_http::run`.

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
        let connect_at_init = match var("CONNECT_AT_INIT").as_deref().map(str::trim) {
            None | Some("") | Some("false") => false,
            Some("true") => true,
            Some(other) => return Err(format!("CONNECT_AT_INIT must be true or false, not {other:?}")),
        };
        Ok(Self { table_name, connect_at_init })
    }
}

/// `RUST_LOG` as target/level directives (`info`, `warn,functions=debug`), `info` when unset
/// or unreadable. `Targets` rather than `EnvFilter`: no regex engine in every binary.
pub fn log_filter() -> tracing_subscriber::filter::Targets {
    std::env::var("RUST_LOG")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| tracing_subscriber::filter::Targets::new().with_default(tracing::Level::INFO))
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
    let clock = Arc::new(SystemClock::default());
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
    Ok(AppState::new(store, clock, Auth::ApiGateway, jobs, Sink::Emf))
}

/// Serves one resource group's router as this Lambda.
pub async fn run(group: Router<AppState>, jobs: Jobs) -> Result<(), lambda_http::Error> {
    init_logs();
    let config = Config::from_env()?;
    let state = aws_state(&config, jobs).await?;
    lambda_http::run(crate::finish(group, state)).await
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
    fn the_connection_is_opened_at_init_only_when_asked() {
        assert!(config(&[("TABLE_NAME", "t")]).is_ok_and(|c| !c.connect_at_init));
        assert!(config(&[("TABLE_NAME", "t"), ("CONNECT_AT_INIT", "true")]).is_ok_and(|c| c.connect_at_init));
        assert!(config(&[("TABLE_NAME", "t"), ("CONNECT_AT_INIT", "false")]).is_ok_and(|c| !c.connect_at_init));
        let wrong = config(&[("TABLE_NAME", "t"), ("CONNECT_AT_INIT", "no")]);
        assert!(wrong.is_err_and(|e| e.contains("CONNECT_AT_INIT must be true or false")));
    }

    #[test]
    fn a_missing_or_empty_table_name_fails_the_start() {
        assert!(config(&[]).is_err_and(|e| e.contains("TABLE_NAME")));
        assert!(config(&[("TABLE_NAME", " ")]).is_err_and(|e| e.contains("TABLE_NAME is empty")));
    }
}
