//! The token endpoint, compatible with the upstream auth API's client credentials grant:
//! `POST /v1/accounts/{aid}/auth/token` with the client's id and secret (HTTP Basic, a JSON
//! body or a form body) answers a bearer token, so a client written for the upstream API
//! authenticates unchanged. One implementation for both hosts; only the signer differs
//! ([`super::signing`]).
//!
//! RFC 6749 as a strict client meets it: `scope` narrows the token to what was asked (a scope
//! the client was not granted is `invalid_scope`), and a request authenticates one way only
//! (a secret in the body beside Basic credentials is `invalid_request`). Every issuance and
//! every refusal is one log line (client id, account, `kid`, outcome), never the secret.

use super::signing::{SignError, TokenSigner};
use crate::app::clients::{Clients, LegacyKey};
use crate::edge::auth::Claims;
use crate::edge::error::ApiError;
use axum::extract::{Path, State};
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::{Json, Router};
use base64::Engine as _;
use domain::FieldError;
use infra::{Clock, Store};
use serde::{Deserialize, Serialize};
use std::sync::Arc;

/// How long an issued token lives.
pub const TOKEN_SECONDS: i64 = 3600;

/// Whether holding `granted` lets a client ask for `asked`: itself, what an `admin:` scope of
/// the same API covers, and the narrower scopes under a `read:`/`write:` one (e.g.
/// `read:shopping` covers `read:shopping:/orders/ANY/events`).
fn covers(granted: &str, asked: &str) -> bool {
    if granted == asked {
        return true;
    }
    if let Some(api) = granted.strip_prefix("admin:") {
        return ["read:", "write:"].iter().any(|kind| {
            asked.strip_prefix(kind).is_some_and(|rest| rest == api || rest.starts_with(&format!("{api}:")))
        });
    }
    asked.strip_prefix(granted).is_some_and(|rest| rest.starts_with(':'))
}

/// The scopes the token carries: those asked for (each covered by a granted one, duplicates
/// dropped), or every granted one when none were asked for.
fn narrowed(granted: &str, asked: Option<&str>) -> Result<String, ApiError> {
    let Some(asked) = asked.filter(|a| !a.trim().is_empty()) else { return Ok(granted.to_owned()) };
    let mut out: Vec<&str> = Vec::new();
    for scope in asked.split_whitespace() {
        if !granted.split_whitespace().any(|g| covers(g, scope)) {
            return Err(oauth_error("scope", "invalid_scope", format!("{scope} is not granted to this client")));
        }
        if !out.contains(&scope) {
            out.push(scope);
        }
    }
    Ok(out.join(" "))
}

/// A 400 in the upstream's error shape whose entry carries the OAuth error code (RFC 6749
/// §5.2), e.g. `invalid_scope`.
fn oauth_error(path: &str, code: &'static str, message: String) -> ApiError {
    ApiError::BadRequest {
        message: format!("{path}: {message} ({code})"),
        errors: vec![FieldError::new(path, code, message)],
    }
}

/// What the endpoint needs: the clients, the clock and the signer (none when the stack takes
/// its tokens from an outside identity provider: then the endpoint says so).
pub struct Issuer {
    pub store: Arc<dyn Store>,
    pub clock: Arc<dyn Clock>,
    /// The key of clients hashed before the unkeyed hash ([`crate::app::clients`]).
    pub legacy_key: LegacyKey,
    pub signer: Option<Arc<dyn TokenSigner>>,
}

/// The request body, JSON or form: the grant type, and the credentials unless sent as Basic.
#[derive(Debug, Default, Deserialize, utoipa::ToSchema)]
pub(crate) struct TokenRequest {
    /// Must be `client_credentials`.
    #[schema(example = "client_credentials", required = true, value_type = String)]
    grant_type: Option<String>,
    client_id: Option<String>,
    client_secret: Option<String>,
    /// Space-separated scopes the token is to carry, each granted to the client (RFC 6749
    /// §3.3); all the client's scopes when absent.
    #[schema(example = "read:shopping")]
    scope: Option<String>,
    /// Accepted for upstream clients, which send the API's URL; tokens carry this stack's own
    /// audience.
    #[allow(dead_code)]
    audience: Option<String>,
}

#[derive(Serialize, utoipa::ToSchema)]
pub(crate) struct TokenResponse {
    access_token: String,
    token_type: &'static str,
    expires_in: i64,
}

/// The token endpoint's path, as upstream has it.
pub const PATH: &str = "/v1/accounts/{aid}/auth/token";

