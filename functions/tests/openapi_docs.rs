//! The API reference as a developer meets it: `/openapi.json` is the checked-in
//! `functions/openapi.json` (regenerate it with
//! `cargo run -p functions --bin shopping-local -- openapi > functions/openapi.json`), every
//! operation it lists is served (and no method it does not list), and `/docs` renders every
//! operation in a real browser, offline.

mod common;

use common::{start, try_http};
use serde_json::Value;
use std::process::Command;

const AID: &str = "T12345678";
const METHODS: [&str; 4] = ["get", "post", "put", "delete"];

fn document(port: u16) -> Value {
    let (status, body) = try_http(port, "GET", "/openapi.json", "", "").expect("answer");
    assert_eq!(status, 200, "{body}");
    serde_json::from_str(&body).expect("JSON")
}

/// (method, path template, summary) of every operation.
fn operations(doc: &Value) -> Vec<(String, String, String)> {
    let mut ops = Vec::new();
    for (path, item) in doc["paths"].as_object().expect("paths") {
        for m in METHODS {
            if let Some(op) = item.get(m) {
                let summary = op["summary"].as_str().unwrap_or_else(|| panic!("{m} {path} has no summary"));
                ops.push((m.to_uppercase(), path.clone(), summary.to_owned()));
            }
        }
    }
    ops
}

#[test]
fn the_served_document_is_the_checked_in_one_and_every_operation_is_routed() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (mut server, port) = start(dir.path());
    let (_, served) = try_http(port, "GET", "/openapi.json", "", "").expect("answer");
    let checked_in = include_str!("../openapi.json");
    let fix = "the OpenAPI document changed: run \
               `cargo run -p functions --bin shopping-local -- openapi > functions/openapi.json`";
    assert!(served == checked_in, "{fix}");

    let doc = document(port);
    assert_eq!(doc["openapi"], "3.1.0");
    let ops = operations(&doc);
    // 37 handlers, 4 payment kinds × 3 operations.
    assert_eq!(ops.len(), 49, "{ops:#?}");
    for (method, template, _) in &ops {
        let path = template
            .replace("{aid}", AID)
            .split('/')
            .map(|seg| if seg.starts_with('{') { "1" } else { seg })
            .collect::<Vec<_>>()
            .join("/");
        let (status, body) = try_http(port, method, &path, "not-a-token", "").expect("answer");
        // Unrouted would be 404 "route not found" or 405; a routed one refuses the token
        // (or, for the token endpoint, the empty body).
        assert!(
            status != 405 && !body.contains("route not found"),
            "{method} {template} is documented but not served: {status} {body}"
        );
        let op = &doc["paths"][template][method.to_lowercase()];
        let documented = op["responses"].get(status.to_string()).is_some();
        assert!(documented, "{method} {template} answered {status}, which its document does not list");
        if template.contains("/auth/") {
            assert!(op.get("security").is_some_and(|s| s[0].as_object().is_some_and(|o| o.is_empty())));
        } else {
            let scopes = op["security"].as_array().unwrap_or_else(|| panic!("{method} {template} has no security"));
            assert!(scopes.iter().all(|s| s["JWT"].as_array().is_some_and(|a| a.len() == 1)));
        }
    }
    // And the other way round: a method the document does not list on a path is not served.
    for (template, item) in doc["paths"].as_object().expect("paths") {
        let path = template.replace("{aid}", AID);
        for m in ["get", "post", "put", "delete", "patch"] {
            if item.get(m).is_none() {
                let (status, body) = try_http(port, &m.to_uppercase(), &path, "not-a-token", "").expect("answer");
                assert_eq!(status, 405, "{m} {template} is served but not documented: {body}");
            }
        }
    }
    server.kill().ok();
}

