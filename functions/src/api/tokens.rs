//! The token endpoint, compatible with the upstream auth API's client credentials grant:
//! `POST /v1/accounts/{aid}/auth/token` with the client's id and secret (HTTP Basic, a JSON
//! body or a form body) answers a bearer token, so a client written for the upstream API
//! authenticates unchanged. One implementation for both hosts; only the signer differs:
//! `shopping-local` signs HS256 with its data dir's secret (and verifies tokens itself), the
//! stack's token function has KMS sign ES256 with the stack's own key (API Gateway's JWT
//! authorizer verifies them against the keys [`super::keys`] publishes). Clients and their
//! secrets are [`crate::app::clients`]'.

use crate::app::clients::{Clients, HashKey};
use crate::edge::auth::{sign, Claims};
use crate::edge::error::ApiError;
use axum::extract::{Path, State};
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::{Json, Router};
use base64::Engine as _;
use infra::kms::KmsKeys;
use infra::{Clock, Store};
use serde::{Deserialize, Serialize};
use std::sync::Arc;

/// How long an issued token lives.
pub const TOKEN_SECONDS: i64 = 3600;

/// Makes a signed token of the claims.
#[async_trait::async_trait]
pub trait TokenSigner: Send + Sync {
    async fn token(&self, claims: &Claims, now: i64) -> Result<String, ApiError>;
}

/// HS256 with a secret the verifier shares (`shopping-local`).
pub struct SharedSecret(pub Vec<u8>);

#[async_trait::async_trait]
impl TokenSigner for SharedSecret {
    async fn token(&self, claims: &Claims, _now: i64) -> Result<String, ApiError> {
        sign(claims, &self.0).map_err(ApiError::internal)
    }
}

/// ES256 by a KMS key: the private key never leaves KMS, and the API functions may not use
/// it (only the token function's role may `kms:Sign`).
pub struct KmsSigner {
    pub keys: Arc<KmsKeys>,
    /// The KMS key id; also the token's `kid`, under which [`super::keys`] publishes it.
    pub key_id: String,
    /// `iss`: exactly the issuer the HTTP API's authorizer is configured with.
    pub issuer: String,
    /// `aud`: one of the authorizer's audiences.
    pub audience: String,
}

/// RFC 7515's unpadded base64url.
pub fn b64url(bytes: &[u8]) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}

#[async_trait::async_trait]
impl TokenSigner for KmsSigner {
    async fn token(&self, claims: &Claims, now: i64) -> Result<String, ApiError> {
        let header = serde_json::json!({"alg": "ES256", "typ": "JWT", "kid": self.key_id});
        let payload = serde_json::json!({
            "iss": self.issuer,
            "aud": self.audience,
            "sub": claims.sub,
            "aid": claims.aid,
            "scope": claims.scope,
            "iat": now,
            "exp": claims.exp,
        });
        let input = format!("{}.{}", b64url(header.to_string().as_bytes()), b64url(payload.to_string().as_bytes()));
        let signature = self.keys.sign_es256(&self.key_id, input.as_bytes()).await?;
        Ok(format!("{input}.{}", b64url(&signature)))
    }
}

/// What the endpoint needs: the clients, the clock and the signer (none when the stack takes
/// its tokens from an outside identity provider: then the endpoint says so).
pub struct Issuer {
    pub store: Arc<dyn Store>,
    pub clock: Arc<dyn Clock>,
    pub hash_key: HashKey,
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

#[utoipa::path(
    post,
    path = "/v1/accounts/{aid}/auth/token",
    tag = "auth",
    operation_id = "get_token",
    summary = "Get an access token for client credentials",
    description = "The client id and secret go in HTTP Basic (`client_id:client_secret`) or in the body. \
                   The body is JSON; an `application/x-www-form-urlencoded` form with the same fields \
                   is accepted too (RFC 6749 clients send one), but only JSON is documented: client \
                   generators cannot tell two request types of one operation apart. Wrong \
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
    body: axum::body::Bytes,
) -> Result<Response, ApiError> {
    let req = parse_body(&headers, &body)?;
    match req.grant_type.as_deref() {
        Some("client_credentials") => {}
        Some(_) => return Err(ApiError::bad("grant_type", "must be client_credentials")),
        None => return Err(ApiError::bad("grant_type", "is required (client_credentials)")),
    }
    let (id, secret) = match (basic(&headers), req.client_id, req.client_secret) {
        (Some(creds), _, _) => creds,
        (None, Some(id), Some(secret)) => (id, secret),
        _ => return Err(refused()),
    };
    let Some(signer) = issuer.signer.as_ref() else {
        return Err(ApiError::NotFound(
            "the token endpoint (this API takes its tokens from its identity provider, JwtIssuer)".into(),
        ));
    };
    let clients = Clients { store: issuer.store.as_ref(), clock: issuer.clock.as_ref(), key: &issuer.hash_key };
    let Some(rec) = clients.verify(&aid, &id, &secret).await? else { return Err(refused()) };
    let now = issuer.clock.epoch();
    let claims =
        Claims { aid: rec.account_id, scope: rec.scopes, sub: rec.client_id, exp: now.saturating_add(TOKEN_SECONDS) };
    let access_token = signer.token(&claims, now).await?;
    let mut res = Json(TokenResponse { access_token, token_type: "Bearer", expires_in: TOKEN_SECONDS }).into_response();
    res.headers_mut().insert(axum::http::header::CACHE_CONTROL, axum::http::HeaderValue::from_static("no-store"));
    Ok(res)
}
