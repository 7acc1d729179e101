//! An order as `GET` answers it, rendered to its JSON body — and on a host that keeps a memo
//! of answers (`shopping-local`, whose store tells the memo of every write: `infra::memo`),
//! the same bytes again while the order's partition is unchanged. Reading, parsing and
//! re-serialising the order was nearly all of a `GET`'s cost there (BENCHMARKS.md, "Local
//! load"). Only the plain view is kept: an order named by its `id`, live, without events.

use super::aggregate::{order_view, OrderView};
use super::error::{AppError, Result};
use super::shown::Kinds;
use axum::body::Bytes;
use infra::memo::Memo;
use infra::Store;

/// A rendered answer.
#[derive(Clone)]
pub struct Answer {
    /// The version its `ETag` names; none for an order emptied by its retention.
    pub version: Option<u64>,
    pub body: Bytes,
    /// What reading it cost, counted again each time it is answered from memory.
    read_units: f64,
}

/// The answers a host keeps, by the order's partition key.
pub type Answers = Memo<Answer>;

/// The order `key` names, as `GET` answers it with `kinds` of events; from `memo` when it
/// holds the answer at `now` (epoch seconds), and kept there when it can be.
pub async fn order(
    store: &dyn Store,
    memo: Option<&Answers>,
    now: i64,
    aid: &str,
    key: &str,
    kinds: &Kinds,
) -> Result<Answer> {
    let memo = memo.filter(|_| kinds.is_none() && domain::validate::is_uuid(key));
    let Some(memo) = memo else { return Ok(render(store, aid, key, kinds).await?.0) };
    let pk = domain::table::order_pk(aid, key);
    if let Some(answer) = memo.get(&pk, now) {
        crate::metering::add_read_units(answer.read_units);
        return Ok(answer);
    }
    let ticket = memo.ticket(&pk);
    let before = crate::metering::read_units();
    let (mut answer, view) = render(store, aid, key, kinds).await?;
    answer.read_units = crate::metering::read_units() - before;
    // Only a live order read from the partition `key` names (not through an `order_id`
    // record, whose partition the memo does not watch).
    if view.live && view.pk == pk && answer.version.is_some() {
        memo.keep(&pk, ticket, answer.clone(), answer.body.len().saturating_add(pk.len()), view.expires);
    }
    Ok(answer)
}

/// Reads and renders the answer; the view says where it came from.
async fn render(store: &dyn Store, aid: &str, key: &str, kinds: &Kinds) -> Result<(Answer, OrderView)> {
    let view = order_view(store, aid, key, kinds).await?;
    // Emptied by retention: no version to offer.
    let emptied = view.order.deleted_at.is_some() && view.order.content.version.is_none();
    let body = serde_json::to_vec(&view.order).map_err(|e| AppError::corrupt("order", e))?;
    let answer = Answer { version: (!emptied).then_some(view.version), body: Bytes::from(body), read_units: 0.0 };
    Ok((answer, view))
}
