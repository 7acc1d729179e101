//! Webhooks are sent once however often AWS hands a message on: the deliverer Lambda's
//! handler (`handle_sqs`) on the local emulator's DynamoDB table and SQS queue, fed the
//! copies AWS may make — a job message twice, one after the other or to two deliverers at
//! once, a bus event twice — posts each event to each subscription once, records it once and
//! meters it once; a failed attempt is retried until delivered, once; a merchant's
//! redelivery still posts again. Receivers listen on 127.0.0.1.

use aws_sdk_sqs::types::MessageSystemAttributeName;
use axum::body::Body;
use axum::http::{HeaderMap, Request, StatusCode};
use functions::edge::auth::{sign, Auth, Claims};
use functions::edge::state::AppState;
use functions::metering::{Registry, Sink};
use functions::workers::deliverer::handle_sqs;
use infra::clock::ManualClock;
use infra::queue::SqsQueue;
use infra::webhook::{SystemResolver, WebhookClient};
use lambda_http::aws_lambda_events::event::sqs::{SqsBatchResponse, SqsEvent, SqsMessage};
use serde_json::{json, Value};
use std::collections::HashSet;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tower::ServiceExt;

const AID: &str = "T12345678";
const SECRET: &[u8] = b"deliver-once-secret-deliver-once!";
const T0: i64 = 1_800_000_000;

fn endpoint() -> String {
    std::env::var("SHOPPING_TEST_DYNAMODB_ENDPOINT").expect(
        "SHOPPING_TEST_DYNAMODB_ENDPOINT is not set: run the suite with ./tests/run.sh, which starts the local AWS emulator",
    )
}

/// One request a receiver got: its path and `event-delivery` header.
type Got = Arc<Mutex<Vec<(String, String)>>>;

/// Receivers on 127.0.0.1: `/slow/…` answers 200 after 400 ms (so two copies overlap),
/// `/flaky/…` fails its first event (not a ping) and takes the rest, anything else answers
/// 200.
async fn receivers() -> (u16, Got) {
    let got: Got = Arc::default();
    let failed_once = Arc::new(AtomicU32::new(0));
    let g = got.clone();
    let app = axum::Router::new().fallback(move |uri: axum::http::Uri, headers: HeaderMap| {
        let (g, failed_once) = (g.clone(), failed_once.clone());
        async move {
            let path = uri.path().to_owned();
            let id = headers.get("event-delivery").and_then(|v| v.to_str().ok()).unwrap_or("").to_owned();
            g.lock().expect("got").push((path.clone(), id));
            if path.starts_with("/slow") {
                tokio::time::sleep(Duration::from_millis(400)).await;
            }
            let ping = headers.get("event").is_some_and(|e| e == "ping");
            if path.starts_with("/flaky") && !ping && failed_once.fetch_add(1, Ordering::SeqCst) == 0 {
                return StatusCode::SERVICE_UNAVAILABLE;
            }
            StatusCode::OK
        }
    });
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let port = listener.local_addr().expect("addr").port();
    tokio::spawn(async move { axum::serve(listener, app).await });
    (port, got)
}

/// A stack of one: a table and a delivery queue of its own on the emulator, the deliverer's
/// state over them (usage kept in memory, to read the meter), and the receivers.
struct Stack {
    state: AppState,
    meter: Arc<Registry>,
    queue: Arc<SqsQueue>,
    url: String,
    web: WebhookClient,
    router: axum::Router,
    port: u16,
    got: Got,
}

impl Stack {
    async fn new() -> Self {
        let endpoint = endpoint();
        let name = format!("deliver-once-{}", uuid::Uuid::new_v4().simple());
        let ddb = infra::dynamo::emulator_client(&endpoint);
        infra::dynamo::create_table(&ddb, &name).await.expect("table");
        let clock = Arc::new(ManualClock::at(T0));
        let store: Arc<dyn infra::Store> = Arc::new(infra::dynamo::DynamoStore::new(ddb, name.clone(), clock.clone()));
        let sqs = SqsQueue::emulator(&endpoint, "");
        let url = sqs.client().create_queue().queue_name(&name).send().await.expect("queue").queue_url.expect("url");
        let queue = Arc::new(SqsQueue::emulator(&endpoint, &url));
        let meter = Arc::new(Registry::default());
        let state = AppState::new(store, clock, Auth::hs256(SECRET), queue.clone(), Sink::Registry(meter.clone()))
            .allow_loopback(true);
        let web = WebhookClient::new(Arc::new(SystemResolver), true).expect("webhook client");
        let router = functions::app(state.clone());
        let (port, got) = receivers().await;
        Self { state, meter, queue, url, web, router, port, got }
    }

