//! The hosts: how the same code runs as a Lambda (configuration from the environment, clients
//! built once, `lambda_http::run`) and as `shopping-local` (embedded store, background
//! workers, the token endpoint, `/metrics`, the document), the operator command for API
//! clients on either, and the smoke check of a deployed stack.

pub mod lambda;
pub mod listener;
pub mod local;
pub mod operator;
pub mod smoke;
