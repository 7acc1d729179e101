//! The event check: a temporary subscription of smoke's own on the stack's bus (a rule for
//! the smoke account's `shopping_order_update`, a queue whose policy lets that rule alone
//! send, the rule's target), a write to the order, its event read back, and the event's
//! `detail` held to its schema (the registry's, else `events/schemas`').

use super::aws::{sdk_error, Aws};
use super::{failed, made, schema, shielded, Outcome, Shared, Smoke};
use reqwest::Method;
use serde_json::{json, Value};
use std::time::{Duration, Instant};

/// The event smoke reads back from the bus.
const EVENT: &str = "shopping_order_update";

/// `events/schemas/shopping_order_update.json`: the event's schema where no registry answers
/// (the stack on a laptop has none).
const EVENT_SCHEMA: &str = include_str!("../../../../events/schemas/shopping_order_update.json");

/// How long the event may take, from the write to the queue: a new rule and a new queue
/// policy can take a while to apply on AWS, so the write is repeated meanwhile.
const EVENT_WITHIN: Duration = Duration::from_secs(40);
const EVENT_REWRITE_EVERY: Duration = Duration::from_secs(12);

impl Smoke {
    pub(super) async fn check_subscription(&mut self) -> Outcome {
        let Some(bus) = self.bus.clone() else {
            return Outcome::Skipped("no bus (the EventBusName output, or --bus)".into());
        };
        let name = format!("shopping-smoke-{}", self.run_id);
        {
            let mut m = made(&self.shared);
            m.rule = Some((bus.clone(), name.clone()));
            m.queue_name = Some(name.clone());
        }
        let (aws, shared, account) = (self.aws.clone(), self.shared.clone(), self.opts.account.clone());
        let (rule_name, bus_name) = (name.clone(), bus.clone());
        let created =
            shielded(&self.shared, async move { subscribe(&aws, &shared, &bus_name, &rule_name, &account).await })
                .await;
        match created {
            Ok(queue_url) => {
                self.queue_url = Some(queue_url);
                Outcome::Ok(format!("rule {name} on bus {bus} ({EVENT} of {}), into queue {name}", self.opts.account))
            }
            Err(e) => {
                let cause = if e.contains("ResourceNotFound") || e.contains("does not exist") {
                    format!("no bus {bus} in {} (the EventBusName output, or --bus)", self.aws.region())
                } else if e.contains("AccessDenied") || e.contains("not authorized") {
                    "the credentials may not manage rules and queues (events:PutRule, PutTargets, sqs:CreateQueue, …)"
                        .into()
                } else {
                    "EventBridge or SQS refused the temporary subscription".into()
                };
                failed(e, cause)
            }
        }
    }

