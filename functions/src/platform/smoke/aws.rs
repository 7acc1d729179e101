//! The AWS calls smoke makes with the operator's credentials (the environment's, as `client
//! --table` takes them): the stack's outputs and parameters (CloudFormation `DescribeStacks`),
//! an event's registered schema (EventSchemas `DescribeSchema`), and the temporary
//! subscription on the stack's bus (an EventBridge rule, an SQS queue whose policy lets that
//! rule alone send, the rule's target). The two read-only calls are signed here with SigV4
//! rather than through an SDK crate of their own: one call each.

use aws_smithy_runtime_api::client::identity::Identity;
use infra::aws::{configured_endpoint, SdkParts};
use serde_json::Value;
use std::collections::BTreeMap;
use std::time::{Duration, SystemTime};

/// What `DescribeStacks` says of the stack.
#[derive(Debug, Default)]
pub struct Stack {
    pub status: String,
    pub outputs: BTreeMap<String, String>,
    pub parameters: BTreeMap<String, String>,
}

/// The operator's AWS clients.
pub struct Aws {
    parts: SdkParts,
    http: reqwest::Client,
    pub events: aws_sdk_eventbridge::Client,
    pub sqs: aws_sdk_sqs::Client,
}

/// An SDK error as a report line shows it: the service's code and message, or what stopped
/// the request (the connection, the credentials).
pub fn sdk_error<E>(e: E) -> String
where
    E: aws_sdk_sqs::error::ProvideErrorMetadata + std::error::Error,
{
    match (e.code(), e.message()) {
        (Some(code), Some(message)) => format!("{code}: {message}"),
        (Some(code), None) => code.to_owned(),
        _ => super::http::error_chain(&e).chars().take(300).collect(),
    }
}

impl Aws {
    pub fn from_env(http: reqwest::Client) -> Result<Self, String> {
        Ok(Self {
            parts: SdkParts::from_env("CLOUDFORMATION")?,
            http,
            events: infra::sdk_client!(aws_sdk_eventbridge, SdkParts::from_env("EVENTBRIDGE")?),
            sqs: infra::sdk_client!(aws_sdk_sqs, SdkParts::from_env("SQS")?),
        })
    }

    pub fn region(&self) -> &str {
        self.parts.region.as_ref()
    }

    /// The service's endpoint: the SDK's standard variables, else AWS's regional one.
    fn endpoint(&self, service: &str, env_name: &str) -> String {
        configured_endpoint(env_name, |name| std::env::var(name).ok()).unwrap_or_else(|| {
            let region = self.region();
            let suffix = if region.starts_with("cn-") { "amazonaws.com.cn" } else { "amazonaws.com" };
            format!("https://{service}.{region}.{suffix}")
        })
    }

    /// One SigV4-signed request; answers the status and the body.
    async fn signed(
        &self,
        service: &str,
        method: &str,
        url: &str,
        content_type: Option<&str>,
        body: Vec<u8>,
    ) -> Result<(u16, String), String> {
        use aws_sigv4::http_request::{sign, SignableBody, SignableRequest, SigningSettings};
        let identity: Identity = self.parts.credentials.clone().into();
        let params = aws_sigv4::sign::v4::SigningParams::builder()
            .identity(&identity)
            .region(self.region())
            .name(service)
            .time(SystemTime::now())
            .settings(SigningSettings::default())
            .build()
            .map_err(|e| format!("could not sign: {e}"))?
            .into();
        let headers: Vec<(&str, &str)> = content_type.map(|ct| ("content-type", ct)).into_iter().collect();
        let signable = SignableRequest::new(method, url, headers.iter().copied(), SignableBody::Bytes(&body))
            .map_err(|e| format!("could not sign: {e}"))?;
        let (instructions, _) = sign(signable, &params).map_err(|e| format!("could not sign: {e}"))?.into_parts();
        let method = reqwest::Method::from_bytes(method.as_bytes()).map_err(|e| e.to_string())?;
        let mut req = self.http.request(method, url).timeout(Duration::from_secs(20)).body(body);
        for (k, v) in headers.iter().copied().chain(instructions.headers()) {
            req = req.header(k, v);
        }
        let res = req.send().await.map_err(|e| format!("{url}: {}", super::http::error_chain(&e)))?;
        let status = res.status().as_u16();
        let text = res.text().await.map_err(|e| format!("{url}: {e}"))?;
        Ok((status, text))
    }

    /// The stack's status, outputs and parameters.
    pub async fn describe_stack(&self, name: &str) -> Result<Stack, String> {
        let body: String = form_urlencoded::Serializer::new(String::new())
            .append_pair("Action", "DescribeStacks")
            .append_pair("Version", "2010-05-15")
            .append_pair("StackName", name)
            .finish();
        let url = format!("{}/", self.endpoint("cloudformation", "CLOUDFORMATION").trim_end_matches('/'));
        let (status, xml) = self
            .signed(
                "cloudformation",
                "POST",
                &url,
                Some("application/x-www-form-urlencoded; charset=utf-8"),
                body.into_bytes(),
            )
            .await?;
        if status != 200 {
            let code = element(&xml, "Code").unwrap_or_default();
            let message = element(&xml, "Message").unwrap_or_else(|| xml.chars().take(200).collect());
            return Err(format!("DescribeStacks answered {status} {code}: {message}"));
        }
        parse_stack(&xml).ok_or_else(|| format!("DescribeStacks answered no stack {name}"))
    }

