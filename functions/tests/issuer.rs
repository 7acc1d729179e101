//! The stack as its own issuer, as AWS runs it: the token function and the keys function
//! driven through API Gateway v2 events (`lambda_http`'s adapter), with KMS (real RSA keys)
//! and DynamoDB on the local emulator, clients made by the operator command against the
//! table, and every token checked by PyJWT (a standard JWT library, not our code) against the
//! JWKS the keys function serves, with RSA algorithms only, as API Gateway's HTTP API
//! authorizer checks it: signature, `iss`, `aud`, `exp`, and the `aid` and `scope` the
//! functions read.

mod common;

use aws_sdk_kms::types::{KeySpec, KeyUsageType};
use base64::Engine as _;
use functions::platform::lambda::{keys_app, token_app, TokenConfig};
use lambda_http::request::LambdaRequest;
use lambda_http::{Adapter, Context, LambdaEvent, Service};
use serde_json::{json, Value};
use std::process::Command;
use std::sync::Arc;

const AID: &str = "T12345678";
const ISSUER: &str = "https://keys-abc.lambda-url.us-east-1.on.aws/";
const AUDIENCE: &str = "shopping-api";

fn endpoint() -> String {
    std::env::var("SHOPPING_TEST_DYNAMODB_ENDPOINT").expect(
        "SHOPPING_TEST_DYNAMODB_ENDPOINT is not set: run the suite with ./tests/run.sh, which starts the local AWS emulator",
    )
}

fn python() -> String {
    std::env::var("SHOPPING_TEST_PYTHON")
        .unwrap_or_else(|_| format!("{}/../target/pyenv/bin/python", env!("CARGO_MANIFEST_DIR")))
}

/// An API Gateway HTTP API v2 event (payload format 2.0), without an authorizer.
fn event(method: &str, path: &str, host: &str, headers: &[(&str, &str)], body: Option<&str>) -> LambdaRequest {
    let mut h = json!({"host": host, "user-agent": "upstream-client/1.0"});
    for (k, v) in headers {
        h[*k] = json!(v);
    }
    let e = json!({
        "version": "2.0",
        "routeKey": format!("{method} {path}"),
        "rawPath": path,
        "rawQueryString": "",
        "headers": h,
        "requestContext": {
            "accountId": "123456789012", "apiId": "abcdef1234", "domainName": host,
            "domainPrefix": "abcdef1234",
            "http": {"method": method, "path": path, "protocol": "HTTP/1.1", "sourceIp": "203.0.113.7",
                     "userAgent": "upstream-client/1.0"},
            "requestId": "req-issuer", "routeKey": format!("{method} {path}"), "stage": "$default",
            "time": "04/Dec/2026:12:00:00 +0000", "timeEpoch": 1796385600000_i64
        },
        "isBase64Encoded": false,
        "body": body,
    });
    serde_json::from_value(e).expect("an API Gateway v2 event")
}

async fn invoke(router: &axum::Router, request: LambdaRequest) -> (u16, Value, Value) {
    let mut adapter = Adapter::from(router.clone());
    let response = adapter.call(LambdaEvent::new(request, Context::default())).await.expect("infallible");
    let response = serde_json::to_value(&response).expect("serialisable response");
    let status = response["statusCode"].as_u64().expect("statusCode") as u16;
    let body = response["body"].as_str().map_or(Value::Null, |b| serde_json::from_str(b).expect("JSON body"));
    (status, body, response["headers"].clone())
}

fn basic(id: &str, secret: &str) -> String {
    format!("Basic {}", base64::engine::general_purpose::STANDARD.encode(format!("{id}:{secret}")))
}

const TOKEN_PATH: &str = "/v1/accounts/T12345678/auth/token";

/// The upstream token request: Basic credentials, a JSON body with the grant and audience.
async fn token_request(token: &axum::Router, id: &str, secret: &str) -> (u16, Value, Value) {
    let auth = basic(id, secret);
    let body = r#"{"grant_type":"client_credentials","audience":"https://api.example.com/v1/accounts/T12345678"}"#;
    let headers = [("authorization", auth.as_str()), ("content-type", "application/json")];
    invoke(token, event("POST", TOKEN_PATH, "api.example.com", &headers, Some(body))).await
}

