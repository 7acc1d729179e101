//! The AWS delivery path on the local emulator, one hop at a time as Lambda would drive it:
//! API writes on DynamoDB → the table's stream → the publisher → EventBridge → a rule → the
//! SQS delivery queue → the deliverer (fan-out into one job message per subscription) → the
//! same queue → the deliverer again → receivers on 127.0.0.1. A receiver that fails is
//! retried with the same `webhook-id`; one that always fails ends in the dead-letter queue,
//! without holding up the other.

mod common;

use aws_lambda_events_sqs::{SqsEvent, SqsMessage};
use aws_sdk_sqs::types::{MessageSystemAttributeName, QueueAttributeName};
use common::{drafts_path, item, receiver, verify, Api, AID, T0};
use infra::bus::EventBus;
use infra::clock::ManualClock;
use infra::queue::SqsQueue;
use lambda_http::aws_lambda_events::event::sqs as aws_lambda_events_sqs;
use serde_json::{json, Value};
use std::collections::{HashMap, HashSet};
use std::sync::Arc;

/// The bus, its rule and the queues, named after the test's process.
struct Wiring {
    bus: EventBus,
    queue: Arc<SqsQueue>,
    url: String,
    dlq_url: String,
}

async fn wire(endpoint: &str) -> Wiring {
    let name = format!("shopping-path-{}", std::process::id());
    let bus = EventBus::emulator(endpoint, &name);
    let sqs = SqsQueue::emulator(endpoint, "");
    let sqs = sqs.client();
    let dlq_url = sqs.create_queue().queue_name(format!("{name}-dlq")).send().await.unwrap().queue_url.unwrap();
    let arn_of = |url: String| async move {
        let attrs = sqs
            .get_queue_attributes()
            .queue_url(url)
            .attribute_names(QueueAttributeName::QueueArn)
            .send()
            .await
            .unwrap();
        attrs.attributes.unwrap()[&QueueAttributeName::QueueArn].clone()
    };
    let dlq_arn = arn_of(dlq_url.clone()).await;
    let redrive =
        json!({"deadLetterTargetArn": dlq_arn, "maxReceiveCount": domain::hooks::AWS_MAX_ATTEMPTS}).to_string();
    let url = sqs
        .create_queue()
        .queue_name(&name)
        .attributes(QueueAttributeName::RedrivePolicy, redrive)
        .send()
        .await
        .unwrap()
        .queue_url
        .unwrap();
    let arn = arn_of(url.clone()).await;

    let eb = bus.client();
    eb.create_event_bus().name(&name).send().await.unwrap();
    // The rule the template deploys: every shopping event of every account.
    let pattern = json!({"source": [{"prefix": "shopping."}], "detail-type": [{"prefix": "shopping_"}]});
    eb.put_rule().name("to-deliverer").event_bus_name(&name).event_pattern(pattern.to_string()).send().await.unwrap();
    let target = aws_sdk_eventbridge::types::Target::builder().id("delivery-queue").arn(arn).build().unwrap();
    eb.put_targets().rule("to-deliverer").event_bus_name(&name).targets(target).send().await.unwrap();
    let queue = Arc::new(SqsQueue::emulator(endpoint, &url));
    Wiring { bus, queue, url, dlq_url }
}

