//! The request's path as API Gateway routed it, for the Lambdas behind the HTTP API.
//!
//! `lambda_http` builds the request URI from the event's `rawPath`, and AWS does not document
//! whether the HTTP API percent-decodes `rawPath`; it documents that "API Gateway decodes
//! URL-encoded request parameters before passing them to your backend integration"
//! (`http-api-develop-routes.html`). Under the decoding reading, a customer id holding `/`,
//! `?`, `#` or `%` comes back as another path. So a request that matched a route with
//! parameters gets its path rebuilt from the route (`routeKey`) and the decoded
//! `pathParameters`, each encoded as one segment: the same under either reading. Requests that
//! matched no such route (and every request on `shopping-local`) keep their URI.

use lambda_http::request::RequestContext;
use lambda_http::RequestExt as _;
use percent_encoding::{utf8_percent_encode, AsciiSet, NON_ALPHANUMERIC};

/// Everything but RFC 3986's unreserved characters is encoded in a segment.
const SEGMENT: &AsciiSet = &NON_ALPHANUMERIC.remove(b'-').remove(b'.').remove(b'_').remove(b'~');

/// Wraps a router so that requests reach it with their routed path (before its own routing).
pub fn routed<S>(service: S) -> tower::util::MapRequest<S, fn(lambda_http::Request) -> lambda_http::Request> {
    tower::util::MapRequest::new(service, with_routed_path)
}

/// The request with the path API Gateway routed, when it matched a route with parameters.
pub fn with_routed_path(mut req: lambda_http::Request) -> lambda_http::Request {
    if let Some(uri) = routed_uri(&req) {
        *req.uri_mut() = uri;
    }
    req
}

fn routed_uri(req: &lambda_http::Request) -> Option<axum::http::Uri> {
    let Some(RequestContext::ApiGatewayV2(ctx)) = req.request_context_ref() else { return None };
    let (_, template) = ctx.route_key.as_deref()?.split_once(' ')?;
    if !template.contains('{') {
        return None;
    }
    let params = req.path_parameters_ref()?;
    let mut path = String::with_capacity(template.len() + 32);
    for segment in template.split('/').skip(1) {
        path.push('/');
        match segment.strip_prefix('{').and_then(|s| s.strip_suffix('}')) {
            Some(name) => match name.strip_suffix('+') {
                // A greedy parameter spans segments: each keeps its own.
                Some(greedy) => {
                    let value = params.first(greedy)?;
                    let parts: Vec<String> =
                        value.split('/').map(|p| utf8_percent_encode(p, SEGMENT).to_string()).collect();
                    path.push_str(&parts.join("/"));
                }
                None => path.extend(utf8_percent_encode(params.first(name)?, SEGMENT)),
            },
            None => path.push_str(segment),
        }
    }
    if segments(req.uri().path()) == segments(&path) {
        return None;
    }
    // The path was not the routed one, so neither is what `lambda_http` took for the query
    // (a `?` in a decoded path starts one): the query is rebuilt from its parsed parameters.
    let query = req.query_string_parameters_ref().map(|q| {
        let mut out = form_urlencoded::Serializer::new(String::new());
        for (k, v) in q.iter() {
            out.append_pair(k, v);
        }
        out.finish()
    });
    let path_and_query = match query.filter(|q| !q.is_empty()) {
        Some(q) => format!("{path}?{q}"),
        None => path,
    };
    let mut parts = req.uri().clone().into_parts();
    parts.path_and_query = Some(path_and_query.parse().ok()?);
    axum::http::Uri::from_parts(parts).ok()
}

/// A path's segments, each decoded: an encoded `/` stays inside its segment.
fn segments(path: &str) -> Vec<std::borrow::Cow<'_, str>> {
    path.split('/').map(|s| percent_encoding::percent_decode_str(s).decode_utf8_lossy()).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use lambda_http::request::LambdaRequest;

    /// A payload format 2.0 event of the customer-orders route for `id`, with `raw_path` as
    /// the gateway might send it.
    fn event(raw_path: &str, id: &str, query: &str) -> lambda_http::Request {
        let e = serde_json::json!({
            "version": "2.0",
            "routeKey": "GET /v1/accounts/{aid}/shopping/customers/{customer_id}/orders",
            "rawPath": raw_path,
            "rawQueryString": query,
            "headers": {"host": "api.example.com"},
            "pathParameters": {"aid": "T12345678", "customer_id": id},
            "requestContext": {
                "accountId": "123456789012", "apiId": "abc", "domainName": "api.example.com",
                "http": {"method": "GET", "path": raw_path, "protocol": "HTTP/1.1", "sourceIp": "203.0.113.7",
                         "userAgent": "t"},
                "requestId": "r", "routeKey": "GET /v1/accounts/{aid}/shopping/customers/{customer_id}/orders",
                "stage": "$default", "time": "07/Dec/2026:00:00:00 +0000", "timeEpoch": 0
            },
            "isBase64Encoded": false
        });
        let request: LambdaRequest = serde_json::from_value(e).expect("a v2 event");
        lambda_http::Request::from(request)
    }

    #[test]
    fn an_id_with_reserved_characters_keeps_its_segment_under_either_reading_of_raw_path() {
        let id = "a b%c+d/e?f#g";
        let want = "/v1/accounts/T12345678/shopping/customers/a%20b%25c%2Bd%2Fe%3Ff%23g/orders";
        for raw in [want.to_owned(), format!("/v1/accounts/T12345678/shopping/customers/{id}/orders")] {
            let req = with_routed_path(event(&raw, id, "limit=2"));
            assert_eq!(req.uri().path(), want, "rawPath {raw}");
            assert_eq!(req.uri().query(), Some("limit=2"), "rawPath {raw}");
        }
    }

    #[test]
    fn a_slash_in_an_id_stays_in_its_segment() {
        let want = "/v1/accounts/T12345678/shopping/customers/sl%2Fash/orders";
        let decoded = with_routed_path(event("/v1/accounts/T12345678/shopping/customers/sl/ash/orders", "sl/ash", ""));
        assert_eq!(decoded.uri().path(), want);
        let as_sent = with_routed_path(event(want, "sl/ash", ""));
        assert_eq!(as_sent.uri().path(), want);
    }

    #[test]
    fn a_plain_path_is_left_as_it_came() {
        let raw = "/v1/accounts/T12345678/shopping/customers/cust-1/orders";
        let req = with_routed_path(event(raw, "cust-1", "limit=2&starting_after=x"));
        assert_eq!(req.uri().path(), raw);
        assert_eq!(req.uri().query(), Some("limit=2&starting_after=x"), "the query untouched, in its order");
    }
}
