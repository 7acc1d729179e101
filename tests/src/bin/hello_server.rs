//! The load baseline: a bare axum server answering `GET /` with a small JSON body, on the
//! same tokio runtime defaults as `shopping-local`, so the load bench can say what the API
//! costs beyond the HTTP stack. Prints its address like `shopping-local serve` does.

use axum::routing::get;
use axum::{Json, Router};

#[tokio::main]
async fn main() -> std::io::Result<()> {
    let app = Router::new().route("/", get(|| async { Json(serde_json::json!({"hello": "world"})) }));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    println!("hello-server listening on http://{}", listener.local_addr()?);
    axum::serve(listener, app).await
}