    fn sqs(&self) -> &aws_sdk_sqs::Client {
        self.queue.client()
    }

    /// A subscription to `shopping_draft_add` at `path` of the receivers; its id.
    async fn subscribe(&self, path: &str) -> String {
        let body = json!({"events": ["shopping_draft_add"], "config": {"url": format!("http://127.0.0.1:{}{path}", self.port)}});
        let (status, sub) = self.call("POST", &format!("/v1/accounts/{AID}/hooks/subscriptions"), Some(body)).await;
        assert_eq!(status, StatusCode::OK, "{sub}");
        // Its ping went onto the queue: taken off, so each test counts only its own event.
        self.drain().await;
        self.got.lock().expect("got").clear();
        sub["id"].as_str().expect("id").to_owned()
    }

    async fn call(&self, method: &str, path: &str, body: Option<Value>) -> (StatusCode, Value) {
        let claims = Claims { aid: AID.into(), scope: "admin:hooks".into(), sub: "tester".into(), exp: T0 + 3600 };
        let req = Request::builder()
            .method(method)
            .uri(path)
            .header("authorization", format!("Bearer {}", sign(&claims, SECRET).expect("sign")))
            .header("content-type", "application/json")
            .body(body.map_or_else(Body::empty, |b| Body::from(b.to_string())))
            .expect("request");
        let res = self.router.clone().oneshot(req).await.expect("infallible");
        let status = res.status();
        let bytes = axum::body::to_bytes(res.into_body(), 1 << 20).await.expect("body");
        (status, if bytes.is_empty() { Value::Null } else { serde_json::from_slice(&bytes).expect("JSON") })
    }

    /// A `shopping_draft_add` event as the publisher puts it on the bus.
    fn event(&self) -> Value {
        json!({
            "id": format!("evt_{}", uuid::Uuid::new_v4().simple()),
            "event": "shopping_draft_add",
            "account_id": AID,
            "created_at": "2027-01-15T08:00:00.000Z",
            "version": 1,
            "schema_version": "2",
            "draft": {"id": "d-1"},
        })
    }

    /// The bus event as the rule's SQS target receives it.
    fn bus_message(&self, event: &Value) -> String {
        json!({"version": "0", "id": uuid::Uuid::new_v4().to_string(), "detail-type": "shopping_draft_add",
            "source": format!("shopping.{AID}"), "account": "000000000000", "time": "2027-01-15T08:00:00Z",
            "region": "us-east-1", "resources": [], "detail": event})
        .to_string()
    }

    /// The job message of `event` to subscription `hid`, as the fan-out queues it.
    async fn job(&self, hid: &str, event: &Value) -> String {
        let (sub, _) = functions::app::subscriptions::get(self.state.store.as_ref(), AID, hid).await.expect("sub");
        let ev: domain::webhook::WebhookEvent = serde_json::from_value(event.clone()).expect("event");
        serde_json::to_string(&functions::app::subscriptions::job(&sub, &ev, T0 * 1000)).expect("job")
    }

    async fn send(&self, body: &str) {
        self.sqs().send_message().queue_url(&self.url).message_body(body).send().await.expect("send");
    }

