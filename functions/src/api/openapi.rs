//! The OpenAPI 3.1 document of the whole product, generated from the code: the wire model's
//! schemas come from `domain`'s derives, each operation from the `#[utoipa::path]` on its
//! handler (the payments group from the same `Kind::ALL` loop its router uses), and what every
//! operation shares — security scopes (from [`Access`]), error responses, the write headers —
//! is added here once. `shopping-local` serves it at `/openapi.json`; `functions/openapi.json`
//! is the checked-in copy a test keeps equal to it.

use super::params::Aid;
use crate::edge::auth::Access;
use crate::edge::error::ErrorBody;
use domain::payment::Kind;
use serde_json::json;
use utoipa::openapi::path::{
    HttpMethod, Operation, OperationBuilder, ParameterBuilder, ParameterIn, PathItem, PathItemBuilder,
};
use utoipa::openapi::request_body::RequestBodyBuilder;
use utoipa::openapi::schema::{ArrayBuilder, ObjectBuilder, Type};
use utoipa::openapi::security::{Http, HttpAuthScheme, SecurityRequirement, SecurityScheme};
use utoipa::openapi::{ContentBuilder, OpenApi as Document, Ref, Required, ResponseBuilder};
use utoipa::{IntoParams, Modify, OpenApi};

/// The bearer scheme's name, as upstream names it.
const SCHEME: &str = "JWT";
/// Where the token endpoint lives (it needs no token).
const TOKEN_PATH: &str = super::issuer::token::PATH;

#[derive(OpenApi)]
#[openapi(
    info(
        title = "Shopping API",
        description = "Drafts that complete into orders; order status, comments, events, sessions; \
                       authorizations, captures, refunds and cancellations; order lists and the \
                       customer and store views; webhook subscriptions (Hooks API); and the \
                       client-credentials token endpoint. Wire-compatible with the upstream \
                       Shopping API: every path is the upstream path under `/v1`.",
        license(name = "MIT", identifier = "MIT"),
    ),
    paths(
        super::drafts::list,
        super::drafts::create,
        super::drafts::fetch,
        super::drafts::replace,
        super::drafts::remove,
        super::drafts::complete,
        super::drafts::add_item,
        super::drafts::update_item,
        super::drafts::remove_item,
        super::orders::fetch,
        super::orders::update,
        super::orders::close,
        super::orders::open,
        super::orders::cancel,
        super::orders::add_comment,
        super::orders::delete_comment,
        super::orders::list_events,
        super::orders::add_event,
        super::orders::list_sessions,
        super::orders::create_session,
        super::orders::get_session,
        super::views::list,
        super::views::customer_list,
        super::views::customer_order,
        super::views::store_list,
        super::views::store_order,
        super::hooks::list,
        super::hooks::create,
        super::hooks::fetch,
        super::hooks::update,
        super::hooks::remove,
        super::hooks::ping,
        super::hooks::deliveries,
        super::hooks::delivery,
        super::hooks::recover,
        super::hooks::redeliver,
        super::issuer::token::issue,
    ),
    components(schemas(ErrorBody, domain::model::PaymentOperation, domain::payment::OperationRequest)),
    modifiers(&Payments, &Shared),
    tags(
        (name = "drafts", description = "Draft orders: build an order, then complete it."),
        (name = "orders", description = "One order: update, status, comments, events, sessions."),
        (name = "payments", description = "An order's authorizations, captures, refunds and cancellations."),
        (name = "lists", description = "Order lists with filters, and the customer and store views."),
        (name = "hooks", description = "Webhook subscriptions (the Hooks API)."),
        (name = "auth", description = "Access tokens for API clients (client credentials)."),
    )
)]
struct Doc;

/// The document.
pub fn document() -> Document {
    Doc::openapi()
}

/// The checked-in document, `functions/openapi.json`, which `shopping-local` serves: equal to
/// [`json`] (a test holds them so; regenerate with `shopping-local openapi`).
pub const CHECKED_IN: &str = include_str!("../../openapi.json");

/// The document as the pretty JSON the repository holds, generated from the code.
pub fn json() -> String {
    let mut text = document().to_pretty_json().unwrap_or_default();
    text.push('\n');
    text
}

/// The payments group: one list, create and get per kind, from the same `Kind::ALL` its
/// router is built from.
struct Payments;

