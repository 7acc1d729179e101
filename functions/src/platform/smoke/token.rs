//! What smoke makes of a token and of the issuer's keys, as API Gateway's HTTP API JWT
//! authorizer judges them: an RSA algorithm (RS256, RS384 or RS512; "Currently, only
//! RSA-based algorithms are supported"), a `kid` among the keys at the discovery document's
//! `jwks_uri`, an RSA key whose signature verifies, `iss` equal to the authorizer's issuer,
//! an `aud` among its audiences, `exp` in the future. Each failed condition is put into the
//! words an operator needs after a bare 401.

use base64::Engine as _;
use serde_json::{json, Value};

/// The algorithms the HTTP API's JWT authorizer verifies.
pub const GATEWAY_ALGORITHMS: [&str; 3] = ["RS256", "RS384", "RS512"];

/// A compact JWS, decoded (not verified).
pub struct Jwt {
    pub header: Value,
    pub claims: Value,
    signing_input: String,
    signature: Vec<u8>,
}

fn b64(part: &str) -> Result<Vec<u8>, String> {
    base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(part.trim_end_matches('='))
        .map_err(|e| format!("not base64url: {e}"))
}

fn b64url(bytes: &[u8]) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}

impl Jwt {
    pub fn parse(token: &str) -> Result<Self, String> {
        let mut parts = token.split('.');
        let (Some(h), Some(c), Some(s), None) = (parts.next(), parts.next(), parts.next(), parts.next()) else {
            return Err("not a JWS in compact form (three dot-separated parts)".into());
        };
        let json = |part: &str, what: &str| -> Result<Value, String> {
            serde_json::from_slice(&b64(part).map_err(|e| format!("its {what} is {e}"))?)
                .map_err(|e| format!("its {what} is not JSON: {e}"))
        };
        Ok(Self {
            header: json(h, "header")?,
            claims: json(c, "claims")?,
            signing_input: format!("{h}.{c}"),
            signature: b64(s).map_err(|e| format!("its signature is {e}"))?,
        })
    }

    fn text<'a>(v: &'a Value, key: &str) -> Option<&'a str> {
        v.get(key).and_then(Value::as_str)
    }

    pub fn alg(&self) -> &str {
        Self::text(&self.header, "alg").unwrap_or("(none)")
    }

    pub fn kid(&self) -> Option<&str> {
        Self::text(&self.header, "kid")
    }

    pub fn iss(&self) -> Option<&str> {
        Self::text(&self.claims, "iss")
    }

    /// `aud` as a list (a single audience may be a string).
    pub fn audiences(&self) -> Vec<String> {
        match self.claims.get("aud") {
            Some(Value::String(a)) => vec![a.clone()],
            Some(Value::Array(a)) => a.iter().filter_map(Value::as_str).map(str::to_owned).collect(),
            _ => Vec::new(),
        }
    }

    fn number(&self, key: &str) -> Option<i64> {
        self.claims.get(key).and_then(|v| v.as_i64().or_else(|| v.as_f64().map(|f| f as i64)))
    }

    /// `alg …, kid …`: what an operator compares with the keys.
    pub fn describe(&self) -> String {
        format!("alg {}, kid {}", self.alg(), self.kid().unwrap_or("(none)"))
    }

    /// The same token with its claims changed and its signature kept: what a forger who
    /// holds one token could send. A gateway that verifies signatures refuses it.
    pub fn forged(&self) -> String {
        let mut claims = self.claims.clone();
        if let Some(map) = claims.as_object_mut() {
            map.insert("scope".into(), json!("admin:shopping admin:hooks"));
            map.insert("exp".into(), json!(self.number("exp").unwrap_or(0).saturating_add(86_400)));
        }
        let head = self.signing_input.split('.').next().unwrap_or_default();
        format!("{head}.{}.{}", b64url(claims.to_string().as_bytes()), b64url(&self.signature))
    }
}

/// A token made up from nothing (no token could be had): RS256 with the given claims and a
/// signature of zeros, which no key verifies.
pub fn made_up(kid: &str, iss: &str, aud: &str, aid: &str) -> String {
    let header = json!({"alg": "RS256", "typ": "JWT", "kid": kid});
    let now = chrono::Utc::now().timestamp();
    let claims = json!({"iss": iss, "aud": aud, "sub": "smoke", "aid": aid, "scope": "admin:shopping", "iat": now, "exp": now + 600});
    format!("{}.{}.{}", b64url(header.to_string().as_bytes()), b64url(claims.to_string().as_bytes()), b64url(&[0; 256]))
}

