//! `shopping-local smoke --stack NAME`: a deployed stack checks itself, end to end, the way a
//! merchant's first hour meets it, and says which part is broken.
//!
//! With the operator's AWS credentials (the environment's, as `client --table` takes them) it
//! reads the stack's outputs, makes a temporary API client of the smoke account (never a
//! merchant's: [`SMOKE_ACCOUNT`] by default), takes a token through the upstream token request,
//! checks the issuer's discovery document and keys as API Gateway fetches them and the token
//! against what the gateway accepts, has the gateway refuse a missing and a forged token, runs a
//! short order lifecycle through the gateway, and reads the order's event back from a temporary
//! rule and queue of its own on the stack's bus, checked against the event's schema.
//!
//! Each check prints one line as it ends: `ok`, `failed` with what it saw and the most likely
//! cause, or `skipped` when a check it needs failed; then `smoke: N passed, M failed`. What it
//! made (the client, the rule, its target, the queue) is removed at the end, whatever failed,
//! and on Ctrl-C or SIGTERM: creations run to completion on a task of their own, so an
//! interruption never leaves something made but unrecorded.

mod aws;
mod http;
mod schema;
mod token;

use self::aws::{sdk_error, Aws, Stack};
use self::http::{Answer, Http};
use self::token::{Accepts, Jwks, Jwt};
use crate::app::clients::{Clients, LegacyKey};
use infra::dynamo::DynamoStore;
use infra::SystemClock;
use reqwest::Method;
use serde_json::{json, Value};
use std::io::Write as _;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

/// The account smoke works in unless told otherwise: a test account (`T`) whose number no
/// merchant is given, so its client, drafts and orders are never anyone's data.
pub const SMOKE_ACCOUNT: &str = "T00000000";

/// The event smoke reads back from the bus.
const EVENT: &str = "shopping_order_update";

/// `events/schemas/shopping_order_update.json`: the event's schema where no registry answers
/// (the stack on a laptop has none).
const EVENT_SCHEMA: &str = include_str!("../../../../events/schemas/shopping_order_update.json");

/// How long the event may take, from the write to the queue: a new rule and a new queue
/// policy can take a while to apply on AWS, so the write is repeated meanwhile.
const EVENT_WITHIN: Duration = Duration::from_secs(40);
const EVENT_REWRITE_EVERY: Duration = Duration::from_secs(12);

/// How long the list may take to show the new order (its index is eventually consistent).
const LIST_WITHIN: Duration = Duration::from_secs(15);

pub struct Options {
    /// The CloudFormation stack's name.
    pub stack: String,
    /// The API's base URL (default: the `ApiUrl` output).
    pub url: Option<String>,
    /// The table (default: the `TableName` output).
    pub table: Option<String>,
    /// The bus, by name or ARN (default: the `EventBusName` output).
    pub bus: Option<String>,
    pub account: String,
    /// Who makes the temporary client, for the audit trail.
    pub by: String,
}

#[derive(Debug, thiserror::Error)]
pub enum SmokeError {
    #[error(
        "smoke needs AWS credentials and a region in the environment ({0}); for example \
         eval \"$(aws configure export-credentials --format env)\" and AWS_REGION=…"
    )]
    Credentials(String),
    #[error("{0}")]
    Setup(String),
}

/// How a run ended.
pub struct Summary {
    pub passed: usize,
    pub failed: usize,
    pub interrupted: bool,
}

enum Outcome {
    Ok(String),
    Failed { saw: String, cause: String },
    Skipped(String),
}

fn failed(saw: impl Into<String>, cause: impl Into<String>) -> Outcome {
    Outcome::Failed { saw: saw.into(), cause: cause.into() }
}

#[derive(Default)]
struct Report {
    passed: usize,
    failed: usize,
}

