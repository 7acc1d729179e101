//! Orders: how an order is stored, its derived payment figures, and the commands that change it.

mod commands;
mod notes;
mod sessions;
#[cfg(test)]
mod tests;
pub use commands::*;
pub use notes::*;
pub use sessions::*;

use crate::change::to_doc;
use crate::list::Summary;
use crate::model::{Order, PaymentDetails, PaymentOperation, PaymentStatus};
use crate::money;
pub use crate::outbox::EventRecord;
use crate::table::{self, Item, Key};
use serde::{Deserialize, Serialize};

/// An order as read for a change: the order and its events still riding in its item.
#[derive(Debug, Clone)]
pub struct OrderRecord {
    pub order: Order,
    pub unflushed: Vec<EventRecord>,
}

/// What the unique `ORDERID` item holds: the order's id, or the draft that reserved it.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct OrderIdRecord {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reserved_by_draft: Option<String>,
}

/// The fields an order keeps after its retention expires.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct OrderStub {
    pub id: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub order_number: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub order_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub external_ids: Option<Vec<crate::model::ExternalId>>,
    pub created_at: String,
    /// When the order's retention ends (it is emptied then).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expires_at: Option<String>,
}

impl OrderStub {
    /// What of `order` survives its expiry.
    pub fn of(order: &Order) -> Self {
        Self {
            id: order.id.clone(),
            order_number: order.content.order_number.clone(),
            order_id: order.content.order_id.clone(),
            external_ids: order.content.external_ids.clone(),
            created_at: order.created_at.clone(),
            expires_at: order.content.time_to_live_expires_at.clone(),
        }
    }

    /// The order as it reads once its retention expired: only the identifying fields, with
    /// `updated_at` = `deleted_at` = the moment it expired.
    pub fn emptied(self) -> Order {
        let gone = self.expires_at.clone().unwrap_or_else(|| self.created_at.clone());
        Order {
            id: self.id,
            created_at: self.created_at,
            updated_at: gone.clone(),
            deleted_at: Some(gone),
            content: crate::model::OrderObject {
                order_number: self.order_number,
                order_id: self.order_id,
                external_ids: self.external_ids,
                ..Default::default()
            },
            ..Default::default()
        }
    }
}

/// The items that hold an order: its header (the whole order, indexed, expiring) and, when
/// it expires at all, its stub (what remains after expiry).
pub struct OrderItems {
    pub header: Item,
    pub stub: Option<Item>,
}

pub fn order_items(aid: &str, order: &Order, ttl_epoch: Option<i64>) -> OrderItems {
    let pk = table::order_pk(aid, &order.id);
    let version = order.content.version.unwrap_or(0);
    // Payment operations are items of their own (see `crate::payment`), and events and the
    // combined state are read from the partition: the header holds neither.
    let stored = Order {
        authorizations: None,
        captures: None,
        refunds: None,
        cancellations: None,
        events: None,
        state: None,
        ..order.clone()
    };
    let mut header = Item::new(table::order_key(aid, &order.id), version, to_doc(&stored));
    header.gsi1pk = Some(table::orders_index_pk(aid));
    header.gsi1sk = Some(table::list_sk(&order.created_at, &order.id));
    if let Some(cid) = order.content.customer.as_ref().and_then(|c| c.id.as_deref()) {
        header.gsi2pk = Some(table::customer_index_pk(aid, cid));
        header.gsi2sk = header.gsi1sk.clone();
    }
    header.ttl = ttl_epoch;
    header.summary = Some(to_doc(&Summary::of_order(order)));
    let stub = ttl_epoch.map(|_| Item::new(Key::new(pk, table::STUB_SK), 0, to_doc(&OrderStub::of(order))));
    OrderItems { header, stub }
}

/// The order's payment figures from its net total and its successful payment operations.
pub fn payment_details(order: &Order) -> PaymentDetails {
    let sum = successful_total;
    let net = order.content.net_amount.unwrap_or(0);
    let authorized = sum(&order.authorizations);
    let has_authorizations = order.authorizations.iter().flatten().any(|o| o.success != Some(false));
    let (captured, refunded, cancelled) = (sum(&order.captures), sum(&order.refunds), sum(&order.cancellations));
    let capturable = if has_authorizations { authorized } else { net };
    let settled = money::total([captured, cancelled]);
    PaymentDetails {
        remaining_capture_amount: Some(money::remaining(capturable, settled)),
        remaining_refund_amount: Some(money::remaining(captured, refunded)),
        remaining_cancellation_amount: Some(money::remaining(authorized, settled)),
        amount_due: Some(money::remaining(net, money::remaining(captured, refunded))),
        remaining_authorization_amount: Some(money::remaining(net, authorized)),
    }
}

pub(crate) fn has_payments(order: &Order) -> bool {
    [&order.authorizations, &order.captures, &order.refunds, &order.cancellations]
        .iter()
        .any(|ops| ops.as_ref().is_some_and(|v| !v.is_empty()))
}

/// Σ of the successful operations' amounts (`success: false` counts for nothing).
pub(crate) fn successful_total(ops: &Option<Vec<PaymentOperation>>) -> i64 {
    money::total(ops.iter().flatten().filter(|o| o.success != Some(false)).filter_map(|o| o.amount))
}

/// `payment_status` from what is captured and refunded: nothing captured → `pending`; part of
/// the net → `partially_paid`; all of it → `paid`; then `partially_refunded` / `refunded`.
pub fn payment_status(order: &Order) -> PaymentStatus {
    let captured = successful_total(&order.captures);
    let refunded = successful_total(&order.refunds);
    let net = order.content.net_amount.unwrap_or(0);
    if captured > 0 && refunded >= captured {
        PaymentStatus::Refunded
    } else if captured > 0 && refunded > 0 {
        PaymentStatus::PartiallyRefunded
    } else if captured <= 0 {
        PaymentStatus::Pending
    } else if captured < net {
        PaymentStatus::PartiallyPaid
    } else {
        PaymentStatus::Paid
    }
}
