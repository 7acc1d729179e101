//! The DynamoDB engine: items through `serde_dynamo`, conditions as condition expressions,
//! multi-item writes as one `TransactWriteItems`, TTL enforced on every read because
//! DynamoDB only deletes expired items eventually, and large documents stored deflated.

use crate::clock::Clock;
use crate::limits::Limit;
use crate::port::{
    check_write, BoxError, Condition, Cursor, Index, Item, Key, Page, Query, SkCond, Store, StoreError, WriteOp,
};
use async_trait::async_trait;
use aws_sdk_dynamodb::error::{ProvideErrorMetadata, SdkError};
use aws_sdk_dynamodb::types::{
    AttributeDefinition, AttributeValue, BillingMode, ConditionCheck, Delete, GlobalSecondaryIndex, KeySchemaElement,
    KeyType, KeysAndAttributes, Projection, ProjectionType, Put, ReturnValuesOnConditionCheckFailure,
    ScalarAttributeType, StreamSpecification, StreamViewType, TimeToLiveSpecification, TransactWriteItem,
};
use aws_sdk_dynamodb::Client;
use std::collections::HashMap;
use std::sync::Arc;

type Attrs = HashMap<String, AttributeValue>;

/// Attempts of one DynamoDB call in all (the first and the SDK's retries). See [`retry_config`].
pub const MAX_ATTEMPTS: u32 = 8;

/// The DynamoDB client's retries: the SDK's standard mode (throttling and transient errors,
/// full-jitter exponential back-off, the retry quota that stops retry storms), with more
/// attempts and a much shorter first pause than its defaults (3 attempts, pauses from 1 s),
/// along AWS's DynamoDB guidance: "each AWS SDK implements an exponential backoff algorithm
/// for better flow control. [...] For example, up to 50 milliseconds before the first retry,
/// up to 100 milliseconds before the second, up to 200 milliseconds before third, and so on."
/// (Amazon DynamoDB Developer Guide, "Error retries and exponential backoff",
/// <https://docs.aws.amazon.com/amazondynamodb/latest/developerguide/Programming.Errors.html#Programming.Errors.RetryAndBackoff>).
///
/// Why these numbers: a throttle or a transient error is absorbed by the next attempt as a
/// rule, 25 ms later on average instead of 500 ms, so a few per cent of throttled calls cost
/// a request next to nothing; 8 attempts make a call fail only when 8 in a row are throttled
/// (at 5 % each, 4 in 10^11). Pauses stop growing at 1 s, so even the whole budget waits at
/// most 3.55 s (50 + 100 + … + 800 ms, then 1 s twice), inside the API functions' 10 s
/// timeout: past that the caller (a 503 with `Retry-After`, a stream batch or a queue message
/// seen again) retries more cheaply than a function held open. A `PutItem` retried after its
/// first attempt committed is recognised by its write id (`put_one`); a `TransactWriteItems`
/// carries the SDK's client request token, so its retries are idempotent.
pub fn retry_config() -> aws_sdk_dynamodb::config::retry::RetryConfig {
    aws_sdk_dynamodb::config::retry::RetryConfig::standard()
        .with_max_attempts(MAX_ATTEMPTS)
        .with_initial_backoff(std::time::Duration::from_millis(50))
        .with_max_backoff(std::time::Duration::from_secs(1))
}

/// Sets [`retry_config`] on a DynamoDB client's configuration.
fn retries(conf: aws_sdk_dynamodb::config::Builder) -> aws_sdk_dynamodb::config::Builder {
    conf.retry_config(retry_config())
}

/// `BatchGetItem` takes at most 100 keys a call...
const BATCH_GET_MAX: usize = 100;
/// ...and leaves keys unprocessed when throttled: retried this many times with back-off.
const BATCH_GET_ROUNDS: usize = 6;

pub struct DynamoStore {
    client: crate::aws::LazyClient<Client>,
    table: String,
    clock: Arc<dyn Clock>,
}

fn unavailable(e: impl Into<BoxError>) -> StoreError {
    StoreError::Unavailable(e.into())
}

/// What a DynamoDB failure means for the caller: see [`classify_service`]; a failure to
/// reach the service at all (timeout, connection) is unavailability.
fn classify<E>(e: SdkError<E, aws_sdk_dynamodb::config::http::HttpResponse>) -> StoreError
where
    E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
{
    match e {
        SdkError::ServiceError(se) => classify_service(se.into_err()),
        other => unavailable(other),
    }
}

