//! The publisher Lambda: consumes the table's stream (see `functions::publisher`).

use functions::lambda::{init_logs, Config};
use lambda_http::aws_lambda_events::event::dynamodb::Event;
use lambda_http::{service_fn, LambdaEvent};

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), lambda_http::Error> {
    init_logs();
    let config = Config::from_env()?;
    let state = functions::lambda::aws_state(&config)?;
    let store = state.store;
    lambda_http::lambda_runtime::run(service_fn(move |event: LambdaEvent<Event>| {
        let store = store.clone();
        async move { Ok::<_, lambda_http::Error>(functions::publisher::handle_stream(store.as_ref(), event.payload).await) }
    }))
    .await
}