/// The issuer's keys (a JWKS document).
pub struct Jwks {
    pub keys: Vec<Value>,
}

impl Jwks {
    pub fn parse(doc: &Value) -> Result<Self, String> {
        let keys = doc.get("keys").and_then(Value::as_array).ok_or("no \"keys\" array")?;
        Ok(Self { keys: keys.clone() })
    }

    pub fn find(&self, kid: &str) -> Option<&Value> {
        self.keys.iter().find(|k| k.get("kid").and_then(Value::as_str) == Some(kid))
    }

    /// `kty RSA kid …, kty EC kid …`.
    pub fn describe(&self) -> String {
        if self.keys.is_empty() {
            return "no keys".into();
        }
        let one = |k: &Value| {
            let field = |f: &str| k.get(f).and_then(Value::as_str).unwrap_or("(none)").to_owned();
            format!("kty {} kid {}", field("kty"), field("kid"))
        };
        self.keys.iter().map(one).collect::<Vec<_>>().join(", ")
    }
}

/// Whether the token's signature verifies with `jwk` (an RSA key) under the token's algorithm.
pub fn verify(jwt: &Jwt, jwk: &Value) -> Result<(), String> {
    use ring::signature::{RsaParameters, RSA_PKCS1_2048_8192_SHA512};
    use ring::signature::{RsaPublicKeyComponents, RSA_PKCS1_2048_8192_SHA256, RSA_PKCS1_2048_8192_SHA384};
    let params: &RsaParameters = match jwt.alg() {
        "RS256" => &RSA_PKCS1_2048_8192_SHA256,
        "RS384" => &RSA_PKCS1_2048_8192_SHA384,
        "RS512" => &RSA_PKCS1_2048_8192_SHA512,
        other => return Err(format!("{other} is not an RSA algorithm")),
    };
    let part = |name: &str| -> Result<Vec<u8>, String> {
        b64(jwk.get(name).and_then(Value::as_str).ok_or_else(|| format!("the key has no {name}"))?)
            .map_err(|e| format!("the key's {name} is {e}"))
    };
    RsaPublicKeyComponents { n: part("n")?, e: part("e")? }
        .verify(params, jwt.signing_input.as_bytes(), &jwt.signature)
        .map_err(|_| "the signature does not verify with that key".to_owned())
}

/// What the stack's authorizer is configured to accept (from the stack's parameters and
/// outputs), where smoke could learn it.
#[derive(Default, Clone)]
pub struct Accepts {
    /// The authorizer's issuer: `JwtIssuer`, else the own issuer's `IssuerUrl`.
    pub issuer: Option<String>,
    /// `JwtAudience`, comma-separated in the parameter.
    pub audiences: Vec<String>,
}

