//! Travel itineraries on an order.

use super::*;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
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
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
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
    #[serde(serialize_with = "super::wire::list", skip_serializing_if = "super::wire::unstored")]
    pub tickets: Option<Vec<Ticket>>,
    #[serde(serialize_with = "super::wire::list", skip_serializing_if = "super::wire::unstored")]
    pub line_ids: Option<Vec<i64>>,
    #[serde(serialize_with = "super::wire::list", skip_serializing_if = "super::wire::unstored")]
    pub waypoints: Option<Vec<Waypoint>>,
}

#[skip_serializing_none]
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ItineraryAddress {
    pub id: Option<String>,
    pub name: Option<String>,
    pub address_line: Option<String>,
    pub address_line_2: Option<String>,
    pub postal_code: Option<String>,
    pub postal_place: Option<String>,
    #[serde(default, with = "super::wire::number")]
    pub latitude: Option<f64>,
    #[serde(default, with = "super::wire::number")]
    pub longitude: Option<f64>,
    pub country: Option<String>,
    #[serde(serialize_with = "super::wire::list", skip_serializing_if = "super::wire::unstored")]
    pub external_ids: Option<Vec<ExternalId>>,
}

#[skip_serializing_none]
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Measure {
    #[serde(default, with = "super::wire::number")]
    pub value: Option<f64>,
}

#[skip_serializing_none]
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Ticket {
    pub class: Option<String>,
    pub line: Option<String>,
    pub seat: Option<String>,
    pub zone: Option<String>,
    #[serde(serialize_with = "super::wire::list", skip_serializing_if = "super::wire::unstored")]
    pub passenger_id: Option<Vec<String>>,
}

#[skip_serializing_none]
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Waypoint {
    pub display_name: Option<String>,
    #[serde(default, with = "super::wire::number")]
    pub latitude: Option<f64>,
    #[serde(default, with = "super::wire::number")]
    pub longitude: Option<f64>,
    pub arrival_schedule_at: Option<String>,
    pub departure_schedule_at: Option<String>,
}
