"""API Gateway's payload format 2.0, as the HTTP API and a function URL speak it: the event a
function gets, its answer as HTTP, and the gateway's own answers.

"Integrations" (https://docs.aws.amazon.com/apigateway/latest/developerguide/http-api-develop-integrations-lambda.html):
"Format 2.0 doesn't have multiValueHeaders or multiValueQueryStringParameters fields. Duplicate
headers are combined with commas and included in the headers field. Duplicate query strings are
combined with commas and included in the queryStringParameters field." "All cookie headers in
the request are combined with commas and added to the cookies field. In the response to the
client, each cookie becomes a set-cookie header." "Header names are lowercased."
"""

import base64
import binascii
import datetime
import json
import urllib.parse
import uuid

from .account import ACCOUNT


def gateway_answer(status: int, message: str):
    """An answer of API Gateway's own, as it writes it: `{"message":"Not Found"}`."""
    return status, {"content-type": "application/json"}, json.dumps({"message": message}, separators=(",", ":")).encode()


def internal_error(status: int = 502):
    """API Gateway's answer when the invocation failed: 500 when the Lambda API rejected it,
    502 when the function ran and failed or answered in the wrong format; the HTTP API's body
    (http-api-troubleshooting-lambda.html) either way."""
    return gateway_answer(status, "Internal Server Error")


def forwarded(hdrs: dict, source_ip: str) -> None:
    """The headers API Gateway (and a function URL) adds to what it forwards: the client's
    address appended to `x-forwarded-for` (after any the client sent), `x-forwarded-proto`
    and `x-forwarded-port` of the https edge, and a trace id."""
    sent = hdrs.get("x-forwarded-for")
    hdrs["x-forwarded-for"] = f"{sent}, {source_ip}" if sent else source_ip
    hdrs["x-forwarded-proto"] = "https"
    hdrs["x-forwarded-port"] = "443"
    hdrs.setdefault("x-amzn-trace-id", f"Root=1-{int(datetime.datetime.now().timestamp()):08x}-{uuid.uuid4().hex[:24]}")


def v2_event(method, raw_path, query, headers, body, source_ip, request_id, domain, route_key=None,
             path_params=None, authorizer=None, api_id="local"):
    """A payload format 2.0 event, as API Gateway (and a function URL) sends it. `raw_path` is
    the path as the gateway gives it (gateway.py decides whether percent-decoded)."""
    hdrs, cookies = {}, []
    for k, v in headers:
        k = k.lower()
        if k == "cookie":
            cookies.extend(c.strip() for c in v.split(";") if c.strip())
            continue
        hdrs[k] = f"{hdrs[k]},{v}" if k in hdrs else v
    forwarded(hdrs, source_ip)
    qs = {}
    for k, v in urllib.parse.parse_qsl(query, keep_blank_values=True):
        qs[k] = f"{qs[k]},{v}" if k in qs else v
    now = datetime.datetime.now(datetime.timezone.utc)
    ctx = {
        "accountId": ACCOUNT if route_key else "anonymous",
        "apiId": api_id,
        "domainName": domain,
        "domainPrefix": domain.split(".")[0],
        "http": {"method": method, "path": raw_path, "protocol": "HTTP/1.1", "sourceIp": source_ip,
                 "userAgent": hdrs.get("user-agent", "")},
        "requestId": request_id,
        "routeKey": route_key or "$default",
        "stage": "$default",
        "time": now.strftime("%d/%b/%Y:%H:%M:%S +0000"),
        "timeEpoch": int(now.timestamp() * 1000),
    }
    if authorizer is not None:
        ctx["authorizer"] = authorizer
    event = {"version": "2.0", "routeKey": route_key or "$default", "rawPath": raw_path, "rawQueryString": query,
             "headers": hdrs, "requestContext": ctx, "isBase64Encoded": False}
    if cookies:
        event["cookies"] = cookies
    if qs:
        event["queryStringParameters"] = qs
    if path_params:
        event["pathParameters"] = path_params
    if body:
        text_types = ("application/json", "text/", "application/x-www-form-urlencoded", "application/xml")
        ctype = hdrs.get("content-type", "")
        if ctype.startswith(text_types) or not ctype:
            try:
                event["body"] = body.decode("utf-8")
            except UnicodeDecodeError:
                event["body"], event["isBase64Encoded"] = base64.b64encode(body).decode(), True
        else:
            event["body"], event["isBase64Encoded"] = base64.b64encode(body).decode(), True
    return event


def v2_response(out: bytes):
    """A function's answer (payload format 2.0) as HTTP: status, headers, body, cookies (or
    API Gateway's 502: status, headers, body).

    "API Gateway makes the following assumptions if your Lambda function returns valid JSON and
    doesn't return a statusCode: isBase64Encoded is false. statusCode is 200. content-type is
    application/json. body is the function's response." Anything else that does not read as
    format 2.0 (not JSON, a statusCode that is no HTTP status, headers that are no object, a
    body that is no string or no base64) is "a response in the wrong format": 502. Format 2.0
    has no multiValueHeaders: a response's are ignored."""
    try:
        doc = json.loads(out)
    except ValueError:
        return internal_error(502)
    if not isinstance(doc, dict) or "statusCode" not in doc:
        return 200, {"content-type": "application/json"}, out, []
    try:
        status = doc["statusCode"]
        if isinstance(status, bool) or not isinstance(status, (int, str)) or not 100 <= int(status) <= 599:
            raise ValueError(f"statusCode {status!r}")
        headers = doc.get("headers") or {}
        if not isinstance(headers, dict):
            raise ValueError("headers")
        headers = {k.lower(): ("true" if v is True else "false" if v is False else str(v)) for k, v in headers.items()}
        body = doc.get("body")
        if body is None:
            body = ""
        if not isinstance(body, str):
            raise ValueError("body")
        raw = base64.b64decode(body, validate=True) if doc.get("isBase64Encoded") else body.encode("utf-8")
        cookies = doc.get("cookies") or []
        if not isinstance(cookies, list):
            raise ValueError("cookies")
    except (ValueError, TypeError, binascii.Error):
        return internal_error(502)
    return int(status), headers, raw, [str(c) for c in cookies]