/// PyJWT's verdict on `token` against `jwks`: the claims, or its error.
fn pyjwt(token: &str, jwks: &Value) -> Result<Value, String> {
    let script = r#"
import json, sys, jwt
token, jwks, issuer, audience = sys.argv[1], json.loads(sys.argv[2]), sys.argv[3], sys.argv[4]
keys = {k.key_id: k for k in jwt.PyJWKSet.from_dict(jwks).keys}
kid = jwt.get_unverified_header(token)["kid"]
claims = jwt.decode(token, keys[kid].key, algorithms=["RS256", "RS384", "RS512"], audience=audience, issuer=issuer,
                    options={"require": ["exp", "iss", "aud", "sub"]})
print(json.dumps({"claims": claims, "kid": kid}))
"#;
    let out = Command::new(python())
        .args(["-c", script, token, &jwks.to_string(), ISSUER, AUDIENCE])
        .output()
        .expect("run the test virtualenv's python (tests/run.sh installs PyJWT there)");
    if out.status.success() {
        Ok(serde_json::from_slice(&out.stdout).expect("JSON"))
    } else {
        Err(String::from_utf8_lossy(&out.stderr).into_owned())
    }
}

/// The operator command against the table, with credentials as the AWS CLI exports them.
fn operator(table: &str, args: &[&str]) -> Vec<String> {
    let out = Command::new(common::BIN)
        .arg("client")
        .args(args)
        .args(["--table", table, "--by", "ops@example.com"])
        .env("AWS_ENDPOINT_URL", endpoint())
        .env("AWS_REGION", "us-east-1")
        .env("AWS_ACCESS_KEY_ID", "test")
        .env("AWS_SECRET_ACCESS_KEY", "test")
        .output()
        .expect("run shopping-local client");
    assert!(out.status.success(), "client {args:?}: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8(out.stdout).expect("utf-8").lines().map(str::to_owned).collect()
}

fn value<'a>(lines: &'a [String], name: &str) -> &'a str {
    lines.iter().find_map(|l| l.strip_prefix(&format!("{name}="))).unwrap_or_else(|| panic!("no {name} in {lines:?}"))
}

async fn signing_key(kms: &aws_sdk_kms::Client) -> String {
    let out = kms
        .create_key()
        .key_spec(KeySpec::Rsa2048)
        .key_usage(KeyUsageType::SignVerify)
        .send()
        .await
        .expect("create a signing key on the emulator");
    out.key_metadata().expect("metadata").key_id().to_owned()
}

fn config(table: &str, key_id: Option<&str>) -> TokenConfig {
    TokenConfig::from_vars(|name| match name {
        "TABLE_NAME" => Some(table.to_owned()),
        "SIGNING_KEY_ID" => key_id.map(str::to_owned),
        "TOKEN_ISSUER" => Some(ISSUER.to_owned()),
        "TOKEN_AUDIENCE" => Some(AUDIENCE.to_owned()),
        _ => None,
    })
    .expect("config")
}

async fn jwks(keys: &axum::Router) -> Value {
    let host = "keys-abc.lambda-url.us-east-1.on.aws";
    // API Gateway joins the issuer (with its trailing slash) and the well-known path.
    let (status, discovery, _) =
        invoke(keys, event("GET", "//.well-known/openid-configuration", host, &[], None)).await;
    assert_eq!(status, 200, "{discovery}");
    assert_eq!(discovery["issuer"], ISSUER, "the discovery document names the issuer the tokens carry");
    let jwks_uri = discovery["jwks_uri"].as_str().expect("jwks_uri");
    let path = jwks_uri.strip_prefix(ISSUER).map(|p| format!("/{p}")).expect("the keys are under the issuer");
    let (status, jwks, headers) = invoke(keys, event("GET", &path, host, &[], None)).await;
    assert_eq!(status, 200, "{jwks}");
    assert!(headers["cache-control"].as_str().is_some_and(|c| c.contains("max-age")), "{headers}");
    jwks
}

/// An emulated account: a fresh table on DynamoDB and KMS, both on the local emulator.
struct Account {
    table: String,
    store: Arc<dyn infra::Store>,
    clock: Arc<dyn infra::Clock>,
    kms_client: aws_sdk_kms::Client,
    kms: Arc<infra::kms::KmsKeys>,
}

