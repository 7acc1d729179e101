//! The lifecycle through the gateway, as a merchant's first order makes it: a draft, an
//! item, completion, the order read by its `order_id`, a list that finds it, and the
//! reference pages.

use super::{failed, gateway_cause, Order, Outcome, Smoke};
use reqwest::Method;
use serde_json::{json, Value};
use std::time::{Duration, Instant};

/// How long the list may take to show the new order (its index is eventually consistent).
const LIST_WITHIN: Duration = Duration::from_secs(15);

impl Smoke {
    pub(super) async fn check_draft(&mut self) -> Outcome {
        if self.token.is_none() {
            return Outcome::Skipped("needs a token".into());
        }
        // The orders it makes expire after a day (the shortest retention): the smoke account
        // keeps no history of its runs.
        let body = json!({
            "options": {"generate_order_id": "ALPHANUMERIC_9", "order_time_to_live": 86400},
            "order": {"currency": "NOK", "customer": {"id": format!("smoke-{}", self.run_id)}},
        });
        match self.call(Method::POST, "/shopping/draft_orders", Some(body)).await {
            Ok(a) if a.ok() => match a.json().and_then(|v| v.get("id")?.as_str().map(str::to_owned)) {
                Some(id) => {
                    let line = format!("POST /shopping/draft_orders: {} {id}", a.status);
                    self.draft = Some(id);
                    Outcome::Ok(line)
                }
                None => failed(a.seen(), "the draft came back without an id: a product defect"),
            },
            Ok(a) => self.api_failure(&a, "drafts"),
            Err(e) => failed(e, "the API stopped answering"),
        }
    }

    pub(super) async fn check_item(&mut self) -> Outcome {
        let Some(draft) = self.draft.clone() else {
            return Outcome::Skipped("needs a draft".into());
        };
        let item = json!({"line_id": 1, "description": "smoke test", "quantity": 1, "gross_amount": 10000,
                          "tax_lines": [{"percentage": 25}]});
        match self.call(Method::POST, &format!("/shopping/draft_orders/{draft}/items"), Some(item)).await {
            Ok(a) if a.ok() => Outcome::Ok(format!("POST …/draft_orders/{draft}/items: {}", a.status)),
            Ok(a) => {
                self.draft = None;
                self.api_failure(&a, "drafts")
            }
            Err(e) => {
                self.draft = None;
                failed(e, "the API stopped answering")
            }
        }
    }

    pub(super) async fn check_completion(&mut self) -> Outcome {
        let Some(draft) = self.draft.clone() else {
            return Outcome::Skipped("needs a draft with an item".into());
        };
        match self.call(Method::PUT, &format!("/shopping/draft_orders/{draft}/complete"), None).await {
            Ok(a) if a.ok() => {
                let first = a.json().and_then(|v| v.get("orders")?.get(0).cloned());
                let field = |k: &str| first.as_ref().and_then(|o| o.get(k)?.as_str().map(str::to_owned));
                match (field("id"), field("order_id")) {
                    (Some(id), Some(order_id)) => {
                        let line = format!("PUT …/draft_orders/{draft}/complete: order {order_id} ({id})");
                        self.order = Some(Order { id, order_id });
                        Outcome::Ok(line)
                    }
                    _ => failed(a.seen(), "the completion came back without an order: a product defect"),
                }
            }
            Ok(a) => self.api_failure(&a, "drafts"),
            Err(e) => failed(e, "the API stopped answering"),
        }
    }

    pub(super) async fn check_read(&self) -> Outcome {
        let Some(order) = &self.order else {
            return Outcome::Skipped("needs an order".into());
        };
        match self.call(Method::GET, &format!("/shopping/orders/{}", order.order_id), None).await {
            Ok(a) if a.ok() => {
                let id = a.json().and_then(|v| v.get("id")?.as_str().map(str::to_owned)).unwrap_or_default();
                if id == order.id {
                    Outcome::Ok(format!("GET /shopping/orders/{}: {}", order.order_id, a.status))
                } else {
                    failed(format!("order {id:?}"), "another order came back for the order_id: a product defect")
                }
            }
            Ok(a) => self.api_failure(&a, "orders"),
            Err(e) => failed(e, "the API stopped answering"),
        }
    }

    pub(super) async fn check_list(&self) -> Outcome {
        let Some(order) = &self.order else {
            return Outcome::Skipped("needs an order".into());
        };
        let path = format!("/shopping/orders?search={}&limit=10", order.order_id.to_lowercase());
        let started = Instant::now();
        loop {
            match self.call(Method::GET, &path, None).await {
                Ok(a) if a.ok() => {
                    let listed = a.json().and_then(|v| v.get("orders")?.as_array().cloned()).is_some_and(|orders| {
                        orders.iter().any(|o| o.get("id").and_then(Value::as_str) == Some(&order.id))
                    });
                    if listed {
                        let took = started.elapsed().as_secs_f64();
                        return Outcome::Ok(format!("GET /shopping/orders?search=…: the order, after {took:.1} s"));
                    }
                    if started.elapsed() > LIST_WITHIN {
                        return failed(
                            format!("{} (not the order, {} s after it was made)", a.seen(), LIST_WITHIN.as_secs()),
                            "the list's index does not get the order: the table's index or its projection",
                        );
                    }
                }
                Ok(a) => return self.api_failure(&a, "views"),
                Err(e) => return failed(e, "the API stopped answering"),
            }
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
    }

    pub(super) async fn check_reference(&self) -> Outcome {
        let Some(api) = &self.api else {
            return Outcome::Skipped("needs the API".into());
        };
        let api = api.trim_end_matches('/');
        let timeout = Duration::from_secs(30);
        let (doc, page) = (
            self.http.get(&format!("{api}/openapi.json"), timeout).await,
            self.http.get(&format!("{api}/docs"), timeout).await,
        );
        let doc = match doc {
            Ok(a) if a.status == 200 => a,
            Ok(a) => {
                return failed(format!("/openapi.json: {}", a.seen()), gateway_cause(&a, self.stack_name(), "token"))
            }
            Err(e) => return failed(e, "the API stopped answering"),
        };
        let version = doc.json().and_then(|v| v.get("openapi")?.as_str().map(str::to_owned));
        let Some(version) = version else {
            return failed(format!("/openapi.json: {}", doc.seen()), "the reference is not an OpenAPI document");
        };
        match page {
            Ok(a) if a.status == 200 && a.content_type.starts_with("text/html") => {
                Outcome::Ok(format!("/openapi.json (OpenAPI {version}), /docs (HTML)"))
            }
            Ok(a) => failed(
                format!("/docs: {} ({})", a.seen(), a.content_type),
                gateway_cause(&a, self.stack_name(), "token"),
            ),
            Err(e) => failed(e, "the API stopped answering"),
        }
    }
}
