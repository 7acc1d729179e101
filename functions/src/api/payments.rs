//! The payments resource group: an order's authorizations, captures, refunds and
//! cancellations — `POST|GET /orders/{order_id}/<kind>` and `GET /orders/{order_id}/<kind>/{id}`.
//! Each create is checked against the order's ledger and recorded in one write conditioned on
//! the order's version (see `domain::payment`).

use super::mutate;
use crate::app::aggregate::{load_order, OrderAgg};
use crate::edge::auth::{Access, Caller};
use crate::edge::error::ApiError;
use crate::edge::http::Params;
use crate::edge::state::AppState;
use crate::edge::write::Write;
use axum::extract::State;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use domain::model::PaymentOperation;
use domain::payment::{self, Kind, OperationRequest};

pub fn router() -> Router<AppState> {
    let base = "/v1/accounts/{aid}/shopping/orders/{order_id}";
    let mut router = Router::new();
    for kind in Kind::ALL {
        let list = format!("{base}/{}", kind.plural());
        router = router
            .route(
                &list,
                get(move |s: State<AppState>, p: Params<(String, String)>, c: Caller| list_ops(kind, s, p, c))
                    .post(move |p: Params<(String, String)>, w: Write| create(kind, p, w)),
            )
            .route(
                &format!("{list}/{{id}}"),
                get(move |s: State<AppState>, p: Params<(String, String, String)>, c: Caller| get_op(kind, s, p, c)),
            );
    }
    router
}

async fn create(kind: Kind, Params((_, key)): Params<(String, String)>, w: Write) -> Result<Response, ApiError> {
    let body: OperationRequest = w.body.decode(payment::check_request)?;
    mutate::<OrderAgg, PaymentOperation>(&w, &key, &None, |c, ids, rec| {
        payment::create(c, ids, rec, kind, body.clone())
    })
    .await
}

/// The operations of one kind, oldest first. An order emptied by retention has none left.
async fn operations(state: &AppState, aid: &str, key: &str, kind: Kind) -> Result<Vec<PaymentOperation>, ApiError> {
    let found = load_order(state.store.as_ref(), aid, key, false).await?;
    Ok(found.order.and_then(|o| kind.list(&o).clone()).unwrap_or_default())
}

async fn list_ops(
    kind: Kind,
    State(state): State<AppState>,
    Params((aid, key)): Params<(String, String)>,
    caller: Caller,
) -> Result<Response, ApiError> {
    caller.authorize(&aid, Access::Read)?;
    let ops = operations(&state, &aid, &key, kind).await?;
    let mut body = serde_json::Map::new();
    body.insert(kind.plural().to_owned(), serde_json::to_value(ops).map_err(ApiError::internal)?);
    Ok(Json(body).into_response())
}

async fn get_op(
    kind: Kind,
    State(state): State<AppState>,
    Params((aid, key, id)): Params<(String, String, String)>,
    caller: Caller,
) -> Result<Response, ApiError> {
    caller.authorize(&aid, Access::Read)?;
    let op = operations(&state, &aid, &key, kind)
        .await?
        .into_iter()
        .find(|o| o.id.as_deref() == Some(id.as_str()))
        .ok_or_else(|| ApiError::NotFound(kind.name().to_owned()))?;
    Ok(Json(op).into_response())
}