/// Why the gateway's authorizer refuses `jwt` given the keys published now, the first
/// reason in the order the authorizer checks; `None` when the token checks out.
pub fn refusal(jwt: &Jwt, jwks: Option<&Jwks>, accepts: &Accepts, now: i64) -> Option<String> {
    let alg = jwt.alg();
    if !GATEWAY_ALGORITHMS.contains(&alg) {
        return Some(format!(
            "the token is {alg}, and API Gateway's HTTP API authorizer verifies RS256, RS384 or RS512 only: \
             the issuer must sign with an RSA key"
        ));
    }
    if let Some(jwks) = jwks {
        let Some(kid) = jwt.kid() else {
            return Some("the token has no kid, so the authorizer cannot pick a key".into());
        };
        let Some(jwk) = jwks.find(kid) else {
            return Some(format!(
                "the token's kid {kid} is not among the issuer's keys ({}): the token function signs with a key \
                 the keys function does not publish (their SIGNING_KEY_ID differ, or a rotation signs before it publishes)",
                jwks.describe()
            ));
        };
        let kty = jwk.get("kty").and_then(Value::as_str).unwrap_or("(none)");
        if kty != "RSA" {
            return Some(format!("the published key {kid} is kty {kty}: the authorizer verifies RSA keys only"));
        }
        if let Some(key_alg) = jwk.get("alg").and_then(Value::as_str) {
            if key_alg != alg {
                return Some(format!("the published key {kid} is for {key_alg}, the token is {alg}"));
            }
        }
        if let Err(why) = verify(jwt, jwk) {
            return Some(format!("{why}: the published key {kid} is not the one that signed the token"));
        }
    }
    if let (Some(want), Some(iss)) = (&accepts.issuer, jwt.iss()) {
        if want != iss {
            return Some(format!(
                "the token's iss {iss} is not the authorizer's issuer {want} (it must match exactly, trailing slash included)"
            ));
        }
    }
    if !accepts.audiences.is_empty() && !jwt.audiences().iter().any(|a| accepts.audiences.contains(a)) {
        return Some(format!(
            "the token's aud {:?} is none of the authorizer's audiences {:?} (JwtAudience)",
            jwt.audiences(),
            accepts.audiences
        ));
    }
    match jwt.number("exp") {
        Some(exp) if exp > now => {}
        Some(exp) => {
            return Some(format!("the token expired {} s ago (this machine's clock, or the issuer's)", now - exp))
        }
        None => return Some("the token has no exp".into()),
    }
    if jwt.number("nbf").or(jwt.number("iat")).is_some_and(|t| t > now + 60) {
        return Some("the token is not valid yet (nbf or iat ahead of this machine's clock)".into());
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn token(header: Value, claims: Value) -> String {
        format!(
            "{}.{}.{}",
            b64url(header.to_string().as_bytes()),
            b64url(claims.to_string().as_bytes()),
            b64url(b"sig")
        )
    }

    #[test]
    fn an_ec_token_is_refused_for_its_algorithm_before_anything_else() {
        let jwt = Jwt::parse(&token(json!({"alg": "ES256", "kid": "k1"}), json!({"iss": "x"}))).unwrap();
        let jwks = Jwks { keys: vec![json!({"kty": "EC", "kid": "k1"})] };
        let why = refusal(&jwt, Some(&jwks), &Accepts::default(), 0).unwrap();
        assert!(why.contains("ES256") && why.contains("RS256"), "{why}");
        assert_eq!(jwks.describe(), "kty EC kid k1");
    }

    #[test]
    fn an_unpublished_kid_and_a_non_rsa_key_are_named() {
        let jwt = Jwt::parse(&token(json!({"alg": "RS256", "kid": "a"}), json!({}))).unwrap();
        let other = Jwks { keys: vec![json!({"kty": "RSA", "kid": "b"})] };
        let why = refusal(&jwt, Some(&other), &Accepts::default(), 0).unwrap();
        assert!(why.contains("kid a is not among") && why.contains("kty RSA kid b"), "{why}");
        let ec = Jwks { keys: vec![json!({"kty": "EC", "kid": "a"})] };
        assert!(refusal(&jwt, Some(&ec), &Accepts::default(), 0).unwrap().contains("kty EC"));
        let rsa = Jwks { keys: vec![json!({"kty": "RSA", "kid": "a", "n": "AQAB", "e": "AQAB"})] };
        assert!(refusal(&jwt, Some(&rsa), &Accepts::default(), 0).unwrap().contains("does not verify"));
    }

    #[test]
    fn issuer_audience_and_expiry_are_checked_without_keys() {
        let jwt = Jwt::parse(&token(
            json!({"alg": "RS256", "kid": "a"}),
            json!({"iss": "https://i/", "aud": "shopping-api", "exp": 100}),
        ))
        .unwrap();
        let accepts = Accepts { issuer: Some("https://i".into()), audiences: vec!["shopping-api".into()] };
        assert!(refusal(&jwt, None, &accepts, 50).unwrap().contains("trailing slash"));
        let accepts = Accepts { issuer: Some("https://i/".into()), audiences: vec!["other".into()] };
        assert!(refusal(&jwt, None, &accepts, 50).unwrap().contains("JwtAudience"));
        let accepts = Accepts { issuer: Some("https://i/".into()), audiences: vec!["shopping-api".into()] };
        assert_eq!(refusal(&jwt, None, &accepts, 50), None);
        assert!(refusal(&jwt, None, &accepts, 150).unwrap().contains("expired"));
    }

    #[test]
    fn a_forged_token_keeps_header_and_signature_and_widens_the_claims() {
        let real = token(json!({"alg": "RS256", "kid": "a"}), json!({"scope": "read:shopping", "exp": 10}));
        let forged = Jwt::parse(&Jwt::parse(&real).unwrap().forged()).unwrap();
        assert_eq!(forged.header, json!({"alg": "RS256", "kid": "a"}));
        assert_eq!(forged.claims["scope"], "admin:shopping admin:hooks");
        assert_eq!(real.rsplit('.').next(), Jwt::parse(&real).unwrap().forged().rsplit('.').next());
        assert!(Jwt::parse(&made_up("k", "https://i/", "shopping-api", "T00000000")).is_ok());
        assert!(Jwt::parse("a.b").is_err());
    }
}