impl Report {
    fn line(&mut self, what: &str, outcome: Outcome) {
        // One line, whatever an answer quoted in it held.
        let flat = |text: &str| text.split_whitespace().collect::<Vec<_>>().join(" ");
        let line = match outcome {
            Outcome::Ok(detail) => {
                self.passed += 1;
                format!("ok      {what}: {}", flat(&detail))
            }
            Outcome::Failed { saw, cause } => {
                self.failed += 1;
                format!("failed  {what}: saw {}; likely cause: {}", flat(&saw), flat(&cause))
            }
            Outcome::Skipped(why) => format!("skipped {what}: {}", flat(&why)),
        };
        say(&line);
    }
}

/// One line to stdout, as it happens (a closed stdout is no reason to stop cleaning up).
fn say(line: &str) {
    let mut out = std::io::stdout().lock();
    let _ = writeln!(out, "{line}");
    let _ = out.flush();
}

/// What smoke has made, recorded before each creation is answered, for the clean-up.
#[derive(Default)]
struct Made {
    client: Option<String>,
    /// The bus and the rule's name, and whether PutRule answered.
    rule: Option<(String, String)>,
    rule_made: bool,
    target: bool,
    queue_name: Option<String>,
    queue_url: Option<String>,
    /// Creations under way: the clean-up waits for them, so nothing made goes unrecorded.
    inflight: Vec<tokio::task::JoinHandle<()>>,
}

type Shared = Arc<Mutex<Made>>;

fn made(shared: &Shared) -> std::sync::MutexGuard<'_, Made> {
    shared.lock().unwrap_or_else(PoisonError::into_inner)
}

/// Runs `creation` on a task of its own, which an interruption does not cancel.
async fn shielded<T: Send + 'static>(
    shared: &Shared,
    creation: impl std::future::Future<Output = Result<T, String>> + Send + 'static,
) -> Result<T, String> {
    let (tx, rx) = tokio::sync::oneshot::channel();
    let task = tokio::spawn(async move {
        let _ = tx.send(creation.await);
    });
    made(shared).inflight.push(task);
    rx.await.map_err(|_| "the creation task stopped".to_owned())?
}

/// The order the lifecycle made.
struct Order {
    id: String,
    order_id: String,
}

struct Smoke {
    opts: Options,
    http: Http,
    aws: Arc<Aws>,
    shared: Shared,
    run_id: String,
    clock: Arc<SystemClock>,
    stack: Option<Stack>,
    api: Option<String>,
    table: Option<String>,
    bus: Option<String>,
    accepts: Accepts,
    credentials: Option<(String, String)>,
    token: Option<String>,
    jwt: Option<Jwt>,
    jwks: Option<Jwks>,
    draft: Option<String>,
    order: Option<Order>,
    /// The discovery document's `jwks_uri`.
    discovered: Option<String>,
    queue_url: Option<String>,
    event: Option<Value>,
}

/// Runs every check against the stack and cleans up; prints as it goes.
pub async fn run(opts: Options) -> Result<Summary, SmokeError> {
    let http = Http::new().map_err(SmokeError::Setup)?;
    let aws = Aws::from_env(http.client.clone()).map_err(SmokeError::Credentials)?;
    let clock = super::local::clock_from_env().map_err(|e| SmokeError::Setup(e.to_string()))?;
    let mut random = [0u8; 4];
    getrandom::fill(&mut random).map_err(|e| SmokeError::Setup(format!("no randomness: {e}")))?;
    let run_id: String = random.iter().map(|b| format!("{b:02x}")).collect();
    let mut smoke = Smoke {
        opts,
        http,
        aws: Arc::new(aws),
        shared: Shared::default(),
        run_id,
        clock: Arc::new(clock),
        stack: None,
        api: None,
        table: None,
        bus: None,
        accepts: Accepts::default(),
        credentials: None,
        token: None,
        jwt: None,
        jwks: None,
        draft: None,
        order: None,
        discovered: None,
        queue_url: None,
        event: None,
    };
    let mut report = Report::default();
    let started = Instant::now();
    let interrupted = tokio::select! {
        () = smoke.checks(&mut report) => false,
        () = interruption() => true,
    };
    if interrupted {
        say("smoke: interrupted; removing what it made");
    }
    tokio::select! {
        outcome = smoke.clean_up() => report.line("clean-up", outcome),
        () = interruption() => {
            say(&format!("smoke: interrupted again; may be left behind: {}", smoke.left_behind()));
            return Ok(Summary { passed: report.passed, failed: report.failed + 1, interrupted: true });
        }
    }
    say(&format!("smoke: {} passed, {} failed", report.passed, report.failed));
    tracing::debug!(seconds = started.elapsed().as_secs_f64(), "smoke run");
    Ok(Summary { passed: report.passed, failed: report.failed, interrupted })
}

