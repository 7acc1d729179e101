//! The order content a draft builds and an order carries: items, taxes, discounts, stores, payouts.

use super::*;

/// The order under construction in a draft (`draft.order`), and the content of an order.
/// The totals, `version`, `discounts` and `stores` are computed by the server.
#[skip_serializing_none]
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct OrderObject {
    pub customer: Option<Customer>,
    pub gross_amount: Option<i64>,
    pub net_amount: Option<i64>,
    pub total_discount: Option<i64>,
    pub total_manual_discount_amount: Option<i64>,
    pub shipping_address: Option<ContactObject>,
    pub billing_address: Option<ContactObject>,
    pub metadata: Option<Object>,
    #[cfg_attr(feature = "openapi", schema(max_length = 255))]
    pub comment: Option<String>,
    pub salesperson_id: Option<String>,
    pub salesperson_name: Option<String>,
    pub delivery_at: Option<String>,
    pub pickup_at: Option<String>,
    pub courier_id: Option<String>,
    pub delivery_id: Option<String>,
    pub pre_order: Option<bool>,
    #[cfg_attr(feature = "openapi", schema(minimum = 86_400, maximum = 3_155_760_000.0))]
    pub time_to_live: Option<i64>,
    #[serde(serialize_with = "super::wire::list", skip_serializing_if = "super::wire::unstored")]
    pub itinerary: Option<Vec<Itinerary>>,
    #[serde(serialize_with = "super::wire::list", skip_serializing_if = "super::wire::unstored")]
    pub external_ids: Option<Vec<ExternalId>>,
    #[serde(serialize_with = "super::wire::list", skip_serializing_if = "super::wire::unstored")]
    pub items: Option<Vec<OrderItem>>,
    pub version: Option<u64>,
    #[serde(rename = "type")]
    pub kind: Option<String>,
    #[cfg_attr(feature = "openapi", schema(max_length = 255))]
    pub order_number: Option<String>,
    #[cfg_attr(feature = "openapi", schema(pattern = "^[A-Z]{3}$", example = "NOK"))]
    pub currency: Option<String>,
    #[cfg_attr(feature = "openapi", schema(min_length = 1, max_length = 255))]
    pub order_id: Option<String>,
    pub time_to_live_expires_at: Option<String>,
    pub multiple_authorizations: Option<bool>,
    #[serde(serialize_with = "super::wire::list", skip_serializing_if = "super::wire::unstored")]
    pub discounts: Option<Vec<Discount>>,
    #[serde(serialize_with = "super::wire::list", skip_serializing_if = "super::wire::unstored")]
    pub stores: Option<Vec<OrderStore>>,
    pub store: Option<OrderStore>,
    #[serde(serialize_with = "super::wire::list", skip_serializing_if = "super::wire::unstored")]
    pub external_links: Option<Vec<ExternalLink>>,
    #[serde(serialize_with = "super::wire::list", skip_serializing_if = "super::wire::unstored")]
    pub attachments: Option<Vec<Attachment>>,
}

#[skip_serializing_none]
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct OrderItem {
    pub id: Option<String>,
    pub status: Option<String>,
    pub metadata: Option<Object>,
    #[serde(serialize_with = "super::wire::list", skip_serializing_if = "super::wire::unstored")]
    pub groups: Option<Vec<Group>>,
    #[cfg_attr(feature = "openapi", schema(minimum = 0))]
    pub line_id: Option<i64>,
    #[cfg_attr(feature = "openapi", schema(minimum = 1))]
    #[serde(default, with = "super::wire::number")]
    pub quantity: Option<f64>,
    pub description: Option<String>,
    pub description_alias: Option<String>,
    pub eligible_for_discount: Option<bool>,
    pub dimension: Option<Dimension>,
    #[cfg_attr(feature = "openapi", schema(required = true, min_items = 1))]
    #[serde(serialize_with = "super::wire::list", skip_serializing_if = "super::wire::unstored")]
    pub tax_lines: Option<Vec<TaxLine>>,
    #[serde(serialize_with = "super::wire::list", skip_serializing_if = "super::wire::unstored")]
    pub discount_lines: Option<Vec<DiscountLine>>,
    #[serde(serialize_with = "super::wire::list", skip_serializing_if = "super::wire::unstored")]
    pub additions: Option<Vec<Addition>>,
    pub store: Option<ItemStore>,
    pub external_id: Option<String>,
    pub related_item: Option<RelatedItem>,
    pub salesperson_id: Option<String>,
    pub salesperson_name: Option<String>,
    #[cfg_attr(feature = "openapi", schema(max_length = 255))]
    pub comment: Option<String>,
    pub reversed_reason: Option<String>,
    pub dynamic_payout: Option<DynamicPayout>,
    #[cfg_attr(feature = "openapi", schema(required = true))]
    pub gross_amount: Option<i64>,
    pub net_amount: Option<i64>,
    pub is_changed: Option<bool>,
    pub version: Option<u64>,
    pub payout: Option<ItemPayout>,
    #[cfg_attr(feature = "openapi", schema(pattern = "^[A-Z]{3}$"))]
    pub original_currency: Option<String>,
    pub original_gross_amount: Option<i64>,
    pub conversion_rate_ppm: Option<i64>,
    pub conversion_rate_timestamp: Option<String>,
    pub conversion_rate_source: Option<String>,
}

