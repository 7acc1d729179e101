//! Smoke's HTTP: the API through its gateway, the issuer's documents as the gateway fetches
//! them, and what an answer looked like, cut short for a report line.
//!
//! Testing aid: `SHOPPING_SMOKE_URL_MAP="https://FROM/=http://127.0.0.1:PORT/ …"` fetches any
//! URL starting with FROM from the second address instead (the stack on a laptop serves its
//! issuer's public `https://….lambda-url….on.aws/` at a loopback port).

use std::time::Duration;

/// An answer: status, content type and body.
pub struct Answer {
    pub status: u16,
    pub content_type: String,
    pub body: String,
    /// API Gateway's `apigw-requestid`: what its access log and the function's log name.
    pub request_id: Option<String>,
}

impl Answer {
    /// `401 {"message":"Unauthorized"}`: the status and the start of the body, on one line
    /// (with the request id of a 5xx).
    pub fn seen(&self) -> String {
        let body: String = self.body.split_whitespace().collect::<Vec<_>>().join(" ");
        let cut: String = body.chars().take(160).collect();
        let more = if cut.len() < body.len() { "…" } else { "" };
        // The request id finds a failed request in the gateway's and the function's logs.
        let id = match &self.request_id {
            Some(id) if self.status >= 500 => format!(" (apigw-requestid {id})"),
            _ => String::new(),
        };
        format!("{} {cut}{more}", self.status).trim_end().to_owned() + &id
    }

    pub fn json(&self) -> Option<serde_json::Value> {
        serde_json::from_str(&self.body).ok()
    }

    pub fn ok(&self) -> bool {
        (200..300).contains(&self.status)
    }
}

/// An error and its sources (reqwest's own text says only "error sending request").
pub fn error_chain(e: &dyn std::error::Error) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        text.push_str(": ");
        text.push_str(&s.to_string());
        source = s.source();
    }
    text
}

pub struct Http {
    pub client: reqwest::Client,
    map: Vec<(String, String)>,
}

impl Http {
    pub fn new() -> Result<Self, String> {
        // reqwest is built without a crypto provider of its own (infra's webhook client is the
        // same): ring, as for the SDK clients.
        let _ = rustls::crypto::ring::default_provider().install_default();
        let client = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .timeout(Duration::from_secs(30))
            .build()
            .map_err(|e| format!("the HTTP client could not be built: {e}"))?;
        let map = std::env::var("SHOPPING_SMOKE_URL_MAP")
            .unwrap_or_default()
            .split_whitespace()
            .filter_map(|pair| pair.split_once('='))
            .map(|(from, to)| (from.to_owned(), to.to_owned()))
            .collect();
        Ok(Self { client, map })
    }

    fn mapped(&self, url: &str) -> String {
        for (from, to) in &self.map {
            if let Some(rest) = url.strip_prefix(from.as_str()) {
                return format!("{to}{rest}");
            }
        }
        url.to_owned()
    }

    /// One request; `Err` when no answer came (what stopped it).
    pub async fn send(
        &self,
        method: reqwest::Method,
        url: &str,
        headers: &[(&str, &str)],
        body: Option<String>,
    ) -> Result<Answer, String> {
        let mut req = self.client.request(method, self.mapped(url));
        for (k, v) in headers {
            req = req.header(*k, *v);
        }
        if let Some(body) = body {
            req = req.header("content-type", "application/json").body(body);
        }
        let res = req.send().await.map_err(|e| format!("no answer from {url}: {}", error_chain(&e)))?;
        let status = res.status().as_u16();
        let header = |name: &str| res.headers().get(name).and_then(|v| v.to_str().ok()).map(str::to_owned);
        let content_type = header("content-type").unwrap_or_default();
        let request_id = header("apigw-requestid");
        let body = res.text().await.map_err(|e| format!("{url}: the answer broke off: {e}"))?;
        Ok(Answer { status, content_type, body, request_id })
    }

    pub async fn get(&self, url: &str, timeout: Duration) -> Result<Answer, String> {
        tokio::time::timeout(timeout, self.send(reqwest::Method::GET, url, &[], None))
            .await
            .map_err(|_| format!("no answer from {url} within {} s", timeout.as_secs()))?
    }
}
