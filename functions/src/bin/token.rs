//! The token Lambda: the client-credentials token endpoint and the reference (no authorizer).

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), lambda_http::Error> {
    functions::platform::lambda::run_token().await
}
