//! The draft resource and its options (payout rules included).

use super::*;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "lowercase")]
pub enum DraftStatus {
    Open,
    Completed,
    Deleted,
}

impl DraftStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Open => "open",
            Self::Completed => "completed",
            Self::Deleted => "deleted",
        }
    }
}

/// The draft order resource. `orders` is only present in the complete response.
#[skip_serializing_none]
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Draft {
    pub id: String,
    pub created_at: String,
    pub created_by: String,
    pub updated_at: String,
    pub deleted_by: Option<String>,
    pub deleted_at: Option<String>,
    pub status: DraftStatus,
    #[serde(rename = "_links", default)]
    pub links: Vec<Link>,
    pub version: Option<u64>,
    pub events: Option<Vec<Event>>,
    pub options: Option<DraftOptions>,
    pub order: Option<OrderObject>,
    pub orders: Option<Vec<Order>>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub enum GenerateOrderId {
    #[default]
    #[serde(rename = "UUID")]
    Uuid,
    #[serde(rename = "ALPHANUMERIC_9")]
    Alphanumeric9,
    #[serde(rename = "ALPHANUMERIC_9_RESERVE")]
    Alphanumeric9Reserve,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "lowercase")]
pub enum ReplaceMode {
    Order,
}

#[skip_serializing_none]
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct DraftOptions {
    pub order_time_to_live: Option<i64>,
    pub generate_order_id: Option<GenerateOrderId>,
    pub order_id: Option<String>,
    pub replace: Option<ReplaceMode>,
    pub payout: Option<PayoutOptions>,
    pub split_draft: Option<bool>,
    pub serial_order_number_suffix: Option<bool>,
    pub multiple_authorizations: Option<bool>,
}

#[skip_serializing_none]
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct PayoutOptions {
    #[serde(serialize_with = "super::wire::list", skip_serializing_if = "super::wire::unstored")]
    pub rules: Option<Vec<PayoutRule>>,
    pub resolve_rule_id: Option<String>,
    pub resolve_rule_type: Option<String>,
}

#[skip_serializing_none]
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct PayoutRule {
    pub account_id: Option<String>,
    pub rule_type: Option<String>,
    pub rule_id: Option<String>,
    pub rule_version: Option<i64>,
    #[serde(serialize_with = "super::wire::list", skip_serializing_if = "super::wire::unstored")]
    pub destinations: Option<Vec<PayoutDestination>>,
    pub metadata: Option<Object>,
}

/// `value` is a number in some upstream samples and a numeric string in others: both are kept
/// as sent.
#[skip_serializing_none]
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct PayoutDestination {
    #[serde(rename = "type")]
    pub kind: Option<String>,
    pub value: Option<Value>,
    pub destination: Option<String>,
    /// Absent on a leaf, as in the upstream samples.
    #[cfg_attr(feature = "openapi", schema(no_recursion))]
    pub destinations: Option<Vec<PayoutDestination>>,
    pub amount: Option<i64>,
}
