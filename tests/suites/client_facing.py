"""Client-facing suites that run unchanged against both hosts (see hosts.py):

  walkthrough  the README walk-through, run by bash as a reader would paste it (its `BASE` and
               client line pointed at the host), every curl failing on an HTTP error
  routes       every route of the template answers something other than the host's answer
               to no route (API Gateway's `{"message":"Not Found"}` on the stack); on the
               stack, the authorizer's 401s and the gateway's payload limit too
  retention    an order with `time_to_live`: two days later it has left the reads (emptied,
               in no list) and its `shopping_order_delete` has reached a subscriber

Usage: client_facing.py (--local BINARY | --stack DIR) [walkthrough] [routes] [retention]
(all three when none is named). Exits non-zero on the first failure.
"""

import argparse
import http.server
import json
import os
import re
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request

import hosts

# The stack harness, tests/harness, is a package beside this folder.
sys.path.insert(1, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from harness.template import transformed  # noqa: E402

ROOT = hosts.ROOT
AID = "T12345678"


def fail(msg: str) -> None:
    raise SystemExit(f"suite: {msg}")


def call(method, url, token=None, body=None):
    data = None if body is None else json.dumps(body).encode()
    req = urllib.request.Request(url, method=method, data=data)
    if token:
        req.add_header("Authorization", f"Bearer {token}")
    if data is not None:
        req.add_header("Content-Type", "application/json")
    try:
        with urllib.request.urlopen(req, timeout=60) as res:
            raw = res.read()
            return res.status, raw
    except urllib.error.HTTPError as e:
        return e.code, e.read()


def as_json(raw):
    try:
        return json.loads(raw)
    except ValueError:
        return None


# ---------------------------------------------------------------------------------------------


def walkthrough(host) -> None:
    with open(os.path.join(ROOT, "README.md")) as f:
        readme = f.read()
    section = readme.split("## Walk-through (local)", 1)[1]
    script = re.search(r"```sh\n(.*?)```", section, re.S).group(1)
    if "BASE=http://127.0.0.1:3000\n" not in script or "client create --account T12345678" not in script:
        fail("the README walk-through no longer starts with BASE=… and a client line")
    script = script.replace("BASE=http://127.0.0.1:3000\n", f"BASE={host.base}\n")
    script = re.sub(r"cargo run -q -p functions --bin shopping-local -- client create --account T12345678",
                    lambda _: host.credentials_command(AID), script)
    # Every step must succeed: curl fails on an HTTP error status, and so does the script.
    prelude = "set -euo pipefail\ncurl() { command curl --fail-with-body \"$@\"; }\n"
    checks = (
        '\necho\ncurl -s "$API/orders?status=closed&search=kari" -H "Authorization: Bearer $TOKEN" '
        '| grep -q "$ORDER" || { echo "the closed order is not in the list"; exit 1; }\n'
    )
    run = subprocess.run(["bash", "-c", prelude + script + checks], capture_output=True, text=True, timeout=300)
    if run.returncode != 0:
        fail(f"the README walk-through failed against {host.name} ({run.returncode}):\n{run.stdout[-3000:]}\n{run.stderr[-3000:]}")
    print(f"walkthrough: the README walk-through passes against {host.name}")


# ---------------------------------------------------------------------------------------------


def template_routes():
    os.environ.setdefault("AWS_DEFAULT_REGION", "us-east-1")
    body = transformed("b", "k", {})
    api = next(r for r in body["Resources"].values() if r["Type"] == "AWS::ApiGatewayV2::Api")
    for path, methods in api["Properties"]["Body"]["paths"].items():
        for method in methods:
            yield method.upper(), path


def routes(host) -> None:
    token = hosts.token(host, AID, "admin:shopping admin:hooks")
    status, raw = call("GET", f"{host.base}/v1/accounts/{AID}/shopping/no_such_route", token)
    no_route = (status, raw)
    if status != 404:
        fail(f"a path with no route answered {status}: {raw[:300]!r}")
    checked = 0
    for method, path in template_routes():
        url = host.base + re.sub(r"\{(\w+)\}", lambda m: AID if m.group(1) == "aid" else "x1", path)
        status, raw = call(method, url, token, {} if method in ("POST", "PUT") else None)
        if (status, raw) == no_route or as_json(raw) == {"message": "Not Found"}:
            fail(f"{method} {path}: the host has no such route ({status} {raw[:200]!r})")
        if status >= 500:
            fail(f"{method} {path}: {status} {raw[:300]!r}")
        checked += 1
    if isinstance(host, hosts.StackHost):
        # API Gateway's own answers, before any function runs.
        if as_json(no_route[1]) != {"message": "Not Found"}:
            fail(f"the stack's answer to no route is not API Gateway's: {no_route}")
        orders = f"{host.base}/v1/accounts/{AID}/shopping/orders"
        for bearer in (None, "not-a-token", token[:-4] + "AAAA"):
            status, raw = call("GET", orders, bearer)
            if (status, as_json(raw)) != (401, {"message": "Unauthorized"}):
                fail(f"the authorizer let {bearer!r} through: {status} {raw[:200]!r}")
        status, raw = call("POST", f"{orders}/x1/comments", token, {"body": "x" * (10 * 1024 * 1024)})
        if (status, as_json(raw)) != (413, {"message": "Request Entity Too Large"}):
            fail(f"a body over API Gateway's 10 MB: {status} {raw[:200]!r}")
    print(f"routes: every one of the template's {checked} routes answers on {host.name}")


# ---------------------------------------------------------------------------------------------


class Receiver:
    """A loopback webhook receiver answering 200 and keeping what it got."""

    def __init__(self):
        self.received = []
        outer = self

        class Ok(http.server.BaseHTTPRequestHandler):
            def do_POST(self):  # noqa: N802 - the stdlib's name
                body = self.rfile.read(int(self.headers.get("content-length", 0)))
                outer.received.append(({k.lower(): v for k, v in self.headers.items()}, body))
                self.send_response(200)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *_):
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Ok)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hook"

    def events(self):
        return [json.loads(b) for _, b in self.received]


