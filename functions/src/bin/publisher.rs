//! The publisher Lambda: consumes the table's stream onto the event bus (see
//! `functions::workers::publisher`).

use functions::platform::lambda::{aws_state, env, init_logs, Config, Jobs};
use infra::bus::EventBus;
use lambda_http::aws_lambda_events::event::dynamodb::Event;
use lambda_http::{service_fn, LambdaEvent};
use std::sync::Arc;

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), lambda_http::Error> {
    init_logs();
    let config = Config::from_env()?;
    let store = aws_state(&config, Jobs::None).await?.store.clone();
    let bus = Arc::new(EventBus::from_env(&env("EVENT_BUS_NAME")?)?);
    lambda_http::lambda_runtime::run(service_fn(move |event: LambdaEvent<Event>| {
        let (store, bus) = (store.clone(), bus.clone());
        async move {
            Ok::<_, lambda_http::Error>(
                functions::workers::publisher::handle_stream(store.as_ref(), bus.as_ref(), event.payload).await,
            )
        }
    }))
    .await
}
