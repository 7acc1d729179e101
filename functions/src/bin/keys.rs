//! The keys Lambda: the stack's issuer (discovery document and JWKS) behind its function URL.

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), lambda_http::Error> {
    functions::platform::lambda::run_keys().await
}
