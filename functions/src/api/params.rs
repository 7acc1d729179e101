//! The parameter types the groups' handlers document (the account in every path, the list
//! filters, `include_events`), shared by the handlers and the document that gathers them.

use utoipa::IntoParams;

/// `{aid}`, the account of every path.
#[derive(IntoParams)]
#[into_params(parameter_in = Path)]
pub(crate) struct Aid {
    /// The account: `P` (production) or `T` (test) and 8 digits.
    #[param(pattern = r"^[PT]\d{8}$", example = "T12345678")]
    #[allow(dead_code)]
    aid: String,
}

/// `include_events` of order reads and writes.
#[derive(IntoParams)]
#[into_params(parameter_in = Query)]
pub(crate) struct IncludeEvents {
    /// Which events to embed in the order: `true` (service events), `false`, or a comma list
    /// of event types.
    #[allow(dead_code)]
    include_events: Option<String>,
}

/// The filters of `GET /draft_orders`. Repeated parameters and comma lists both work: OR
/// within a parameter, AND across parameters.
#[derive(IntoParams)]
#[into_params(parameter_in = Query)]
#[allow(dead_code)]
pub(crate) struct DraftQuery {
    /// Page size, 1–100 (default 10).
    #[param(minimum = 1, maximum = 100)]
    limit: Option<u32>,
    /// The id of the last draft of the previous page.
    starting_after: Option<String>,
    /// `open`, `completed`, `deleted`.
    status: Option<String>,
    #[param(rename = "customer_id")]
    customer_id: Option<String>,
    /// A date (YYYY-MM-DD, whole day) or an RFC 3339 date-time.
    #[param(rename = "created_at.gte")]
    created_gte: Option<String>,
    #[param(rename = "created_at.lte")]
    created_lte: Option<String>,
    /// Amounts in minor units, inclusive.
    #[param(rename = "net_amount.gte", minimum = 0)]
    net_gte: Option<i64>,
    #[param(rename = "net_amount.lte", minimum = 0)]
    net_lte: Option<i64>,
    currency: Option<String>,
    /// Case-insensitive text search.
    search: Option<String>,
}

/// The filters only `GET /orders` (the account's list) has, besides [`ViewQuery`]'s.
#[derive(IntoParams)]
#[into_params(parameter_in = Query)]
#[allow(dead_code)]
pub(crate) struct OrderQuery {
    card_brand: Option<String>,
    /// The last 4 digits of a card.
    #[param(pattern = r"^\d{4}(,\d{4})*$")]
    card_number: Option<String>,
    psp: Option<String>,
    payment_product: Option<String>,
    payment_product_type: Option<String>,
    /// Amounts in minor units, inclusive.
    #[param(rename = "net_amount.gte", minimum = 0)]
    net_gte: Option<i64>,
    #[param(rename = "net_amount.lte", minimum = 0)]
    net_lte: Option<i64>,
    /// ISO 4217 codes.
    currency: Option<String>,
    /// Case-insensitive text search.
    search: Option<String>,
    /// `BUS`, `CAR`, `FERRY`, `METRO`, `TAXI`, `TRAIN`, `TRAM`, `WALK`, `WAIT`, `CUSTOM`.
    itinerary_travel_mode: Option<String>,
    itinerary_arrival_address: Option<String>,
    itinerary_departure_address: Option<String>,
    /// `customer`, `periodic`, `manual`, `loyalty`, `total`, `employee`, `external`.
    items_discount_lines_discount_type: Option<String>,
}

/// The filters every order list has (the customer and store views have only these).
#[derive(IntoParams)]
#[into_params(parameter_in = Query)]
#[allow(dead_code)]
pub(crate) struct ViewQuery {
    /// Page size, 1–100 (default 10).
    #[param(minimum = 1, maximum = 100)]
    limit: Option<u32>,
    /// The id of the last order of the previous page.
    starting_after: Option<String>,
    /// `open`, `closed`, `cancelled`.
    status: Option<String>,
    /// `pending`, `partially_paid`, `paid`, `partially_refunded`, `refunded`.
    payment_status: Option<String>,
    /// A date (YYYY-MM-DD, whole day) or an RFC 3339 date-time.
    #[param(rename = "created_at.gte")]
    created_gte: Option<String>,
    #[param(rename = "created_at.lte")]
    created_lte: Option<String>,
    /// Which events to embed in each order.
    include_events: Option<String>,
}
