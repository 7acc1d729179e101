"""Per-account limits on the stack as AWS runs it (issue 38): the limit holds across every
instance of every API function, a tenant over it gets 429 with the headers and its refused
writes change nothing, another tenant at the same moment is unaffected, and an operator's
override takes effect without a restart.

Usage:
  limits_test.py --stack DIR [--bin BINARY]   a running `tests/stack up` (its stack.json)

1. The noisy account gets a limit of 10 a second with a burst of 10 (`shopping-local tenant
   limit --table`, as an operator sets it). Eight threads send its requests for 12 s at about
   four times that, spread over three functions (the drafts list and draft creates: drafts;
   the order list: orders; a customer's orders: views), each function several instances.
   Accepted (2xx) requests: the burst plus 10 a second, within ±20 %. Every refusal is 429,
   `{"error": {"code": "RATE_LIMITED", ...}}`, with `Retry-After` ≥ 1, `RateLimit` and
   `RateLimit-Policy` (`"default";q=10;w=1`); every answer carries the two RateLimit fields.
2. Meanwhile a quiet account at 5 a second: every request 2xx, with the RateLimit fields of
   the default (`TenantBurstLimit` 200, `TenantRateLimit` 100: `"default";q=200;w=2`).
3. The noisy account's refused creates changed nothing: it has exactly as many drafts as
   creates were answered 201.
4. The operator raises the noisy account's limit (`tenant limit --rate 1000`): within a lease
   (2 s) and a refusal's wait, its requests are accepted again, no function restarted (the
   stack's instance counts are the same before and after).
"""

import argparse
import json
import os
import random
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request

import hosts

RATE, BURST = 10, 10
SECONDS = 12
THREADS = 8
DRAFT = {"order": {"currency": "NOK", "items": [
    {"line_id": 1, "gross_amount": 19900, "quantity": 1, "description": "Mug", "tax_lines": [{"percentage": 25}]}]}}


def fail(msg: str):
    print(f"FAIL: {msg}", file=sys.stderr)
    raise SystemExit(1)


