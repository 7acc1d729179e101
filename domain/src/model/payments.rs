//! Payment operations, their items and payment details, and sessions.

use super::*;

#[skip_serializing_none]
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct PaymentDetails {
    pub remaining_capture_amount: Option<i64>,
    pub remaining_refund_amount: Option<i64>,
    pub remaining_cancellation_amount: Option<i64>,
    pub amount_due: Option<i64>,
    pub remaining_authorization_amount: Option<i64>,
}

#[skip_serializing_none]
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct PaymentOperation {
    pub id: Option<String>,
    pub created_at: Option<String>,
    pub created_by: Option<String>,
    pub amount: Option<i64>,
    #[serde(serialize_with = "super::wire::list", skip_serializing_if = "super::wire::unstored")]
    #[cfg_attr(feature = "openapi", schema(required = true, value_type = Vec<OperationItem>))]
    pub items: Option<Vec<OperationItem>>,
    pub processed_at: Option<String>,
    pub processed_by: Option<String>,
    pub payment_details: Option<OperationPaymentDetails>,
    pub metadata: Option<Object>,
    pub success: Option<bool>,
    pub authorization_id: Option<String>,
    #[serde(rename = "_links")]
    #[serde(serialize_with = "super::wire::list", skip_serializing_if = "super::wire::unstored")]
    #[cfg_attr(feature = "openapi", schema(required = true, value_type = Vec<Link>))]
    pub links: Option<Vec<Link>>,
}

#[skip_serializing_none]
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct OperationItem {
    pub line_id: Option<i64>,
    pub amount: Option<i64>,
    /// How this item's amount is split over its payout rule's destinations (computed).
    pub payout: Option<OperationPayout>,
    /// Exchange-rate information, as on order items.
    pub original_currency: Option<String>,
    pub original_amount: Option<i64>,
    pub conversion_rate_ppm: Option<i64>,
    pub conversion_rate_timestamp: Option<String>,
    pub conversion_rate_source: Option<String>,
}

#[skip_serializing_none]
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct OperationPayout {
    /// The account the rule belongs to.
    pub account_id: Option<String>,
    pub rule_id: Option<String>,
    pub rule_type: Option<String>,
    pub rule_version: Option<i64>,
    #[serde(serialize_with = "super::wire::list", skip_serializing_if = "super::wire::unstored")]
    #[cfg_attr(feature = "openapi", schema(required = true, value_type = Vec<PayoutDestination>))]
    pub destinations: Option<Vec<PayoutDestination>>,
    pub metadata: Option<Object>,
}

#[skip_serializing_none]
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct OperationPaymentDetails {
    pub psp: Option<String>,
    pub payment_id: Option<String>,
    pub payment_product: Option<String>,
    pub payment_product_type: Option<String>,
    pub card: Option<Card>,
}

#[skip_serializing_none]
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Card {
    pub masked_pan: Option<String>,
    #[serde(rename = "type")]
    pub kind: Option<String>,
    pub brand: Option<String>,
    pub metadata: Option<Object>,
}

#[skip_serializing_none]
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct OrderSession {
    pub id: Option<String>,
    pub created_at: Option<String>,
    pub created_by: Option<String>,
    pub amount: Option<i64>,
    #[serde(serialize_with = "super::wire::list", skip_serializing_if = "super::wire::unstored")]
    #[cfg_attr(feature = "openapi", schema(required = true, value_type = Vec<SessionItem>))]
    pub items: Option<Vec<SessionItem>>,
    pub processed_at: Option<String>,
    pub metadata: Option<Object>,
    pub success: Option<bool>,
    #[serde(rename = "_links")]
    #[serde(serialize_with = "super::wire::list", skip_serializing_if = "super::wire::unstored")]
    #[cfg_attr(feature = "openapi", schema(required = true, value_type = Vec<Link>))]
    pub links: Option<Vec<Link>>,
}

#[skip_serializing_none]
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct SessionItem {
    pub line_id: Option<String>,
    pub amount: Option<i64>,
}
