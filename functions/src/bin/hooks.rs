//! The hooks Lambda: webhook subscriptions (see `functions::api::hooks`); pings,
//! redeliveries and recoveries go to the delivery queue.

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), lambda_http::Error> {
    functions::platform::lambda::run(functions::api::hooks::router(), functions::platform::lambda::Jobs::Queue).await
}
