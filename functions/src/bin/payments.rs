//! The payments Lambda.

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), lambda_http::Error> {
    functions::platform::lambda::run(functions::api::payments::router(), functions::platform::lambda::Jobs::None).await
}