/// Ctrl-C or SIGTERM. Where no handler can be installed, never.
async fn interruption() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{signal, SignalKind};
        if let Ok(mut term) = signal(SignalKind::terminate()) {
            tokio::select! {
                r = tokio::signal::ctrl_c() => if r.is_err() { std::future::pending::<()>().await },
                _ = term.recv() => {}
            }
            return;
        }
    }
    if tokio::signal::ctrl_c().await.is_err() {
        std::future::pending::<()>().await;
    }
}

/// What a gateway answer to a request with a token most likely means.
fn gateway_cause(answer: &Answer, stack: &str, function: &str) -> String {
    let log = format!("the {function} function's log, /shopping/{stack}/{function}");
    let gateway = answer.body.trim_start().starts_with("{\"message\"");
    match answer.status {
        403 if gateway => "the token lacks the scope the route needs".into(),
        404 if gateway => "no such route: the URL is not this stack's API (the ApiUrl output, or --url)".into(),
        429 => "the API throttled the request (ApiRateLimit, ApiBurstLimit)".into(),
        500 if gateway => format!("the function failed before answering or was throttled ({log})"),
        502 => format!("the function crashed or answered no valid response ({log})"),
        503 => format!("the function did not answer within the gateway's 30 s ({log})"),
        s if s >= 500 => format!("the function failed ({log})"),
        _ => format!("the API refused the request: a product defect, or a changed API ({log})"),
    }
}

impl Smoke {
    fn stack_name(&self) -> &str {
        &self.opts.stack
    }

    fn api_path(&self, api: &str, path: &str) -> String {
        format!("{}/v1/accounts/{}{path}", api.trim_end_matches('/'), self.opts.account)
    }

    /// A request to the API with the smoke token.
    async fn call(&self, method: Method, path: &str, body: Option<Value>) -> Result<Answer, String> {
        let (Some(api), Some(token)) = (&self.api, &self.token) else {
            return Err("no API or no token".into());
        };
        let bearer = format!("Bearer {token}");
        let url = self.api_path(api, path);
        self.http.send(method, &url, &[("authorization", bearer.as_str())], body.map(|b| b.to_string())).await
    }

    /// A failed API answer as a report line: what came back, and why that most likely is —
    /// for a 401, what the token and the keys say.
    fn api_failure(&self, answer: &Answer, function: &str) -> Outcome {
        if answer.status != 401 {
            return failed(answer.seen(), gateway_cause(answer, self.stack_name(), function));
        }
        let Some(jwt) = &self.jwt else {
            return failed(answer.seen(), "the gateway refused the token");
        };
        let keys = self.jwks.as_ref().map(Jwks::describe).unwrap_or_else(|| "not fetched".into());
        let saw = format!("{} (token {}; issuer keys {keys})", answer.seen(), jwt.describe());
        if self.jwks.is_none() {
            return failed(
                saw,
                "the issuer's keys cannot be fetched (issuer discovery, issuer keys), by the gateway either: it refuses every token",
            );
        }
        let now = chrono::Utc::now().timestamp() + self.clock_offset();
        let cause = token::refusal(jwt, self.jwks.as_ref(), &self.accepts, now).unwrap_or_else(|| {
            "the token checks out against the keys published now, so the gateway still holds keys it fetched \
             before this one was published (it may keep them two hours: README, \"Rotating the signing key\")"
                .into()
        });
        failed(saw, cause)
    }

    fn clock_offset(&self) -> i64 {
        use infra::Clock as _;
        self.clock.now().timestamp() - chrono::Utc::now().timestamp()
    }

