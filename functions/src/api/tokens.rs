//! The token endpoint of `shopping-local`, compatible with the upstream auth API's client
//! credentials grant: `POST /v1/accounts/{aid}/auth/token` with the client's id and secret
//! (HTTP Basic, a JSON body or a form body) answers a bearer token the server accepts, so a
//! client written for the upstream API authenticates unchanged. Clients are made with
//! `shopping-local client create`; their secrets are stored only as a keyed SHA-256 (HMAC with
//! the data dir's signing secret), compared in constant time.

use crate::edge::auth::{sign, Claims};
use crate::edge::error::ApiError;
use axum::extract::{Path, State};
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::{Json, Router};
use base64::Engine as _;
use domain::table::{Item, Key, WriteOp};
use hmac::{Hmac, KeyInit, Mac};
use infra::{Clock, Store, StoreError};
use serde::{Deserialize, Serialize};
use std::sync::Arc;

/// How long an issued token lives.
pub const TOKEN_SECONDS: i64 = 3600;

/// A client as stored: never its secret, only the secret's keyed hash.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ClientRecord {
    pub client_id: String,
    pub account_id: String,
    pub scopes: String,
    /// Hex HMAC-SHA256 of the secret, keyed by the signing secret.
    pub secret_hash: String,
    pub created_at: String,
}

fn client_key(client_id: &str) -> Key {
    Key::new(format!("CLIENT#{client_id}"), "CLIENT")
}

fn mac(key: &[u8]) -> Option<Hmac<sha2::Sha256>> {
    Hmac::<sha2::Sha256>::new_from_slice(key).ok()
}

fn hash(key: &[u8], secret: &str) -> String {
    let Some(mut m) = mac(key) else { return String::new() };
    m.update(secret.as_bytes());
    m.finalize().into_bytes().iter().map(|b| format!("{b:02x}")).collect()
}

fn random_hex(bytes: usize) -> Result<String, StoreError> {
    let mut b = vec![0u8; bytes];
    getrandom::fill(&mut b).map_err(|e| StoreError::Unavailable(e.to_string().into()))?;
    Ok(b.iter().map(|x| format!("{x:02x}")).collect())
}

/// Creates a client of `account` with `scopes`; answers its id and its secret (shown once).
pub async fn create_client(
    store: &dyn Store,
    clock: &dyn Clock,
    key: &[u8],
    account: &str,
    scopes: &str,
) -> Result<(String, String), StoreError> {
    let client_id = format!("cl_{}", random_hex(12)?);
    let secret = random_hex(32)?;
    let rec = ClientRecord {
        client_id: client_id.clone(),
        account_id: account.to_owned(),
        scopes: scopes.to_owned(),
        secret_hash: hash(key, &secret),
        created_at: domain::ids::timestamp(clock.now()),
    };
    let doc = serde_json::to_string(&rec).map_err(|e| StoreError::Corrupt(e.into()))?;
    let cond = Some(domain::table::Condition::NotExists);
    store.write(vec![WriteOp::Put { item: Item::new(client_key(&client_id), 0, doc), cond }]).await?;
    Ok((client_id, secret))
}

/// What the endpoint needs: the store, the clock and the signing secret.
pub struct Issuer {
    pub store: Arc<dyn Store>,
    pub clock: Arc<dyn Clock>,
    pub key: Vec<u8>,
}

/// The request body, JSON or form: the grant type, and the credentials unless sent as Basic.
#[derive(Debug, Default, Deserialize, utoipa::ToSchema)]
pub(crate) struct TokenRequest {
    /// Must be `client_credentials`.
    #[schema(example = "client_credentials", required = true, value_type = String)]
    grant_type: Option<String>,
    client_id: Option<String>,
    client_secret: Option<String>,
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
    let item = issuer.store.get(&client_key(&id)).await?;
    let rec: Option<ClientRecord> = item.and_then(|i| serde_json::from_str(&i.doc).ok());
    // The hash is checked even for an unknown client, so timing tells nothing either.
    let stored = rec.as_ref().map_or_else(|| "0".repeat(64), |r| r.secret_hash.clone());
    let expected: Vec<u8> = (0..stored.len() / 2)
        .filter_map(|i| stored.get(2 * i..2 * i + 2).and_then(|h| u8::from_str_radix(h, 16).ok()))
        .collect();
    let matches = mac(&issuer.key).is_some_and(|mut m| {
        m.update(secret.as_bytes());
        m.verify_slice(&expected).is_ok()
    });
    let Some(rec) = rec.filter(|r| matches && r.account_id == aid) else { return Err(refused()) };
    let claims = Claims {
        aid: rec.account_id,
        scope: rec.scopes,
        sub: rec.client_id,
        exp: issuer.clock.epoch().saturating_add(TOKEN_SECONDS),
    };
    let access_token = sign(&claims, &issuer.key).map_err(ApiError::internal)?;
    let mut res = Json(TokenResponse { access_token, token_type: "Bearer", expires_in: TOKEN_SECONDS }).into_response();
    res.headers_mut().insert(axum::http::header::CACHE_CONTROL, axum::http::HeaderValue::from_static("no-store"));
    Ok(res)
}
