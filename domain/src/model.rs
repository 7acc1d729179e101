//! The upstream wire model: drafts, orders and everything they embed.
//!
//! Field names follow the upstream API exactly (misspellings included, e.g.
//! `company.bussiness_name`). Every optional field is omitted from JSON when absent, never
//! `null`. Unknown request fields are ignored by serde's default behaviour.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use serde_with::skip_serializing_none;

/// Free-form JSON object (`metadata` and friends).
pub type Object = Map<String, Value>;

#[skip_serializing_none]
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Link {
    pub href: String,
    pub rel: String,
}

impl Link {
    pub fn new(rel: &str, href: String) -> Self {
        Self { href, rel: rel.to_owned() }
    }
}

// ---------------------------------------------------------------- drafts

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
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
#[serde(rename_all = "lowercase")]
pub enum ReplaceMode {
    Order,
}

#[skip_serializing_none]
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
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
pub struct PayoutOptions {
    pub rules: Option<Vec<PayoutRule>>,
    pub resolve_rule_id: Option<String>,
    pub resolve_rule_type: Option<String>,
}

#[skip_serializing_none]
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct PayoutRule {
    pub account_id: Option<String>,
    pub rule_type: Option<String>,
    pub rule_id: Option<String>,
    pub rule_version: Option<i64>,
    pub destinations: Option<Vec<PayoutDestination>>,
    pub metadata: Option<Object>,
}

/// `value` is a number in some upstream samples and a numeric string in others: both are kept
/// as sent.
#[skip_serializing_none]
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct PayoutDestination {
    #[serde(rename = "type")]
    pub kind: Option<String>,
    pub value: Option<Value>,
    pub destination: Option<String>,
    pub destinations: Option<Vec<PayoutDestination>>,
    pub amount: Option<i64>,
}

// ---------------------------------------------------------------- order content

/// The order under construction in a draft (`draft.order`), and the content of an order.
/// The totals, `version`, `discounts` and `stores` are computed by the server.
#[skip_serializing_none]
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct OrderObject {
    pub customer: Option<Customer>,
    pub gross_amount: Option<i64>,
    pub net_amount: Option<i64>,
    pub total_discount: Option<i64>,
    pub total_manual_discount_amount: Option<i64>,
    pub shipping_address: Option<ContactObject>,
    pub billing_address: Option<ContactObject>,
    pub metadata: Option<Object>,
    pub comment: Option<String>,
    pub salesperson_id: Option<String>,
    pub salesperson_name: Option<String>,
    pub delivery_at: Option<String>,
    pub pickup_at: Option<String>,
    pub courier_id: Option<String>,
    pub delivery_id: Option<String>,
    pub pre_order: Option<bool>,
    pub time_to_live: Option<i64>,
    pub itinerary: Option<Vec<Itinerary>>,
    pub external_ids: Option<Vec<ExternalId>>,
    pub items: Option<Vec<OrderItem>>,
    pub version: Option<u64>,
    #[serde(rename = "type")]
    pub kind: Option<String>,
    pub order_number: Option<String>,
    pub currency: Option<String>,
    pub order_id: Option<String>,
    pub time_to_live_expires_at: Option<String>,
    pub multiple_authorizations: Option<bool>,
    pub discounts: Option<Vec<Discount>>,
    pub stores: Option<Vec<OrderStore>>,
    pub store: Option<OrderStore>,
    pub external_links: Option<Vec<ExternalLink>>,
    pub attachments: Option<Vec<Attachment>>,
}

#[skip_serializing_none]
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct OrderItem {
    pub id: Option<String>,
    pub status: Option<String>,
    pub metadata: Option<Object>,
    pub groups: Option<Vec<Group>>,
    pub line_id: Option<i64>,
    pub quantity: Option<f64>,
    pub description: Option<String>,
    pub description_alias: Option<String>,
    pub eligible_for_discount: Option<bool>,
    pub dimension: Option<Dimension>,
    pub tax_lines: Option<Vec<TaxLine>>,
    pub discount_lines: Option<Vec<DiscountLine>>,
    pub additions: Option<Vec<Addition>>,
    pub store: Option<ItemStore>,
    pub external_id: Option<String>,
    pub related_item: Option<RelatedItem>,
    pub salesperson_id: Option<String>,
    pub salesperson_name: Option<String>,
    pub comment: Option<String>,
    pub reversed_reason: Option<String>,
    pub dynamic_payout: Option<DynamicPayout>,
    pub gross_amount: Option<i64>,
    pub net_amount: Option<i64>,
    pub is_changed: Option<bool>,
    pub version: Option<u64>,
    pub payout: Option<ItemPayout>,
    pub original_currency: Option<String>,
    pub original_gross_amount: Option<i64>,
    pub conversion_rate_ppm: Option<i64>,
    pub conversion_rate_timestamp: Option<String>,
    pub conversion_rate_source: Option<String>,
}

