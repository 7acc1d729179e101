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
mod events;
mod http;
mod lifecycle;
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
use std::time::Duration;

/// The account smoke works in unless told otherwise: a test account (`T`) whose number no
/// merchant is given, so its client, drafts and orders are never anyone's data.
pub const SMOKE_ACCOUNT: &str = "T00000000";

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
            say(&format!("smoke: {} passed, {} failed", report.passed, report.failed + 1));
            return Ok(Summary { passed: report.passed, failed: report.failed + 1, interrupted: true });
        }
    }
    say(&format!("smoke: {} passed, {} failed", report.passed, report.failed));
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
        let now = self.now();
        let cause = token::refusal(jwt, self.jwks.as_ref(), &self.accepts, now).unwrap_or_else(|| {
            "the token checks out against the keys published now, so the gateway still holds keys it fetched \
             before this one was published (it may keep them two hours: README, \"Rotating the signing key\")"
                .into()
        });
        failed(saw, cause)
    }

    /// Now, on the clock the stack's functions keep (`SHOPPING_CLOCK_OFFSET_SECONDS` moves both).
    fn now(&self) -> i64 {
        use infra::Clock as _;
        self.clock.now().timestamp()
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
        let now = self.now();
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

#[cfg(test)]
mod tests {
    use super::*;

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
