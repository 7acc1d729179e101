//! Request plumbing shared by every router: the size-limited body, JSON parsing whose errors
//! name the field, `If-Match`/`ETag`, 404/405 fallbacks and the request log line.

use super::error::ApiError;
use axum::body::Bytes;
use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderValue, Method};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use serde::de::DeserializeOwned;

pub const BODY_LIMIT: usize = 1024 * 1024;

/// The raw request body, at most [`BODY_LIMIT`] bytes (413 beyond).
pub struct Body(pub Bytes);

impl<S: Send + Sync> FromRequest<S> for Body {
    type Rejection = ApiError;

    async fn from_request(req: Request, _: &S) -> Result<Self, Self::Rejection> {
        if let Some(len) = req.headers().get(axum::http::header::CONTENT_LENGTH) {
            if len.to_str().ok().and_then(|l| l.parse::<usize>().ok()).is_some_and(|l| l > BODY_LIMIT) {
                return Err(ApiError::TooLarge(BODY_LIMIT));
            }
        }
        axum::body::to_bytes(req.into_body(), BODY_LIMIT).await.map(Body).map_err(|e| {
            if stalled(&e) {
                ApiError::BodyTimeout
            } else {
                ApiError::TooLarge(BODY_LIMIT)
            }
        })
    }
}

/// Whether a body read failed because the body stalled past the local server's body-read
/// timeout (`tower_http`'s error, wrapped once or twice by axum on its way here).
fn stalled(e: &(dyn std::error::Error + 'static)) -> bool {
    let mut next = Some(e);
    while let Some(e) = next {
        if e.is::<tower_http::timeout::TimeoutError>() {
            return true;
        }
        next = e.source();
    }
    false
}

impl Body {
    /// Parses a JSON body into `T`, reporting every problem at once: each value of the wrong
    /// type by its path and, when there are any, also what `rules` finds in the rest (see
    /// [`domain::decode`]). Without type errors the caller's command applies the rules.
    pub fn decode<T: DeserializeOwned>(
        &self,
        rules: impl Fn(&T) -> Result<(), domain::DomainError>,
    ) -> Result<T, ApiError> {
        Ok(domain::decode::decode(&self.0, rules)?)
    }

    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.0).into_owned()
    }
}

/// Path parameters, like axum's `Path`, but a segment that cannot be read (not UTF-8 once
/// percent-decoded, say) is a 404 in the upstream error shape, never a plain-text rejection.
pub struct Params<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned + Send> FromRequestParts<S> for Params<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        axum::extract::Path::<T>::from_request_parts(parts, state)
            .await
            .map(|axum::extract::Path(t)| Self(t))
            .map_err(|_| ApiError::NotFound("route".into()))
    }
}

/// `If-Match: W/"3"` (or `"3"`, `3`); `*` or no header means any version.
pub fn if_match(headers: &HeaderMap) -> Result<Option<u64>, ApiError> {
    let Some(v) = headers.get(axum::http::header::IF_MATCH) else { return Ok(None) };
    let s = v.to_str().map_err(|_| ApiError::bad("If-Match", "must be an ETag such as W/\"3\""))?.trim();
    if s == "*" {
        return Ok(None);
    }
    let bare = s.trim_start_matches("W/").trim_matches('"');
    bare.parse().map(Some).map_err(|_| ApiError::bad("If-Match", "must be an ETag such as W/\"3\""))
}

/// A JSON response carrying `ETag: W/"version"`.
pub fn with_etag(version: u64, body: impl serde::Serialize) -> Response {
    json_with_etag(version, serde_json::to_string(&body).unwrap_or_default())
}

/// An already-serialised JSON body with `ETag: W/"version"`.
pub fn json_with_etag(version: u64, body: impl IntoResponse) -> Response {
    json_bytes(Some(version), body)
}

/// An already-serialised JSON body, with `ETag: W/"version"` when there is a version.
pub fn json_bytes(version: Option<u64>, body: impl IntoResponse) -> Response {
    let mut res = ([(axum::http::header::CONTENT_TYPE, "application/json")], body).into_response();
    if let Some(v) = version.and_then(|v| HeaderValue::from_str(&format!("W/\"{v}\"")).ok()) {
        res.headers_mut().insert(axum::http::header::ETAG, v);
    }
    res
}

pub async fn not_found() -> ApiError {
    ApiError::NotFound("route".into())
}

pub async fn method_not_allowed() -> ApiError {
    ApiError::MethodNotAllowed
}

/// Every API route's edge behaviour, as one middleware: the request log line around the
/// metering, around the per-account limiter, around the Lambda deadline. One layer rather
/// than four: axum clones a route's layered service, one boxed service per layer, for every
/// request (BENCHMARKS.md, "Local load").
pub async fn edge(
    axum::extract::State(state): axum::extract::State<super::state::AppState>,
    req: Request,
    next: Next,
) -> Response {
    logged(req, |req| {
        metered(&state, req, |req| super::limit::limited(&state, req, |req| within_deadline(req, |req| next.run(req))))
    })
    .await
}