fn s(v: &str) -> AttributeValue {
    AttributeValue::S(v.to_owned())
}

fn key_attrs(key: &Key) -> Attrs {
    HashMap::from([("pk".to_owned(), s(&key.pk)), ("sk".to_owned(), s(&key.sk))])
}

mod stored;
pub use stored::item_from_image;
use stored::{from_attrs, to_attrs};

/// The billed size of an item as this engine stores it (see [`crate::limits`]).
pub use crate::limits::{item_size, item_size_bounds};

fn invalid(e: impl std::fmt::Display) -> StoreError {
    StoreError::Invalid(e.to_string())
}

/// What a service error means for the caller: throttling and capacity errors are worth a
/// retry after a pause; a validation error is a limit of the request (permanent); anything
/// else is unavailability.
fn classify_service<E>(e: E) -> StoreError
where
    E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
{
    match e.code() {
        Some(
            "ProvisionedThroughputExceededException"
            | "ThrottlingException"
            | "RequestLimitExceeded"
            | "LimitExceededException",
        ) => StoreError::Throttled(Box::new(e)),
        Some("ValidationException") => {
            StoreError::Limit(Limit::Refused(e.message().unwrap_or("validation failed").to_owned()))
        }
        _ => unavailable(e),
    }
}

/// A condition expression with its names and values. Expired items count as absent.
struct Expr {
    text: String,
    names: HashMap<String, String>,
    values: Attrs,
}

fn condition(cond: Condition, now: i64) -> Expr {
    let mut names = HashMap::from([("#ttl".to_owned(), "ttl".to_owned())]);
    if !matches!(cond, Condition::VersionIs(_)) {
        names.insert("#pk".into(), "pk".into());
    }
    let mut values = HashMap::from([(":now".to_owned(), AttributeValue::N(now.to_string()))]);
    let alive = "(attribute_not_exists(#ttl) OR #ttl > :now)";
    let text = match cond {
        Condition::NotExists => "(attribute_not_exists(#pk) OR #ttl <= :now)".to_owned(),
        Condition::Exists => format!("attribute_exists(#pk) AND {alive}"),
        Condition::VersionIs(v) => {
            names.insert("#v".into(), "version".into());
            values.insert(":v".into(), AttributeValue::N(v.to_string()));
            format!("#v = :v AND {alive}")
        }
    };
    Expr { text, names, values }
}

/// Applies an optional condition to any write builder (`PutItem`, and the `Put`, `Delete` and
/// `ConditionCheck` of a transaction, which share these setters but no trait), asking for the
/// stored item back when the condition fails.
macro_rules! conditioned {
    ($builder:expr, $expr:expr) => {{
        let e: Option<Expr> = $expr;
        let (text, names, values) = match e {
            Some(e) => (Some(e.text), Some(e.names), Some(e.values)),
            None => (None, None, None),
        };
        $builder
            .set_condition_expression(text)
            .set_expression_attribute_names(names)
            .set_expression_attribute_values(values)
            .return_values_on_condition_check_failure(ReturnValuesOnConditionCheckFailure::AllOld)
    }};
}

impl DynamoStore {
    pub fn new(client: Client, table: impl Into<String>, clock: Arc<dyn Clock>) -> Self {
        Self { client: crate::aws::LazyClient::ready(client), table: table.into(), clock }
    }

    /// A store on `table` whose client comes from the Lambda environment (see
    /// [`crate::aws::SdkParts::from_env`]), built on the first call.
    pub fn from_env(table: impl Into<String>, clock: Arc<dyn Clock>) -> Result<Self, String> {
        let client = crate::lazy_sdk_client!(aws_sdk_dynamodb, crate::aws::SdkParts::from_env("DYNAMODB")?, retries);
        Ok(Self { client, table: table.into(), clock })
    }

    /// Opens the connection to the table (TCP, TLS, the SDK's first request) by querying a
    /// partition that is never written ([`domain::table::CONNECTION_PROBE_PK`]), so that the
    /// first invocation finds it open. Gives up after `within`: a slow network must not hold
    /// up or fail the init, it only leaves the work to the first request.
    pub async fn connect(&self, within: std::time::Duration) -> Result<(), String> {
        let probe = self
            .client
            .get()
            .query()
            .table_name(&self.table)
            .key_condition_expression("pk = :pk")
            .expression_attribute_values(":pk", AttributeValue::S(domain::table::CONNECTION_PROBE_PK.to_owned()))
            .limit(1)
            .send();
        match tokio::time::timeout(within, probe).await {
            Ok(Ok(_)) => Ok(()),
            Ok(Err(e)) => Err(aws_sdk_dynamodb::error::DisplayErrorContext(e).to_string()),
            Err(_) => Err(format!("no answer within {} ms", within.as_millis())),
        }
    }

