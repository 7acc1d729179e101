//! The views Lambda: order lists and the customer and store views.

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), lambda_http::Error> {
    functions::lambda::run(functions::views::router()).await
}
