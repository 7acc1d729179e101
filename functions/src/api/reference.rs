//! The reference: `/openapi.json` and `/docs`, public and the same bytes on both hosts
//! (`shopping-local` and the stack's token function).

/// The renderer the docs page uses, vendored (see `functions/assets/redoc/LICENSE`) so the
/// page works offline: nothing is fetched from elsewhere at build or run time.
const REDOC_JS: &str = include_str!("../../assets/redoc/redoc.standalone.js");

const DOCS_HTML: &str = r#"<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>Shopping API reference</title>
<style>body { margin: 0; padding: 0; }</style>
</head>
<body>
<div id="reference"></div>
<script src="/docs/redoc.standalone.js"></script>
<script>Redoc.init("/openapi.json", { hideDownloadButton: false, expandResponses: "200" }, document.getElementById("reference"));</script>
</body>
</html>
"#;

/// `/openapi.json` (the checked-in document, which a test keeps equal to the one the code
/// generates) and `/docs` (it, rendered). Serving the checked-in bytes keeps the ~40 MiB that
/// building the document allocates out of the server's memory.
pub fn router() -> axum::Router {
    use axum::http::header::{CACHE_CONTROL, CONTENT_TYPE};
    use axum::routing::get;
    let document = crate::api::openapi::CHECKED_IN;
    axum::Router::new()
        .route("/openapi.json", get(move || async move { ([(CONTENT_TYPE, "application/json")], document) }))
        .route("/docs", get(|| async { ([(CONTENT_TYPE, "text/html; charset=utf-8")], DOCS_HTML) }))
        .route(
            "/docs/redoc.standalone.js",
            get(|| async {
                ([(CONTENT_TYPE, "text/javascript; charset=utf-8"), (CACHE_CONTROL, "max-age=86400")], REDOC_JS)
            }),
        )
}