def retention(host) -> None:
    base = f"{host.base}/v1/accounts/{AID}"
    token = hosts.token(host, AID, "admin:shopping admin:hooks")
    receiver = Receiver()
    status, raw = call("POST", f"{base}/hooks/subscriptions", token, {
        "events": ["shopping_order_delete"],
        "config": {"url": receiver.url, "content_type": "application/json", "insecure_ssl": 0},
    })
    if status >= 300:
        fail(f"subscribe: {status} {raw[:300]!r}")

    def make(options):
        status, raw = call("POST", f"{base}/shopping/draft_orders", token, {
            "options": options,
            "order": {"currency": "NOK", "customer": {"id": "c-ret"},
                      "items": [{"line_id": 1, "gross_amount": 100, "tax_lines": [{"percentage": 25}]}]}})
        if status != 200:
            fail(f"draft: {status} {raw[:300]!r}")
        draft = as_json(raw)["id"]
        status, raw = call("PUT", f"{base}/shopping/draft_orders/{draft}/complete", token)
        if status != 200:
            fail(f"complete: {status} {raw[:300]!r}")
        return draft, as_json(raw)["orders"][0]["id"]

    draft, expiring = make({"order_time_to_live": 86400})
    _, kept = make({})
    status, raw = call("GET", f"{base}/shopping/orders/{expiring}", token)
    if status != 200 or not as_json(raw).get("items"):
        fail(f"the order before its expiry: {status} {raw[:300]!r}")

    host.move_clock(2 * 86400)
    token = hosts.token(host, AID, "admin:shopping admin:hooks")
    status, raw = call("GET", f"{base}/shopping/orders/{expiring}", token)
    emptied = as_json(raw) or {}
    if status != 200 or emptied.get("items") != [] or not emptied.get("deleted_at"):
        fail(f"the expired order still reads as it was: {status} {raw[:400]!r}")
    status, _ = call("GET", f"{base}/shopping/draft_orders/{draft}", token)
    if status != 404:
        fail(f"the expired order's draft answers {status}, not 404")
    status, raw = call("GET", f"{base}/shopping/customers/c-ret/orders", token)
    listed = [o["id"] for o in (as_json(raw) or {}).get("orders", [])]
    if listed != [kept]:
        fail(f"the customer's orders two days later: {listed}, expected only {kept}")
    deadline = time.time() + 150
    while time.time() < deadline:
        deleted = [e for e in receiver.events() if e.get("event") == "shopping_order_delete"]
        if any(e.get("order", {}).get("id") == expiring for e in deleted):
            break
        time.sleep(0.5)
    else:
        fail(f"no shopping_order_delete for {expiring} reached the subscriber: {receiver.events()}")
    print(f"retention: the expired order left the reads and its shopping_order_delete was delivered ({host.name})")


SUITES = {"walkthrough": walkthrough, "routes": routes, "retention": retention}


def main() -> int:
    parser = argparse.ArgumentParser()
    hosts.add_arguments(parser)
    parser.add_argument("suites", nargs="*", metavar="SUITE", help=" | ".join(SUITES))
    args = parser.parse_args()
    unknown = [s for s in args.suites if s not in SUITES]
    if unknown:
        parser.error(f"unknown suites {unknown}: choose from {list(SUITES)}")
    with hosts.host_from(args, "shopping-suites-") as host:
        for name in args.suites or list(SUITES):
            SUITES[name](host)
    return 0


if __name__ == "__main__":
    sys.exit(main())
