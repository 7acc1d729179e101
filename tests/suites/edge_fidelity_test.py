"""The stack harness's HTTP API edge and Lambda runtime, held to what AWS documents
(tests/harness/FIDELITY.md, "Edge and runtime": one row per behaviour, naming the check here).

Usage: edge_fidelity_test.py --stack DIR [CHECK ...]   (a running `tests/stack up --data-dir DIR
--webhook-allow-loopback`; all checks when none is named)

In-process checks run the harness's own gateway (`HttpApi`, `serve_http`) and runtime
(`Function`) on a loopback port, with a fake bootstrap whose behaviour each request's query
string picks (`?sleep=S&mode=echo|error|exit|raw|nostatus|big`); they need no stack:
  reserved      at its reserved concurrency a function's next invocation is throttled at once, and
                the API answers 500 {"message":"Internal Server Error"}; unreserved, it waits
  errors        a function error, a runtime exit, a timeout, a response not in format 2.0 or over
                6 MB: 502; an event over 6 MB: 500; no statusCode: 200, the response as the body
  timeout       past the 30 s integration timeout (shortened here): 503 {"message":"Service Unavailable"}
  init          an init past its 10 s (shortened here) is retried within the function's timeout
  forwarded     x-forwarded-for (appended), x-forwarded-proto https, x-forwarded-port 443;
                apigw-requestid is the event's requestId
  methods       TRACE, PROPFIND and a made-up method reach route matching: 404 {"message":"Not Found"};
                a malformed request line is refused as JSON, not an HTML page
  headers       request line and header values over 10240 bytes: 431, never reaching the function
  raw-path      an id with space, %, + and / in the path: pathParameters decoded, rawPath as
                SHOPPING_STACK_RAW_PATH says (decoded or as-sent)
Stack checks (against DIR):
  stack-methods     the same methods on a real route of the stack: 404 {"message":"Not Found"}
  connections       200 clients connecting at once (a path no route has): every one answered
  encoded-ids       orders of customers whose ids hold space, %, %41, +, /, ? and #, listed through
                    /customers/{customer_id}/orders, under the stack's rawPath reading
  concurrent-writes 20 concurrent comments on one order: each answered, none a connection error,
                    no 5xx the harness made (a function timeout is the product's, and is said so)

concurrent-writes runs last, and is best run after the suites that need the stack's events: its
contention cancels DynamoDB transactions, and a cancelled TransactWriteItems in moto replaces
the table object (and its stream shard) with the copy taken before it, which leaves the harness's
stream poller on the old shard: no further stream record reaches the publisher.

Prints `ok: …` or `FAIL: …` per check; exits non-zero when any failed.
"""

import argparse
import http.client
import json
import os
import re
import secrets
import socket
import stat
import sys
import tempfile
import threading
import time
import traceback
import urllib.parse

import hosts