    async fn checks(&mut self, report: &mut Report) {
        let outcome = self.check_stack().await;
        report.line(&format!("stack {}", self.stack_name()), outcome);
        let outcome = self.check_subscription().await;
        report.line("event subscription", outcome);
        let outcome = self.check_client().await;
        report.line("api client", outcome);
        let outcome = self.check_token().await;
        report.line("token", outcome);
        let outcome = self.check_discovery().await;
        report.line("issuer discovery", outcome);
        let outcome = self.check_keys().await;
        report.line("issuer keys", outcome);
        let outcome = self.check_algorithm();
        report.line("token algorithm", outcome);
        let outcome = self.check_refusal(false).await;
        report.line("gateway refuses a missing token", outcome);
        let outcome = self.check_refusal(true).await;
        report.line("gateway refuses a forged token", outcome);
        let outcome = self.check_draft().await;
        report.line("draft", outcome);
        let outcome = self.check_item().await;
        report.line("item", outcome);
        let outcome = self.check_completion().await;
        report.line("completion", outcome);
        let outcome = self.check_read().await;
        report.line("order by order_id", outcome);
        let outcome = self.check_list().await;
        report.line("order list", outcome);
        let outcome = self.check_reference().await;
        report.line("reference pages", outcome);
        let outcome = self.check_event().await;
        report.line("event on the bus", outcome);
        let outcome = self.check_schema().await;
        report.line("event schema", outcome);
    }

    async fn check_stack(&mut self) -> Outcome {
        let described = self.aws.describe_stack(&self.opts.stack).await;
        let stack = match described {
            Ok(stack) => stack,
            Err(e) => {
                self.api = self.opts.url.clone();
                self.table = self.opts.table.clone();
                self.bus = self.opts.bus.clone();
                let cause = if e.contains("does not exist") {
                    format!(
                        "no stack of that name in this account and region ({}): --stack, AWS_REGION",
                        self.aws.region()
                    )
                } else if e.contains("AccessDenied") {
                    "the credentials may not cloudformation:DescribeStacks".into()
                } else if ["InvalidClientTokenId", "SignatureDoesNotMatch", "ExpiredToken", "UnrecognizedClient"]
                    .iter()
                    .any(|c| e.contains(c))
                {
                    "the AWS credentials in the environment are not valid (an expired session?)".into()
                } else {
                    "CloudFormation cannot be reached (the network, or AWS_ENDPOINT_URL)".into()
                };
                return failed(e, cause);
            }
        };
        let output = |key: &str| stack.outputs.get(key).filter(|v| !v.is_empty()).cloned();
        self.api = self.opts.url.clone().or_else(|| output("ApiUrl"));
        self.table = self.opts.table.clone().or_else(|| output("TableName"));
        self.bus = self.opts.bus.clone().or_else(|| output("EventBusName"));
        let issuer = stack.parameters.get("JwtIssuer").filter(|v| !v.is_empty()).cloned();
        self.accepts = Accepts {
            issuer: issuer.or_else(|| output("IssuerUrl")),
            audiences: stack
                .parameters
                .get("JwtAudience")
                .map(|a| a.split(',').map(str::trim).filter(|a| !a.is_empty()).map(str::to_owned).collect())
                .unwrap_or_default(),
        };
        let status = stack.status.clone();
        self.stack = Some(stack);
        let missing: Vec<&str> = [("ApiUrl", &self.api), ("TableName", &self.table), ("EventBusName", &self.bus)]
            .into_iter()
            .filter(|(_, v)| v.is_none())
            .map(|(k, _)| k)
            .collect();
        if !missing.is_empty() {
            return failed(
                format!("{status} without the outputs {}", missing.join(", ")),
                "the stack is not a Shopping API stack, or was deployed from another template",
            );
        }
        if status.ends_with("_FAILED") || status.starts_with("DELETE") || status == "ROLLBACK_COMPLETE" {
            return failed(
                status,
                "the last deployment did not finish: its events say why (aws cloudformation describe-stack-events)",
            );
        }
        let field = |v: &Option<String>| v.clone().unwrap_or_default();
        Outcome::Ok(format!(
            "{status}; api {}, table {}, bus {}",
            field(&self.api),
            field(&self.table),
            field(&self.bus)
        ))
    }

