//! The write extractor: everything a write needs, checked before the handler runs — the
//! caller may write to the account in the path (with the access the route asks), the body is
//! within the limit, `If-Match` and `Idempotency-Key` are well-formed — and the context
//! (actor, time, request) the domain records, handed to the write loop as an
//! [`app::write::WriteRequest`].

use super::auth::{Access, Caller};
use super::error::ApiError;
use super::http::{if_match, query_pairs, Body, Params};
use super::state::AppState;
use crate::app::idempotency::{self, Idem};
use crate::app::write::WriteRequest;
use axum::extract::{FromRequest, FromRequestParts, Request};
use domain::change::Ctx;
use domain::model::EventRequest;

pub(crate) struct Write {
    pub state: AppState,
    pub req: WriteRequest,
    pub body: Body,
    query: Option<String>,
}

impl Write {
    async fn extract(req: Request, state: &AppState, access: Access) -> Result<Self, ApiError> {
        let (mut parts, body) = req.into_parts();
        let caller = Caller::from_request_parts(&mut parts, state).await?;
        let Params(params) = Params::<Vec<(String, String)>>::from_request_parts(&mut parts, state).await?;
        let aid = params.into_iter().find(|(k, _)| k == "aid").map(|(_, v)| v).unwrap_or_default();
        caller.authorize(&aid, access)?;
        let (headers, method, uri) = (parts.headers.clone(), parts.method.clone(), parts.uri.clone());
        let body = Body::from_request(Request::from_parts(parts, body), state).await?;
        let expected = if_match(&headers)?;
        let key = headers.get(idempotency::HEADER).map(|v| v.as_bytes());
        let idem = Idem::from_request(&aid, key, method.as_str(), uri.path(), &body.0)?;
        let ctx = Ctx {
            aid,
            actor: caller.sub,
            now: state.clock.now(),
            request: EventRequest {
                path: Some(uri.path().to_owned()),
                method: Some(method.as_str().to_owned()),
                body: Some(body.text()).filter(|b| !b.is_empty()),
            },
        };
        let req = WriteRequest { ctx, expected, idem };
        Ok(Self { state: state.clone(), req, body, query: uri.query().map(str::to_owned) })
    }

    /// The raw query pairs of the request.
    pub fn query(&self) -> Vec<(String, String)> {
        query_pairs(self.query.as_deref())
    }
}

impl FromRequest<AppState> for Write {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &AppState) -> Result<Self, Self::Rejection> {
        Self::extract(req, state, Access::Write).await
    }
}

/// A write to an order's events (`POST /orders/{id}/events`), which the fine-grained
/// `write:shopping:/orders/ANY/events` scope also grants.
pub(crate) struct EventWrite(pub Write);

impl FromRequest<AppState> for EventWrite {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &AppState) -> Result<Self, Self::Rejection> {
        Write::extract(req, state, Access::EventsWrite).await.map(Self)
    }
}
