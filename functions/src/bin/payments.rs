//! The payments Lambda: authorizations, captures, refunds and cancellations of an order.

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), lambda_http::Error> {
    functions::lambda::run(functions::payments::router()).await
}