impl Modify for Payments {
    fn modify(&self, doc: &mut Document) {
        let op_ref = || Ref::from_schema_name("PaymentOperation");
        for kind in Kind::ALL {
            let list = format!("/v1/accounts/{{aid}}/shopping/orders/{{order_id}}/{}", kind.plural());
            let noun = kind.plural().trim_end_matches('s');
            let listed = ObjectBuilder::new()
                .property(kind.plural(), ArrayBuilder::new().items(op_ref()))
                .required(kind.plural())
                .build();
            let list_op =
                operation(&format!("list_{}", kind.plural()), &format!("The order's {}, oldest first", kind.plural()))
                    .response("200", json_response(&format!("The {}", kind.plural()), listed));
            let create_op = operation(&format!("create_{noun}"), &format!("Record a {noun} on the order"))
                .request_body(Some(
                    RequestBodyBuilder::new()
                        .content(
                            "application/json",
                            ContentBuilder::new()
                                .schema(Some(Ref::from_schema_name("OperationRequest")))
                                .example(Some(json!({"amount": 1000, "items": [{"line_id": 1, "amount": 1000}]})))
                                .build(),
                        )
                        .required(Some(Required::True))
                        .build(),
                ))
                .response("200", json_response(&format!("The recorded {noun}"), op_ref()));
            let get_op = operation(&format!("get_{noun}"), &format!("One {noun} of the order"))
                .parameter(path_param("id", &format!("The {noun}'s id.")))
                .response("200", json_response(&format!("The {noun}"), op_ref()));
            let listed_and_created =
                PathItemBuilder::new().operation(HttpMethod::Get, list_op).operation(HttpMethod::Post, create_op);
            doc.paths.paths.insert(format!("{list}/{{id}}"), PathItem::new(HttpMethod::Get, get_op));
            doc.paths.paths.insert(list, listed_and_created.build());
        }
    }
}

/// A payments operation on an order: `{aid}` and `{order_id}` in its path.
fn operation(id: &str, summary: &str) -> OperationBuilder {
    OperationBuilder::new()
        .tag("payments")
        .operation_id(Some(id))
        .summary(Some(summary))
        .parameters(Some(Aid::into_params(|| None)))
        .parameter(path_param("order_id", "The order's `id` or `order_id`."))
}

fn path_param(name: &str, description: &str) -> utoipa::openapi::path::Parameter {
    ParameterBuilder::new()
        .name(name)
        .parameter_in(ParameterIn::Path)
        .required(Required::True)
        .description(Some(description))
        .schema(Some(ObjectBuilder::new().schema_type(Type::String)))
        .build()
}

fn json_response(
    description: &str,
    schema: impl Into<utoipa::openapi::RefOr<utoipa::openapi::schema::Schema>>,
) -> utoipa::openapi::Response {
    ResponseBuilder::new()
        .description(description)
        .content("application/json", ContentBuilder::new().schema(Some(schema)).build())
        .build()
}

/// What every operation shares: its security requirement (the scopes [`Access`] grants),
/// the error responses in the upstream shape, and on Shopping writes `Idempotency-Key` and
/// `If-Match`.
struct Shared;

impl Modify for Shared {
    fn modify(&self, doc: &mut Document) {
        let components = doc.components.get_or_insert_with(Default::default);
        components.security_schemes.insert(
            SCHEME.to_owned(),
            SecurityScheme::Http(
                Http::builder()
                    .scheme(HttpAuthScheme::Bearer)
                    .bearer_format("JWT")
                    .description(Some(format!("A token from `POST {TOKEN_PATH}` (client credentials).")))
                    .build(),
            ),
        );
        components.security_schemes.insert(
            "client".to_owned(),
            SecurityScheme::Http(
                Http::builder()
                    .scheme(HttpAuthScheme::Basic)
                    .description(Some("`client_id:client_secret` of an API client (or send them in the body)."))
                    .build(),
            ),
        );
        components.responses.insert("Error".to_owned(), error_response("An error in the upstream shape").into());
        for (path, item) in doc.paths.paths.iter_mut() {
            let ops = [
                (HttpMethod::Get, &mut item.get),
                (HttpMethod::Post, &mut item.post),
                (HttpMethod::Put, &mut item.put),
                (HttpMethod::Delete, &mut item.delete),
            ];
            for (method, op) in ops {
                if let Some(op) = op.as_mut() {
                    share(path, method, op);
                }
            }
        }
    }
}

fn error_response(description: &str) -> utoipa::openapi::Response {
    json_response(description, Ref::from_schema_name("ErrorBody"))
}