#[skip_serializing_none]
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Group {
    pub id: Option<String>,
    pub name: Option<String>,
}

#[skip_serializing_none]
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Dimension {
    pub color: Option<String>,
    pub size: Option<String>,
    pub style: Option<String>,
    pub config: Option<String>,
    pub variant: Option<String>,
}

#[skip_serializing_none]
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct TaxLine {
    pub amount: Option<i64>,
    pub amount_dwh: Option<String>,
    pub exempt: Option<bool>,
    pub included_in_price: Option<bool>,
    #[cfg_attr(feature = "openapi", schema(required = true, minimum = 0, maximum = 100))]
    #[serde(default, with = "super::wire::number")]
    pub percentage: Option<f64>,
    pub tax_basis: Option<i64>,
    pub tax_basis_dwh: Option<String>,
    pub tax_code: Option<String>,
    pub tax_group: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "lowercase")]
pub enum DiscountType {
    Customer,
    Periodic,
    Manual,
    Loyalty,
    Total,
    Employee,
    External,
}

#[skip_serializing_none]
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct DiscountLine {
    #[cfg_attr(feature = "openapi", schema(required = true, minimum = 0))]
    pub amount: Option<i64>,
    #[serde(default, with = "super::wire::number")]
    pub percentage: Option<f64>,
    pub discount_type: Option<DiscountType>,
    pub discount_subtype: Option<String>,
    pub discount_id: Option<String>,
    pub description: Option<String>,
    pub line_id: Option<i64>,
}

#[skip_serializing_none]
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Addition {
    pub id: Option<String>,
    pub description: Option<String>,
    pub quantity: Option<i64>,
    pub gross_amount: Option<i64>,
    #[serde(serialize_with = "super::wire::list", skip_serializing_if = "super::wire::unstored")]
    pub groups: Option<Vec<Group>>,
}

/// The sales location of an item; it drives `split_draft`.
#[skip_serializing_none]
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ItemStore {
    pub id: Option<String>,
    pub organization_number: Option<String>,
    pub name: Option<String>,
    pub business_name: Option<String>,
    pub comment: Option<String>,
}

/// The order-level store: note `comments` (array) where the item store has `comment`.
#[skip_serializing_none]
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct OrderStore {
    pub id: Option<String>,
    pub organization_number: Option<String>,
    pub name: Option<String>,
    pub business_name: Option<String>,
    #[serde(serialize_with = "super::wire::list", skip_serializing_if = "super::wire::unstored")]
    pub comments: Option<Vec<String>>,
}

impl From<&ItemStore> for OrderStore {
    fn from(s: &ItemStore) -> Self {
        Self {
            id: s.id.clone(),
            organization_number: s.organization_number.clone(),
            name: s.name.clone(),
            business_name: s.business_name.clone(),
            comments: s.comment.clone().map(|c| vec![c]),
        }
    }
}

#[skip_serializing_none]
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct RelatedItem {
    pub line_id: Option<i64>,
    #[serde(rename = "type")]
    pub kind: Option<String>,
}

#[skip_serializing_none]
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct DynamicPayout {
    pub rule_type: Option<String>,
    pub rule_id: Option<String>,
}

#[skip_serializing_none]
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ItemPayout {
    pub account_id: Option<String>,
    pub rule_type: Option<String>,
    pub rule_id: Option<String>,
    pub rule_version: Option<i64>,
    #[serde(serialize_with = "super::wire::list", skip_serializing_if = "super::wire::unstored")]
    #[cfg_attr(feature = "openapi", schema(required = true, value_type = Vec<PayoutDestination>))]
    pub destinations: Option<Vec<PayoutDestination>>,
    pub metadata: Option<Object>,
}

#[skip_serializing_none]
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Discount {
    pub id: Option<String>,
    #[serde(serialize_with = "super::wire::list", skip_serializing_if = "super::wire::unstored")]
    pub refs: Option<Vec<DiscountRef>>,
}

#[skip_serializing_none]
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct DiscountRef {
    pub id: Option<String>,
    pub amount: Option<i64>,
    pub statistics: Option<Value>,
    pub stamp: Option<Value>,
    pub usages: Option<Value>,
    #[serde(serialize_with = "super::wire::list", skip_serializing_if = "super::wire::unstored")]
    pub items: Option<Vec<DiscountRefItem>>,
}

#[skip_serializing_none]
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct DiscountRefItem {
    pub line_id: Option<i64>,
    pub amount: Option<i64>,
}
