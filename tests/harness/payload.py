"""API Gateway's payload format 2.0, as the HTTP API and a function URL speak it: the event a
function gets, its answer as HTTP, and the gateway's own answers.
"""

import base64
import datetime
import json
import urllib.parse

from .account import ACCOUNT


def gateway_answer(status: int, message: str):
    return status, {"content-type": "application/json"}, json.dumps({"message": message}).encode()


def v2_event(method, raw_path, query, headers, body, source_ip, request_id, domain, route_key=None,
             path_params=None, authorizer=None, api_id="local"):
    """A payload format 2.0 event, as API Gateway (and a function URL) sends it."""
    hdrs, cookies = {}, []
    for k, v in headers:
        k = k.lower()
        if k == "cookie":
            cookies.extend(c.strip() for c in v.split(";") if c.strip())
            continue
        hdrs[k] = f"{hdrs[k]},{v}" if k in hdrs else v
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
    """A function's answer (payload format 2.0) as HTTP: status, headers, body."""
    try:
        doc = json.loads(out)
    except ValueError:
        return gateway_answer(500, "Internal Server Error")
    if not isinstance(doc, dict) or "statusCode" not in doc:
        # Format 2.0 reads an answer without statusCode as a JSON body with 200.
        return 200, {"content-type": "application/json"}, json.dumps(doc).encode()
    headers = {k.lower(): str(v) for k, v in (doc.get("headers") or {}).items()}
    for k, vs in (doc.get("multiValueHeaders") or {}).items():
        headers[k.lower()] = ",".join(str(v) for v in vs)
    body = doc.get("body") or ""
    raw = base64.b64decode(body) if doc.get("isBase64Encoded") else body.encode("utf-8")
    cookies = doc.get("cookies") or []
    return int(doc["statusCode"]), headers, raw, cookies