def request(base: str, token: str, method: str, path: str, body=None):
    """Answers (status, headers with lower-case names, parsed body or None)."""
    data = None if body is None else json.dumps(body).encode()
    req = urllib.request.Request(base + path, data=data, method=method, headers={
        "Authorization": f"Bearer {token}", "Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(req, timeout=30) as res:
            status, headers, raw = res.status, res.headers, res.read()
    except urllib.error.HTTPError as e:
        status, headers, raw = e.code, e.headers, e.read()
    try:
        parsed = json.loads(raw) if raw else None
    except ValueError:
        parsed = None
    return status, {k.lower(): v for k, v in headers.items()}, parsed


def instances(state) -> dict:
    with urllib.request.urlopen(state["control"] + "/stats", timeout=10) as res:
        return json.loads(res.read())["instances"]


class Limits:
    def __init__(self, state, binary):
        self.state, self.binary = state, binary

    def set(self, aid: str, rate: int, burst: int):
        """`shopping-local tenant limit` as an operator runs it against the stack's table."""
        env = dict(os.environ, AWS_ENDPOINT_URL=self.state["endpoint"], AWS_REGION=self.state["region"],
                   AWS_ACCESS_KEY_ID="test", AWS_SECRET_ACCESS_KEY="test")
        env.pop("AWS_PROFILE", None)
        out = subprocess.run([self.binary, "tenant", "limit", "--account", aid, "--rate", str(rate),
                              "--burst", str(burst), "--table", self.state["resources"]["Table"]],
                             env=env, capture_output=True, text=True)
        if out.returncode != 0:
            fail(f"tenant limit: {out.stderr}")


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--stack", required=True, metavar="DIR")
    parser.add_argument("--bin", default=os.path.join(hosts.ROOT, "target", "debug", "shopping-local"))
    args = parser.parse_args()
    host = hosts.StackHost(args.stack)
    base = host.base
    noisy, quiet = (f"T{random.randrange(10**6, 10**7)}{d}" for d in "12")
    limits = Limits(host.state, args.bin)
    limits.set(noisy, RATE, BURST)
    noisy_token, quiet_token = hosts.token(host, noisy), hosts.token(host, quiet)
    # An override reaches every instance at its next lease; this account has never been
    # seen, so none holds a lease of the default.
    customer = "3fa85f64-5717-4562-b3fc-2c963f66afa6"
    paths = [("GET", "/shopping/draft_orders", None), ("GET", "/shopping/orders", None),
             ("GET", f"/shopping/customers/{customer}/orders", None), ("POST", "/shopping/draft_orders", DRAFT)]
    before = instances(host.state)

    lock = threading.Lock()
    answers = []  # (status, headers, body, method)
    quiet_answers = []
    stop = threading.Event()

    def flood(n: int):
        i = n
        while not stop.is_set():
            method, path, body = paths[i % len(paths)]
            i += 1
            status, headers, parsed = request(base, noisy_token, method, f"/v1/accounts/{noisy}{path}", body)
            with lock:
                answers.append((status, headers, parsed, method))
            # about four times the limit in all: THREADS threads, one request each 0.2 s
            time.sleep(0.2)

    def calm():
        i = 0
        while not stop.is_set():
            method, path, body = paths[i % 3]
            i += 1
            with lock:
                quiet_answers.append(request(base, quiet_token, method, f"/v1/accounts/{quiet}{path}", body))
            time.sleep(0.2)

    threads = [threading.Thread(target=flood, args=(n,)) for n in range(THREADS)] + [threading.Thread(target=calm)]
    started = time.monotonic()
    for t in threads:
        t.start()
    time.sleep(SECONDS)
    stop.set()
    for t in threads:
        t.join()
    elapsed = time.monotonic() - started

    accepted = [a for a in answers if 200 <= a[0] < 300]
    refused = [a for a in answers if a[0] == 429]
    other = [a for a in answers if not (200 <= a[0] < 300 or a[0] == 429)]
    expected = BURST + RATE * elapsed
    rate_seen = len(accepted)
    print(f"noisy account: {len(answers)} requests in {elapsed:.1f} s, {rate_seen} accepted "
          f"(expected {expected:.0f}: a burst of {BURST} and {RATE}/s), {len(refused)} refused")
    if other:
        fail(f"answers other than 2xx and 429: {sorted({a[0] for a in other})}")
    if abs(rate_seen - expected) > 0.2 * expected:
        fail(f"{rate_seen} accepted, not within ±20 % of {expected:.0f}")
    if not refused:
        fail("nothing refused")
    for status, headers, parsed, _ in answers:
        if "ratelimit" not in headers or headers.get("ratelimit-policy") != f'"default";q={BURST};w=1':
            fail(f"a {status} without the RateLimit fields of the override: {headers}")
    for _, headers, parsed, _ in refused:
        if (parsed or {}).get("error", {}).get("code") != "RATE_LIMITED" or not parsed["error"].get("message"):
            fail(f"a 429 not in the upstream error shape: {parsed}")
        if int(headers.get("retry-after", "0")) < 1:
            fail(f"a 429 without Retry-After: {headers}")
    print("every refusal 429 RATE_LIMITED with Retry-After, RateLimit and RateLimit-Policy")

    bad = [q for q in quiet_answers if not 200 <= q[0] < 300]
    if bad or not quiet_answers:
        fail(f"the quiet account had {len(bad)} of {len(quiet_answers)} answers not 2xx: {[b[0] for b in bad][:5]}")
    if any(q[1].get("ratelimit-policy") != '"default";q=200;w=2' for q in quiet_answers):
        fail("the quiet account's answers lack the default's RateLimit-Policy")
    print(f"quiet account: {len(quiet_answers)} of {len(quiet_answers)} answered 2xx, with the default's headers")

    after = instances(host.state)
    used = {fn: after.get(fn, 0) for fn in ("drafts", "orders", "views")}
    if sum(used.values()) < 4:
        fail(f"the flood ran on too few instances to show the limit holds across them: {used}")
    print(f"instances started: {used}")

    # 3. refused creates changed nothing
    creates = sum(1 for a in accepted if a[3] == "POST")
    limits.set(noisy, 1000, 1000)
    deadline = time.monotonic() + 6
    while True:
        status, headers, parsed = request(base, noisy_token, "GET", f"/v1/accounts/{noisy}/shopping/draft_orders")
        if status == 200 or time.monotonic() > deadline:
            break
        time.sleep(0.25)
    if status != 200:
        fail(f"4: the raised limit did not take effect within a lease: {status}")
    taken = time.monotonic() - (deadline - 6)
    drafts, cursor = 0, None
    while True:
        query = "?limit=100" + (f"&starting_after={cursor}" if cursor else "")
        status, _, page = request(base, noisy_token, "GET", f"/v1/accounts/{noisy}/shopping/draft_orders{query}")
        if status != 200:
            fail(f"listing the noisy account's drafts: {status} {page}")
        items = page["draft_orders"]
        drafts += len(items)
        if len(items) < 100:
            break
        cursor = items[-1]["id"]
    if drafts != creates:
        fail(f"3: {creates} creates answered 2xx but the account has {drafts} drafts")
    print(f"refused creates changed nothing: {creates} created, {drafts} drafts")
    if instances(host.state) != after:
        fail("4: a function was restarted for the override")
    print(f"the override took effect in {taken:.1f} s, no function restarted")
    print(f"limits_test: ok (before the flood: {before})")


if __name__ == "__main__":
    main()
