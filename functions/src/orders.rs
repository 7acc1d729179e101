//! The orders resource group: `/v1/accounts/{aid}/shopping/orders...`. The `{order_id}` path
//! segment accepts either the order's `id` or its `order_id`.

use crate::auth::{Access, Caller};
use crate::error::ApiError;
use crate::http::{parse, query_pairs, with_etag, Params};
use crate::partition;
use crate::state::AppState;
use axum::extract::{RawQuery, State};
use axum::response::Response;
use axum::routing::get;
use axum::Router;
use domain::draft::{OrderIdRecord, OrderRecord, OrderStub};
use domain::model::{Event, Order, OrderObject};
use domain::outbox::Timeline;
use domain::table;
use infra::SkCond;

pub fn router() -> Router<AppState> {
    Router::new().route("/v1/accounts/{aid}/shopping/orders/{order_id}", get(fetch))
}

/// What a partition read of an order found.
pub(crate) struct Loaded {
    pub order: Option<Order>,
    pub stub: Option<OrderStub>,
    pub timeline: Timeline,
}

impl Loaded {
    /// The order as a command changes it: with the events still riding in its item. Exact
    /// only when the history was read too (`events`), else every rider counts as unflushed.
    pub fn record(self) -> Option<OrderRecord> {
        let unflushed = self.timeline.unflushed();
        self.order.map(|order| OrderRecord { order, unflushed })
    }
}

/// Reads an order's partition; without `events` only the header and the stub (whose sort
/// keys follow every `EVENT#` key), so a plain read does not pay for the event history.
async fn read_partition(state: &AppState, aid: &str, id: &str, events: bool) -> Result<Loaded, ApiError> {
    let sk = if events { SkCond::Any } else { SkCond::Ge(table::ORDER_SK.to_owned()) };
    let part = partition::read(state, table::order_pk(aid, id), sk, table::ORDER_SK).await?;
    let mut loaded = Loaded { order: None, stub: None, timeline: part.timeline };
    if let Some(head) = part.head {
        loaded.order = Some(parse(&head.doc)?);
    }
    for item in part.others.iter().filter(|i| i.sk == table::STUB_SK) {
        loaded.stub = Some(parse(&item.doc)?);
    }
    Ok(loaded)
}

/// Finds an order by `id` or by `order_id`. Ids are UUIDs, so a key that is not one is looked
/// up as an `order_id` first, saving a round trip.
pub(crate) async fn load(state: &AppState, aid: &str, key: &str, events: bool) -> Result<Loaded, ApiError> {
    let found = |l: &Loaded| l.order.is_some() || l.stub.is_some();
    if domain::validate::is_uuid(key) {
        let direct = read_partition(state, aid, key, events).await?;
        if found(&direct) {
            return Ok(direct);
        }
    }
    if let Some(item) = state.store.get(&table::order_id_key(aid, key)).await? {
        if let Some(id) = parse::<OrderIdRecord>(&item.doc)?.id {
            let by_order_id = read_partition(state, aid, &id, events).await?;
            if found(&by_order_id) {
                return Ok(by_order_id);
            }
        }
    }
    Err(ApiError::NotFound("order".into()))
}

async fn fetch(
    State(state): State<AppState>,
    Params((aid, key)): Params<(String, String)>,
    caller: Caller,
    RawQuery(raw): RawQuery,
) -> Result<Response, ApiError> {
    caller.authorize(&aid, Access::Read)?;
    let kinds = domain::events::include_events(&query_pairs(raw.as_deref()), true)?;
    let loaded = load(&state, &aid, &key, kinds.is_some()).await?;
    let Some(mut order) = loaded.order else {
        // Retention expired: only the identifying fields remain.
        let stub = loaded.stub.ok_or_else(|| ApiError::NotFound("order".into()))?;
        let gone = stub.expires_at.clone().unwrap_or_else(|| stub.created_at.clone());
        let emptied = Order {
            id: stub.id,
            created_at: stub.created_at,
            updated_at: gone.clone(),
            deleted_at: Some(gone),
            content: OrderObject {
                order_number: stub.order_number,
                order_id: stub.order_id,
                external_ids: stub.external_ids,
                ..Default::default()
            },
            ..Default::default()
        };
        return Ok(axum::response::IntoResponse::into_response(axum::Json(emptied)));
    };
    if let Some(kinds) = kinds {
        let events: Vec<Event> = loaded
            .timeline
            .events()
            .into_iter()
            .filter(|e| kinds.contains(&e.event_type.as_deref().unwrap_or("")))
            .collect();
        order.state = Some(domain::events::combined_state(&events).to_owned());
        order.events = Some(events);
    }
    let version = order.content.version.unwrap_or(0);
    Ok(with_etag(version, order))
}