impl Account {
    async fn new() -> Self {
        let endpoint = endpoint();
        let table = format!("issuer-{}", uuid::Uuid::new_v4().simple());
        let ddb = infra::dynamo::emulator_client(&endpoint);
        infra::dynamo::create_table(&ddb, &table).await.expect("table");
        let clock: Arc<dyn infra::Clock> = Arc::new(infra::SystemClock::default());
        let store: Arc<dyn infra::Store> = Arc::new(infra::dynamo::DynamoStore::new(ddb, table.clone(), clock.clone()));
        let kms_client = infra::kms::emulator_client(&endpoint);
        let kms = Arc::new(infra::kms::KmsKeys::new(kms_client.clone()));
        Self { table, store, clock, kms_client, kms }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_stack_issues_tokens_a_standard_library_verifies_and_rotates_its_key() {
    let Account { table, store, clock, kms_client, kms } = Account::new().await;
    let (old_key, new_key) = (signing_key(&kms_client).await, signing_key(&kms_client).await);

    // The operator makes two clients on the table.
    let made = operator(&table, &["create", "--account", AID, "--scopes", "admin:shopping read:hooks"]);
    let (id, secret) = (value(&made, "client_id").to_owned(), value(&made, "client_secret").to_owned());
    let other = operator(&table, &["create", "--account", "T87654321"]);
    let (other_id, other_secret) = (value(&other, "client_id").to_owned(), value(&other, "client_secret").to_owned());

    let token_fn = token_app(&config(&table, Some(&old_key)), store.clone(), clock.clone(), kms.clone());
    let keys_fn = keys_app(vec![old_key.clone()], kms.clone());

    // An upstream-shaped request answers an upstream-shaped token.
    let (status, body, headers) = token_request(&token_fn, &id, &secret).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["token_type"], "Bearer");
    assert_eq!(body["expires_in"], 3600);
    assert_eq!(headers["cache-control"], "no-store");
    let old_token = body["access_token"].as_str().expect("access_token").to_owned();

    let before_rotation = jwks(&keys_fn).await;
    // Anything else on the issuer's URL is a clear 404 or 405.
    let host = "keys-abc.lambda-url.us-east-1.on.aws";
    assert_eq!(invoke(&keys_fn, event("GET", "/.well-known/other", host, &[], None)).await.0, 404);
    assert_eq!(invoke(&keys_fn, event("POST", "/.well-known/jwks.json", host, &[], None)).await.0, 405);
    let verified = pyjwt(&old_token, &before_rotation).expect("PyJWT verifies the token");
    let claims = &verified["claims"];
    assert_eq!(verified["kid"], old_key.as_str());
    assert_eq!(claims["iss"], ISSUER);
    assert_eq!(claims["aud"], AUDIENCE);
    assert_eq!(claims["aid"], AID);
    assert_eq!(claims["scope"], "admin:shopping read:hooks");
    assert_eq!(claims["sub"], id.as_str());
    let exp = claims["exp"].as_i64().expect("exp");
    let now = chrono::Utc::now().timestamp();
    assert!((now + 3590..=now + 3610).contains(&exp), "exp {exp} is an hour from now ({now})");

    // The same credentials in a form body, as RFC 6749 clients send them.
    let form = format!("grant_type=client_credentials&client_id={id}&client_secret={secret}");
    let headers = [("content-type", "application/x-www-form-urlencoded")];
    let (status, body, _) =
        invoke(&token_fn, event("POST", TOKEN_PATH, "api.example.com", &headers, Some(&form))).await;
    assert_eq!(status, 200, "{body}");

    // Every wrong part gets the same 401; a wrong grant a 400.
    let refused = token_request(&token_fn, &id, "0".repeat(64).as_str()).await;
    assert_eq!(refused.0, 401, "{}", refused.1);
    for (who, pass) in [("cl_unknown", secret.as_str()), (other_id.as_str(), other_secret.as_str())] {
        let (status, body, _) = token_request(&token_fn, who, pass).await;
        assert_eq!((status, &body), (401, &refused.1), "{who}: the same refusal");
    }
    let password = r#"{"grant_type":"password"}"#;
    let auth = basic(&id, &secret);
    let headers = [("authorization", auth.as_str()), ("content-type", "application/json")];
    let (status, body, _) =
        invoke(&token_fn, event("POST", TOKEN_PATH, "api.example.com", &headers, Some(password))).await;
    assert_eq!(status, 400, "{body}");

    // A rotation: the new key signs, both are published; the old key's tokens still verify.
    let token_fn = token_app(&config(&table, Some(&new_key)), store.clone(), clock.clone(), kms.clone());
    let keys_fn = keys_app(vec![new_key.clone(), old_key.clone()], kms.clone());
    let during = jwks(&keys_fn).await;
    assert_eq!(during["keys"].as_array().map(Vec::len), Some(2), "{during}");
    let (status, body, _) = token_request(&token_fn, &id, &secret).await;
    assert_eq!(status, 200, "{body}");
    let new_token = body["access_token"].as_str().expect("access_token");
    let verified = pyjwt(new_token, &during).expect("the new key's token verifies");
    assert_eq!(verified["kid"], new_key.as_str(), "the new key signs");
    let verified = pyjwt(&old_token, &during).expect("the old key's token still verifies");
    assert_eq!(verified["kid"], old_key.as_str());
    // Once the old key is retired, its tokens no longer verify.
    let after = jwks(&keys_app(vec![new_key.clone()], kms.clone())).await;
    assert!(pyjwt(&old_token, &after).is_err(), "a retired key's token is refused");
    // A token signed by another key under a published kid is refused.
    let forged = format!(
        "{}.{}",
        &old_token[..old_token.rfind('.').expect("jws")],
        &new_token[new_token.rfind('.').expect("jws") + 1..]
    );
    assert!(pyjwt(&forged, &during).is_err(), "a signature by another key is refused");

    // Rotating a client's secret: the old one is refused at once, the new one works.
    let rotated = operator(&table, &["rotate", &id]);
    let new_secret = value(&rotated, "client_secret").to_owned();
    assert_eq!(token_request(&token_fn, &id, &secret).await.0, 401, "the old secret is refused");
    assert_eq!(token_request(&token_fn, &id, &new_secret).await.0, 200, "the new secret works");

    // Revoking: the client is refused at once.
    let revoked = operator(&table, &["revoke", &id]);
    assert_eq!(revoked, vec![format!("revoked client_id={id}")]);
    let (status, body, _) = token_request(&token_fn, &id, &new_secret).await;
    assert_eq!((status, &body), (401, &refused.1), "a revoked client is refused");

    // The register and the audit trail.
    let list = operator(&table, &["list"]);
    assert_eq!(list.len(), 3, "{list:?}");
    let row = list.iter().find(|l| l.starts_with(&id)).expect("the revoked client is listed");
    assert!(row.contains(&format!("\t{AID}\trevoked\t")), "{row}");
    let row = list.iter().find(|l| l.starts_with(&other_id)).expect("the other client is listed");
    assert!(row.contains("\tT87654321\tactive\tadmin:shopping\t"), "{row}");
    let audit = operator(&table, &["audit"]);
    let actions: Vec<&str> =
        audit.iter().skip(1).filter(|l| l.contains(&id)).filter_map(|l| l.split('\t').nth(1)).collect();
    assert_eq!(actions, ["create", "rotate", "revoke"], "{audit:?}");
    assert!(audit.iter().skip(1).all(|l| l.ends_with("\tops@example.com")), "{audit:?}");
    // The secret is nowhere in the table: only its keyed hash.
    let all = store.query(&infra::Query::partition(format!("CLIENT#{other_id}"))).await.expect("query");
    assert!(all.items.iter().all(|i| !i.doc.contains(&other_secret)));

    // The reference, public on the token function: the same bytes as shopping-local serves.
    let local = functions::platform::local::app(
        functions::edge::state::AppState::local(
            store.clone(),
            Arc::new(infra::SystemClock::default()),
            functions::edge::auth::Auth::hs256(b"k"),
        ),
        b"k".to_vec(),
    );
    for path in ["/openapi.json", "/docs", "/docs/redoc.standalone.js"] {
        let mut adapter = Adapter::from(token_fn.clone());
        let response =
            adapter.call(LambdaEvent::new(event("GET", path, "api.example.com", &[], None), Context::default()));
        let response = serde_json::to_value(response.await.expect("infallible")).expect("serialisable");
        assert_eq!(response["statusCode"], 200, "{path}");
        let req = axum::http::Request::builder().uri(path).body(axum::body::Body::empty()).expect("request");
        let there = tower::ServiceExt::oneshot(local.clone(), req).await.expect("infallible");
        let bytes = axum::body::to_bytes(there.into_body(), usize::MAX).await.expect("body");
        assert_eq!(
            response["body"].as_str().map(str::as_bytes),
            Some(&bytes[..]),
            "{path}: the same bytes on both hosts"
        );
    }

    // With an outside identity provider the token endpoint says tokens come from it.
    let outside = token_app(&config(&table, None), store.clone(), clock.clone(), kms.clone());
    let (status, body, _) = token_request(&outside, &other_id, &other_secret).await;
    assert_eq!(status, 404, "{body}");
    assert!(body["error"]["message"].as_str().is_some_and(|m| m.contains("JwtIssuer")), "{body}");
}

/// The claims of `token`, unverified (the payload's base64url JSON).
fn payload(token: &str) -> Value {
    let middle = token.split('.').nth(1).expect("a JWS");
    let raw = base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(middle).expect("base64url");
    serde_json::from_slice(&raw).expect("JSON claims")
}

/// Whether PyJWT, allowed RSA algorithms only (as API Gateway's HTTP API authorizer), refuses
/// the classic forgery of `token`: re-signed HS256 with the published public key as the secret.
fn forgery_refused(token: &str, jwks: &Value) -> bool {
    let script = r#"
import base64, hashlib, hmac, json, sys, jwt
from cryptography.hazmat.primitives import serialization
token, jwks = sys.argv[1], json.loads(sys.argv[2])
keys = {k.key_id: k for k in jwt.PyJWKSet.from_dict(jwks).keys}
head = jwt.get_unverified_header(token)
pem = keys[head["kid"]].key.public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
b64 = lambda b: base64.urlsafe_b64encode(b).rstrip(b"=").decode()
header = b64(json.dumps({"alg": "HS256", "typ": "JWT", "kid": head["kid"]}).encode())
body = token.split(".")[1]
forged = f"{header}.{body}." + b64(hmac.new(pem, f"{header}.{body}".encode(), hashlib.sha256).digest())
try:
    jwt.decode(forged, keys[head["kid"]].key, algorithms=["RS256", "RS384", "RS512"], options={"verify_aud": False})
    print("accepted")
except jwt.InvalidTokenError as e:
    print("refused", type(e).__name__)
"#;
    let out = Command::new(python()).args(["-c", script, token, &jwks.to_string()]).output().expect("python");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8_lossy(&out.stdout).starts_with("refused")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_strict_client_meets_rfc_6749_and_clients_hashed_with_the_old_key_keep_working() {
    use domain::table::{client_key, legacy_hash_key, Item, WriteOp};
    use hmac::{KeyInit, Mac};
    let Account { table, store, clock, kms_client, kms } = Account::new().await;
    let key = signing_key(&kms_client).await;
    let token_fn = token_app(&config(&table, Some(&key)), store.clone(), clock.clone(), kms.clone());
    let keys_fn = keys_app(vec![key.clone()], kms.clone());

    let made = operator(&table, &["create", "--account", AID, "--scopes", "admin:shopping read:hooks"]);
    let (id, secret) = (value(&made, "client_id").to_owned(), value(&made, "client_secret").to_owned());
    // No hashing key is made: the secret's hash is unkeyed, and nothing else is in the table.
    assert!(store.get(&legacy_hash_key()).await.expect("get").is_none(), "no key material in the table");
    let auth = basic(&id, &secret);
    let post = |body: String| {
        let auth = auth.clone();
        let token_fn = token_fn.clone();
        async move {
            let headers = [("authorization", auth.as_str()), ("content-type", "application/json")];
            invoke(&token_fn, event("POST", TOKEN_PATH, "api.example.com", &headers, Some(&body))).await
        }
    };

    // `scope` narrows the token; a scope the client lacks is invalid_scope.
    let (status, body, _) = post(r#"{"grant_type":"client_credentials","scope":"read:shopping"}"#.into()).await;
    assert_eq!(status, 200, "{body}");
    let token = body["access_token"].as_str().expect("token").to_owned();
    assert_eq!(payload(&token)["scope"], "read:shopping");
    let jwks = jwks(&keys_fn).await;
    assert_eq!(jwks["keys"][0]["kty"], "RSA", "{jwks}");
    assert_eq!(jwks["keys"][0]["alg"], "RS256", "{jwks}");
    assert_eq!(pyjwt(&token, &jwks).expect("verifies")["claims"]["scope"], "read:shopping");
    assert!(forgery_refused(&token, &jwks), "an HS256 token keyed with the public key is refused");
    let (status, body, _) = post(r#"{"grant_type":"client_credentials","scope":"admin:hooks"}"#.into()).await;
    assert_eq!(status, 400, "{body}");
    assert_eq!(body["error"]["errors"][0]["code"], "invalid_scope", "{body}");
    assert_eq!(body["error"]["errors"][0]["path"], "scope", "{body}");
    // One authentication method per request: a secret in the body beside Basic is refused.
    let both = format!(r#"{{"grant_type":"client_credentials","client_id":"{id}","client_secret":"{secret}"}}"#);
    let (status, body, _) = post(both).await;
    assert_eq!(status, 400, "{body}");
    assert_eq!(body["error"]["errors"][0]["code"], "invalid_request", "{body}");
    // The discovery document names no flow and no algorithm the issuer does not have.
    let host = "keys-abc.lambda-url.us-east-1.on.aws";
    let (_, discovery, _) = invoke(&keys_fn, event("GET", "/.well-known/openid-configuration", host, &[], None)).await;
    assert_eq!(discovery["grant_types_supported"], json!(["client_credentials"]), "{discovery}");
    assert_eq!(discovery["response_types_supported"], json!([]), "{discovery}");
    assert!(discovery.get("id_token_signing_alg_values_supported").is_none(), "{discovery}");

    // A client hashed with the legacy key (the table's AUTH#KEYS item, as stacks made it before)
    // still authenticates; its first token rehashes it, and `client migrate` then removes the key.
    let legacy_key = "ab".repeat(32);
    let legacy_secret = "cd".repeat(32);
    let mut mac = hmac::Hmac::<sha2::Sha256>::new_from_slice(legacy_key.as_bytes()).expect("key");
    mac.update(legacy_secret.as_bytes());
    let legacy_hash: String = mac.finalize().into_bytes().iter().map(|b| format!("{b:02x}")).collect();
    let legacy_id = "cl_0123456789abcdef01234567";
    let record = json!({"client_id": legacy_id, "account_id": AID, "scopes": "admin:shopping",
                        "secret_hash": legacy_hash, "created_at": "2026-11-01T00:00:00Z"});
    let register = json!({"client_id": legacy_id, "account_id": AID, "scopes": "admin:shopping",
                          "status": "active", "created_at": "2026-11-01T00:00:00Z"});
    store
        .write(vec![
            WriteOp::Put { item: Item::new(legacy_hash_key(), 0, legacy_key.clone()), cond: None },
            WriteOp::Put { item: Item::new(client_key(legacy_id), 0, record.to_string()), cond: None },
            WriteOp::Put {
                item: Item::new(
                    domain::table::Key::new(domain::table::CLIENT_REGISTER_PK, legacy_id),
                    0,
                    register.to_string(),
                ),
                cond: None,
            },
        ])
        .await
        .expect("a legacy client");
    assert_eq!(
        operator(&table, &["migrate"])[..2],
        [
            "legacy_clients=1".to_owned(),
            "legacy hashing key kept: these clients rehash on their next token (or rotate them)".to_owned()
        ]
    );
    let fresh = token_app(&config(&table, Some(&key)), store.clone(), clock.clone(), kms.clone());
    assert_eq!(
        token_request(&fresh, legacy_id, "0".repeat(64).as_str()).await.0,
        401,
        "a wrong secret is still refused"
    );
    assert_eq!(token_request(&fresh, legacy_id, &legacy_secret).await.0, 200, "the legacy client keeps working");
    let stored: Value =
        serde_json::from_str(&store.get(&client_key(legacy_id)).await.expect("get").expect("kept").doc).expect("JSON");
    assert!(stored.get("secret_hash").is_none() && stored["secret_sha256"].is_string(), "rehashed: {stored}");
    let again = token_app(&config(&table, Some(&key)), store.clone(), clock.clone(), kms.clone());
    assert_eq!(token_request(&again, legacy_id, &legacy_secret).await.0, 200, "and keeps working rehashed");
    assert_eq!(operator(&table, &["migrate"]), ["legacy_clients=0", "legacy hashing key removed"]);
    assert!(store.get(&legacy_hash_key()).await.expect("get").is_none(), "the legacy key is gone");
    assert_eq!(token_request(&again, legacy_id, &legacy_secret).await.0, 200, "the client needs it no more");
}