    /// A write to the order (its courier), then its `shopping_order_update` read back from the
    /// temporary queue; the write is repeated while the new rule may still be settling.
    pub(super) async fn check_event(&mut self) -> Outcome {
        let (Some(order), Some(queue)) = (&self.order, self.queue_url.clone()) else {
            return Outcome::Skipped("needs an order and the event subscription".into());
        };
        let (id, order_id) = (order.id.clone(), order.order_id.clone());
        let path = format!("/shopping/orders/{order_id}");
        let started = Instant::now();
        let mut writes = 0u32;
        let mut last_write = started;
        let mut others = 0usize;
        loop {
            if writes == 0 || last_write.elapsed() >= EVENT_REWRITE_EVERY {
                writes += 1;
                last_write = Instant::now();
                let courier = json!({"courier_id": format!("smoke-{writes}")});
                match self.call(Method::PUT, &path, Some(courier)).await {
                    Ok(a) if a.ok() => {}
                    Ok(a) => return self.api_failure(&a, "orders"),
                    Err(e) => return failed(e, "the API stopped answering"),
                }
            }
            // Short polls, a few a second: a long poll would hold the emulator of the stack on
            // a laptop, which serves one request at a time, and on AWS this costs a few
            // hundred requests a run at most.
            tokio::time::sleep(Duration::from_millis(200)).await;
            let received = self.aws.sqs.receive_message().queue_url(&queue).max_number_of_messages(10).send().await;
            let messages = match received {
                Ok(r) => r.messages.unwrap_or_default(),
                Err(e) => return failed(sdk_error(e), "the temporary queue cannot be read (sqs:ReceiveMessage)"),
            };
            for m in messages {
                let event: Option<Value> = m.body().and_then(|b| serde_json::from_str(b).ok());
                let mine = event.as_ref().is_some_and(|e| {
                    e.get("detail-type").and_then(Value::as_str) == Some(EVENT)
                        && e.pointer("/detail/order/id").and_then(Value::as_str) == Some(id.as_str())
                });
                if !mine {
                    others += 1;
                    continue;
                }
                let Some(event) = event else { continue };
                let took = started.elapsed().as_secs_f64();
                let source = format!("shopping.{}", self.opts.account);
                let resources = json!([format!("shopping:account/{}", self.opts.account)]);
                if event.get("source").and_then(Value::as_str) != Some(source.as_str())
                    || event.get("resources") != Some(&resources)
                {
                    let saw = format!(
                        "source {:?}, resources {}",
                        event.get("source"),
                        event.get("resources").cloned().unwrap_or_default()
                    );
                    return failed(
                        saw,
                        "the publisher puts events with another source or resources than README documents",
                    );
                }
                self.event = Some(event);
                return Outcome::Ok(format!("{EVENT} of order {order_id} in the queue {took:.1} s after the write"));
            }
            if started.elapsed() >= EVENT_WITHIN {
                let failures = match self.output("PipelineFailureQueueUrl") {
                    Some(url) => self.aws.queue_depth(url).await,
                    None => None,
                };
                let saw = format!(
                    "no {EVENT} of order {order_id} within {} s of {writes} writes ({others} other messages)",
                    EVENT_WITHIN.as_secs()
                );
                let stack = self.stack_name();
                let cause = match failures {
                    Some(n) if n > 0 => format!(
                        "the failure queue holds {n} messages: the publisher cannot put events on the bus \
                         (events:PutEvents; its log, /shopping/{stack}/publisher)"
                    ),
                    _ => format!(
                        "the publisher does not publish: its stream mapping is disabled or failing (its log, \
                         /shopping/{stack}/publisher), or the bus is not the one it publishes to (--bus)"
                    ),
                };
                return failed(saw, cause);
            }
        }
    }

    pub(super) async fn check_schema(&self) -> Outcome {
        let Some(event) = &self.event else {
            return Outcome::Skipped("needs the event".into());
        };
        let detail = event.get("detail").cloned().unwrap_or_default();
        let registry = self.output("EventSchemaRegistryName").map(str::to_owned);
        let registered = match &registry {
            Some(r) => self.aws.describe_schema(r, EVENT).await.map(|s| (r.clone(), s)),
            None => Err("no EventSchemaRegistryName output".into()),
        };
        let (schema, source) = match &registered {
            Ok((name, schema)) => (detail_schema(Some(schema)), format!("the {EVENT} schema of registry {name}")),
            Err(why) => (detail_schema(None), format!("events/schemas/{EVENT}.json (no registry answered: {why})")),
        };
        let schema = match schema {
            Ok(schema) => schema,
            Err(e) => return failed(format!("{source}: {e}"), "the schema is not one smoke can use"),
        };
        let errors = mismatches(&schema, &detail);
        if errors.is_empty() {
            Outcome::Ok(format!("its detail matches {source}"))
        } else {
            failed(
                errors.join("; "),
                format!("the published event does not match {source}: the publisher and the schema disagree"),
            )
        }
    }
}

/// The schema of an event's `detail`: the registered schema's `detail` property (the
/// registry holds the whole EventBridge event, in Draft 4), or `events/schemas`' own.
fn detail_schema(registered: Option<&Value>) -> Result<Value, String> {
    match registered {
        Some(schema) => schema
            .pointer("/properties/detail")
            .cloned()
            .ok_or_else(|| "the registered schema has no properties.detail".into()),
        None => serde_json::from_str(EVENT_SCHEMA).map_err(|e| format!("not JSON: {e}")),
    }
}

/// The first few ways `detail` breaks the schema, each with where.
fn mismatches(schema: &Value, detail: &Value) -> Vec<String> {
    schema::errors(schema, detail).into_iter().take(3).collect()
}

