//! The order resource, its status and payment status.

use super::*;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "lowercase")]
pub enum OrderStatus {
    #[default]
    Open,
    Closed,
    Cancelled,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum PaymentStatus {
    #[default]
    Pending,
    PartiallyPaid,
    Paid,
    PartiallyRefunded,
    Refunded,
}

/// The order resource: the order content plus its server-owned envelope.
#[skip_serializing_none]
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Order {
    pub id: String,
    pub created_at: String,
    pub created_by: Option<String>,
    pub updated_at: String,
    pub deleted_by: Option<String>,
    pub deleted_at: Option<String>,
    pub cancelled_reason: Option<String>,
    pub cancelled_by: Option<String>,
    pub cancelled_at: Option<String>,
    pub closed_by: Option<String>,
    pub closed_at: Option<String>,
    pub status: Option<OrderStatus>,
    pub payment_status: Option<PaymentStatus>,
    pub payment_details: Option<PaymentDetails>,
    #[serde(serialize_with = "super::wire::list", skip_serializing_if = "super::wire::unstored")]
    #[cfg_attr(feature = "openapi", schema(required = true, value_type = Vec<OrderSession>))]
    pub sessions: Option<Vec<OrderSession>>,
    #[serde(serialize_with = "super::wire::list", skip_serializing_if = "super::wire::unstored")]
    #[cfg_attr(feature = "openapi", schema(required = true, value_type = Vec<PaymentOperation>))]
    pub authorizations: Option<Vec<PaymentOperation>>,
    #[serde(serialize_with = "super::wire::list", skip_serializing_if = "super::wire::unstored")]
    #[cfg_attr(feature = "openapi", schema(required = true, value_type = Vec<PaymentOperation>))]
    pub captures: Option<Vec<PaymentOperation>>,
    #[serde(serialize_with = "super::wire::list", skip_serializing_if = "super::wire::unstored")]
    #[cfg_attr(feature = "openapi", schema(required = true, value_type = Vec<PaymentOperation>))]
    pub refunds: Option<Vec<PaymentOperation>>,
    #[serde(serialize_with = "super::wire::list", skip_serializing_if = "super::wire::unstored")]
    #[cfg_attr(feature = "openapi", schema(required = true, value_type = Vec<PaymentOperation>))]
    pub cancellations: Option<Vec<PaymentOperation>>,
    #[serde(serialize_with = "super::wire::list", skip_serializing_if = "super::wire::unstored")]
    #[cfg_attr(feature = "openapi", schema(required = true, value_type = Vec<Comment>))]
    pub comments: Option<Vec<Comment>>,
    #[serde(rename = "_links")]
    #[serde(serialize_with = "super::wire::list", skip_serializing_if = "super::wire::unstored")]
    #[cfg_attr(feature = "openapi", schema(required = true, value_type = Vec<Link>))]
    pub links: Option<Vec<Link>>,
    pub state: Option<String>,
    pub events: Option<Vec<Event>>,
    #[serde(flatten)]
    pub content: OrderObject,
}