    fn transact_item(&self, op: &WriteOp, now: i64) -> Result<TransactWriteItem, StoreError> {
        let b = TransactWriteItem::builder();
        Ok(match op {
            WriteOp::Put { item, cond } => {
                let put = Put::builder().table_name(&self.table).set_item(Some(to_attrs(item)?));
                b.put(conditioned!(put, cond.map(|c| condition(c, now))).build().map_err(invalid)?).build()
            }
            WriteOp::Delete { key, cond } => {
                let delete = Delete::builder().table_name(&self.table).set_key(Some(key_attrs(key)));
                b.delete(conditioned!(delete, cond.map(|c| condition(c, now))).build().map_err(invalid)?).build()
            }
            WriteOp::Check { key, cond } => {
                let check = ConditionCheck::builder().table_name(&self.table).set_key(Some(key_attrs(key)));
                b.condition_check(conditioned!(check, Some(condition(*cond, now))).build().map_err(invalid)?).build()
            }
        })
    }

    /// A single put is a plain conditional `PutItem`: half the write units of a transaction.
    async fn put_one(&self, item: &Item, cond: Option<Condition>, now: i64) -> Result<(), StoreError> {
        let attrs = to_attrs(item)?;
        // Retries of this call resend the same attributes, so the same write id.
        let wid = attrs.get("wid").cloned();
        let put = self.client.get().put_item().table_name(&self.table).set_item(Some(attrs));
        let res = conditioned!(put, cond.map(|c| condition(c, now))).send().await;
        match res {
            Ok(_) => Ok(()),
            Err(SdkError::ServiceError(se)) => match se.into_err() {
                aws_sdk_dynamodb::operation::put_item::PutItemError::ConditionalCheckFailedException(c) => {
                    // A `PutItem` carries no client request token: when the SDK retried one
                    // whose first attempt committed but whose answer was lost, the retry fails
                    // its condition against the very item it wrote. Only this call's write id
                    // proves that (an equal item may come from a rival writer), and then the
                    // put was applied, once.
                    if wid.is_some() && c.item.as_ref().and_then(|a| a.get("wid")) == wid.as_ref() {
                        return Ok(());
                    }
                    let current = c.item.map(from_attrs).transpose()?.filter(|i| !i.is_expired(now));
                    Err(StoreError::ConditionFailed { index: 0, current: current.map(Box::new) })
                }
                other => Err(classify_service(other)),
            },
            Err(e) => Err(classify(e)),
        }
    }
}

#[async_trait]
impl Store for DynamoStore {
    async fn get(&self, key: &Key) -> Result<Option<Item>, StoreError> {
        let now = self.clock.epoch();
        let out = self
            .client
            .get()
            .get_item()
            .table_name(&self.table)
            .set_key(Some(key_attrs(key)))
            .consistent_read(true)
            .send()
            .await
            .map_err(classify)?;
        match out.item {
            Some(a) => Ok(Some(from_attrs(a)?).filter(|i| !i.is_expired(now))),
            None => Ok(None),
        }
    }

    async fn get_many(&self, keys: &[Key]) -> Result<Vec<Item>, StoreError> {
        let now = self.clock.epoch();
        let mut unique: Vec<&Key> = keys.iter().collect();
        unique.sort();
        unique.dedup();
        let mut found = Vec::with_capacity(unique.len());
        for chunk in unique.chunks(BATCH_GET_MAX) {
            let mut pending = KeysAndAttributes::builder()
                .set_keys(Some(chunk.iter().map(|k| key_attrs(k)).collect()))
                .consistent_read(true)
                .build()
                .map_err(invalid)?;
            let mut pause = std::time::Duration::from_millis(5);
            for round in 0.. {
                let out = self
                    .client
                    .get()
                    .batch_get_item()
                    .request_items(&self.table, pending)
                    .send()
                    .await
                    .map_err(classify)?;
                for a in out.responses.and_then(|mut r| r.remove(&self.table)).unwrap_or_default() {
                    found.push(from_attrs(a)?);
                }
                match out.unprocessed_keys.and_then(|mut u| u.remove(&self.table)) {
                    Some(rest) if !rest.keys.is_empty() => pending = rest,
                    _ => break,
                }
                // Unprocessed keys mean the table is throttling: back off, then give up.
                if round >= BATCH_GET_ROUNDS {
                    return Err(StoreError::Throttled("keys left unprocessed by BatchGetItem".into()));
                }
                tokio::time::sleep(pause).await;
                pause = pause.saturating_mul(2);
            }
        }
        found.retain(|i| !i.is_expired(now));
        Ok(found)
    }