/// The temporary subscription: a rule on `bus` for the smoke account's order updates, a
/// queue that takes messages from that rule only (the bus delivers nothing to a queue whose
/// policy does not let it), the rule's target. Records each part in `shared` as it is made.
async fn subscribe(aws: &Aws, shared: &Shared, bus: &str, name: &str, account: &str) -> Result<String, String> {
    use aws_sdk_sqs::types::QueueAttributeName;
    let pattern = json!({"source": [format!("shopping.{account}")], "detail-type": [EVENT]});
    let rule = aws
        .events
        .put_rule()
        .name(name)
        .event_bus_name(bus)
        .event_pattern(pattern.to_string())
        .description("shopping-local smoke: removed when the run ends")
        .send()
        .await
        .map_err(|e| format!("PutRule: {}", sdk_error(e)))?;
    made(shared).rule_made = true;
    let rule_arn = rule.rule_arn.ok_or("PutRule answered no RuleArn")?;
    let policy = json!({"Version": "2012-10-17", "Statement": [{
        "Effect": "Allow", "Principal": {"Service": "events.amazonaws.com"}, "Action": "sqs:SendMessage",
        "Resource": "*", "Condition": {"ArnEquals": {"aws:SourceArn": rule_arn}}}]});
    let queue = aws
        .sqs
        .create_queue()
        .queue_name(name)
        .attributes(QueueAttributeName::Policy, policy.to_string())
        // Anything left unread goes within ten minutes, even if the clean-up never runs.
        .attributes(QueueAttributeName::MessageRetentionPeriod, "600")
        .send()
        .await
        .map_err(|e| format!("CreateQueue: {}", sdk_error(e)))?;
    let url = queue.queue_url.ok_or("CreateQueue answered no QueueUrl")?;
    made(shared).queue_url = Some(url.clone());
    let attributes = aws
        .sqs
        .get_queue_attributes()
        .queue_url(&url)
        .attribute_names(QueueAttributeName::QueueArn)
        .send()
        .await
        .map_err(|e| format!("GetQueueAttributes: {}", sdk_error(e)))?;
    let arn = attributes
        .attributes()
        .and_then(|a| a.get(&QueueAttributeName::QueueArn))
        .cloned()
        .ok_or("GetQueueAttributes answered no QueueArn")?;
    let target = aws_sdk_eventbridge::types::Target::builder()
        .id("smoke")
        .arn(arn)
        .build()
        .map_err(|e| format!("the target: {e}"))?;
    made(shared).target = true;
    let put = aws
        .events
        .put_targets()
        .rule(name)
        .event_bus_name(bus)
        .targets(target)
        .send()
        .await
        .map_err(|e| format!("PutTargets: {}", sdk_error(e)))?;
    if put.failed_entry_count > 0 {
        let why = put.failed_entries().first().and_then(|f| f.error_message.clone()).unwrap_or_default();
        return Err(format!("PutTargets: {why}"));
    }
    Ok(url)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::platform::smoke::SMOKE_ACCOUNT;

    /// The registry's `shopping_order_update` as the template registers it (one line of
    /// YAML, single-quoted).
    fn registered() -> Value {
        let template = include_str!("../../../../infra/template.yaml");
        let from = template.find(&format!("SchemaName: {EVENT}")).unwrap();
        let line = template[from..].lines().find(|l| l.trim_start().starts_with("Content: '")).unwrap();
        let quoted = line.trim().trim_start_matches("Content: '").trim_end_matches('\'');
        serde_json::from_str(&quoted.replace("''", "'")).unwrap()
    }

    fn detail() -> Value {
        let empty = json!([]);
        json!({
            "id": "ev-1", "event": EVENT, "account_id": SMOKE_ACCOUNT, "created_at": "2026-12-07T08:00:00Z",
            "version": 2, "schema_version": "1",
            "order": {"id": "o-1", "created_at": "2026-12-07T08:00:00Z", "version": 2, "status": "open",
                      "items": empty, "discounts": empty, "sessions": empty, "authorizations": empty,
                      "captures": empty, "refunds": empty, "cancellations": empty, "comments": empty,
                      "_links": empty},
        })
    }

    #[test]
    fn a_detail_is_held_to_the_registry_schema_and_to_events_schemas_alike() {
        for source in [Some(registered()), None] {
            let schema = detail_schema(source.as_ref()).unwrap();
            assert_eq!(mismatches(&schema, &detail()), Vec::<String>::new());
            let mut broken = detail();
            broken["created_at"] = json!("yesterday");
            broken["order"].as_object_mut().unwrap().remove("items");
            let errors = mismatches(&schema, &broken);
            assert_eq!(errors.len(), 2, "{errors:?}");
            assert!(errors.iter().any(|e| e.contains("/order")), "{errors:?}");
        }
        assert!(detail_schema(Some(&json!({"type": "object"}))).unwrap_err().contains("properties.detail"));
    }
}