    async fn check_subscription(&mut self) -> Outcome {
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

    async fn check_client(&mut self) -> Outcome {
        let Some(table) = self.table.clone() else {
            return Outcome::Skipped("no table (the TableName output, or --table)".into());
        };
        let store = match DynamoStore::from_env(table.clone(), self.clock.clone()) {
            Ok(store) => store,
            Err(e) => return failed(e, "no AWS credentials or region for DynamoDB"),
        };
        let (clock, shared, account, by) =
            (self.clock.clone(), self.shared.clone(), self.opts.account.clone(), self.opts.by.clone());
        let created = shielded(&self.shared, async move {
            let legacy = LegacyKey::stored();
            let clients = Clients { store: &store, clock: clock.as_ref(), legacy: &legacy };
            let (id, secret) = clients.create(&account, "admin:shopping", &by).await.map_err(|e| e.to_string())?;
            made(&shared).client = Some(id.clone());
            Ok((id, secret))
        })
        .await;
        match created {
            Ok((id, secret)) => {
                let line = format!("{id} of {} (temporary)", self.opts.account);
                self.credentials = Some((id, secret));
                Outcome::Ok(line)
            }
            Err(e) => {
                let cause = if e.contains("ResourceNotFound") {
                    format!("no table {table} in {} (the TableName output, or --table)", self.aws.region())
                } else if e.contains("AccessDenied") || e.contains("not authorized") {
                    "the credentials may not write the table (dynamodb:TransactWriteItems, PutItem)".into()
                } else {
                    "the table could not be written".into()
                };
                failed(e, cause)
            }
        }
    }

    async fn check_token(&mut self) -> Outcome {
        let (Some(api), Some((id, secret))) = (self.api.clone(), self.credentials.clone()) else {
            return Outcome::Skipped("needs the API and an API client".into());
        };
        use base64::Engine as _;
        let basic = format!("Basic {}", base64::engine::general_purpose::STANDARD.encode(format!("{id}:{secret}")));
        let url = self.api_path(&api, "/auth/token");
        let body = json!({"grant_type": "client_credentials"}).to_string();
        let answer = match self.http.send(Method::POST, &url, &[("authorization", basic.as_str())], Some(body)).await {
            Ok(answer) => answer,
            Err(e) => return failed(e, "the API cannot be reached (the ApiUrl output, or --url)"),
        };
        if answer.status != 200 {
            let own = self.stack.as_ref().is_some_and(|s| s.outputs.contains_key("IssuerUrl"));
            let cause = match answer.status {
                404 if answer.body.contains("JwtIssuer") || !own => {
                    "the stack takes its tokens from an outside identity provider (JwtIssuer): its token endpoint \
                     issues none, and smoke needs the stack's own issuer"
                        .to_owned()
                }
                401 => {
                    "the token function does not find the client smoke made: --table is not this stack's table".into()
                }
                500 | 502 => format!(
                    "the token function fails: KMS refused to sign (the signing key's policy, or a disabled or \
                     deleted key: SigningKeyId {}), or it could not read the table; its log, /shopping/{}/token",
                    self.output("SigningKeyId").unwrap_or("(no output)"),
                    self.stack_name()
                ),
                429 => "the token route is throttled (TokenRateLimit, TokenBurstLimit)".into(),
                _ => gateway_cause(&answer, self.stack_name(), "token"),
            };
            return failed(answer.seen(), cause);
        }
        let Some(access) = answer.json().and_then(|v| v.get("access_token")?.as_str().map(str::to_owned)) else {
            return failed(answer.seen(), "the token endpoint answered 200 without an access_token");
        };
        match Jwt::parse(&access) {
            Ok(jwt) => {
                let expires = answer.json().and_then(|v| v.get("expires_in")?.as_i64()).unwrap_or_default();
                let line = format!(
                    "POST /v1/accounts/{}/auth/token: {}, expires in {expires} s",
                    self.opts.account,
                    jwt.describe()
                );
                self.token = Some(access);
                self.jwt = Some(jwt);
                Outcome::Ok(line)
            }
            Err(e) => failed(format!("an access_token that is {e}"), "the token function signs no JWS"),
        }
    }

    fn output(&self, key: &str) -> Option<&str> {
        self.stack.as_ref()?.outputs.get(key).map(String::as_str)
    }

    async fn check_discovery(&mut self) -> Outcome {
        let Some(iss) = self.jwt.as_ref().and_then(Jwt::iss).map(str::to_owned) else {
            return Outcome::Skipped("needs a token with an iss".into());
        };
        if !iss.starts_with("https://") {
            return failed(format!("iss {iss}"), "API Gateway fetches an issuer's keys over HTTPS only");
        }
        let url = format!("{}/.well-known/openid-configuration", iss.trim_end_matches('/'));
        let answer = match self.http.get(&url, Duration::from_secs(10)).await {
            Ok(answer) => answer,
            Err(e) => return failed(e, "the issuer cannot be reached from the internet: neither can API Gateway"),
        };
        if answer.status != 200 {
            return failed(answer.seen(), self.issuer_cause(&answer));
        }
        let Some(doc) = answer.json() else {
            return failed(answer.seen(), "the discovery document is not JSON");
        };
        let issuer = doc.get("issuer").and_then(Value::as_str).unwrap_or_default();
        let jwks_uri = doc.get("jwks_uri").and_then(Value::as_str).unwrap_or_default();
        if issuer != iss {
            return failed(
                format!("issuer {issuer:?} in {url}, iss {iss:?} in the token"),
                "the document names another issuer than the token's (OpenID Connect Discovery wants them equal)",
            );
        }
        if !jwks_uri.starts_with("https://") {
            return failed(
                format!("jwks_uri {jwks_uri:?}"),
                "API Gateway fetches the keys from an https jwks_uri only",
            );
        }
        let line = format!("{url}: issuer = the token's iss, jwks_uri {jwks_uri}");
        self.jwks = None;
        self.discovered = Some(jwks_uri.to_owned());
        Outcome::Ok(line)
    }

    /// Why the issuer answered `answer` (not 200) to a document the gateway fetches.
    fn issuer_cause(&self, answer: &Answer) -> String {
        let stack = self.stack_name();
        match answer.status {
            403 => {
                "the issuer's URL is not public (the keys function's URL needs AuthType NONE and its permission)".into()
            }
            404 => "the issuer serves no such document at that path".into(),
            s if s >= 500 => format!(
                "the keys function fails: KMS refused it the public key (the key policy's GetPublicKey for its role) \
                 or a published key is deleted or disabled; its log, /shopping/{stack}/keys"
            ),
            _ => "the issuer refuses the fetch API Gateway makes".into(),
        }
    }

    async fn check_keys(&mut self) -> Outcome {
        let Some(url) = self.discovered.clone() else {
            return Outcome::Skipped("needs the discovery document".into());
        };
        let answer = match self.http.get(&url, Duration::from_secs(10)).await {
            Ok(answer) => answer,
            Err(e) => {
                return failed(e, "the issuer's keys cannot be reached from the internet: neither can API Gateway")
            }
        };
        if answer.status != 200 {
            return failed(answer.seen(), self.issuer_cause(&answer));
        }
        match answer.json().ok_or_else(|| "not JSON".to_owned()).and_then(|doc| Jwks::parse(&doc)) {
            Ok(jwks) if jwks.keys.is_empty() => {
                failed(answer.seen(), "the issuer publishes no key: every token is refused")
            }
            Ok(jwks) => {
                let line = format!("{url}: {}", jwks.describe());
                self.jwks = Some(jwks);
                Outcome::Ok(line)
            }
            Err(e) => failed(format!("{} ({e})", answer.seen()), "the issuer's keys are not a JWKS"),
        }
    }

    fn check_algorithm(&self) -> Outcome {
        let Some(jwt) = &self.jwt else {
            return Outcome::Skipped("needs a token".into());
        };
        let now = chrono::Utc::now().timestamp() + self.clock_offset();
        match token::refusal(jwt, self.jwks.as_ref(), &self.accepts, now) {
            Some(cause) => {
                let keys = self.jwks.as_ref().map(Jwks::describe).unwrap_or_else(|| "keys not fetched".into());
                failed(format!("token {}; issuer keys {keys}", jwt.describe()), cause)
            }
            None if self.jwks.is_none() => failed("no keys to check the token against", "see issuer keys"),
            None => Outcome::Ok(format!(
                "{} is one the gateway verifies (RS256, RS384, RS512), its kid is published as an RSA key that \
                 verifies its signature, iss and aud are the authorizer's",
                jwt.alg()
            )),
        }
    }

    /// The gateway refuses a request with no token, or with a forged one: 401 from the
    /// gateway itself (`{"message":"Unauthorized"}`), not from a function.
    async fn check_refusal(&self, forged: bool) -> Outcome {
        let Some(api) = &self.api else {
            return Outcome::Skipped("needs the API".into());
        };
        let token = match (&self.jwt, forged) {
            (_, false) => None,
            (Some(jwt), true) => Some(jwt.forged()),
            (None, true) => {
                let aud = self.accepts.audiences.first().map(String::as_str).unwrap_or("shopping-api");
                let iss = self.accepts.issuer.as_deref().unwrap_or("https://issuer.invalid/");
                let kid = self.output("SigningKeyId").unwrap_or("smoke");
                Some(token::made_up(kid, iss, aud, &self.opts.account))
            }
        };
        let bearer = token.map(|t| format!("Bearer {t}"));
        let headers: Vec<(&str, &str)> = bearer.iter().map(|b| ("authorization", b.as_str())).collect();
        let url = self.api_path(api, "/shopping/orders?limit=1");
        let answer = match self.http.send(Method::GET, &url, &headers, None).await {
            Ok(answer) => answer,
            Err(e) => return failed(e, "the API cannot be reached (the ApiUrl output, or --url)"),
        };
        let from_gateway = answer.json() == Some(json!({"message": "Unauthorized"}));
        match answer.status {
            401 if from_gateway => Outcome::Ok(answer.seen()),
            401 => failed(
                answer.seen(),
                "the function refused it, not the gateway: the route has no JWT authorizer (the template's DefaultAuthorizer)",
            ),
            s if (200..300).contains(&s) && forged => failed(
                answer.seen(),
                "the gateway let a token with a wrong signature through: the route's authorizer does not verify \
                 this issuer's signatures",
            ),
            s if (200..300).contains(&s) => {
                failed(answer.seen(), "the route answers without a token: it has no authorizer (the template's DefaultAuthorizer)")
            }
            _ => failed(answer.seen(), gateway_cause(&answer, self.stack_name(), "views")),
        }
    }

    async fn check_draft(&mut self) -> Outcome {
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

    async fn check_item(&mut self) -> Outcome {
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

    async fn check_completion(&mut self) -> Outcome {
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

    async fn check_read(&self) -> Outcome {
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

    async fn check_list(&self) -> Outcome {
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

    async fn check_reference(&self) -> Outcome {
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

    /// A write to the order (its courier), then its `shopping_order_update` read back from the
    /// temporary queue; the write is repeated while the new rule may still be settling.
    async fn check_event(&mut self) -> Outcome {
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

    async fn check_schema(&self) -> Outcome {
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

    /// Removes what smoke made: waits for creations under way, then revokes the client and
    /// removes the target, the rule and the queue; names what it could not remove.
    async fn clean_up(&self) -> Outcome {
        let inflight = std::mem::take(&mut made(&self.shared).inflight);
        for task in inflight {
            let _ = task.await;
        }
        let (client, rule, rule_made, target, queue_name, queue_url) = {
            let m = made(&self.shared);
            (m.client.clone(), m.rule.clone(), m.rule_made, m.target, m.queue_name.clone(), m.queue_url.clone())
        };
        let mut done = Vec::new();
        let mut left = Vec::new();
        if let (Some(id), Some(table)) = (&client, &self.table) {
            let revoked = match DynamoStore::from_env(table.clone(), self.clock.clone()) {
                Ok(store) => {
                    let legacy = LegacyKey::stored();
                    let clients = Clients { store: &store, clock: self.clock.as_ref(), legacy: &legacy };
                    clients.revoke(id, &self.opts.by).await.map_err(|e| e.to_string())
                }
                Err(e) => Err(e),
            };
            match revoked {
                Ok(()) => done.push(format!("client {id} revoked")),
                Err(e) => left.push(format!("client {id} ({e}; shopping-local client revoke --table {table} {id})")),
            }
        }
        if let Some((bus, name)) = &rule {
            if target {
                let removed = self.aws.events.remove_targets().rule(name).event_bus_name(bus).ids("smoke").send().await;
                if let Err(e) = removed {
                    left.push(format!(
                        "target smoke of rule {name} ({}; aws events remove-targets --event-bus-name {bus} --rule {name} --ids smoke)",
                        sdk_error(e)
                    ));
                }
            }
            // Deleted even when PutRule did not answer: it may have been applied all the same.
            match self.aws.events.delete_rule().name(name).event_bus_name(bus).send().await.map_err(sdk_error) {
                Ok(_) if rule_made => done.push(format!("rule {name} removed")),
                Ok(_) => {}
                Err(e) if e.starts_with("ResourceNotFound") || !rule_made => {}
                Err(e) => left.push(format!(
                    "rule {name} on {bus} ({e}; aws events delete-rule --event-bus-name {bus} --name {name})"
                )),
            }
        }
        if let Some(name) = &queue_name {
            // Its URL came back unless CreateQueue was cut short: then ask for it by name.
            let url = match queue_url {
                Some(url) => Some(url),
                None => match self.aws.sqs.get_queue_url().queue_name(name).send().await.map_err(sdk_error) {
                    Ok(found) => found.queue_url,
                    Err(e) if e.contains("NonExistentQueue") || e.contains("QueueDoesNotExist") => None,
                    Err(e) => {
                        left.push(format!("queue {name} perhaps ({e}; aws sqs get-queue-url --queue-name {name})"));
                        None
                    }
                },
            };
            if let Some(url) = url {
                match self.aws.sqs.delete_queue().queue_url(&url).send().await {
                    Ok(_) => done.push(format!("queue {name} deleted")),
                    Err(e) => {
                        left.push(format!("queue {url} ({}; aws sqs delete-queue --queue-url {url})", sdk_error(e)))
                    }
                }
            }
        }
        if !left.is_empty() {
            return failed(
                format!("left behind: {}", left.join(", ")),
                "the credentials may not remove them, or the service did not answer: remove them by hand",
            );
        }
        if done.is_empty() {
            return Outcome::Ok("nothing was made".into());
        }
        Outcome::Ok(done.join(", "))
    }

    /// What an interrupted clean-up may leave (named for removing by hand).
    fn left_behind(&self) -> String {
        let m = made(&self.shared);
        let mut things = Vec::new();
        if let Some(id) = &m.client {
            things.push(format!("client {id}"));
        }
        if let Some((bus, name)) = &m.rule {
            things.push(format!("rule {name} on {bus}"));
        }
        if let Some(name) = &m.queue_name {
            things.push(format!("queue {name}"));
        }
        if things.is_empty() {
            "nothing".into()
        } else {
            things.join(", ")
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

    #[test]
    fn a_gateway_answer_names_the_function_whose_log_to_read() {
        let answer = |status: u16, body: &str| Answer {
            status,
            content_type: "application/json".into(),
            body: body.into(),
            request_id: Some("abc".into()),
        };
        let cause = gateway_cause(&answer(502, r#"{"message":"Internal Server Error"}"#), "shop", "drafts");
        assert!(cause.contains("/shopping/shop/drafts"), "{cause}");
        assert!(gateway_cause(&answer(404, r#"{"message":"Not Found"}"#), "shop", "drafts").contains("--url"));
        assert_eq!(answer(502, "{\n \"a\": 1}").seen(), r#"502 { "a": 1} (apigw-requestid abc)"#);
        assert_eq!(answer(401, r#"{"message":"Unauthorized"}"#).seen(), r#"401 {"message":"Unauthorized"}"#);
    }
}