/// The metering: what the request cost, recorded for the account it acted for (see
/// [`crate::metering::billed_account`]). The caller is read as the handlers read it.
async fn metered<F, Fut>(state: &super::state::AppState, req: Request, inner: F) -> Response
where
    F: FnOnce(Request) -> Fut,
    Fut: std::future::Future<Output = Response>,
{
    let (mut parts, body) = req.into_parts();
    let caller = super::auth::Caller::from_request_parts(&mut parts, state).await.ok();
    if let Some(c) = &caller {
        // The handlers' extractors take it from here rather than verifying the token again.
        parts.extensions.insert(super::auth::Verified(c.clone()));
    }
    let path = parts.uri.path().to_owned();
    let (res, counts) = crate::metering::metered(inner(Request::from_parts(parts, body))).await;
    let aid = caller.as_ref().map(|c| c.aid.as_str());
    if let Some(account) = crate::metering::billed_account(&path, aid, res.status().as_u16()) {
        // A request the limiter refused ran nothing: it counts as throttled, not served.
        let counts = if res.extensions().get::<super::limit::Throttled>().is_some() {
            crate::metering::Counts { throttled: 1, ..Default::default() }
        } else {
            counts
        };
        state.usage.record(account, &counts, state.clock.epoch_ms());
    }
    res
}

/// Runs the request knowing its Lambda invocation's deadline (none off Lambda), so that a
/// write's retries stop in time to answer ([`crate::app::retry`]).
async fn within_deadline<F, Fut>(req: Request, inner: F) -> Response
where
    F: FnOnce(Request) -> Fut,
    Fut: std::future::Future<Output = Response>,
{
    let until = lambda_http::RequestExt::lambda_context_ref(&req).and_then(|c| instant_of(c.deadline));
    crate::app::retry::within_deadline(until, inner(req)).await
}

/// The instant of a deadline in milliseconds since the epoch; `None` when unset or past.
fn instant_of(deadline_ms: u64) -> Option<std::time::Instant> {
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).ok()?;
    let left = std::time::Duration::from_millis(deadline_ms).checked_sub(now)?;
    Some(std::time::Instant::now() + left)
}

/// The request id header: read from the caller, always set on the answer.
pub const REQUEST_ID: &str = "x-request-id";

/// The longest caller-supplied request id kept.
const REQUEST_ID_MAX: usize = 128;

/// The caller's `x-request-id` if it is one we can log and echo safely (1–128 characters of
/// letters, digits and `-_.:/+=@`); anything else is replaced, not refused: a bad correlation
/// header should not fail a request whose body is fine (DECISIONS.md, "Request ids").
fn caller_request_id(headers: &HeaderMap) -> Option<String> {
    let v = headers.get(REQUEST_ID)?.to_str().ok()?;
    let ok = (1..=REQUEST_ID_MAX).contains(&v.len())
        && v.bytes().all(|b| b.is_ascii_alphanumeric() || b"-_.:/+=@".contains(&b));
    ok.then(|| v.to_owned())
}

/// One log line per request: request id, method, route template (never ids, queries or bodies, which may
/// hold personal data), status and latency. Every line logged while the request runs carries
/// the same id (the `request` span), and the answer echoes it in `x-request-id`.
pub async fn log_request(req: Request, next: Next) -> Response {
    logged(req, |req| next.run(req)).await
}

/// [`log_request`] around `inner`.
async fn logged<F, Fut>(req: Request, inner: F) -> Response
where
    F: FnOnce(Request) -> Fut,
    Fut: std::future::Future<Output = Response>,
{
    use tracing::Instrument;
    let method: Method = req.method().clone();
    let route = req
        .extensions()
        .get::<axum::extract::MatchedPath>()
        .map_or_else(|| "unmatched".to_owned(), |m| m.as_str().to_owned());
    // On Lambda the invocation's request id; locally the caller's, else a new one.
    let request_id = lambda_http::RequestExt::lambda_context_ref(&req)
        .map(|c| c.request_id.clone())
        .or_else(|| caller_request_id(req.headers()))
        .unwrap_or_else(|| uuid::Uuid::new_v4().to_string());
    let started = std::time::Instant::now();
    let span = tracing::info_span!("request", request_id = %request_id);
    let mut res = inner(req).instrument(span).await;
    tracing::info!(
        request_id = %request_id,
        method = %method,
        route = %route,
        status = res.status().as_u16(),
        ms = started.elapsed().as_secs_f64() * 1000.0,
        "request"
    );
    if let Ok(v) = HeaderValue::from_str(&request_id) {
        res.headers_mut().insert(REQUEST_ID, v);
    }
    res
}

/// Reads a stored document; one that does not parse is a server fault (logged at the edge,
/// never shown).
pub fn parse<T: serde::de::DeserializeOwned>(doc: &str) -> Result<T, ApiError> {
    Ok(crate::app::error::parse("document", doc)?)
}

/// Raw query pairs, so repeated parameters and comma lists both reach the parsers.
pub fn query_pairs(raw: Option<&str>) -> Vec<(String, String)> {
    raw.map(|q| form_urlencoded::parse(q.as_bytes()).into_owned().collect()).unwrap_or_default()
}
