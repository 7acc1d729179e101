//! The stack's own issuer, as API Gateway's JWT authorizer reads it: the OpenID discovery
//! document (`/.well-known/openid-configuration`) and the signing keys as a JWKS
//! (`/.well-known/jwks.json`), served publicly by the keys function's URL, which is the issuer.
//!
//! The issuer is the URL the request came in on (`https://{host}/`): the function cannot be
//! told its own URL, which is made after it (a cycle). The keys are the signing key and,
//! during a rotation, the standby one: the next key, published before it signs (API Gateway
//! may not refetch the keys for a `kid` it has not seen while its cache is fresh), or the
//! previous one, until the last token it signed has expired. Public keys come from KMS once
//! per process; each is RSA (`kty: RSA`, `alg: RS256`), the only kind the HTTP API's
//! authorizer verifies.

use super::signing::b64url;
use crate::edge::error::ApiError;
use axum::extract::State;
use axum::http::{header, HeaderMap, HeaderValue, Uri};
use axum::response::{IntoResponse, Response};
use axum::{Json, Router};
use infra::kms::KmsKeys;
use serde_json::{json, Value};
use std::sync::Arc;

/// What the keys function publishes.
pub struct Published {
    pub kms: Arc<KmsKeys>,
    /// KMS key ids, each its JWK's `kid`: the signing key first, then any standby one.
    pub key_ids: Vec<String>,
    jwks: tokio::sync::OnceCell<Value>,
}

impl Published {
    pub fn new(kms: Arc<KmsKeys>, key_ids: Vec<String>) -> Self {
        Self { kms, key_ids, jwks: tokio::sync::OnceCell::new() }
    }

    async fn jwks(&self) -> Result<&Value, ApiError> {
        self.jwks
            .get_or_try_init(|| async {
                let mut keys = Vec::with_capacity(self.key_ids.len());
                for kid in &self.key_ids {
                    let public = self.kms.public_rsa(kid).await?;
                    keys.push(json!({
                        "kty": "RSA", "use": "sig", "alg": "RS256", "kid": kid,
                        "n": b64url(&public.n), "e": b64url(&public.e),
                    }));
                }
                Ok::<_, ApiError>(json!({ "keys": keys }))
            })
            .await
    }
}

/// Paths as the authorizer asks for them: an issuer with a trailing slash may be joined to
/// `/.well-known/…` with a double slash.
pub const DISCOVERY: &str = ".well-known/openid-configuration";
pub const JWKS: &str = ".well-known/jwks.json";

pub fn router(published: Arc<Published>) -> Router {
    Router::new().fallback(serve).with_state(published)
}

/// `https://{host}/`, the URL this request was made to.
fn issuer(headers: &HeaderMap, uri: &Uri) -> Option<String> {
    let host = headers.get(header::HOST).and_then(|h| h.to_str().ok()).or_else(|| uri.host())?;
    let valid = !host.is_empty() && host.bytes().all(|b| b.is_ascii_alphanumeric() || b"-.:".contains(&b));
    valid.then(|| format!("https://{host}/"))
}

async fn serve(
    State(published): State<Arc<Published>>,
    method: axum::http::Method,
    headers: HeaderMap,
    uri: Uri,
) -> Result<Response, ApiError> {
    if method != axum::http::Method::GET && method != axum::http::Method::HEAD {
        return Err(ApiError::MethodNotAllowed);
    }
    let body = match uri.path().trim_start_matches('/') {
        DISCOVERY => {
            let iss = issuer(&headers, &uri).ok_or_else(|| ApiError::bad("Host", "must name this issuer's host"))?;
            // What the issuer has and nothing more: the client credentials grant at each
            // account's token endpoint (on the API, so not named here), RS256 access tokens,
            // no ID tokens and no authorization endpoint, hence no response type.
            json!({
                "issuer": iss,
                "jwks_uri": format!("{iss}{JWKS}"),
                "grant_types_supported": ["client_credentials"],
                "token_endpoint_auth_methods_supported": ["client_secret_basic", "client_secret_post"],
                "response_types_supported": [],
                "scopes_supported": crate::edge::auth::SCOPES,
                "claims_supported": ["iss", "aud", "sub", "aid", "scope", "iat", "exp"],
            })
        }
        JWKS => published.jwks().await?.clone(),
        _ => return Err(ApiError::NotFound(uri.path().to_owned())),
    };
    let mut res = Json(body).into_response();
    // Verifiers may cache it this long; API Gateway keeps its own cache (up to two hours),
    // which README's rotation steps wait out.
    res.headers_mut().insert(header::CACHE_CONTROL, HeaderValue::from_static("public, max-age=300"));
    Ok(res)
}
