//! The views Lambda.

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), lambda_http::Error> {
    functions::platform::lambda::run(functions::api::views::router(), functions::platform::lambda::Jobs::None).await
}