    async fn query(&self, q: &Query) -> Result<Page, StoreError> {
        let now = self.clock.epoch();
        let (pcol, scol) = match q.index {
            None => ("pk", "sk"),
            Some(Index::Gsi1) => ("gsi1pk", "gsi1sk"),
            Some(Index::Gsi2) => ("gsi2pk", "gsi2sk"),
        };
        let mut names = HashMap::from([("#p".to_owned(), pcol.to_owned()), ("#ttl".to_owned(), "ttl".to_owned())]);
        let mut values =
            HashMap::from([(":p".to_owned(), s(&q.pk)), (":now".to_owned(), AttributeValue::N(now.to_string()))]);
        let mut kc = "#p = :p".to_owned();
        let mut sk = |op: &str, vals: &[&str]| {
            names.insert("#s".into(), scol.into());
            for (i, v) in vals.iter().enumerate() {
                values.insert(format!(":s{i}"), s(v));
            }
            kc.push_str(&match op {
                "begins_with" => " AND begins_with(#s, :s0)".to_owned(),
                "between" => " AND #s BETWEEN :s0 AND :s1".to_owned(),
                op => format!(" AND #s {op} :s0"),
            });
        };
        match &q.sk {
            SkCond::Any => {}
            SkCond::Eq(v) => sk("=", &[v]),
            SkCond::Lt(v) => sk("<", &[v]),
            SkCond::Le(v) => sk("<=", &[v]),
            SkCond::Gt(v) => sk(">", &[v]),
            SkCond::Ge(v) => sk(">=", &[v]),
            SkCond::Between(a, b) => sk("between", &[a, b]),
            SkCond::BeginsWith(p) => sk("begins_with", &[p]),
        }
        let mut start = q.start_after.as_ref().map(|c| {
            let mut k = key_attrs(&Key::new(c.pk.clone(), c.sk.clone()));
            if let (Some(ip), Some(is)) = (&c.index_pk, &c.index_sk) {
                k.insert(pcol.to_owned(), s(ip));
                k.insert(scol.to_owned(), s(is));
            }
            k
        });
        let mut items = Vec::new();
        // Limit applies before the TTL filter in DynamoDB, so keep reading until the page is
        // full or the partition is exhausted.
        loop {
            let want = q.limit.saturating_sub(items.len()).max(1);
            let out = self
                .client
                .get()
                .query()
                .table_name(&self.table)
                .set_index_name(q.index.map(|i| i.name().to_owned()))
                .key_condition_expression(&kc)
                .filter_expression("attribute_not_exists(#ttl) OR #ttl > :now")
                .set_expression_attribute_names(Some(names.clone()))
                .set_expression_attribute_values(Some(values.clone()))
                .scan_index_forward(q.forward)
                .consistent_read(q.index.is_none())
                .limit(i32::try_from(want).unwrap_or(i32::MAX))
                .set_exclusive_start_key(start.take())
                .send()
                .await
                .map_err(classify)?;
            for a in out.items.unwrap_or_default() {
                items.push(from_attrs(a)?);
            }
            start = out.last_evaluated_key;
            if items.len() >= q.limit || start.is_none() {
                break;
            }
        }
        let next = if start.is_some() && items.len() >= q.limit {
            items.last().map(|i| Cursor::after(i, q.index))
        } else {
            None
        };
        Ok(Page { items, next })
    }

