//! Order and draft events, and order comments.

use super::*;

/// An api-event (records a write) or a service-event (posted by a service). One struct with
/// optional fields keeps both shapes exact on the wire.
#[skip_serializing_none]
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
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
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct EventRequest {
    pub path: Option<String>,
    pub method: Option<String>,
    /// The request's body as sent; `""` for a request without one (as upstream shows it).
    #[serialize_always]
    #[serde(serialize_with = "super::wire::text")]
    pub body: Option<String>,
}

#[skip_serializing_none]
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Comment {
    pub id: Option<String>,
    pub created_at: Option<String>,
    pub created_by: Option<String>,
    pub deleted_by: Option<String>,
    pub deleted_at: Option<String>,
    pub body: Option<String>,
    pub visibility: Option<String>,
}
