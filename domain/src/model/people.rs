//! Customers, contacts and addresses.

use super::*;

#[skip_serializing_none]
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Customer {
    pub first_name: Option<String>,
    pub last_name: Option<String>,
    pub id: Option<String>,
    pub gender: Option<String>,
    pub email: Option<String>,
    pub metadata: Option<Object>,
    pub phone_number: Option<String>,
    #[serde(serialize_with = "super::wire::list", skip_serializing_if = "super::wire::unstored")]
    pub addresses: Option<Vec<CustomerAddress>>,
    pub pays_tax: Option<bool>,
    pub date_of_birth: Option<String>,
    pub enrolled_by: Option<EnrolledBy>,
    pub favorite_store: Option<String>,
    pub company: Option<Company>,
    pub marketing_consent: Option<MarketingConsent>,
    pub status: Option<String>,
    pub term: Option<Term>,
    #[serde(rename = "type")]
    pub kind: Option<String>,
}

#[skip_serializing_none]
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct EnrolledBy {
    pub value: Option<String>,
    #[serde(rename = "type")]
    pub kind: Option<String>,
}

#[skip_serializing_none]
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Company {
    pub organization_number: Option<String>,
    /// Misspelled upstream; kept for wire compatibility.
    pub bussiness_name: Option<String>,
    pub department: Option<String>,
    pub industry: Option<String>,
    pub website: Option<String>,
    pub number_of_employees: Option<String>,
}

#[skip_serializing_none]
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct MarketingConsent {
    pub sms: Option<Consent>,
    pub email: Option<Consent>,
}

#[skip_serializing_none]
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Consent {
    pub consent: Option<bool>,
    /// Set by the server: when `consent` last changed.
    pub updated_at: Option<String>,
}

impl Customer {
    /// Sets each marketing consent's `updated_at` (read-only): kept from `before` while the
    /// consent is the same, `now` when it is new or changed. A sent `updated_at` is not kept.
    pub fn stamp_consents(&mut self, before: Option<&Customer>, now: &str) {
        let Some(mc) = self.marketing_consent.as_mut() else { return };
        let old = before.and_then(|c| c.marketing_consent.as_ref());
        for (consent, was) in
            [(&mut mc.sms, old.and_then(|o| o.sms.as_ref())), (&mut mc.email, old.and_then(|o| o.email.as_ref()))]
        {
            let Some(c) = consent.as_mut() else { continue };
            c.updated_at = match was {
                Some(w) if w.consent == c.consent && w.updated_at.is_some() => w.updated_at.clone(),
                _ => Some(now.to_owned()),
            };
        }
    }
}

#[skip_serializing_none]
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Term {
    pub id: Option<String>,
}

#[skip_serializing_none]
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct CustomerAddress {
    pub address_line: Option<String>,
    pub address_line_2: Option<String>,
    pub postal_code: Option<String>,
    pub postal_place: Option<String>,
    #[serde(default, with = "super::wire::number")]
    pub latitude: Option<f64>,
    #[serde(default, with = "super::wire::number")]
    pub longitude: Option<f64>,
    pub country: Option<String>,
    #[serde(rename = "type")]
    pub kind: Option<String>,
    pub custom_type: Option<String>,
}

/// `shipping_address` / `billing_address`.
#[skip_serializing_none]
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ContactObject {
    pub address_line: Option<String>,
    pub address_line_2: Option<String>,
    pub postal_code: Option<String>,
    pub postal_place: Option<String>,
    #[serde(default, with = "super::wire::number")]
    pub latitude: Option<f64>,
    #[serde(default, with = "super::wire::number")]
    pub longitude: Option<f64>,
    pub country: Option<String>,
    pub first_name: Option<String>,
    pub last_name: Option<String>,
    pub comment: Option<String>,
}

#[skip_serializing_none]
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Address {
    pub address_line: Option<String>,
    pub address_line_2: Option<String>,
    pub postal_code: Option<String>,
    pub postal_place: Option<String>,
    #[serde(default, with = "super::wire::number")]
    pub latitude: Option<f64>,
    #[serde(default, with = "super::wire::number")]
    pub longitude: Option<f64>,
    pub country: Option<String>,
}

#[skip_serializing_none]
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ExternalId {
    pub id: Option<String>,
    pub source: Option<String>,
    pub description: Option<String>,
}

#[skip_serializing_none]
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ExternalLink {
    pub text: Option<String>,
    pub href: Option<String>,
    pub public: Option<bool>,
}
