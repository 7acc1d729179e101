//! The developer-facing extras of `shopping-local`, as a user meets them: a client made with
//! `shopping-local client create` gets a token from the upstream-compatible token endpoint
//! (HTTP Basic, JSON or form credentials) and uses it; wrong credentials are a 401 that does
//! not say which part was wrong; `/metrics` counts each account's requests and units.

mod common;

use common::{post_with, start, try_http, BIN};
use std::process::Command;

const AID: &str = "T12345678";

fn json(s: &str) -> serde_json::Value {
    serde_json::from_str(s).unwrap_or_else(|e| panic!("{e}: {s}"))
}

fn client_create(dir: &std::path::Path, account: &str, scopes: &str) -> (String, String) {
    let out = Command::new(BIN)
        .args(["client", "create", "--account", account, "--scopes", scopes, "--data-dir"])
        .arg(dir)
        .output()
        .expect("client create");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let text = String::from_utf8(out.stdout).expect("utf8");
    let field = |k: &str| {
        text.lines()
            .find_map(|l| l.strip_prefix(&format!("{k}=")))
            .unwrap_or_else(|| panic!("{k} in {text}"))
            .to_owned()
    };
    (field("client_id"), field("client_secret"))
}

fn basic(id: &str, secret: &str) -> String {
    use base64::Engine as _;
    format!("Authorization: Basic {}", base64::engine::general_purpose::STANDARD.encode(format!("{id}:{secret}")))
}

