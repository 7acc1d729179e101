//! The hooks Lambda: webhook subscriptions (see `functions::hooks`); pings and redeliveries
//! go to the delivery queue.

use functions::lambda::{aws_state, env, init_logs, Config};
use infra::queue::SqsQueue;
use std::sync::Arc;

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), lambda_http::Error> {
    init_logs();
    let config = Config::from_env()?;
    let jobs = Arc::new(SqsQueue::from_env(&env("DELIVERY_QUEUE_URL")?)?);
    let state = functions::state::AppState { jobs, ..aws_state(&config)? };
    lambda_http::run(functions::finish(functions::hooks::router(), state)).await
}