    async fn write(&self, ops: Vec<WriteOp>) -> Result<(), StoreError> {
        check_write(&ops)?;
        let now = self.clock.epoch();
        if let [WriteOp::Put { item, cond }] = ops.as_slice() {
            return self.put_one(item, *cond, now).await;
        }
        let items = ops.iter().map(|op| self.transact_item(op, now)).collect::<Result<Vec<_>, _>>()?;
        let res = self.client.get().transact_write_items().set_transact_items(Some(items)).send().await;
        match res {
            Ok(_) => Ok(()),
            Err(SdkError::ServiceError(se)) => {
                let err = se.into_err();
                if let aws_sdk_dynamodb::operation::transact_write_items::TransactWriteItemsError::TransactionCanceledException(
                    c,
                ) = &err
                {
                    let reasons = c.cancellation_reasons();
                    if let Some((index, r)) =
                        reasons.iter().enumerate().find(|(_, r)| r.code() == Some("ConditionalCheckFailed"))
                    {
                        let current = r.item.clone().map(from_attrs).transpose()?.filter(|i| !i.is_expired(now));
                        return Err(StoreError::ConditionFailed { index, current: current.map(Box::new) });
                    }
                    // Another transaction or write on one of the items: a retry (after a pause,
                    // from a fresh read) is safe. The SDK retries no cancelled transaction.
                    if reasons.iter().any(|r| r.code() == Some("TransactionConflict")) {
                        return Err(StoreError::Contention);
                    }
                    // Cancelled for capacity: nothing was written, a pause will help.
                    if let Some(r) = reasons
                        .iter()
                        .find(|r| matches!(r.code(), Some("ThrottlingError" | "ProvisionedThroughputExceeded")))
                    {
                        let why = r.message().unwrap_or("transaction cancelled for capacity").to_owned();
                        return Err(StoreError::Throttled(why.into()));
                    }
                    if let Some(r) = reasons.iter().find(|r| r.code() == Some("ValidationError")) {
                        let why = r.message().unwrap_or("validation failed").to_owned();
                        return Err(StoreError::Limit(Limit::Refused(why)));
                    }
                }
                if err.code() == Some("TransactionConflictException") {
                    return Err(StoreError::Contention);
                }
                Err(classify_service(err))
            }
            Err(e) => Err(classify(e)),
        }
    }
}

/// Creates the table as `infra/template.yaml` declares it (keys, GSIs with their projection,
/// stream, TTL). Used by tests
/// and local tooling against an emulator; production tables come from the template.
pub async fn create_table(client: &Client, table: &str) -> Result<(), StoreError> {
    let attr = |n: &str| {
        AttributeDefinition::builder()
            .attribute_name(n)
            .attribute_type(ScalarAttributeType::S)
            .build()
            .map_err(unavailable)
    };
    let key =
        |n: &str, t: KeyType| KeySchemaElement::builder().attribute_name(n).key_type(t).build().map_err(unavailable);
    let gsi = |name: &str| -> Result<GlobalSecondaryIndex, StoreError> {
        GlobalSecondaryIndex::builder()
            .index_name(name)
            .key_schema(key(&format!("{name}pk"), KeyType::Hash)?)
            .key_schema(key(&format!("{name}sk"), KeyType::Range)?)
            .projection(
                Projection::builder()
                    .projection_type(ProjectionType::Include)
                    .non_key_attributes("sum")
                    .non_key_attributes("ttl")
                    .build(),
            )
            .build()
            .map_err(unavailable)
    };
    let mut req = client
        .create_table()
        .table_name(table)
        .billing_mode(BillingMode::PayPerRequest)
        .key_schema(key("pk", KeyType::Hash)?)
        .key_schema(key("sk", KeyType::Range)?)
        .global_secondary_indexes(gsi("gsi1")?)
        .global_secondary_indexes(gsi("gsi2")?)
        // The outbox: every item image reaches the publisher through the stream.
        .stream_specification(
            StreamSpecification::builder()
                .stream_enabled(true)
                .stream_view_type(StreamViewType::NewAndOldImages)
                .build()
                .map_err(unavailable)?,
        );
    for n in ["pk", "sk", "gsi1pk", "gsi1sk", "gsi2pk", "gsi2sk"] {
        req = req.attribute_definitions(attr(n)?);
    }
    req.send().await.map_err(unavailable)?;
    client
        .update_time_to_live()
        .table_name(table)
        .time_to_live_specification(
            TimeToLiveSpecification::builder().attribute_name("ttl").enabled(true).build().map_err(unavailable)?,
        )
        .send()
        .await
        .map_err(unavailable)?;
    Ok(())
}

/// A client for a local emulator (moto): fixed region and dummy credentials, and the
/// retries of every DynamoDB client of ours.
pub fn emulator_client(endpoint: &str) -> Client {
    crate::sdk_client!(aws_sdk_dynamodb, crate::aws::SdkParts::emulator(endpoint), retries)
}

#[cfg(test)]
mod tests;