#[test]
fn a_created_client_gets_a_token_and_usage_is_counted_per_account() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (id, secret) = client_create(dir.path(), AID, "admin:shopping");
    let (other_id, other_secret) = client_create(dir.path(), "T87654321", "read:shopping");
    let (mut server, port) = start(dir.path());
    let path = format!("/v1/accounts/{AID}/auth/token");
    let json_type = "application/json";

    // HTTP Basic, as the upstream docs show it
    // (the upstream request carries an `audience`; it is accepted and needs no change)
    let upstream =
        format!(r#"{{"grant_type":"client_credentials","audience":"https://api.example.com/v1/accounts/{AID}"}}"#);
    let (status, body) = post_with(port, &path, &[&basic(&id, &secret)], json_type, &upstream);
    assert_eq!(status, 200, "{body}");
    let answer = json(&body);
    assert_eq!(answer["token_type"], "Bearer");
    assert_eq!(answer["expires_in"], 3600);
    let token = answer["access_token"].as_str().expect("access_token").to_owned();
    // credentials in the JSON body, and as a form
    let body_creds = format!(r#"{{"grant_type":"client_credentials","client_id":"{id}","client_secret":"{secret}"}}"#);
    assert_eq!(post_with(port, &path, &[], json_type, &body_creds).0, 200);
    let form = format!("grant_type=client_credentials&client_id={id}&client_secret={secret}");
    assert_eq!(post_with(port, &path, &[], "application/x-www-form-urlencoded", &form).0, 200);
    // `curl -u id:secret -d '{"grant_type":…}'` sends JSON labelled as a form: still JSON
    let curl_default = r#"{"grant_type":"client_credentials"}"#;
    let labelled_form =
        post_with(port, &path, &[&basic(&id, &secret)], "application/x-www-form-urlencoded", curl_default);
    assert_eq!(labelled_form.0, 200, "{}", labelled_form.1);

    // the token works
    let draft =
        r#"{"order":{"currency":"NOK","items":[{"line_id":1,"gross_amount":100,"tax_lines":[{"percentage":25}]}]}}"#;
    let (status, created) =
        try_http(port, "POST", &format!("/v1/accounts/{AID}/shopping/draft_orders"), &token, draft).expect("create");
    assert_eq!(status, 200, "{created}");
    let draft_id = json(&created)["id"].as_str().expect("id").to_owned();
    let (status, _) =
        try_http(port, "GET", &format!("/v1/accounts/{AID}/shopping/draft_orders/{draft_id}"), &token, "")
            .expect("get");
    assert_eq!(status, 200);

    // wrong secret, unknown client, another account's client: the same 401, no hint
    let wrong = [
        post_with(port, &path, &[&basic(&id, "not-the-secret")], json_type, r#"{"grant_type":"client_credentials"}"#),
        post_with(port, &path, &[&basic("cl_nobody", &secret)], json_type, r#"{"grant_type":"client_credentials"}"#),
        post_with(
            port,
            &path,
            &[&basic(&other_id, &other_secret)],
            json_type,
            r#"{"grant_type":"client_credentials"}"#,
        ),
    ];
    for (status, body) in &wrong {
        assert_eq!(*status, 401, "{body}");
        assert_eq!(json(body)["error"], json(&wrong[0].1)["error"], "every refusal reads the same");
    }
    assert!(!wrong[0].1.contains("secret"), "{}", wrong[0].1);
    let (status, body) = post_with(port, &path, &[&basic(&id, &secret)], json_type, r#"{"grant_type":"password"}"#);
    assert_eq!(status, 400, "{body}");
    assert!(json(&body)["error"].is_object(), "the upstream error shape: {body}");

    // /metrics: the account's requests and units; nothing for an account nobody acted for
    let (status, metrics) = try_http(port, "GET", "/metrics", "", "").expect("metrics");
    server.kill().expect("kill");
    let _ = server.wait();
    assert_eq!(status, 200);
    let value = |name: &str| -> f64 {
        metrics
            .lines()
            .find_map(|l| l.strip_prefix(&format!("{name}{{account=\"{AID}\"}} ")))
            .and_then(|v| v.parse().ok())
            .unwrap_or_else(|| panic!("{name} for {AID} in\n{metrics}"))
    };
    assert_eq!(value("shopping_requests_total"), 2.0, "the create and the get");
    assert!(value("shopping_write_units_total") >= 1.0);
    assert!(value("shopping_read_units_total") >= 1.0);
    assert!(value("shopping_events_total") >= 1.0, "the draft's shopping_draft_add");
    assert!(!metrics.contains("T87654321"), "{metrics}");
}

fn client(dir: &std::path::Path, args: &[&str]) -> Vec<String> {
    let out = Command::new(BIN).arg("client").args(args).arg("--data-dir").arg(dir).output().expect("client");
    assert!(out.status.success(), "client {args:?}: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8(out.stdout).expect("utf8").lines().map(str::to_owned).collect()
}

#[test]
fn an_operator_lists_rotates_and_revokes_local_clients_and_each_change_is_audited() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (id, secret) = client_create(dir.path(), AID, "admin:shopping");
    let (mut server, port) = start(dir.path());
    let path = format!("/v1/accounts/{AID}/auth/token");
    let grant = r#"{"grant_type":"client_credentials"}"#;
    let token = |secret: &str| post_with(port, &path, &[&basic(&id, secret)], "application/json", grant).0;
    assert_eq!(token(&secret), 200);

    let rotated = client(dir.path(), &["rotate", &id]);
    let new_secret = rotated.iter().find_map(|l| l.strip_prefix("client_secret=")).expect("a new secret").to_owned();
    assert_eq!(token(&secret), 401, "the old secret stops working at once");
    assert_eq!(token(&new_secret), 200);

    assert_eq!(client(dir.path(), &["revoke", &id]), vec![format!("revoked client_id={id}")]);
    assert_eq!(token(&new_secret), 401, "a revoked client is refused at once");
    let list = client(dir.path(), &["list"]);
    assert!(list.iter().any(|l| l.starts_with(&id) && l.contains("\trevoked\t")), "{list:?}");
    let audit = client(dir.path(), &["audit"]);
    let actions: Vec<&str> = audit.iter().skip(1).filter_map(|l| l.split('\t').nth(1)).collect();
    assert_eq!(actions, ["create", "rotate", "revoke"], "{audit:?}");
    // An unknown client is a clear failure, not a silent success.
    let out =
        Command::new(BIN).args(["client", "revoke", "cl_nobody", "--data-dir"]).arg(dir.path()).output().expect("run");
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("no client cl_nobody"));
    server.kill().ok();
}
