//! Who is calling: a JWT bearer token with claims `aid`, `scope`, `sub`, `exp`.
//!
//! Locally the server verifies the HS256 signature itself (the algorithm is fixed here; the
//! token's own `alg` header is never trusted). On AWS the HTTP API's JWT authorizer has
//! already checked signature, issuer and audience, so the claims are read from the request
//! context; expiry, account and scope are still checked here in both cases.
//!
//! jsonwebtoken is built without a crypto backend; its process-wide provider is [`HS256_ONLY`],
//! HMAC-SHA256 on the `hmac` and `sha2` crates: every other algorithm is refused.

use super::error::ApiError;
use axum::extract::{FromRef, FromRequestParts};
use axum::http::request::Parts;
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use serde::{Deserialize, Serialize};

pub enum Auth {
    /// Verify HS256 signatures with this secret; a token verified once is remembered by its
    /// bytes (its expiry is still checked on every request).
    Verify(DecodingKey, VerifiedTokens),
    /// Trust the claims API Gateway's JWT authorizer put in the request context.
    ApiGateway,
}

impl Auth {
    pub fn hs256(secret: &[u8]) -> Self {
        Self::Verify(DecodingKey::from_secret(secret), VerifiedTokens::default())
    }
}

/// Tokens whose signature this server verified, by their exact text: a client sends the same
/// token on every request until it expires, and verifying it (two base64 decodes, two JSON
/// parses and an HMAC) was a few percent of a read's CPU (BENCHMARKS.md, issue 40). Only
/// verified tokens enter; at [`VerifiedTokens::MAX`] the set starts over, so it stays small.
#[derive(Default)]
pub struct VerifiedTokens(std::sync::Mutex<std::collections::HashMap<String, Claims>>);

impl VerifiedTokens {
    const MAX: usize = 1024;

    fn get(&self, token: &str) -> Option<Claims> {
        self.0.lock().ok()?.get(token).cloned()
    }

    fn insert(&self, token: &str, claims: &Claims) {
        if let Ok(mut seen) = self.0.lock() {
            if seen.len() >= Self::MAX {
                seen.clear();
            }
            seen.insert(token.to_owned(), claims.clone());
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Claims {
    pub aid: String,
    #[serde(default)]
    pub scope: String,
    #[serde(default)]
    pub sub: String,
    pub exp: i64,
}

/// Signs a token the local server accepts.
pub fn sign(claims: &Claims, secret: &[u8]) -> Result<String, jsonwebtoken::errors::Error> {
    install_provider();
    jsonwebtoken::encode(&Header::new(Algorithm::HS256), claims, &EncodingKey::from_secret(secret))
}

/// jsonwebtoken's crypto: HS256 and nothing else.
pub static HS256_ONLY: jsonwebtoken::crypto::CryptoProvider = jsonwebtoken::crypto::CryptoProvider {
    signer_factory: hs256_signer,
    verifier_factory: hs256_verifier,
    jwk_utils: jsonwebtoken::crypto::JwkUtils::new_unimplemented(),
};

fn install_provider() {
    // Installed once per process; a second call finds it installed, which is fine.
    let _ = HS256_ONLY.install_default();
}

type HmacSha256 = hmac::Hmac<sha2::Sha256>;

/// An HMAC-SHA256 key, as jsonwebtoken's signer and verifier.
struct Hs256(HmacSha256);

impl Hs256 {
    /// The key for `alg`, which must be HS256.
    fn new(alg: &Algorithm, secret: Result<&[u8], jsonwebtoken::errors::Error>) -> jsonwebtoken::errors::Result<Self> {
        use hmac::KeyInit;
        if *alg != Algorithm::HS256 {
            return Err(jsonwebtoken::errors::ErrorKind::InvalidAlgorithm.into());
        }
        HmacSha256::new_from_slice(secret?)
            .map(Self)
            .map_err(|_| jsonwebtoken::errors::ErrorKind::InvalidKeyFormat.into())
    }
}

fn hs256_signer(
    alg: &Algorithm,
    key: &EncodingKey,
) -> jsonwebtoken::errors::Result<Box<dyn jsonwebtoken::crypto::JwtSigner>> {
    Ok(Box::new(Hs256::new(alg, key.try_get_hmac_secret())?))
}

fn hs256_verifier(
    alg: &Algorithm,
    key: &DecodingKey,
) -> jsonwebtoken::errors::Result<Box<dyn jsonwebtoken::crypto::JwtVerifier>> {
    Ok(Box::new(Hs256::new(alg, key.try_get_hmac_secret())?))
}

impl signature::Signer<Vec<u8>> for Hs256 {
    fn try_sign(&self, msg: &[u8]) -> Result<Vec<u8>, signature::Error> {
        use hmac::Mac;
        let mut mac = self.0.clone();
        mac.update(msg);
        Ok(mac.finalize().into_bytes().to_vec())
    }
}

impl signature::Verifier<Vec<u8>> for Hs256 {
    fn verify(&self, msg: &[u8], tag: &Vec<u8>) -> Result<(), signature::Error> {
        use hmac::Mac;
        let mut mac = self.0.clone();
        mac.update(msg);
        // Constant-time comparison.
        mac.verify_slice(tag).map_err(|_| signature::Error::new())
    }
}

impl jsonwebtoken::crypto::JwtSigner for Hs256 {
    fn algorithm(&self) -> Algorithm {
        Algorithm::HS256
    }
}

impl jsonwebtoken::crypto::JwtVerifier for Hs256 {
    fn algorithm(&self) -> Algorithm {
        Algorithm::HS256
    }
}

/// Every scope a token may carry: the union of what each [`Access`] accepts (the issuer's
/// discovery document lists them).
pub const SCOPES: &[&str] = &[
    "admin:shopping",
    "read:shopping",
    "write:shopping",
    "read:shopping:/orders/ANY/events",
    "write:shopping:/orders/ANY/events",
    "admin:hooks",
    "read:hooks",
    "write:hooks",
];

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    Read,
    Write,
    /// `GET /orders/{id}/events`: also `read:shopping:/orders/ANY/events`.
    EventsRead,
    /// `POST /orders/{id}/events`: also `write:shopping:/orders/ANY/events`.
    EventsWrite,
}

impl Access {
    /// The scopes any one of which grants this access to the Shopping API.
    pub fn shopping_scopes(self) -> &'static [&'static str] {
        match self {
            Self::Read => &["admin:shopping", "read:shopping"],
            Self::Write => &["admin:shopping", "write:shopping"],
            Self::EventsRead => &["admin:shopping", "read:shopping", "read:shopping:/orders/ANY/events"],
            Self::EventsWrite => &["admin:shopping", "write:shopping", "write:shopping:/orders/ANY/events"],
        }
    }

    /// The scopes any one of which grants this access to the Hooks API.
    pub fn hooks_scopes(self) -> &'static [&'static str] {
        match self {
            Self::Read | Self::EventsRead => &["admin:hooks", "read:hooks"],
            Self::Write | Self::EventsWrite => &["admin:hooks", "write:hooks"],
        }
    }
}

