//! The HTTP API: one module per Lambda group (drafts, orders, payments, views, hooks; the
//! token issuer, the reference), each a router of a few-line handlers over the
//! application layer, plus the parameter types they document and the OpenAPI document that
//! gathers them. A handler extracts (edge), runs a use case (app) and answers.

pub mod drafts;
pub mod hooks;
pub mod issuer;
pub mod openapi;
pub mod orders;
pub mod params;
pub mod payments;
pub mod reference;
pub mod views;

use crate::app::aggregate::Aggregate;
use crate::app::shown::{Kinds, Shown};
use crate::app::write::{self, Written};
use crate::edge::error::ApiError;
use crate::edge::http::json_with_etag;
use crate::edge::write::Write;
use axum::response::Response;
use domain::change::{Ctx, Outcome};
use domain::ids::Ids;

/// A write's answer: its JSON with `ETag: W/"version"`.
fn answer(w: Written) -> Response {
    json_with_etag(w.version, w.body)
}

/// Runs a command on the aggregate `key` names (see [`write::mutate`]) and answers.
pub(crate) async fn mutate<A: Aggregate, T: Shown>(
    w: &Write,
    key: &str,
    kinds: &Kinds,
    command: impl Fn(&Ctx, &mut dyn Ids, A::Record) -> domain::error::Result<Outcome<T>> + Send + Sync,
) -> Result<Response, ApiError> {
    let s = &w.state;
    Ok(answer(write::mutate::<A, T>(s.store.as_ref(), s.clock.as_ref(), &w.req, key, kinds, command).await?))
}

/// Runs a command that creates a resource (see [`write::create`]) and answers.
pub(crate) async fn created<T: Shown>(
    w: &Write,
    command: impl Fn(&Ctx, &mut dyn Ids) -> domain::error::Result<Outcome<T>> + Send + Sync,
) -> Result<Response, ApiError> {
    let s = &w.state;
    Ok(answer(write::create::<T>(s.store.as_ref(), s.clock.as_ref(), &w.req, command).await?))
}