/// Receives what is visible, as the Lambda event source would hand it over.
async fn receive(sqs: &aws_sdk_sqs::Client, url: &str) -> SqsEvent {
    let out = sqs
        .receive_message()
        .queue_url(url)
        .max_number_of_messages(10)
        .message_system_attribute_names(MessageSystemAttributeName::All)
        .send()
        .await
        .unwrap();
    let mut event = SqsEvent::default();
    for m in out.messages.unwrap_or_default() {
        let mut msg = SqsMessage::default();
        msg.message_id = m.message_id;
        msg.receipt_handle = m.receipt_handle;
        msg.body = m.body;
        msg.attributes =
            m.attributes.unwrap_or_default().into_iter().map(|(k, v)| (k.as_str().to_owned(), v)).collect();
        event.records.push(msg);
    }
    event
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_write_travels_stream_bus_queue_and_deliverer_to_the_receiver() {
    let endpoint = common::emulator_endpoint();
    let clock = Arc::new(ManualClock::at(T0));
    let client = infra::dynamo::emulator_client(&endpoint);
    let table = format!("shopping-path-{}", std::process::id());
    infra::dynamo::create_table(&client, &table).await.unwrap();
    let store: Arc<dyn infra::Store> = Arc::new(infra::dynamo::DynamoStore::new(client, table.clone(), clock.clone()));
    let w = wire(&endpoint).await;
    // The hooks Lambda queues its pings on the SQS queue.
    let state = Api::state(store.clone(), clock.clone()).with(|s| s.jobs = w.queue.clone());
    let api = Api::with_state(state.clone(), clock.clone(), None);
    let (port, seen) = receiver().await;
    let hooks = api.token_for(AID, "admin:hooks", 3600);
    let mut subscribe = |path: &str| {
        // The upstream Hooks API's shape, as a merchant's existing client sends it.
        let body = json!({"events": domain::webhook::TYPES, "config": {"url": format!("http://127.0.0.1:{port}{path}"),
            "content_type": "application/json", "insecure_ssl": 0, "secret": {"type": "HMAC-SHA1", "value": "whsec-aws"}}});
        let (api, hooks) = (&api, hooks.clone());
        async move {
            let r = api
                .call_as(Some(&hooks), "POST", &format!("/v1/accounts/{AID}/hooks/subscriptions"), Some(body), None)
                .await;
            assert_eq!(r.status, 200, "{}", r.body);
            r.body["id"].as_str().unwrap().to_owned()
        }
    };
    let flaky = subscribe("/flaky").await;
    let dead = subscribe("/dead").await;
    let _ = &mut subscribe;

    // writes: a draft, an item, completion
    let d =
        api.call("POST", &drafts_path(), Some(json!({"order": {"currency": "NOK", "items": [item(1, 100)]}}))).await;
    let draft = format!("{}/{}", drafts_path(), d.body["id"].as_str().unwrap());
    assert_eq!(api.call("POST", &format!("{draft}/items"), Some(item(2, 50))).await.status, 200);
    assert_eq!(api.call("PUT", &format!("{draft}/complete"), None).await.status, 200);

    // the stream → the publisher → the bus
    let records = common::stream_event(&endpoint, &table).await;
    let mut published = 0;
    for r in records.records.iter().filter(|r| r.event_name != "REMOVE") {
        let image = infra::dynamo::item_from_image(r.change.new_image.clone()).unwrap();
        published += functions::workers::publisher::webhook_events(store.as_ref(), &image).await.unwrap().len();
    }
    assert!(published >= 3, "draft add, update, complete and the order's events");
    let response = functions::workers::publisher::handle_stream(store.as_ref(), &w.bus, records).await;
    assert!(response.batch_item_failures.is_empty());

    // The deliverer, round after round as the event source would run it: messages it is done
    // with are deleted; the others come back after their back-off, which the test skips.
    let web = infra::webhook::WebhookClient::new(Arc::new(infra::webhook::SystemResolver), true).unwrap();
    let sqs = w.queue.client();
    let mut rounds = 0;
    loop {
        let batch = receive(sqs, &w.url).await;
        if batch.records.is_empty() {
            break;
        }
        rounds += 1;
        assert!(rounds < 40, "the queue never drains");
        let receipts: HashMap<String, String> =
            batch.records.iter().map(|m| (m.message_id.clone().unwrap(), m.receipt_handle.clone().unwrap())).collect();
        let answer = functions::workers::deliverer::handle_sqs(&state, &web, &w.queue, batch).await;
        let again: HashSet<String> = answer.batch_item_failures.iter().map(|f| f.item_identifier.clone()).collect();
        for (id, receipt) in receipts {
            if again.contains(&id) {
                sqs.change_message_visibility()
                    .queue_url(&w.url)
                    .receipt_handle(receipt)
                    .visibility_timeout(0)
                    .send()
                    .await
                    .unwrap();
            } else {
                sqs.delete_message().queue_url(&w.url).receipt_handle(receipt).send().await.unwrap();
            }
        }
    }

    let seen = seen.lock().unwrap().clone();
    for (_, headers, body) in &seen {
        verify("whsec-aws", headers, body);
        // the upstream envelope: the account, the type, the delivery id and the resource on top
        let v: Value = serde_json::from_slice(body).unwrap();
        assert_eq!(v["account_id"], AID);
        assert_eq!(v["event"], headers["event"].to_str().unwrap());
        assert_eq!(v["event_delivery"], headers["event-delivery"].to_str().unwrap());
        assert!(v.get("data").is_none(), "{v}");
        assert!(["order", "draft", "hook"].iter().any(|k| v[k]["id"].is_string()), "{v}");
    }
    let ids = |path: &str| -> HashMap<String, usize> {
        let mut m = HashMap::new();
        for (_, h, _) in seen.iter().filter(|(p, _, _)| p == path) {
            *m.entry(h["webhook-id"].to_str().unwrap().to_owned()).or_default() += 1;
        }
        m
    };
    let events = |path: &str| -> HashSet<String> {
        seen.iter().filter(|(p, _, _)| p == path).map(|(_, h, _)| h["event"].to_str().unwrap().to_owned()).collect()
    };
    let wanted: HashSet<String> =
        ["ping", "shopping_draft_add", "shopping_draft_update", "shopping_draft_complete", "shopping_order_event_add"]
            .iter()
            .map(|s| s.to_string())
            .collect();
    assert!(wanted.is_subset(&events("/flaky")), "{:?}", events("/flaky"));
    // /flaky failed twice, then took everything: two attempts more than events, and a retry
    // carries the same id and bytes
    let flaky_ids = ids("/flaky");
    assert_eq!(flaky_ids.len(), published + 1, "every event and the ping, each its own id");
    assert_eq!(flaky_ids.values().sum::<usize>(), published + 3, "{flaky_ids:?}");
    for (id, _) in flaky_ids.iter().filter(|(_, n)| **n > 1) {
        let bodies: HashSet<&[u8]> = seen
            .iter()
            .filter(|(p, h, _)| p == "/flaky" && h["webhook-id"] == id.as_str())
            .map(|(_, _, b)| b.as_ref())
            .collect();
        assert_eq!(bodies.len(), 1, "the same bytes on every attempt");
    }
    // /dead was tried exactly eight times per event, then its messages went to the DLQ
    let dead_ids = ids("/dead");
    assert_eq!(dead_ids.len(), published + 1);
    assert!(dead_ids.values().all(|n| *n == domain::hooks::AWS_MAX_ATTEMPTS as usize), "{dead_ids:?}");
    let mut dead_letters = Vec::new();
    loop {
        let batch = receive(sqs, &w.dlq_url).await;
        if batch.records.is_empty() {
            break;
        }
        dead_letters.extend(batch.records);
    }
    assert_eq!(dead_letters.len(), published + 1, "every job of the dead receiver is dead-lettered");
    for m in &dead_letters {
        let job: domain::hooks::Pending = serde_json::from_str(m.body.as_deref().unwrap()).unwrap();
        assert_eq!(job.hook_id, dead);
    }
    // the deliveries list tells the story
    let list = api
        .call_as(Some(&hooks), "GET", &format!("/v1/accounts/{AID}/hooks/subscriptions/{dead}/deliveries"), None, None)
        .await;
    let outcomes: Vec<&str> = list.body.as_array().unwrap().iter().map(|d| d["outcome"].as_str().unwrap()).collect();
    assert!(outcomes.contains(&"dead") && outcomes.contains(&"failed"), "{outcomes:?}");
    // recovery queues every dead delivery of the window again, once each, on the queue
    let recover = format!("/v1/accounts/{AID}/hooks/subscriptions/{dead}/recover");
    let r = api.call_as(Some(&hooks), "POST", &recover, Some(json!({"since": "2020-01-01T00:00:00Z"})), None).await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.body["queued"], published + 1, "{}", r.body);
    let mut requeued = Vec::new();
    loop {
        let batch = receive(sqs, &w.url).await;
        if batch.records.is_empty() {
            break;
        }
        requeued.extend(batch.records);
    }
    assert_eq!(requeued.len(), published + 1);
    let jobs: HashSet<String> = requeued
        .iter()
        .map(|m| serde_json::from_str::<domain::hooks::Pending>(m.body.as_deref().unwrap()).unwrap().event_delivery)
        .collect();
    assert_eq!(jobs.len(), published + 1, "each delivery once");
    let _ = (flaky, Value::Null);
}