/// The list filters are documented by hand (the parsers read raw query pairs), so each
/// documented name is checked against the parser: a single-valued one given twice, or one
/// with a bad value, is a 400 naming it. The few that take any text are listed here.
#[test]
fn every_documented_list_filter_is_one_the_parser_reads() {
    const FREE_TEXT: [&str; 5] = ["customer_id", "card_brand", "psp", "payment_product", "payment_product_type"];
    let dir = tempfile::tempdir().expect("tempdir");
    let token = common::token(dir.path(), "admin:shopping");
    let (mut server, port) = start(dir.path());
    let doc = document(port);
    let mut checked = 0;
    for (template, item) in doc["paths"].as_object().expect("paths") {
        let Some(params) = item.get("get").and_then(|op| op["parameters"].as_array()) else { continue };
        let path = template.replace("{aid}", AID).replace("{customer_id}", "c1").replace("{store_id}", "s1");
        if path.contains('{') {
            continue;
        }
        for name in params.iter().filter(|p| p["in"] == "query").filter_map(|p| p["name"].as_str()) {
            let names_it = |query: &str| {
                let (status, body) = try_http(port, "GET", &format!("{path}?{query}"), &token, "").expect("answer");
                status == 400 && body.contains(&format!("\"path\":\"{name}\""))
            };
            let read = names_it(&format!("{name}=1&{name}=2")) || names_it(&format!("{name}=%21%21"));
            assert!(
                read || FREE_TEXT.contains(&name),
                "GET {template} documents `{name}`, which its parser does not read"
            );
            checked += 1;
        }
    }
    assert!(checked >= 40, "only {checked} filters checked");
    server.kill().ok();
}

/// A headless Chromium: `SHOPPING_TEST_CHROMIUM`, else the first of the usual names on PATH.
fn chromium() -> Option<String> {
    if let Ok(path) = std::env::var("SHOPPING_TEST_CHROMIUM") {
        return Some(path);
    }
    ["chromium", "chromium-browser", "google-chrome", "google-chrome-stable"].into_iter().find_map(|name| {
        let found = Command::new("sh").args(["-c", &format!("command -v {name}")]).output().ok()?;
        let path = String::from_utf8(found.stdout).ok()?.trim().to_owned();
        (found.status.success() && !path.is_empty()).then_some(path)
    })
}

#[test]
fn the_docs_page_lists_every_operation_in_a_headless_browser_offline() {
    let Some(browser) = chromium() else {
        // tests/run.sh installs Debian's chromium where it can; without one this test cannot
        // run, and says so rather than pass in silence.
        eprintln!(
            "SKIPPED the_docs_page_lists_every_operation_in_a_headless_browser_offline: no Chromium found \
             (install Debian's `chromium` or set SHOPPING_TEST_CHROMIUM)"
        );
        return;
    };
    let dir = tempfile::tempdir().expect("tempdir");
    let profile = tempfile::tempdir().expect("profile dir");
    let (mut server, port) = start(dir.path());
    let ops = operations(&document(port));
    let out = Command::new(&browser)
        .args(["--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--no-first-run"])
        // Offline: every host but the local server is unresolvable, so a page that needed a
        // CDN would render nothing.
        .arg("--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1")
        .arg(format!("--user-data-dir={}", profile.path().display()))
        .arg("--virtual-time-budget=30000")
        .arg("--dump-dom")
        .arg(format!("http://127.0.0.1:{port}/docs"))
        .output()
        .expect("run chromium");
    server.kill().ok();
    let dom = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "chromium failed: {}", String::from_utf8_lossy(&out.stderr));
    assert!(dom.contains("Shopping API"), "the page did not render the document: {dom:.2000}");
    let unescape = |s: &str| s.replace("&amp;", "&").replace("&lt;", "<").replace("&gt;", ">");
    let text = unescape(&dom);
    let missing: Vec<_> = ops.iter().filter(|(_, _, summary)| !text.contains(summary.as_str())).collect();
    assert!(missing.is_empty(), "the docs page does not list: {missing:#?}");
    // Every operation appears in the page by its path too (Redoc shows method and path).
    for (_, template, _) in &ops {
        assert!(text.contains(template.as_str()), "{template} is not on the page");
    }
}