fn share(path: &str, method: HttpMethod, op: &mut Operation) {
    let statuses: &[(&str, &str)] = if path == TOKEN_PATH {
        &[("400", "The request is malformed"), ("401", "The client credentials are wrong")]
    } else {
        &[
            ("400", "A field, parameter or header is invalid; `errors` names each"),
            ("401", "No valid token"),
            ("403", "The token is of another account or lacks the scope"),
            ("404", "No such resource in the account"),
            ("409", "A business rule forbids the change, or a concurrent change won"),
            ("412", "The resource is not at the version in `If-Match`"),
            ("413", "The body or the stored resource would be too large"),
            ("429", "The account is over its request limit (`RATE_LIMITED`); retry after `Retry-After` seconds"),
            ("503", "The store is unavailable; retry after `Retry-After` seconds"),
        ]
    };
    for (status, description) in statuses {
        op.responses.responses.entry((*status).to_owned()).or_insert_with(|| error_response(description).into());
    }
    if path == TOKEN_PATH {
        return;
    }
    rate_limit_headers(op);
    let writes = !matches!(method, HttpMethod::Get);
    let access = match (writes, path.ends_with("/events")) {
        (false, false) => Access::Read,
        (false, true) => Access::EventsRead,
        (true, false) => Access::Write,
        (true, true) => Access::EventsWrite,
    };
    let scopes = if path.contains("/hooks/") { access.hooks_scopes() } else { access.shopping_scopes() };
    op.security = Some(scopes.iter().map(|s| SecurityRequirement::new(SCHEME, [*s])).collect());
    if writes && path.contains("/shopping/") {
        let params = op.parameters.get_or_insert_with(Vec::new);
        params.push(header(
            "Idempotency-Key",
            "^[!-~]{1,255}$",
            "1 to 255 visible ASCII characters. The first successful response is stored for 24 hours and \
             replayed for a repeat of the same request.",
        ));
        params.push(header(
            "If-Match",
            r#"^(\*|(W/)?"?[0-9]{1,19}"?)$"#,
            "The version the change expects, as the `ETag` of a read (`W/\"3\"`); `*` or absent means any.",
        ));
    }
}

/// Every answer under `/v1/accounts/{aid}/` carries the account's limit and what is left of
/// it (`edge::limit`, IETF draft-ietf-httpapi-ratelimit-headers-10); a 429 also `Retry-After`.
/// Written on the successes and the 429 only: on every error too, the document would double
/// in size (utoipa's responses take no `$ref` to a shared header) for no client's benefit.
fn rate_limit_headers(op: &mut Operation) {
    let text = |description: &str| {
        utoipa::openapi::HeaderBuilder::new()
            .schema(ObjectBuilder::new().schema_type(Type::String))
            .description(Some(description))
            .build()
    };
    for (status, response) in op.responses.responses.iter_mut() {
        let utoipa::openapi::RefOr::T(response) = response else { continue };
        if !(status.starts_with('2') || status == "429") {
            continue;
        }
        response.headers.insert("RateLimit-Policy".to_owned(), text("The account's quota (`\"default\";q=200;w=2`)."));
        response.headers.insert(
            "RateLimit".to_owned(),
            text("Left of it, and seconds until it is whole (`\"default\";r=50;t=1`)."),
        );
        if status == "429" {
            let mut seconds = text("Seconds until a retry can succeed.");
            seconds.schema = ObjectBuilder::new().schema_type(Type::Integer).minimum(Some(1)).into();
            response.headers.insert("Retry-After".to_owned(), seconds);
        }
    }
}

fn header(name: &str, pattern: &str, description: &str) -> utoipa::openapi::path::Parameter {
    ParameterBuilder::new()
        .name(name)
        .parameter_in(ParameterIn::Header)
        .required(Required::False)
        .description(Some(description))
        .schema(Some(ObjectBuilder::new().schema_type(Type::String).pattern(Some(pattern))))
        .build()
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_checked_in_document_is_the_generated_one() {
        assert!(
            super::json() == super::CHECKED_IN,
            "functions/openapi.json is stale: `cargo run -p functions --bin shopping-local -- openapi > functions/openapi.json`"
        );
    }

    /// The limiter's answers are documented where it gives them: every operation under
    /// `/v1/accounts/{aid}/` but the token endpoint may answer 429 with `Retry-After`, and its
    /// successes carry the RateLimit fields.
    #[test]
    fn every_limited_operation_documents_429_and_the_ratelimit_fields() {
        let doc: serde_json::Value = serde_json::from_str(&super::json()).expect("the document is JSON");
        let mut limited = 0;
        for (path, item) in doc["paths"].as_object().expect("paths") {
            for (method, op) in item.as_object().expect("a path item") {
                let responses = &op["responses"];
                let refused = &responses["429"];
                if path == super::TOKEN_PATH {
                    assert!(refused.is_null(), "the token endpoint is not limited per account");
                    continue;
                }
                assert!(path.starts_with("/v1/accounts/{aid}/"), "{path}");
                assert!(refused["headers"]["Retry-After"].is_object(), "{method} {path}: 429 without Retry-After");
                let ok = responses.as_object().expect("responses").iter().find(|(s, _)| s.starts_with('2'));
                let (_, ok) = ok.unwrap_or_else(|| panic!("{method} {path}: no success"));
                for field in ["RateLimit", "RateLimit-Policy"] {
                    assert!(ok["headers"][field].is_object(), "{method} {path}: success without {field}");
                    assert!(refused["headers"][field].is_object(), "{method} {path}: 429 without {field}");
                }
                limited += 1;
            }
        }
        assert!(limited > 40, "{limited} operations");
    }
}
