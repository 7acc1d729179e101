//! The deliverer Lambda: webhook deliveries from the SQS queue (see `functions::workers::deliverer`).

use functions::platform::lambda::{aws_state, env, init_logs, Config, Jobs};
use infra::queue::SqsQueue;
use infra::webhook::{SystemResolver, WebhookClient};
use lambda_http::aws_lambda_events::event::sqs::SqsEvent;
use lambda_http::{service_fn, LambdaEvent};
use std::sync::Arc;

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), lambda_http::Error> {
    init_logs();
    let config = Config::from_env()?;
    let queue = Arc::new(SqsQueue::from_env(&env("DELIVERY_QUEUE_URL")?)?);
    let state = aws_state(&config, Jobs::None).await?;
    // Every address a receiver resolves to is checked; loopback only under `tests/stack`.
    let client = WebhookClient::new(Arc::new(SystemResolver), state.webhook_loopback)?;
    lambda_http::lambda_runtime::run(service_fn(move |event: LambdaEvent<SqsEvent>| {
        let (state, client, queue) = (state.clone(), client.clone(), queue.clone());
        async move {
            Ok::<_, lambda_http::Error>(
                functions::workers::deliverer::handle_sqs(&state, &client, &queue, event.payload).await,
            )
        }
    }))
    .await
}