/// An authenticated caller (signature and expiry checked; account and scope not yet).
#[derive(Debug, Clone)]
pub struct Caller {
    pub aid: String,
    pub scopes: Vec<String>,
    pub sub: String,
}

impl Caller {
    /// Checks the account in the path against the token and the scope against the access.
    pub fn authorize(&self, aid: &str, access: Access) -> Result<(), ApiError> {
        self.allow(aid, access.shopping_scopes())
    }

    /// [`Self::authorize`] for the Hooks API, whose scopes are its own (`admin:shopping`
    /// alone does not manage hooks).
    pub fn authorize_hooks(&self, aid: &str, access: Access) -> Result<(), ApiError> {
        self.allow(aid, access.hooks_scopes())
    }

    fn allow(&self, aid: &str, wanted: &[&str]) -> Result<(), ApiError> {
        if !domain::validate::is_account_id(aid) {
            return Err(ApiError::bad("aid", "must match ^[PT]\\d{8}$"));
        }
        if self.aid != aid {
            return Err(ApiError::Forbidden("the token does not belong to this account".into()));
        }
        if self.scopes.iter().any(|s| wanted.contains(&s.as_str())) {
            Ok(())
        } else {
            Err(ApiError::Forbidden(format!("the token lacks a scope for this endpoint ({})", wanted.join(" or "))))
        }
    }
}

fn from_claims(c: Claims, now: i64) -> Result<Caller, ApiError> {
    // No leeway: a token is dead the second `exp` passes.
    if c.exp <= now {
        return Err(ApiError::Unauthorized("the token has expired".into()));
    }
    Ok(Caller { aid: c.aid, scopes: c.scope.split_whitespace().map(str::to_owned).collect(), sub: c.sub })
}

fn api_gateway_claims(parts: &Parts) -> Option<Claims> {
    use lambda_http::request::RequestContext;
    let ctx = parts.extensions.get::<RequestContext>()?;
    let RequestContext::ApiGatewayV2(ctx) = ctx else { return None };
    let claims = &ctx.authorizer.as_ref()?.jwt.as_ref()?.claims;
    Some(Claims {
        aid: claims.get("aid")?.clone(),
        scope: claims.get("scope").cloned().unwrap_or_default(),
        sub: claims.get("sub").cloned().unwrap_or_default(),
        exp: claims.get("exp")?.parse().ok()?,
    })
}

/// A caller an earlier layer of this request verified (kept in the request's extensions,
/// which no client can set).
#[derive(Clone)]
pub struct Verified(pub Caller);

/// What verifying a caller needs: how, and the clock its expiry is checked against.
pub struct Verifier {
    pub auth: std::sync::Arc<Auth>,
    pub clock: std::sync::Arc<dyn infra::Clock>,
}