# The stack harness, tests/harness, is a package beside this folder.
sys.path.insert(1, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from harness import gateway, runtime  # noqa: E402

AID = "T12345678"
ISE = b'{"message":"Internal Server Error"}'

FAKE_BOOTSTRAP = r'''
import json, os, time, urllib.request
base = "http://" + os.environ["AWS_LAMBDA_RUNTIME_API"] + "/2018-06-01/runtime/"
marker = os.environ.get("FAKE_SLOW_INIT_ONCE")
if marker and not os.path.exists(marker):
    open(marker, "w").close()
    time.sleep(float(os.environ["FAKE_INIT_SECONDS"]))
while True:
    with urllib.request.urlopen(base + "invocation/next", timeout=3600) as r:
        rid, event = r.headers["Lambda-Runtime-Aws-Request-Id"], json.loads(r.read())
    q = event.get("queryStringParameters") or {}
    time.sleep(float(q.get("sleep", 0)))
    mode, url = q.get("mode", "echo"), base + "invocation/" + rid + "/response"
    if mode == "exit":
        os._exit(3)
    out = {"raw": b"not json", "nostatus": b'{"b": 1,  "a":[2]}',
           "big": json.dumps({"statusCode": 200, "body": "x" * (6 * 1024 * 1024 + 1)}).encode()}.get(mode)
    if mode == "error":
        url, out = base + "invocation/" + rid + "/error", b'{"errorMessage":"boom","errorType":"Fake"}'
    if out is None:
        out = json.dumps({"statusCode": 200, "headers": {"content-type": "application/json"},
                          "cookies": ["a=1", "b=2"], "body": json.dumps(event)}).encode()
    urllib.request.urlopen(urllib.request.Request(url, data=out, method="POST")).read()
'''


class Failed(Exception):
    pass


def check(cond, what):
    if not cond:
        raise Failed(what)


# ---- the harness in this process: its gateway and runtime, a fake function


class World:
    offset = 0


class FakeAccount:
    """What a Function reads of the Harness."""

    def __init__(self, root):
        self.world, self.endpoint, self.webhook_loopback = World(), "http://127.0.0.1:9", False
        self.data_dir = root
        self.log_dir = os.path.join(root, "logs")
        os.makedirs(self.log_dir, exist_ok=True)


class Edge:
    """A gateway with routes `GET|POST /v1/echo` and `GET /v1/things/{id}/orders` on one fake
    function, served on a loopback port."""

    def __init__(self, root, reserved=None, timeout=3, env=None, mode="decoded"):
        self.account = FakeAccount(root)
        bootstrap = os.path.join(root, "bootstrap")
        with open(bootstrap, "w") as f:
            f.write(f"#!{sys.executable}\n{FAKE_BOOTSTRAP}")
        os.chmod(bootstrap, os.stat(bootstrap).st_mode | stat.S_IEXEC)
        config = {"FunctionName": "fake", "FunctionArn": "arn:aws:lambda:us-east-1:123456789012:function:fake",
                  "Role": "arn:aws:iam::123456789012:role/fake",
                  "Timeout": timeout, "MemorySize": 128, "Environment": {"Variables": env or {}}}
        self.fn = runtime.Function(self.account, "FakeFunction", config, bootstrap, reserved)
        api = gateway.HttpApi()
        api.functions, api.api_id, api.raw_path_mode, api.authorizers = {"FakeFunction": self.fn}, "fakeapi", mode, {}
        routes = [gateway.Route(m, "/v1/echo", "FakeFunction", None, []) for m in ("GET", "POST")]
        routes.append(gateway.Route("GET", "/v1/things/{id}/orders", "FakeFunction", None, []))
        api.routes = sorted(routes, key=gateway.Route.specificity, reverse=True)
        self.server = gateway.serve_http(0, api.api)
        self.port = self.server.server_address[1]

    def request(self, method, path, body=None, headers=None):
        """(status, headers with lower-case names, body, seconds)."""
        started = time.time()
        c = http.client.HTTPConnection("127.0.0.1", self.port, timeout=60)
        c.request(method, path, body=body, headers=headers or {})
        r = c.getresponse()
        out = (r.status, {k.lower(): v for k, v in r.getheaders()}, r.read(), time.time() - started)
        c.close()
        return out

    def event(self, path, headers=None):
        status, hdrs, body, _ = self.request("GET", path, headers=headers)
        check(status == 200, f"GET {path}: {status} {body[:200]!r}")
        return hdrs, json.loads(body)

    def close(self):
        self.fn.stop()
        self.server.shutdown()


def with_edge(**kw):
    def wrap(test):
        def run():
            with tempfile.TemporaryDirectory(prefix="edge-") as root:
                edge = Edge(root, **kw)
                try:
                    return test(edge)
                finally:
                    edge.close()
        run.__name__ = test.__name__
        return run
    return wrap


def busy_with_one(edge, sleep):
    """Starts a request the function takes `sleep` seconds over; answers its thread once the
    function is running it."""
    first = threading.Thread(target=edge.request, args=("GET", f"/v1/echo?sleep={sleep}"))
    first.start()
    deadline = time.time() + 10
    while edge.fn.busy < 1 and time.time() < deadline:
        time.sleep(0.02)
    return first


@with_edge(reserved=1)
def reserved(edge):
    first = busy_with_one(edge, 2)
    status, hdrs, body, took = edge.request("GET", "/v1/echo")
    first.join()
    check((status, body) == (500, ISE), f"at reserved concurrency 1, a second invocation: {status} {body[:200]!r}")
    check(took < 1.0, f"the throttle took {took:.2f} s: it queued instead of failing at once")
    # Unreserved (the laptop's cap, shortened to 1 here), the second waits for the first.
    saved, runtime.UNRESERVED_CAP = runtime.UNRESERVED_CAP, 1
    with tempfile.TemporaryDirectory(prefix="edge-") as root:
        try:
            unreserved = Edge(root)
        finally:
            runtime.UNRESERVED_CAP = saved
        try:
            first = busy_with_one(unreserved, 1)
            status, _, body, took = unreserved.request("GET", "/v1/echo")
            first.join()
        finally:
            unreserved.close()
    check(status == 200 and took > 0.5, f"unreserved at the laptop's cap: {status} after {took:.2f} s (expected to wait, then 200)")
    return "throttled at once at reserved concurrency: 500 Internal Server Error; unreserved waits for the laptop's cap"


@with_edge(timeout=2)
def errors(edge):
    cases = {"mode=error": 502, "mode=exit": 502, "mode=raw": 502, "mode=big": 502, "sleep=3": 502}
    for query, want in cases.items():
        status, _, body, _ = edge.request("GET", f"/v1/echo?{query}")
        check((status, body) == (want, ISE), f"?{query}: {status} {body[:120]!r}, expected {want} {ISE!r}")
    status, _, body, _ = edge.request("POST", "/v1/echo", body=b"x" * (6 * 1024 * 1024 + 10), headers={"Content-Type": "text/plain"})
    check((status, body) == (500, ISE), f"an event over 6 MB: {status} {body[:120]!r}, expected 500 (the Lambda API rejects it)")
    status, hdrs, body, _ = edge.request("GET", "/v1/echo?mode=nostatus")
    check((status, hdrs.get("content-type"), body) == (200, "application/json", b'{"b": 1,  "a":[2]}'),
          f"a response with no statusCode: {status} {hdrs.get('content-type')} {body!r}")
    status, hdrs, body, _ = edge.request("GET", "/v1/echo")
    check(status == 200, f"after the failures, a plain request: {status} {body[:120]!r}")
    lines = open(os.path.join(edge.account.log_dir, "fake.log")).read()
    check("Task timed out after 2.00 seconds" in lines, "the function's log lacks Lambda's `Task timed out` line")
    return "function error, exit, timeout, wrong format, response over 6 MB: 502; event over 6 MB: 500; no statusCode: 200 as sent"


@with_edge(timeout=5)
def timeout(edge):
    saved, gateway.INTEGRATION_TIMEOUT = gateway.INTEGRATION_TIMEOUT, 1.0
    try:
        status, _, body, took = edge.request("GET", "/v1/echo?sleep=2")
    finally:
        gateway.INTEGRATION_TIMEOUT = saved
    check((status, body) == (503, b'{"message":"Service Unavailable"}') and took < 1.8,
          f"past the integration timeout (1 s here): {status} {body[:120]!r} after {took:.2f} s")
    return "past the integration timeout: 503 Service Unavailable, at the timeout"


def init():
    with tempfile.TemporaryDirectory(prefix="edge-") as root:
        saved, runtime.INIT_TIMEOUT = runtime.INIT_TIMEOUT, 1.0
        edge = Edge(root, timeout=4, env={"FAKE_SLOW_INIT_ONCE": os.path.join(root, "slow"), "FAKE_INIT_SECONDS": "2"})
        try:
            status, _, body, took = edge.request("GET", "/v1/echo")
        finally:
            runtime.INIT_TIMEOUT = saved
            edge.close()
        check(status == 200, f"an init past its limit (1 s here), retried: {status} {body[:200]!r}")
        lines = open(os.path.join(root, "logs", "fake.log")).read()
        check("Status: timeout" in lines, f"no INIT_REPORT of the timed-out init in the function's log: {lines[-300:]!r}")
    return f"an init past its limit is retried within the function's timeout ({took:.1f} s)"


@with_edge()
def forwarded(edge):
    hdrs, event = edge.event("/v1/echo", {"X-Forwarded-For": "203.0.113.9", "Cookie": "a=1; b=2"})
    h = event["headers"]
    check(h.get("x-forwarded-for") == "203.0.113.9, 127.0.0.1", f"x-forwarded-for {h.get('x-forwarded-for')!r}")
    check((h.get("x-forwarded-proto"), h.get("x-forwarded-port")) == ("https", "443"), f"forwarded headers {h}")
    check(event.get("cookies") == ["a=1", "b=2"] and "cookie" not in h, f"cookies {event.get('cookies')}")
    check(hdrs.get("apigw-requestid") == event["requestContext"]["requestId"], f"apigw-requestid {hdrs.get('apigw-requestid')}")
    c = http.client.HTTPConnection("127.0.0.1", edge.port, timeout=30)
    c.request("GET", "/v1/echo")
    cookies = [v for k, v in c.getresponse().getheaders() if k.lower() == "set-cookie"]
    c.close()
    check(cookies == ["a=1", "b=2"], f"the response's cookies as set-cookie headers: {cookies}")
    _, event = edge.event("/v1/echo")
    check(event["headers"].get("x-forwarded-for") == "127.0.0.1", f"x-forwarded-for {event['headers'].get('x-forwarded-for')!r}")
    return "x-forwarded-for/-proto/-port on every event; cookies both ways; apigw-requestid on every answer"


@with_edge()
def methods(edge):
    for method in ("TRACE", "PROPFIND", "BREW"):
        status, hdrs, body, _ = edge.request(method, "/v1/echo")
        check((status, hdrs.get("content-type"), body) == (404, "application/json", b'{"message":"Not Found"}'),
              f"{method} /v1/echo: {status} {hdrs.get('content-type')} {body[:120]!r}")
    with socket.create_connection(("127.0.0.1", edge.port), timeout=10) as s:
        s.sendall(b"GET /v1/echo HTTP/1.1 trailing\r\nHost: x\r\n\r\n")
        head = b""
        while chunk := s.recv(65536):  # the server closes after its refusal
            head += chunk
    check(head.startswith(b"HTTP/1.1 400") and b'{"message":' in head and b"<html" not in head.lower(),
          f"a malformed request line: {head[:300]!r}")
    return "any method goes through route matching (404 Not Found); malformed requests answered as JSON"


@with_edge()
def headers(edge):
    line = len("GET /v1/echo HTTP/1.1")
    fits = {"Host": "x", "Accept-Encoding": "identity", "X-Big": "y" * (10240 - line - 1 - 8)}
    status, _, body, _ = edge.request("GET", "/v1/echo", headers=fits)
    check(status == 200, f"request line and header values of 10240 bytes: {status} {body[:120]!r}")
    over = dict(fits, **{"X-Big": fits["X-Big"] + "y"})
    status, hdrs, body, _ = edge.request("GET", "/v1/echo", headers=over)
    check((status, hdrs.get("content-type")) == (431, "application/json"), f"10241 bytes: {status} {body[:120]!r}")
    return "request line and header values over 10240 bytes: 431, before any function"


def raw_path():
    wire = "/v1/things/a%20b%25c+d%2Fe/orders"
    expected = {"decoded": "/v1/things/a b%c+d/e/orders", "as-sent": wire}
    for mode, raw in expected.items():
        with tempfile.TemporaryDirectory(prefix="edge-") as root:
            edge = Edge(root, mode=mode)
            try:
                _, event = edge.event(wire)
            finally:
                edge.close()
        check(event.get("pathParameters") == {"id": "a b%c+d/e"}, f"{mode}: pathParameters {event.get('pathParameters')}")
        check(event["rawPath"] == raw == event["requestContext"]["http"]["path"],
              f"{mode}: rawPath {event['rawPath']!r}, http.path {event['requestContext']['http']['path']!r}, expected {raw!r}")
    return "pathParameters decoded; rawPath decoded or as sent, as SHOPPING_STACK_RAW_PATH says"


# ---- the stack


def stack_call(host, method, path, token=None, body=None):
    """(status, headers, body bytes) or (exception name, {}, text): one connection per call."""
    u = urllib.parse.urlsplit(host.base)
    c = http.client.HTTPConnection(u.hostname, u.port, timeout=120)
    h = {"Authorization": f"Bearer {token}"} if token else {}
    if body is not None:
        h["Content-Type"] = "application/json"
    try:
        c.request(method, path, body=None if body is None else json.dumps(body), headers=h)
        r = c.getresponse()
        return r.status, {k.lower(): v for k, v in r.getheaders()}, r.read()
    except OSError as e:
        return type(e).__name__, {}, str(e).encode()
    finally:
        c.close()


def make_order(host, token, customer):
    base = f"/v1/accounts/{AID}/shopping"
    status, _, raw = stack_call(host, "POST", f"{base}/draft_orders", token, {"order": {
        "currency": "NOK", "customer": {"id": customer},
        "items": [{"line_id": 1, "gross_amount": 100, "tax_lines": [{"percentage": 25}]}]}})
    check(status == 200, f"draft for customer {customer!r}: {status} {raw[:300]!r}")
    draft = json.loads(raw)["id"]
    status, _, raw = stack_call(host, "PUT", f"{base}/draft_orders/{draft}/complete", token)
    check(status == 200, f"complete: {status} {raw[:300]!r}")
    return json.loads(raw)["orders"][0]["id"]


def stack_methods(host, token):
    for method in ("TRACE", "PROPFIND", "BREW"):
        status, hdrs, body = stack_call(host, method, f"/v1/accounts/{AID}/shopping/orders", token)
        check((status, hdrs.get("content-type"), body) == (404, "application/json", b'{"message":"Not Found"}'),
              f"{method}: {status} {hdrs.get('content-type')} {body[:200]!r}")
    return "TRACE, PROPFIND, BREW on the stack: 404 {\"message\":\"Not Found\"}"


def connections(host, token, count=200):
    """`count` clients connecting at once, each asking a path no route has: every one answered."""
    got = [None] * count
    barrier = threading.Barrier(count)

    def one(i):
        barrier.wait()
        got[i] = stack_call(host, "GET", f"/v1/accounts/{AID}/shopping/no_such_route_{i}")

    threads = [threading.Thread(target=one, args=(i,)) for i in range(count)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    lost = [f"{status}: {body[:80]!r}" for status, _, body in got if status != 404]
    check(not lost, f"{len(lost)} of {count} clients connecting at once got no answer: {lost[:3]}")
    return f"{count} clients connecting at once, every one answered"


def gateway_reason(host, rid):
    """Why the stack's gateway answered request `rid` itself (its log line), or None."""
    with open(os.path.join(host.data, "stack.log")) as f:
        for line in f:
            if f"apigw {rid}:" in line:
                return line.split(f"apigw {rid}:", 1)[1].strip()
    return None


def concurrent_writes(host, token, writers=20):
    order = make_order(host, token, "c-edge-" + secrets.token_hex(4))
    path = f"/v1/accounts/{AID}/shopping/orders/{order}/comments"
    got = [None] * writers

    def one(i):
        got[i] = stack_call(host, "POST", path, token, {"body": f"comment {i}"})

    threads = [threading.Thread(target=one, args=(i,)) for i in range(writers)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    notes = []
    for status, hdrs, body in got:
        check(isinstance(status, int), f"a writer got no answer: {status}: {body[:200]!r}")
        if status < 300:
            continue
        doc = json.loads(body) if body.startswith(b"{") else {}
        if "error" in doc:  # the product's own answer, in the upstream error shape
            check(status in (409, 503) or status < 500, f"the product answered {status} {body[:300]!r}")
            notes.append(f"product {status} {doc['error'].get('code')}")
            continue
        reason = gateway_reason(host, hdrs.get("apigw-requestid")) or "no log line"
        made_by_function = re.match(r"50[02] \((timeout|error|crash|init|response-too-large)\)", reason)
        check(made_by_function, f"the harness answered {status} {body[:200]!r} itself: {reason}")
        notes.append(f"{status} because the function failed: {reason}")
    return f"{writers} concurrent comments on one order, every one answered" + (f"; {notes}" if notes else "")


def encoded_ids(host, token):
    mode = host.state.get("raw_path", "as-sent")
    tag = secrets.token_hex(3)
    ids = [f"sp ace {tag}", f"per%cent {tag}", f"hex%41 {tag}", f"pl+us {tag}", f"sl/ash {tag}", f"a b%c+d/e {tag}",
           f"q?mark {tag}", f"h#ash {tag}"]
    problems = []
    for customer in ids:
        order = make_order(host, token, customer)
        wire = urllib.parse.quote(customer, safe="+")
        status, hdrs, body = stack_call(host, "GET", f"/v1/accounts/{AID}/shopping/customers/{wire}/orders", token)
        listed = [(o["id"], o.get("customer", {}).get("id")) for o in json.loads(body).get("orders", [])] if status == 200 else None
        if listed != [(order, customer)]:
            rid = hdrs.get("apigw-requestid")
            invoke = next((ln.strip() for ln in open(os.path.join(host.data, "stack.log")) if f"apigw {rid}" in ln), "")
            problems.append(f"customer {customer!r} (on the wire {wire!r}): {status} {body[:160]!r}, listed {listed}; {invoke}")
    check(not problems, f"under rawPath {mode}, the product's customer route:\n    " + "\n    ".join(problems))
    return f"under rawPath {mode}: the orders of {len(ids)} customers with encoded ids each listed"


IN_PROCESS = {"reserved": reserved, "errors": errors, "timeout": timeout, "init": init, "forwarded": forwarded,
              "methods": methods, "headers": headers, "raw-path": raw_path}
# concurrent-writes last: see the module's docstring.
ON_STACK = {"stack-methods": stack_methods, "connections": connections, "encoded-ids": encoded_ids,
            "concurrent-writes": concurrent_writes}


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--stack", metavar="DIR", required=True, help="a running `tests/stack up --data-dir DIR`")
    parser.add_argument("checks", nargs="*", metavar="CHECK", help=" | ".join([*IN_PROCESS, *ON_STACK]))
    args = parser.parse_args()
    unknown = [c for c in args.checks if c not in IN_PROCESS and c not in ON_STACK]
    if unknown:
        parser.error(f"unknown checks {unknown}")
    names = args.checks or [*IN_PROCESS, *ON_STACK]
    # The harness's log lines (each invocation) go to a file, not between the results.
    quiet = open(os.path.join(tempfile.gettempdir(), "edge_fidelity_harness.log"), "a")
    runtime.log = gateway.log = lambda line: (quiet.write(line + "\n"), quiet.flush())
    host = token = None
    failed = []
    for name in names:
        try:
            if name in ON_STACK and host is None:
                host = hosts.StackHost(args.stack)
                token = hosts.token(host, AID, "admin:shopping admin:hooks")
            said = IN_PROCESS[name]() if name in IN_PROCESS else ON_STACK[name](host, token)
            print(f"ok: {name}: {said}", flush=True)
        except Failed as e:
            failed.append(name)
            print(f"FAIL: {name}: {e}", flush=True)
        except Exception:  # noqa: BLE001 - a check that crashes has failed; the others still run
            failed.append(name)
            print(f"FAIL: {name}: crashed:\n{traceback.format_exc()}", flush=True)
    if failed:
        print(f"{len(failed)} of {len(names)} checks failed: {' '.join(failed)}")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