#[skip_serializing_none]
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Group {
    pub id: Option<String>,
    pub name: Option<String>,
}

#[skip_serializing_none]
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Dimension {
    pub color: Option<String>,
    pub size: Option<String>,
    pub style: Option<String>,
    pub config: Option<String>,
    pub variant: Option<String>,
}

#[skip_serializing_none]
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct TaxLine {
    pub amount: Option<i64>,
    pub amount_dwh: Option<String>,
    pub exempt: Option<bool>,
    pub included_in_price: Option<bool>,
    pub percentage: Option<f64>,
    pub tax_basis: Option<i64>,
    pub tax_basis_dwh: Option<String>,
    pub tax_code: Option<String>,
    pub tax_group: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
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
pub struct DiscountLine {
    pub amount: Option<i64>,
    pub percentage: Option<f64>,
    pub discount_type: Option<DiscountType>,
    pub discount_subtype: Option<String>,
    pub discount_id: Option<String>,
    pub description: Option<String>,
    pub line_id: Option<i64>,
}

#[skip_serializing_none]
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Addition {
    pub id: Option<String>,
    pub description: Option<String>,
    pub quantity: Option<i64>,
    pub gross_amount: Option<i64>,
    pub groups: Option<Vec<Group>>,
}

/// The sales location of an item; it drives `split_draft`.
#[skip_serializing_none]
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
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
pub struct OrderStore {
    pub id: Option<String>,
    pub organization_number: Option<String>,
    pub name: Option<String>,
    pub business_name: Option<String>,
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
pub struct RelatedItem {
    pub line_id: Option<i64>,
    #[serde(rename = "type")]
    pub kind: Option<String>,
}

#[skip_serializing_none]
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct DynamicPayout {
    pub rule_type: Option<String>,
    pub rule_id: Option<String>,
}

#[skip_serializing_none]
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ItemPayout {
    pub account_id: Option<String>,
    pub rule_type: Option<String>,
    pub rule_id: Option<String>,
    pub rule_version: Option<i64>,
    pub destinations: Option<Vec<PayoutDestination>>,
    pub metadata: Option<Object>,
}

#[skip_serializing_none]
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Discount {
    pub id: Option<String>,
    pub refs: Option<Vec<DiscountRef>>,
}

#[skip_serializing_none]
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct DiscountRef {
    pub id: Option<String>,
    pub amount: Option<i64>,
    pub statistics: Option<Value>,
    pub stamp: Option<Value>,
    pub usages: Option<Value>,
    pub items: Option<Vec<DiscountRefItem>>,
}

#[skip_serializing_none]
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct DiscountRefItem {
    pub line_id: Option<i64>,
    pub amount: Option<i64>,
}

// ---------------------------------------------------------------- people and places

#[skip_serializing_none]
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Customer {
    pub first_name: Option<String>,
    pub last_name: Option<String>,
    pub id: Option<String>,
    pub gender: Option<String>,
    pub email: Option<String>,
    pub metadata: Option<Object>,
    pub phone_number: Option<String>,
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
pub struct EnrolledBy {
    pub value: Option<String>,
    #[serde(rename = "type")]
    pub kind: Option<String>,
}

#[skip_serializing_none]
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
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
pub struct MarketingConsent {
    pub sms: Option<Consent>,
    pub email: Option<Consent>,
}

#[skip_serializing_none]
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Consent {
    pub consent: Option<bool>,
    pub updated_at: Option<String>,
}

#[skip_serializing_none]
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Term {
    pub id: Option<String>,
}

#[skip_serializing_none]
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct CustomerAddress {
    pub address_line: Option<String>,
    pub address_line_2: Option<String>,
    pub postal_code: Option<String>,
    pub postal_place: Option<String>,
    pub latitude: Option<f64>,
    pub longitude: Option<f64>,
    pub country: Option<String>,
    #[serde(rename = "type")]
    pub kind: Option<String>,
    pub custom_type: Option<String>,
}

/// `shipping_address` / `billing_address`.
#[skip_serializing_none]
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ContactObject {
    pub address_line: Option<String>,
    pub address_line_2: Option<String>,
    pub postal_code: Option<String>,
    pub postal_place: Option<String>,
    pub latitude: Option<f64>,
    pub longitude: Option<f64>,
    pub country: Option<String>,
    pub first_name: Option<String>,
    pub last_name: Option<String>,
    pub comment: Option<String>,
}

#[skip_serializing_none]
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Address {
    pub address_line: Option<String>,
    pub address_line_2: Option<String>,
    pub postal_code: Option<String>,
    pub postal_place: Option<String>,
    pub latitude: Option<f64>,
    pub longitude: Option<f64>,
    pub country: Option<String>,
}

#[skip_serializing_none]
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ExternalId {
    pub id: Option<String>,
    pub source: Option<String>,
    pub description: Option<String>,
}

#[skip_serializing_none]
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ExternalLink {
    pub text: Option<String>,
    pub href: Option<String>,
    pub public: Option<bool>,
}

// ---------------------------------------------------------------- itinerary

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "UPPERCASE")]
pub enum TravelMode {
    Bus,
    Car,
    Ferry,
    Metro,
    Taxi,
    Train,
    Tram,
    Walk,
    Wait,
    Custom,
}

#[skip_serializing_none]
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Itinerary {
    pub id: Option<String>,
    pub operator: Option<String>,
    pub arrival_address: Option<ItineraryAddress>,
    pub arrival_at: Option<String>,
    pub departure_address: Option<ItineraryAddress>,
    pub departure_at: Option<String>,
    pub travel_mode: Option<TravelMode>,
    pub route_id: Option<String>,
    pub vehicle_id: Option<String>,
    pub summary: Option<String>,
    pub distance: Option<Measure>,
    pub duration: Option<Measure>,
    pub tickets: Option<Vec<Ticket>>,
    pub line_ids: Option<Vec<i64>>,
    pub waypoints: Option<Vec<Waypoint>>,
}

#[skip_serializing_none]
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ItineraryAddress {
    pub id: Option<String>,
    pub name: Option<String>,
    pub address_line: Option<String>,
    pub address_line_2: Option<String>,
    pub postal_code: Option<String>,
    pub postal_place: Option<String>,
    pub latitude: Option<f64>,
    pub longitude: Option<f64>,
    pub country: Option<String>,
    pub external_ids: Option<Vec<ExternalId>>,
}

#[skip_serializing_none]
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Measure {
    pub value: Option<f64>,
}

#[skip_serializing_none]
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Ticket {
    pub class: Option<String>,
    pub line: Option<String>,
    pub seat: Option<String>,
    pub zone: Option<String>,
    pub passenger_id: Option<Vec<String>>,
}

#[skip_serializing_none]
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Waypoint {
    pub display_name: Option<String>,
    pub latitude: Option<f64>,
    pub longitude: Option<f64>,
    pub arrival_schedule_at: Option<String>,
    pub departure_schedule_at: Option<String>,
}

// ---------------------------------------------------------------- attachments

#[skip_serializing_none]
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Attachment {
    pub id: Option<String>,
    pub bus_reservation: Option<PassengerReservation>,
    pub car_reservation: Option<CarReservation>,
    pub ferry_reservation: Option<PassengerReservation>,
    pub metro_reservation: Option<PassengerReservation>,
    pub taxi_reservation: Option<PassengerReservation>,
    pub train_reservation: Option<PassengerReservation>,
    pub tram_reservation: Option<PassengerReservation>,
}

#[skip_serializing_none]
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct PassengerReservation {
    pub booking_id: Option<String>,
    pub line_ids: Option<Vec<i64>>,
    pub passengers: Option<Vec<Passenger>>,
    pub itinerary: Option<Vec<ReservationLeg>>,
    pub insurance: Option<Vec<Insurance>>,
}

#[skip_serializing_none]
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Passenger {
    pub id: Option<String>,
    pub title: Option<String>,
    pub first_name: Option<String>,
    pub last_name: Option<String>,
}

#[skip_serializing_none]
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ReservationLeg {
    pub departure_address: Option<Address>,
    pub departure_at: Option<String>,
    pub arrival_address: Option<Address>,
    pub arrival_at: Option<String>,
    pub operator: Option<String>,
    pub class: Option<String>,
    pub line: Option<String>,
    pub seat: Option<String>,
    pub zone: Option<String>,
    pub expires_at: Option<String>,
    pub activates_at: Option<String>,
    pub passenger_id: Option<Vec<String>>,
}

#[skip_serializing_none]
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Insurance {
    pub insurance_company: Option<String>,
    pub insurance_type: Option<String>,
}

#[skip_serializing_none]
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct CarReservation {
    pub booking_id: Option<String>,
    pub line_ids: Option<Vec<i64>>,
    pub itinerary: Option<Vec<CarRental>>,
    pub drivers: Option<Vec<String>>,
    pub insurance: Option<Vec<Insurance>>,
}

#[skip_serializing_none]
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct CarRental {
    pub rental_company: Option<String>,
    pub drivers_id: Option<Vec<String>>,
    pub pick_up_address: Option<Address>,
    pub pick_up_at: Option<String>,
    pub drop_off_address: Option<Address>,
    pub drop_off_at: Option<String>,
    pub class: Option<String>,
}

// ---------------------------------------------------------------- events, comments

/// An api-event (records a write) or a service-event (posted by a service). One struct with
/// optional fields keeps both shapes exact on the wire.
#[skip_serializing_none]
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Event {
    pub event_type: Option<String>,
    pub id: Option<String>,
    pub created_at: Option<String>,
    pub created_by: Option<String>,
    pub version: Option<u64>,
    pub request: Option<EventRequest>,
    pub draft_id: Option<String>,
    pub state: Option<String>,
    pub service: Option<String>,
    pub service_status: Option<String>,
    pub description: Option<String>,
    pub metadata: Option<Object>,
}

#[skip_serializing_none]
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct EventRequest {
    pub path: Option<String>,
    pub method: Option<String>,
    pub body: Option<String>,
}

#[skip_serializing_none]
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Comment {
    pub id: Option<String>,
    pub created_at: Option<String>,
    pub created_by: Option<String>,
    pub deleted_by: Option<String>,
    pub deleted_at: Option<String>,
    pub body: Option<String>,
    pub visibility: Option<String>,
}

// ---------------------------------------------------------------- payments

#[skip_serializing_none]
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct PaymentDetails {
    pub remaining_capture_amount: Option<i64>,
    pub remaining_refund_amount: Option<i64>,
    pub remaining_cancellation_amount: Option<i64>,
    pub amount_due: Option<i64>,
    pub remaining_authorization_amount: Option<i64>,
}

#[skip_serializing_none]
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct PaymentOperation {
    pub id: Option<String>,
    pub created_at: Option<String>,
    pub created_by: Option<String>,
    pub amount: Option<i64>,
    pub items: Option<Vec<OperationItem>>,
    pub processed_at: Option<String>,
    pub processed_by: Option<String>,
    pub payment_details: Option<OperationPaymentDetails>,
    pub metadata: Option<Object>,
    pub success: Option<bool>,
    pub authorization_id: Option<String>,
    #[serde(rename = "_links")]
    pub links: Option<Vec<Link>>,
}

#[skip_serializing_none]
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct OperationItem {
    pub line_id: Option<i64>,
    pub amount: Option<i64>,
    pub payout: Option<Value>,
}

#[skip_serializing_none]
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct OperationPaymentDetails {
    pub psp: Option<String>,
    pub payment_id: Option<String>,
    pub payment_product: Option<String>,
    pub payment_product_type: Option<String>,
    pub card: Option<Card>,
}

#[skip_serializing_none]
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Card {
    pub masked_pan: Option<String>,
    #[serde(rename = "type")]
    pub kind: Option<String>,
    pub brand: Option<String>,
    pub metadata: Option<Object>,
}

#[skip_serializing_none]
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct OrderSession {
    pub id: Option<String>,
    pub created_at: Option<String>,
    pub created_by: Option<String>,
    pub amount: Option<i64>,
    pub items: Option<Vec<SessionItem>>,
    pub processed_at: Option<String>,
    pub metadata: Option<Object>,
    pub success: Option<bool>,
    #[serde(rename = "_links")]
    pub links: Option<Vec<Link>>,
}

#[skip_serializing_none]
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct SessionItem {
    pub line_id: Option<String>,
    pub amount: Option<i64>,
}

// ---------------------------------------------------------------- orders

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum OrderStatus {
    #[default]
    Open,
    Closed,
    Cancelled,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
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
    pub sessions: Option<Vec<OrderSession>>,
    pub authorizations: Option<Vec<PaymentOperation>>,
    pub captures: Option<Vec<PaymentOperation>>,
    pub refunds: Option<Vec<PaymentOperation>>,
    pub cancellations: Option<Vec<PaymentOperation>>,
    pub comments: Option<Vec<Comment>>,
    #[serde(rename = "_links")]
    pub links: Option<Vec<Link>>,
    pub state: Option<String>,
    pub events: Option<Vec<Event>>,
    #[serde(flatten)]
    pub content: OrderObject,
}