impl<S: Send + Sync> FromRequestParts<S> for Caller
where
    Verifier: FromRef<S>,
{
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        // Verified once per request: the metering middleware leaves the caller it verified.
        if let Some(Verified(caller)) = parts.extensions.get::<Verified>() {
            return Ok(caller.clone());
        }
        let Verifier { auth, clock } = Verifier::from_ref(state);
        let now = clock.epoch();
        match auth.as_ref() {
            Auth::ApiGateway => {
                let claims = api_gateway_claims(parts)
                    .ok_or_else(|| ApiError::Unauthorized("no verified token claims in the request".into()))?;
                from_claims(claims, now)
            }
            Auth::Verify(key, seen) => {
                let header = parts
                    .headers
                    .get(axum::http::header::AUTHORIZATION)
                    .and_then(|v| v.to_str().ok())
                    .ok_or_else(|| ApiError::Unauthorized("missing Authorization: Bearer token".into()))?;
                let token =
                    header.strip_prefix("Bearer ").or_else(|| header.strip_prefix("bearer ")).ok_or_else(|| {
                        ApiError::Unauthorized("the Authorization header must be `Bearer <token>`".into())
                    })?;
                let token = token.trim();
                if let Some(claims) = seen.get(token) {
                    return from_claims(claims, now);
                }
                install_provider();
                let mut v = Validation::new(Algorithm::HS256);
                // Expiry is checked below against the server's clock, with no leeway.
                v.validate_exp = false;
                v.required_spec_claims = ["exp".to_owned()].into();
                let data = jsonwebtoken::decode::<Claims>(token, key, &v)
                    .map_err(|_| ApiError::Unauthorized("the token is invalid".into()))?;
                seen.insert(token, &data.claims);
                from_claims(data.claims, now)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const KEY: &[u8] = b"a-test-secret-of-enough-length!!";

    #[test]
    fn the_scopes_are_those_some_access_accepts() {
        let accesses = [Access::Read, Access::Write, Access::EventsRead, Access::EventsWrite];
        let mut accepted: Vec<&str> =
            accesses.iter().flat_map(|a| a.shopping_scopes().iter().chain(a.hooks_scopes())).copied().collect();
        accepted.sort_unstable();
        accepted.dedup();
        let mut listed = SCOPES.to_vec();
        listed.sort_unstable();
        assert_eq!(listed, accepted);
    }

    #[derive(Clone)]
    struct State(std::sync::Arc<Auth>, std::sync::Arc<infra::clock::ManualClock>);

    impl FromRef<State> for Verifier {
        fn from_ref(s: &State) -> Self {
            Self { auth: s.0.clone(), clock: s.1.clone() }
        }
    }

    async fn caller(state: &State, token: &str) -> Result<Caller, ApiError> {
        let req = axum::http::Request::builder().header("authorization", format!("Bearer {token}")).body(());
        let (mut parts, ()) = req.expect("request").into_parts();
        Caller::from_request_parts(&mut parts, state).await
    }

    /// A remembered token still expires, and a forged one is never remembered.
    #[tokio::test]
    async fn a_remembered_token_is_still_checked_for_expiry() {
        let clock = std::sync::Arc::new(infra::clock::ManualClock::at(1_000));
        let state = State(std::sync::Arc::new(Auth::hs256(KEY)), clock.clone());
        let claims = Claims { aid: "T12345678".into(), scope: "admin:shopping".into(), sub: "c".into(), exp: 1_060 };
        let token = sign(&claims, KEY).expect("signed");
        assert_eq!(caller(&state, &token).await.expect("valid").aid, "T12345678");
        assert_eq!(caller(&state, &token).await.expect("remembered").aid, "T12345678");
        clock.advance(60);
        assert!(matches!(caller(&state, &token).await, Err(ApiError::Unauthorized(_))), "expired though remembered");
        let forged = sign(&claims, b"another-secret-of-enough-length!").expect("signed");
        for _ in 0..2 {
            clock.advance(-60);
            assert!(matches!(caller(&state, &forged).await, Err(ApiError::Unauthorized(_))));
        }
    }

    fn decode(token: &str, key: &[u8]) -> jsonwebtoken::errors::Result<Claims> {
        install_provider();
        let mut v = Validation::new(Algorithm::HS256);
        v.validate_exp = false;
        jsonwebtoken::decode::<Claims>(token, &DecodingKey::from_secret(key), &v).map(|d| d.claims)
    }

    #[test]
    fn the_own_provider_signs_and_verifies_hs256() {
        let claims = Claims { aid: "T12345678".into(), scope: "admin:shopping".into(), sub: "c".into(), exp: 1 };
        let token = sign(&claims, KEY).expect("signed");
        assert_eq!(decode(&token, KEY).expect("verified").aid, "T12345678");
        // Another key, or a changed signature, is refused.
        assert!(decode(&token, b"another-secret-of-enough-length!").is_err());
        let mut forged = token.clone();
        forged.pop();
        forged.push(if token.ends_with('A') { 'B' } else { 'A' });
        assert!(decode(&forged, KEY).is_err());
    }

    #[test]
    fn every_other_algorithm_is_refused() {
        for alg in [Algorithm::HS384, Algorithm::HS512, Algorithm::RS256, Algorithm::ES256, Algorithm::EdDSA] {
            assert!(hs256_verifier(&alg, &DecodingKey::from_secret(KEY)).is_err(), "{alg:?}");
            assert!(hs256_signer(&alg, &EncodingKey::from_secret(KEY)).is_err(), "{alg:?}");
        }
    }
}
