//! What every HTTP Lambda shares: configuration from the environment (failing fast when it is
//! wrong), clients built once, JSON logs, and `lambda_http::run`.

use crate::auth::Auth;
use crate::state::AppState;
use axum::Router;
use infra::dynamo::DynamoStore;
use infra::SystemClock;
use std::sync::Arc;

#[derive(Debug, Clone)]
pub struct Config {
    pub table_name: String,
}

impl Config {
    pub fn from_env() -> Result<Self, String> {
        let table_name =
            std::env::var("TABLE_NAME").map_err(|_| "TABLE_NAME must name the DynamoDB table".to_owned())?;
        if table_name.trim().is_empty() {
            return Err("TABLE_NAME is empty".into());
        }
        Ok(Self { table_name })
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

/// The state of a Lambda on AWS: DynamoDB store, wall clock, claims from the authorizer.
pub fn aws_state(config: &Config) -> Result<AppState, String> {
    let clock = Arc::new(SystemClock::default());
    let client = infra::dynamo::client_from_env()?;
    Ok(AppState {
        store: Arc::new(crate::usage::MeteredStore(Arc::new(DynamoStore::new(
            client,
            config.table_name.clone(),
            clock.clone(),
        )))),
        clock,
        auth: Arc::new(Auth::ApiGateway),
        webhook_loopback: false,
        // Only the functions that queue deliveries (hooks, deliverer) are given the queue.
        jobs: Arc::new(infra::queue::NoQueue),
        usage: crate::usage::Sink::Emf,
    })
}

/// Serves one resource group's router as this Lambda.
pub async fn run(group: Router<AppState>) -> Result<(), lambda_http::Error> {
    init_logs();
    let config = Config::from_env()?;
    let state = aws_state(&config)?;
    lambda_http::run(crate::finish(group, state)).await
}

/// A required setting from the environment.
pub fn env(name: &str) -> Result<String, String> {
    std::env::var(name).ok().filter(|v| !v.trim().is_empty()).ok_or_else(|| format!("{name} must be set"))
}
