//! The cold-start baseline: a bare `lambda_http` hello world, built with the same release
//! profile as the functions, so the harness can say what our init costs beyond the runtime's.
//! `HELLO_RUNTIME=multi_thread` starts tokio's default (multi-thread) runtime instead of the
//! current-thread one the functions use, to measure that choice on its own.

use lambda_http::{service_fn, Body, Error, Request, Response};

async fn hello(_: Request) -> Result<Response<Body>, Error> {
    Ok(Response::builder().header("content-type", "application/json").body(Body::from(r#"{"hello":"world"}"#))?)
}

fn main() -> Result<(), Error> {
    let mut runtime = match std::env::var("HELLO_RUNTIME").as_deref() {
        Ok("multi_thread") => tokio::runtime::Builder::new_multi_thread(),
        _ => tokio::runtime::Builder::new_current_thread(),
    };
    runtime.enable_all().build()?.block_on(lambda_http::run(service_fn(hello)))
}
