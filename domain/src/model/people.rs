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
    #[serialize_always]
    #[serde(serialize_with = "super::wire::list")]
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
    pub updated_at: Option<String>,
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
