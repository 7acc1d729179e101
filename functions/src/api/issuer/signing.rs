//! How a token is signed: HS256 with a shared secret (`shopping-local`, which verifies its own
//! tokens) or RS256 by a KMS key (the stack: the private key never leaves KMS, and only the
//! token function's role may sign with it — the key policy says so, see the template).

use crate::edge::auth::{sign, Claims};
use base64::Engine as _;
use infra::kms::{KeyError, KmsKeys};
use sha2::Digest as _;
use std::sync::Arc;

#[derive(Debug, thiserror::Error)]
pub enum SignError {
    /// KMS is unavailable or throttling: a retry may succeed.
    #[error(transparent)]
    Key(#[from] KeyError),
    /// The token could not be made (a fault of ours).
    #[error("the token could not be encoded: {0}")]
    Encode(String),
}

/// Makes a signed token of the claims.
#[async_trait::async_trait]
pub trait TokenSigner: Send + Sync {
    /// The key id tokens carry (`kid`), for the issuance log.
    fn kid(&self) -> &str;
    async fn token(&self, claims: &Claims, now: i64) -> Result<String, SignError>;
}

/// HS256 with a secret the verifier shares (`shopping-local`).
pub struct SharedSecret(pub Vec<u8>);

#[async_trait::async_trait]
impl TokenSigner for SharedSecret {
    fn kid(&self) -> &str {
        "local"
    }

    async fn token(&self, claims: &Claims, _now: i64) -> Result<String, SignError> {
        sign(claims, &self.0).map_err(|e| SignError::Encode(e.to_string()))
    }
}

/// RS256 by a KMS key, with the claims API Gateway's authorizer checks.
pub struct KmsSigner {
    pub keys: Arc<KmsKeys>,
    pub settings: super::IssuerSettings,
}

/// RFC 7515's unpadded base64url.
pub fn b64url(bytes: &[u8]) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}

#[async_trait::async_trait]
impl TokenSigner for KmsSigner {
    fn kid(&self) -> &str {
        &self.settings.signing_key_id
    }

    async fn token(&self, claims: &Claims, now: i64) -> Result<String, SignError> {
        let s = &self.settings;
        let header = serde_json::json!({"alg": "RS256", "typ": "JWT", "kid": s.signing_key_id});
        let payload = serde_json::json!({
            "iss": s.issuer,
            "aud": s.audience,
            "sub": claims.sub,
            "aid": claims.aid,
            "scope": claims.scope,
            "iat": now,
            "exp": claims.exp,
        });
        let input = format!("{}.{}", b64url(header.to_string().as_bytes()), b64url(payload.to_string().as_bytes()));
        let digest: [u8; 32] = sha2::Sha256::digest(input.as_bytes()).into();
        let signature = self.keys.sign_rs256(&s.signing_key_id, &digest).await?;
        Ok(format!("{input}.{}", b64url(&signature)))
    }
}