    /// What is visible, as the Lambda event source hands it over.
    async fn receive(&self) -> SqsEvent {
        let out = self
            .sqs()
            .receive_message()
            .queue_url(&self.url)
            .max_number_of_messages(10)
            .message_system_attribute_names(MessageSystemAttributeName::All)
            .send()
            .await
            .expect("receive");
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

    /// What the event source does with an answer: deletes the messages done with; the
    /// others come back, here at once (the test skips their pauses).
    async fn settle(&self, batch: &SqsEvent, answer: &SqsBatchResponse) {
        let again: HashSet<&str> = answer.batch_item_failures.iter().map(|f| f.item_identifier.as_str()).collect();
        for m in &batch.records {
            let (id, receipt) = (m.message_id.as_deref().unwrap_or(""), m.receipt_handle.clone().unwrap_or_default());
            if again.contains(id) {
                let back = self.sqs().change_message_visibility().queue_url(&self.url).receipt_handle(receipt);
                back.visibility_timeout(0).send().await.expect("visible again");
            } else {
                let _ = self.sqs().delete_message().queue_url(&self.url).receipt_handle(receipt).send().await;
            }
        }
    }

    /// Runs the deliverer over the queue until it is empty; answers how many batches it took.
    async fn drain(&self) -> usize {
        let mut rounds = 0;
        loop {
            let batch = self.receive().await;
            if batch.records.is_empty() {
                return rounds;
            }
            rounds += 1;
            assert!(rounds < 30, "the queue never drains");
            let answer = handle_sqs(&self.state, &self.web, &self.queue, batch.clone()).await;
            self.settle(&batch, &answer).await;
        }
    }

    /// The requests the receiver at `path` got.
    fn posts(&self, path: &str) -> Vec<String> {
        self.got.lock().expect("got").iter().filter(|(p, _)| p == path).map(|(_, id)| id.clone()).collect()
    }

    /// The subscription's deliveries list, but its ping's: (event_delivery, outcome) of each
    /// attempt.
    async fn deliveries(&self, hid: &str) -> Vec<(String, String)> {
        let (status, list) =
            self.call("GET", &format!("/v1/accounts/{AID}/hooks/subscriptions/{hid}/deliveries"), None).await;
        assert_eq!(status, StatusCode::OK, "{list}");
        let row = |d: &Value| {
            (d["event_delivery"].as_str().unwrap_or("").to_owned(), d["outcome"].as_str().unwrap_or("").to_owned())
        };
        list.as_array().expect("array").iter().filter(|d| d["event"] != "ping").map(row).collect()
    }

    fn metered(&self) -> u64 {
        self.meter.get(AID).webhooks
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_job_message_handled_twice_posts_once() {
    let s = Stack::new().await;
    let hid = s.subscribe("/ok").await;
    let metered = s.metered();
    s.send(&s.job(&hid, &s.event()).await).await;
    let batch = s.receive().await;
    assert_eq!(batch.records.len(), 1);
    let answer = handle_sqs(&s.state, &s.web, &s.queue, batch.clone()).await;
    assert!(answer.batch_item_failures.is_empty());
    // SQS hands the same message on again (its deletion lost, or a copy): done with at once.
    let again = handle_sqs(&s.state, &s.web, &s.queue, batch.clone()).await;
    assert!(again.batch_item_failures.is_empty(), "a copy of a delivered job is acknowledged");
    s.settle(&batch, &again).await;
    // And the same job as a message of its own (the fan-out ran twice).
    s.send(batch.records[0].body.as_deref().expect("body")).await;
    s.drain().await;

    let posts = s.posts("/ok");
    assert_eq!(posts.len(), 1, "one POST: {posts:?}");
    let records = s.deliveries(&hid).await;
    assert_eq!(records, vec![(posts[0].clone(), "delivered".to_owned())], "one delivery record");
    assert_eq!(s.metered() - metered, 1, "one attempt metered");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_copies_handled_at_once_post_once() {
    let s = Stack::new().await;
    let hid = s.subscribe("/slow").await;
    let metered = s.metered();

    // Two copies of one job in one batch: the handler runs them at once.
    let job = s.job(&hid, &s.event()).await;
    s.send(&job).await;
    s.send(&job).await;
    let mut batch = s.receive().await;
    while batch.records.len() < 2 {
        let more = s.receive().await;
        assert!(!more.records.is_empty(), "both copies are visible");
        batch.records.extend(more.records);
    }
    let answer = handle_sqs(&s.state, &s.web, &s.queue, batch.clone()).await;
    assert_eq!(answer.batch_item_failures.len(), 1, "the copy that found the guard claimed is seen again");
    s.settle(&batch, &answer).await;
    s.drain().await;
    assert_eq!(s.posts("/slow").len(), 1, "{:?}", s.posts("/slow"));

    // One message handed to two deliverers at once (the same message id, as SQS may).
    s.send(&s.job(&hid, &s.event()).await).await;
    let batch = s.receive().await;
    let (a, b) = tokio::join!(
        handle_sqs(&s.state, &s.web, &s.queue, batch.clone()),
        handle_sqs(&s.state, &s.web, &s.queue, batch.clone())
    );
    assert_eq!(a.batch_item_failures.len() + b.batch_item_failures.len(), 1, "one of the two waits");
    s.settle(&batch, &a).await;
    s.drain().await;

    let posts = s.posts("/slow");
    assert_eq!(posts.len(), 2, "one POST per event: {posts:?}");
    assert_eq!(posts.iter().collect::<HashSet<_>>().len(), 2);
    assert_eq!(s.deliveries(&hid).await.len(), 2, "one record per event");
    assert_eq!(s.metered() - metered, 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_bus_event_handled_twice_posts_once_per_subscription() {
    let s = Stack::new().await;
    let a = s.subscribe("/ok/a").await;
    let b = s.subscribe("/ok/b").await;
    let metered = s.metered();
    // The same event on the bus twice (a duplicated stream record published it again, or
    // the rule ran twice): two bus messages, each fanned out into a job per subscription.
    let event = s.event();
    s.send(&s.bus_message(&event)).await;
    s.send(&s.bus_message(&event)).await;
    s.drain().await;

    assert_eq!(s.posts("/ok/a").len(), 1, "{:?}", s.posts("/ok/a"));
    assert_eq!(s.posts("/ok/b").len(), 1, "{:?}", s.posts("/ok/b"));
    assert_eq!(s.deliveries(&a).await.len(), 1);
    assert_eq!(s.deliveries(&b).await.len(), 1);
    assert_eq!(s.metered() - metered, 2, "one attempt per subscription metered");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_failed_attempt_is_retried_until_delivered_once() {
    let s = Stack::new().await;
    let hid = s.subscribe("/flaky").await;
    let job = s.job(&hid, &s.event()).await;
    s.send(&job).await;
    let rounds = s.drain().await;
    assert_eq!(rounds, 2, "the failed attempt is seen again and made again");
    // A copy of the job arriving after the retry delivered it sends nothing.
    s.send(&job).await;
    s.drain().await;

    let posts = s.posts("/flaky");
    assert_eq!(posts.len(), 2, "the failed attempt and the retry: {posts:?}");
    assert_eq!(posts[0], posts[1], "the retry carries the same event-delivery");
    let mut outcomes: Vec<String> = s.deliveries(&hid).await.into_iter().map(|(_, o)| o).collect();
    outcomes.sort();
    assert_eq!(outcomes, ["delivered", "failed"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_redelivery_posts_again_once() {
    let s = Stack::new().await;
    let hid = s.subscribe("/ok").await;
    s.send(&s.job(&hid, &s.event()).await).await;
    s.drain().await;
    assert_eq!(s.posts("/ok").len(), 1);

    let (_, list) = s.call("GET", &format!("/v1/accounts/{AID}/hooks/subscriptions/{hid}/deliveries"), None).await;
    let first = list.as_array().expect("array").iter().find(|d| d["event"] == "shopping_draft_add").expect("delivered");
    let did = first["id"].as_str().expect("delivery id").to_owned();
    let redeliver = format!("/v1/accounts/{AID}/hooks/subscriptions/{hid}/deliveries/{did}/redeliver");
    let (status, body) = s.call("POST", &redeliver, None).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    // The redelivery's job, and a copy of it.
    let batch = s.receive().await;
    assert_eq!(batch.records.len(), 1, "the redelivery is queued");
    s.send(batch.records[0].body.as_deref().expect("body")).await;
    let answer = handle_sqs(&s.state, &s.web, &s.queue, batch.clone()).await;
    s.settle(&batch, &answer).await;
    s.drain().await;

    let posts = s.posts("/ok");
    assert_eq!(posts.len(), 2, "the merchant's redelivery is sent, once: {posts:?}");
    assert_eq!(posts[0], posts[1], "with the same event-delivery");
    assert_eq!(s.deliveries(&hid).await.len(), 2);
}