    /// The registered schema `schema` of `registry` (its content, parsed).
    pub async fn describe_schema(&self, registry: &str, schema: &str) -> Result<Value, String> {
        let url = format!(
            "{}/v1/registries/name/{registry}/schemas/name/{schema}",
            self.endpoint("schemas", "SCHEMAS").trim_end_matches('/')
        );
        let (status, body) = self.signed("schemas", "GET", &url, None, Vec::new()).await?;
        if status != 200 {
            // AWS's error is JSON with its code; anything else is no registry at all.
            let error: Option<Value> = serde_json::from_str(&body).ok();
            let code = error.as_ref().and_then(|e| e.get("Code").or(e.get("__type"))?.as_str().map(str::to_owned));
            return Err(format!(
                "DescribeSchema answered {status} {}",
                code.unwrap_or_else(|| "(not an AWS answer)".into())
            ));
        }
        let answer: Value =
            serde_json::from_str(&body).map_err(|e| format!("DescribeSchema answered non-JSON: {e}"))?;
        let content = answer.get("Content").and_then(Value::as_str).ok_or("DescribeSchema answered no Content")?;
        serde_json::from_str(content).map_err(|e| format!("the registered schema is not JSON: {e}"))
    }

    /// How many messages wait in the queue at `url`, when it can be read.
    pub async fn queue_depth(&self, url: &str) -> Option<i64> {
        use aws_sdk_sqs::types::QueueAttributeName;
        let answer = self
            .sqs
            .get_queue_attributes()
            .queue_url(url)
            .attribute_names(QueueAttributeName::ApproximateNumberOfMessages)
            .send()
            .await
            .ok()?;
        answer.attributes()?.get(&QueueAttributeName::ApproximateNumberOfMessages)?.parse().ok()
    }
}

/// The text of the first `<name>` element of `xml`, unescaped.
fn element(xml: &str, name: &str) -> Option<String> {
    inner(xml, name).map(unescape)
}

/// The text inside the first `<name>` element of `xml`, as it is.
fn inner<'a>(xml: &'a str, name: &str) -> Option<&'a str> {
    let (open, close) = (format!("<{name}>"), format!("</{name}>"));
    let start = xml.find(&open)? + open.len();
    let end = start + xml[start..].find(&close)?;
    Some(&xml[start..end])
}

/// The `<member>` entries of the first `<list>` element (whose members hold no lists).
fn members<'a>(xml: &'a str, list: &str) -> Vec<&'a str> {
    inner(xml, list).map(|l| l.split("<member>").skip(1).collect()).unwrap_or_default()
}

fn parse_stack(xml: &str) -> Option<Stack> {
    // One stack was asked for by name: `<Stacks>` holds it alone.
    let stack = inner(xml, "Stacks")?;
    if !stack.contains("<StackStatus>") {
        return None;
    }
    let pairs = |list: &str, key: &str, value: &str| -> BTreeMap<String, String> {
        members(stack, list)
            .into_iter()
            .filter_map(|m| Some((element(m, key)?, element(m, value).unwrap_or_default())))
            .collect()
    };
    Some(Stack {
        status: element(stack, "StackStatus").unwrap_or_default(),
        outputs: pairs("Outputs", "OutputKey", "OutputValue"),
        parameters: pairs("Parameters", "ParameterKey", "ParameterValue"),
    })
}

/// XML's five entities and numeric character references.
fn unescape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(i) = rest.find('&') {
        out.push_str(&rest[..i]);
        rest = &rest[i..];
        let Some(end) = rest.find(';') else { break };
        let entity = &rest[1..end];
        let ch = match entity {
            "amp" => Some('&'),
            "lt" => Some('<'),
            "gt" => Some('>'),
            "quot" => Some('"'),
            "apos" => Some('\''),
            _ => entity
                .strip_prefix("#x")
                .map(|h| u32::from_str_radix(h, 16))
                .or_else(|| entity.strip_prefix('#').map(str::parse))
                .and_then(Result::ok)
                .and_then(char::from_u32),
        };
        match ch {
            Some(c) => {
                out.push(c);
                rest = &rest[end + 1..];
            }
            None => {
                out.push('&');
                rest = &rest[1..];
            }
        }
    }
    out.push_str(rest);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn describe_stacks_xml_gives_status_outputs_and_parameters() {
        let xml = r#"<DescribeStacksResponse xmlns="http://cloudformation.amazonaws.com/doc/2010-05-15/">
  <DescribeStacksResult><Stacks><member>
    <StackName>shopping-api</StackName>
    <Parameters>
      <member><ParameterKey>JwtAudience</ParameterKey><ParameterValue>shopping-api,other</ParameterValue></member>
      <member><ParameterKey>JwtIssuer</ParameterKey><ParameterValue/></member>
    </Parameters>
    <StackStatus>UPDATE_COMPLETE</StackStatus>
    <Outputs>
      <member><OutputKey>ApiUrl</OutputKey><OutputValue>https://a.execute-api.eu-west-1.amazonaws.com</OutputValue>
        <Description>Base URL &amp; more</Description></member>
      <member><OutputKey>TokenUrl</OutputKey><OutputValue>https://a/v1/accounts/{aid}/auth/token?x=1&amp;y=&#50;</OutputValue></member>
    </Outputs>
  </member></Stacks></DescribeStacksResult></DescribeStacksResponse>"#;
        let stack = parse_stack(xml).unwrap();
        assert_eq!(stack.status, "UPDATE_COMPLETE");
        assert_eq!(stack.outputs["ApiUrl"], "https://a.execute-api.eu-west-1.amazonaws.com");
        assert_eq!(stack.outputs["TokenUrl"], "https://a/v1/accounts/{aid}/auth/token?x=1&y=2");
        assert_eq!(stack.parameters["JwtAudience"], "shopping-api,other");
        assert_eq!(stack.parameters.get("JwtIssuer").map(String::as_str), Some(""));
        assert_eq!(unescape("a &bogus; &#x41;&lt;"), "a &bogus; A<");
    }
}
