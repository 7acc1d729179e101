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
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Link {
    pub href: String,
    pub rel: String,
}

impl Link {
    pub fn new(rel: &str, href: String) -> Self {
        Self { href, rel: rel.to_owned() }
    }
}

mod attachments;
mod content;
mod draft;
mod events;
mod itinerary;
mod order;
mod payments;
mod people;
mod wire;
pub use wire::to_stored;

pub use attachments::*;
pub use content::*;
pub use draft::*;
pub use events::*;
pub use itinerary::*;
pub use order::*;
pub use payments::*;
pub use people::*;
