//! Reservations attached to an order.

use super::*;

#[skip_serializing_none]
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
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
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct PassengerReservation {
    pub booking_id: Option<String>,
    #[serde(serialize_with = "super::wire::list", skip_serializing_if = "super::wire::unstored")]
    pub line_ids: Option<Vec<i64>>,
    #[serde(serialize_with = "super::wire::list", skip_serializing_if = "super::wire::unstored")]
    pub passengers: Option<Vec<Passenger>>,
    #[serde(serialize_with = "super::wire::list", skip_serializing_if = "super::wire::unstored")]
    pub itinerary: Option<Vec<ReservationLeg>>,
    #[serde(serialize_with = "super::wire::list", skip_serializing_if = "super::wire::unstored")]
    pub insurance: Option<Vec<Insurance>>,
}

#[skip_serializing_none]
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Passenger {
    pub id: Option<String>,
    pub title: Option<String>,
    pub first_name: Option<String>,
    pub last_name: Option<String>,
}

#[skip_serializing_none]
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
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
    #[serde(serialize_with = "super::wire::list", skip_serializing_if = "super::wire::unstored")]
    pub passenger_id: Option<Vec<String>>,
}

#[skip_serializing_none]
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Insurance {
    pub insurance_company: Option<String>,
    pub insurance_type: Option<String>,
}

#[skip_serializing_none]
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct CarReservation {
    pub booking_id: Option<String>,
    #[serde(serialize_with = "super::wire::list", skip_serializing_if = "super::wire::unstored")]
    pub line_ids: Option<Vec<i64>>,
    #[serde(serialize_with = "super::wire::list", skip_serializing_if = "super::wire::unstored")]
    pub itinerary: Option<Vec<CarRental>>,
    #[serde(serialize_with = "super::wire::list", skip_serializing_if = "super::wire::unstored")]
    pub drivers: Option<Vec<String>>,
    #[serde(serialize_with = "super::wire::list", skip_serializing_if = "super::wire::unstored")]
    pub insurance: Option<Vec<Insurance>>,
}

#[skip_serializing_none]
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct CarRental {
    pub rental_company: Option<String>,
    #[serde(serialize_with = "super::wire::list", skip_serializing_if = "super::wire::unstored")]
    pub drivers_id: Option<Vec<String>>,
    pub pick_up_address: Option<Address>,
    pub pick_up_at: Option<String>,
    pub drop_off_address: Option<Address>,
    pub drop_off_at: Option<String>,
    pub class: Option<String>,
}
