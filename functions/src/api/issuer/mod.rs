//! The token issuer, in one place: the upstream token endpoint ([`token`]), how tokens are
//! signed ([`signing`]), the keys and discovery document API Gateway's JWT authorizer reads
//! ([`keys`]), and their settings. API clients themselves (create, rotate, revoke, check a
//! secret) are [`crate::app::clients`]', which the operator command shares.
//!
//! Two hosts, one endpoint: `shopping-local` signs HS256 with its data dir's secret and
//! verifies its tokens itself; the stack's token function has KMS sign RS256 with the stack's
//! own key, and the keys function publishes the public keys (the only algorithms the HTTP API
//! authorizer verifies are RSA ones: `infra::kms`). Rotation and the key-compromise runbook
//! are README's ("Rotating the signing key").

pub mod keys;
pub mod signing;
pub mod token;

/// The own issuer's settings, as the token function reads them from its environment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IssuerSettings {
    /// The KMS key that signs (`SIGNING_KEY_ID`); also each token's `kid`.
    pub signing_key_id: String,
    /// `iss` (`TOKEN_ISSUER`): exactly the issuer the HTTP API's authorizer is configured with.
    pub issuer: String,
    /// `aud` (`TOKEN_AUDIENCE`): one of the authorizer's audiences.
    pub audience: String,
}

impl IssuerSettings {
    /// With `SIGNING_KEY_ID` the stack is its own issuer, and `TOKEN_ISSUER` and
    /// `TOKEN_AUDIENCE` must say what its tokens carry; without it (`None`) tokens come from an
    /// outside identity provider.
    pub fn from_vars(var: impl Fn(&str) -> Option<String>) -> Result<Option<Self>, String> {
        let Some(signing_key_id) = set(&var, "SIGNING_KEY_ID") else { return Ok(None) };
        let issuer = set(&var, "TOKEN_ISSUER").ok_or("TOKEN_ISSUER must be set with SIGNING_KEY_ID")?;
        if !issuer.starts_with("https://") {
            return Err(format!("TOKEN_ISSUER must be an https URL, not {issuer:?}"));
        }
        let audience = set(&var, "TOKEN_AUDIENCE").ok_or("TOKEN_AUDIENCE must be set with SIGNING_KEY_ID")?;
        Ok(Some(Self { signing_key_id, issuer, audience }))
    }
}

/// The keys the keys function publishes: the signing key, then the standby key while a
/// rotation has one (`SIGNING_KEY_ID`, `STANDBY_KEY_ID`).
pub fn published_key_ids(var: impl Fn(&str) -> Option<String>) -> Result<Vec<String>, String> {
    let signing = set(&var, "SIGNING_KEY_ID").ok_or("SIGNING_KEY_ID must name the signing key")?;
    let standby = set(&var, "STANDBY_KEY_ID").filter(|k| *k != signing);
    Ok(std::iter::once(signing).chain(standby).collect())
}

/// A setting that is there and not blank.
fn set(var: &impl Fn(&str) -> Option<String>, name: &str) -> Option<String> {
    var(name).map(|v| v.trim().to_owned()).filter(|v| !v.is_empty())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn vars(pairs: &'static [(&'static str, &'static str)]) -> impl Fn(&str) -> Option<String> {
        move |name: &str| pairs.iter().find(|(k, _)| *k == name).map(|(_, v)| (*v).to_owned())
    }

    #[test]
    fn the_token_function_is_its_own_issuer_only_with_a_key() {
        assert_eq!(IssuerSettings::from_vars(vars(&[("SIGNING_KEY_ID", "")])), Ok(None));
        let own = IssuerSettings::from_vars(vars(&[
            ("SIGNING_KEY_ID", "k"),
            ("TOKEN_ISSUER", "https://x/"),
            ("TOKEN_AUDIENCE", "a"),
        ]));
        let expected = IssuerSettings { signing_key_id: "k".into(), issuer: "https://x/".into(), audience: "a".into() };
        assert_eq!(own, Ok(Some(expected)));
        let no_issuer = IssuerSettings::from_vars(vars(&[("SIGNING_KEY_ID", "k")]));
        assert!(no_issuer.is_err_and(|e| e.contains("TOKEN_ISSUER")));
        let http = IssuerSettings::from_vars(vars(&[
            ("SIGNING_KEY_ID", "k"),
            ("TOKEN_ISSUER", "http://x/"),
            ("TOKEN_AUDIENCE", "a"),
        ]));
        assert!(http.is_err_and(|e| e.contains("https")));
    }

    #[test]
    fn the_keys_function_publishes_the_signing_key_then_the_standby_one() {
        assert!(published_key_ids(vars(&[])).is_err());
        assert_eq!(published_key_ids(vars(&[("SIGNING_KEY_ID", "a")])), Ok(vec!["a".to_owned()]));
        assert_eq!(
            published_key_ids(vars(&[("SIGNING_KEY_ID", "new"), ("STANDBY_KEY_ID", "old")])),
            Ok(vec!["new".to_owned(), "old".to_owned()])
        );
        assert_eq!(
            published_key_ids(vars(&[("SIGNING_KEY_ID", "a"), ("STANDBY_KEY_ID", "a")])),
            Ok(vec!["a".to_owned()])
        );
    }
}