pub fn router(issuer: Arc<Issuer>) -> Router {
    Router::new().route(PATH, post(issue)).with_state(issuer)
}

/// `client_id:client_secret` from an `Authorization: Basic` header (each part form-decoded,
/// as RFC 6749 §2.3.1 asks).
fn basic(headers: &HeaderMap) -> Option<(String, String)> {
    let value = headers.get(axum::http::header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, encoded) = value.split_once(' ')?;
    if !scheme.eq_ignore_ascii_case("basic") {
        return None;
    }
    let raw = base64::engine::general_purpose::STANDARD.decode(encoded.trim()).ok()?;
    let text = String::from_utf8(raw).ok()?;
    let (id, secret) = text.split_once(':')?;
    let decode = |s: &str| form_urlencoded::parse(format!("v={s}").as_bytes()).next().map(|(_, v)| v.into_owned());
    Some((decode(id)?, decode(secret)?))
}

fn parse_body(headers: &HeaderMap, body: &[u8]) -> Result<TokenRequest, ApiError> {
    let form = headers
        .get(axum::http::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/x-www-form-urlencoded"));
    if body.iter().all(u8::is_ascii_whitespace) {
        return Ok(TokenRequest::default());
    }
    // `curl -d '{…}'` labels JSON as a form; a form never starts with `{`, so read it as JSON.
    let json_text = body.iter().find(|b| !b.is_ascii_whitespace()) == Some(&b'{');
    if form && !json_text {
        let mut r = TokenRequest::default();
        for (k, v) in form_urlencoded::parse(body) {
            match k.as_ref() {
                "grant_type" => r.grant_type = Some(v.into_owned()),
                "client_id" => r.client_id = Some(v.into_owned()),
                "client_secret" => r.client_secret = Some(v.into_owned()),
                "scope" => r.scope = Some(v.into_owned()),
                "audience" => r.audience = Some(v.into_owned()),
                _ => {}
            }
        }
        return Ok(r);
    }
    serde_json::from_slice(body).map_err(|e| ApiError::bad("body", format!("must be a JSON object: {e}")))
}

fn refused() -> ApiError {
    // One answer for every wrong part: no hint which one it was.
    ApiError::Unauthorized("invalid client credentials".into())
}

/// A presented client id as the log may show it: ids are `cl_` and hex; anything else (a
/// secret pasted into the wrong field, say) is not repeated.
fn loggable(client_id: &str) -> &str {
    let plausible = client_id.len() <= 40
        && client_id.strip_prefix("cl_").is_some_and(|hex| hex.bytes().all(|b| b.is_ascii_hexdigit()));
    if plausible {
        client_id
    } else {
        "(not a client id)"
    }
}

/// The issuance log's line for a refusal (an issued token's line is `issue`'s last).
fn refusal(aid: &str, client_id: &str, reason: &str, kid: &str) {
    tracing::info!(target: "issuer", outcome = "refused", reason, client_id = loggable(client_id), account = aid, kid, "token");
}

#[utoipa::path(
    post,
    path = "/v1/accounts/{aid}/auth/token",
    tag = "auth",
    operation_id = "get_token",
    summary = "Get an access token for client credentials",
    description = "The client id and secret go in HTTP Basic (`client_id:client_secret`) or in the body, \
                   not both (a `client_secret` in the body beside Basic credentials is a 400 `invalid_request`). \
                   The body is JSON; an `application/x-www-form-urlencoded` form with the same fields \
                   is accepted too (RFC 6749 clients send one), but only JSON is documented: client \
                   generators cannot tell two request types of one operation apart. `scope` narrows the \
                   token to the scopes named (a scope the client lacks is a 400 `invalid_scope`). Wrong \
                   credentials of any kind get the same 401.",
    params(crate::api::params::Aid),
    request_body(
        content = TokenRequest,
        content_type = "application/json",
        example = json!({"grant_type": "client_credentials", "client_id": "abc", "client_secret": "s3cret"})
    ),
    responses((status = 200, description = "A bearer token", body = TokenResponse)),
    security((), ("client" = []))
)]
pub(crate) async fn issue(
    State(issuer): State<Arc<Issuer>>,
    Path(aid): Path<String>,
    headers: HeaderMap,
    // The edge's body: its size limit and a stalled body's 408 in the upstream error shape.
    crate::edge::http::Body(body): crate::edge::http::Body,
) -> Result<Response, ApiError> {
    let kid = issuer.signer.as_ref().map_or("", |s| s.kid());
    let req = parse_body(&headers, &body)?;
    match req.grant_type.as_deref() {
        Some("client_credentials") => {}
        Some(_) => return Err(ApiError::bad("grant_type", "must be client_credentials")),
        None => return Err(ApiError::bad("grant_type", "is required (client_credentials)")),
    }
    let (id, secret) = match (basic(&headers), req.client_id, req.client_secret) {
        (Some(_), _, Some(_)) => {
            refusal(&aid, "", "two authentication methods", kid);
            return Err(oauth_error(
                "client_secret",
                "invalid_request",
                "send the credentials as HTTP Basic or in the body, not both".into(),
            ));
        }
        (Some((id, _)), Some(body_id), None) if body_id != id => {
            refusal(&aid, &id, "two client ids", kid);
            return Err(oauth_error(
                "client_id",
                "invalid_request",
                "is not the client id of the Basic credentials".into(),
            ));
        }
        (Some(creds), _, None) => creds,
        (None, Some(id), Some(secret)) => (id, secret),
        (None, id, _) => {
            refusal(&aid, id.as_deref().unwrap_or(""), "no credentials", kid);
            return Err(refused());
        }
    };
    let Some(signer) = issuer.signer.as_ref() else {
        return Err(ApiError::NotFound(
            "the token endpoint (this API takes its tokens from its identity provider, JwtIssuer)".into(),
        ));
    };
    let clients = Clients { store: issuer.store.as_ref(), clock: issuer.clock.as_ref(), legacy: &issuer.legacy_key };
    let Some(rec) = clients.verify(&aid, &id, &secret).await? else {
        refusal(&aid, &id, "credentials", kid);
        return Err(refused());
    };
    let scope = narrowed(&rec.scopes, req.scope.as_deref()).inspect_err(|_| refusal(&aid, &id, "scope", kid))?;
    let now = issuer.clock.epoch();
    let claims = Claims { aid: rec.account_id, scope, sub: rec.client_id, exp: now.saturating_add(TOKEN_SECONDS) };
    let access_token = signer.token(&claims, now).await.map_err(|e| match e {
        SignError::Key(e) => ApiError::from(e),
        e @ SignError::Encode(_) => ApiError::internal(e),
    })?;
    tracing::info!(target: "issuer", outcome = "issued", client_id = loggable(&id), account = aid, kid, scope = claims.scope, "token");
    let mut res = Json(TokenResponse { access_token, token_type: "Bearer", expires_in: TOKEN_SECONDS }).into_response();
    res.headers_mut().insert(axum::http::header::CACHE_CONTROL, axum::http::HeaderValue::from_static("no-store"));
    Ok(res)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_token_carries_the_scopes_asked_for_when_the_client_holds_them() {
        let granted = "admin:shopping read:hooks";
        assert_eq!(narrowed(granted, None).ok().as_deref(), Some(granted));
        assert_eq!(narrowed(granted, Some(" ")).ok().as_deref(), Some(granted), "a blank scope asks for nothing less");
        assert_eq!(narrowed(granted, Some("read:shopping")).ok().as_deref(), Some("read:shopping"));
        assert_eq!(
            narrowed(granted, Some("write:shopping:/orders/ANY/events read:hooks read:hooks")).ok().as_deref(),
            Some("write:shopping:/orders/ANY/events read:hooks")
        );
        assert_eq!(
            narrowed("read:shopping", Some("read:shopping:/orders/ANY/events")).ok().as_deref(),
            Some("read:shopping:/orders/ANY/events")
        );
    }

    #[test]
    fn a_scope_not_granted_is_invalid_scope() {
        for (granted, asked) in [
            ("read:shopping", "write:shopping"),
            ("read:shopping", "admin:shopping"),
            ("admin:shopping", "admin:hooks"),
            ("admin:shopping", "read:shoppingx"),
            ("read:shopping:/orders/ANY/events", "read:shopping"),
            ("read:shopping", "anything"),
        ] {
            let Err(ApiError::BadRequest { errors, .. }) = narrowed(granted, Some(asked)) else {
                panic!("{granted} must not cover {asked}")
            };
            assert_eq!((errors[0].path.as_str(), errors[0].code), ("scope", "invalid_scope"), "{granted} / {asked}");
        }
    }

    #[test]
    fn only_client_ids_reach_the_log() {
        assert_eq!(loggable("cl_0123456789abcdef01234567"), "cl_0123456789abcdef01234567");
        assert_eq!(loggable(&"f".repeat(64)), "(not a client id)");
        assert_eq!(loggable("cl_not-hex"), "(not a client id)");
    }
}
