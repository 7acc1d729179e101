//! One route table: what API Gateway routes to each function (the `HttpApi` events of
//! `infra/template.yaml`) is what that function's router serves, with the same method and
//! path, and every operation the OpenAPI document lists has a route in the template. The
//! routers and the document are held to each other by `functions/tests/openapi_docs.rs`, so
//! the three agree.

use std::collections::BTreeSet;
use std::sync::Arc;
use tower::ServiceExt;

/// (function, method, path, public) of every `HttpApi` event in the template; public = the
/// route opts out of the JWT authorizer.
fn template_routes() -> Vec<(String, String, String, bool)> {
    let text = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../infra/template.yaml")).unwrap();
    let mut function = String::new();
    let mut routes = Vec::new();
    for line in text.lines() {
        // A resource: two spaces of indent, a name, a colon.
        if line.len() > 2 && line.starts_with("  ") && !line.starts_with("   ") && line.trim_end().ends_with(':') {
            function = line.trim().trim_end_matches(':').to_owned();
        }
        if let Some(props) = line.trim().strip_prefix("Properties: { ApiId: !Ref HttpApi, ") {
            let after = |name: &str| props.split(&format!("{name}: ")).nth(1).unwrap().to_owned();
            let method = after("Method").split([',', ' ']).next().unwrap().to_owned();
            // The path is quoted (it holds braces).
            let path = after("Path").split('"').nth(1).unwrap().to_owned();
            routes.push((function.clone(), method, path, props.contains("Auth: { Authorizer: NONE }")));
        }
    }
    routes
}

/// The token function's router (its store and KMS are never reached by these requests).
fn token_router(store: Arc<dyn infra::Store>, clock: Arc<dyn infra::Clock>) -> axum::Router {
    let config = functions::platform::lambda::TokenConfig::from_vars(|name| {
        Some(match name {
            "TABLE_NAME" => "t".to_owned(),
            "SIGNING_KEY_ID" => "k".to_owned(),
            "TOKEN_ISSUER" => "https://issuer.example/".to_owned(),
            "TOKEN_AUDIENCE" => "shopping-api".to_owned(),
            _ => return None,
        })
    })
    .unwrap();
    let kms = Arc::new(infra::kms::KmsKeys::emulator("http://127.0.0.1:9"));
    functions::platform::lambda::token_app(&config, store, clock, kms)
}

fn router_of(function: &str) -> axum::Router<functions::edge::state::AppState> {
    match function {
        "DraftsFunction" => functions::api::drafts::router(),
        "OrdersFunction" => functions::api::orders::router(),
        "PaymentsFunction" => functions::api::payments::router(),
        "ViewsFunction" => functions::api::views::router(),
        "HooksFunction" => functions::api::hooks::router(),
        other => panic!("the template routes HTTP to {other}, which serves no router"),
    }
}

#[tokio::test]
async fn every_template_route_is_served_by_its_function_and_every_operation_is_routed() {
    let routes = template_routes();
    assert!(routes.len() > 40, "the template's routes were not read: {routes:?}");
    let dir = tempfile::tempdir().unwrap();
    let clock: Arc<dyn infra::Clock> = Arc::new(infra::SystemClock::default());
    let store = Arc::new(infra::sqlite::SqliteStore::open(&dir.path().join("s.db"), clock.clone()).unwrap());
    let state = functions::edge::state::AppState::local(store, clock, functions::edge::auth::Auth::hs256(b"k"));
    let public: BTreeSet<(&str, &str, &str)> =
        routes.iter().filter(|r| r.3).map(|(f, m, p, _)| (f.as_str(), m.as_str(), p.as_str())).collect();
    let expected_public: BTreeSet<(&str, &str, &str)> = [
        ("TokenFunction", "POST", functions::api::issuer::token::PATH),
        ("TokenFunction", "GET", "/openapi.json"),
        ("TokenFunction", "GET", "/docs"),
        ("TokenFunction", "GET", "/docs/redoc.standalone.js"),
    ]
    .into();
    assert_eq!(public, expected_public, "the routes without the authorizer");
    for (function, method, path, public) in &routes {
        if *public {
            let app = token_router(state.store.clone(), state.clock.clone());
            let concrete = path.replace("{aid}", "T12345678");
            let req = axum::http::Request::builder()
                .method(method.as_str())
                .uri(&concrete)
                .body(axum::body::Body::empty())
                .unwrap();
            let status = app.oneshot(req).await.unwrap().status();
            // The token endpoint refuses an empty request (400); the reference answers 200.
            assert!(status == 200 || status == 400, "{function} does not serve {method} {path}: {status}");
            continue;
        }
        let app = functions::finish(router_of(function), state.clone());
        let concrete = path.replace("{aid}", "T12345678").replace('{', "x").replace('}', "");
        let req = axum::http::Request::builder()
            .method(method.as_str())
            .uri(&concrete)
            .body(axum::body::Body::empty())
            .unwrap();
        let res = app.oneshot(req).await.unwrap();
        // Without a token a served route answers 401; an unserved one 404 or 405.
        assert_eq!(res.status(), 401, "{function} does not serve {method} {path}");
    }
    let doc: serde_json::Value = serde_json::from_str(&functions::api::openapi::json()).unwrap();
    let templated: BTreeSet<(String, String)> = routes
        .iter()
        .filter(|r| !r.3 || r.2 == functions::api::issuer::token::PATH)
        .map(|(_, m, p, _)| (m.clone(), p.clone()))
        .collect();
    let mut documented = BTreeSet::new();
    for (path, item) in doc["paths"].as_object().unwrap() {
        for method in ["get", "post", "put", "delete"] {
            if item.get(method).is_some() {
                documented.insert((method.to_uppercase(), path.clone()));
            }
        }
    }
    let missing: Vec<_> = documented.difference(&templated).collect();
    assert!(missing.is_empty(), "documented but not routed by the template: {missing:?}");
    let undocumented: Vec<_> = templated.difference(&documented).collect();
    assert!(undocumented.is_empty(), "routed by the template but not documented: {undocumented:?}");
}
