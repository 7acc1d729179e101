"""A long run on the stack as AWS runs it: nothing is lost between a write and its webhook.

ACCOUNTS accounts (each an API client of its own, `tests/stack client create`) write at once:
drafts (created, items added, completed into orders) and their orders (updated, commented,
closed), in two halves. Between the halves, SUBSCRIBED of them subscribe a loopback receiver
through the Hooks API; then one of those has BURST_WRITERS concurrent writers comment on one
order. Every request must be answered: a 2xx, or a documented refusal (a 409 or 503 in the
upstream error shape, a 503 with Retry-After; API Gateway's own 429); no 5xx, no dropped
connection, no timeout. Every webhook event a subscribed account's writes made after its
subscription must reach its receiver within WEBHOOK_WAIT seconds, counted by what was written:
each answered write's event, resource id and the version its answer carries (a receiver also
gets nothing of another account). Duplicates (the same webhook-id again) are counted, not
failed: delivery is at least once.

Usage: long_run_test.py --stack DIR   (a running `tests/stack up --webhook-allow-loopback`)
Exits non-zero, naming what was lost or unanswered.
"""

import argparse
import collections
import http.client
import http.server
import json
import sys
import threading
import time
import urllib.parse

import hosts

ACCOUNTS = 12
SUBSCRIBED = 8
DRAFTS = 4  # per half: each created, 2 items added, completed; its order changed ORDER_WRITES times
ORDER_WRITES = 6
BURST_WRITERS, BURST_EACH = 20, 3
WEBHOOK_WAIT = 180.0
EVENTS = ["shopping_draft_add", "shopping_draft_update", "shopping_draft_complete", "shopping_order_update"]
ITEM = {"gross_amount": 1000, "tax_lines": [{"percentage": 25}]}


class Ledger:
    """Every request's answer, and every unanswered or badly answered one."""

    def __init__(self):
        self.lock = threading.Lock()
        self.statuses = collections.Counter()
        self.problems = []
        self.writes = 0

    def note(self, what, status, headers, raw):
        ok = 200 <= status < 300 or refusal(status, headers, raw)
        with self.lock:
            self.statuses[status] += 1
            self.writes += what.split(" ", 1)[0] in ("POST", "PUT", "DELETE")
            if not ok:
                self.problems.append(f"{what}: {status} {raw[:300]!r}")
        return 200 <= status < 300


def refusal(status, headers, raw) -> bool:
    """A documented refusal: the upstream error shape on a 409 or 503 (a 503 with Retry-After),
    or API Gateway's throttle."""
    try:
        doc = json.loads(raw)
    except ValueError:
        return False
    if status == 429:
        return doc == {"message": "Too Many Requests"}
    shaped = isinstance(doc, dict) and isinstance(doc.get("error"), dict) and {"code", "message"} <= set(doc["error"])
    return shaped and (status == 409 or (status == 503 and "retry-after" in headers))


class Client:
    """One API client's connection (HTTP/1.1, kept alive, as an upstream client keeps it)."""

    def __init__(self, base, aid, token, ledger):
        url = urllib.parse.urlsplit(base)
        self.host, self.port = url.hostname, url.port
        self.prefix, self.token, self.ledger = f"/v1/accounts/{aid}", token, ledger
        self.conn = None

    def call(self, method, path, body=None):
        """The answer's document when it is a 2xx, else None (noted in the ledger either way)."""
        what = f"{method} {path}"
        data = None if body is None else json.dumps(body).encode()
        headers = {"authorization": f"Bearer {self.token}", "content-type": "application/json"}
        try:
            if self.conn is None:
                self.conn = http.client.HTTPConnection(self.host, self.port, timeout=60)
            self.conn.request(method, self.prefix + path, body=data, headers=headers)
            res = self.conn.getresponse()
            raw = res.read()
            status, got = res.status, {k.lower(): v for k, v in res.getheaders()}
        except (OSError, http.client.HTTPException) as e:
            self.conn = None
            status, got, raw = 0, {}, f"no answer: {type(e).__name__}: {e}".encode()
        if not self.ledger.note(what, status, got, raw):
            return None
        doc = json.loads(raw) if raw else {}
        # The version the write left (its ETag, `W/"<version>"`), which its event carries.
        etag = got.get("etag", "")
        if isinstance(doc, dict) and etag.startswith('W/"'):
            doc["_version"] = int(etag[3:-1])
        return doc


class Receiver(http.server.ThreadingHTTPServer):
    """A loopback webhook receiver that never refuses a connection (the stdlib's backlog is 5:
    a burst of deliveries would be refused and retried a minute later)."""

    daemon_threads = True
    request_queue_size = 256

    def __init__(self):
        self.got = []
        self.lock = threading.Lock()
        receiver = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self):  # noqa: N802 - the stdlib's name
                body = self.rfile.read(int(self.headers.get("content-length", 0)))
                with receiver.lock:
                    receiver.got.append((self.headers.get("webhook-id"), json.loads(body), time.monotonic()))
                self.send_response(200)
                self.send_header("content-length", "0")
                self.end_headers()

            def log_message(self, *_):
                pass

        super().__init__(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.serve_forever, daemon=True).start()
        self.url = f"http://127.0.0.1:{self.server_address[1]}/hook"

    def events(self):
        """What it got: {(event, resource id, version)}, the accounts named, duplicates."""
        with self.lock:
            got = list(self.got)
        keys, accounts, ids = set(), set(), collections.Counter()
        for webhook_id, doc, _ in got:
            if doc.get("event") == "ping":
                continue
            resource = doc.get("order") or doc.get("draft") or {}
            keys.add((doc.get("event"), resource.get("id"), doc.get("version")))
            accounts.add(doc.get("account_id"))
            ids[webhook_id] += 1
        return keys, accounts, sum(n - 1 for n in ids.values())


class Account:
    def __init__(self, host, aid, ledger, subscribe, burst):
        self.host, self.aid, self.ledger = host, aid, ledger
        self.subscribe, self.burst = subscribe, burst
        self.expected, self.receiver, self.subscribed = {}, None, False
        self.error = None

    def expect(self, event, doc):
        if self.subscribed and doc is not None:
            self.expected[(event, doc["id"], doc["_version"])] = time.monotonic()

    def half(self, client, n):
        for d in range(DRAFTS):
            draft = client.call("POST", "/shopping/draft_orders", {"order": {"currency": "NOK", "items": [{"line_id": 1, **ITEM}]}})
            self.expect("shopping_draft_add", draft)
            if draft is None:
                continue
            for line in (2, 3):
                self.expect("shopping_draft_update", client.call("POST", f"/shopping/draft_orders/{draft['id']}/items", {"line_id": line, **ITEM}))
            done = client.call("PUT", f"/shopping/draft_orders/{draft['id']}/complete")
            self.expect("shopping_draft_complete", done)
            if not done or not done.get("orders"):
                continue
            oid = done["orders"][0]["id"]
            for k in range(ORDER_WRITES - 1):
                change = ("PUT", f"/shopping/orders/{oid}", {"courier_id": f"c{n}-{d}-{k}"}) if k % 2 == 0 else \
                    ("POST", f"/shopping/orders/{oid}/comments", {"body": f"note {n}-{d}-{k}"})
                self.expect("shopping_order_update", client.call(*change))
            self.expect("shopping_order_update", client.call("POST", f"/shopping/orders/{oid}/close"))

    def run(self, token):
        try:
            client = Client(self.host.base, self.aid, token, self.ledger)
            self.half(client, 1)
            if self.subscribe:
                self.receiver = Receiver()
                hook = client.call("POST", "/hooks/subscriptions", {"events": EVENTS, "config": {
                    "url": self.receiver.url, "content_type": "application/json"}})
                if hook is None:
                    raise RuntimeError("the subscription was not made")
                self.subscribed = True
            self.half(client, 2)
            if self.burst:
                self.comment_burst(client, token)
        except Exception as e:  # noqa: BLE001 - reported with the account
            self.error = f"{type(e).__name__}: {e}"

    def comment_burst(self, client, token):
        """BURST_WRITERS writers at once on one order, BURST_EACH comments each."""
        draft = client.call("POST", "/shopping/draft_orders", {"order": {"currency": "NOK", "items": [{"line_id": 1, **ITEM}]}})
        self.expect("shopping_draft_add", draft)
        done = client.call("PUT", f"/shopping/draft_orders/{draft['id']}/complete")
        self.expect("shopping_draft_complete", done)
        oid = done["orders"][0]["id"]
        start = threading.Barrier(BURST_WRITERS)

        def writer(w):
            mine = Client(self.host.base, self.aid, token, self.ledger)
            start.wait()
            for c in range(BURST_EACH):
                self.expect("shopping_order_update", mine.call("POST", f"/shopping/orders/{oid}/comments", {"body": f"w{w} c{c}"}))

        threads = [threading.Thread(target=writer, args=(w,)) for w in range(BURST_WRITERS)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        order = client.call("GET", f"/shopping/orders/{oid}")
        comments = len((order or {}).get("comments", []))
        answered = sum(1 for k in self.expected if k[1] == oid and k[0] == "shopping_order_update")
        if comments != answered:
            raise RuntimeError(f"order {oid} has {comments} comments, {answered} comment writes were answered 2xx")


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--stack", required=True, help="the data directory of a running tests/stack up --webhook-allow-loopback")
    args = parser.parse_args()
    host = hosts.StackHost(args.stack)
    started = time.monotonic()
    ledger = Ledger()
    accounts = [Account(host, f"T3{n:07d}", ledger, subscribe=n < SUBSCRIBED, burst=n == 0) for n in range(ACCOUNTS)]
    tokens = [hosts.token(host, a.aid, "admin:shopping admin:hooks") for a in accounts]
    threads = [threading.Thread(target=a.run, args=(t,)) for a, t in zip(accounts, tokens)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    wrote = time.monotonic()
    print(f"long run: {ledger.writes} writes by {ACCOUNTS} accounts in {wrote - started:.0f} s; answers {dict(sorted(ledger.statuses.items()))}")

    subscribed = [a for a in accounts if a.subscribed]
    deadline = wrote + WEBHOOK_WAIT
    while time.monotonic() < deadline and any(set(a.expected) - a.receiver.events()[0] for a in subscribed):
        time.sleep(0.5)
    failures = [f"{a.aid}: {a.error}" for a in accounts if a.error] + ledger.problems[:20]
    if len(ledger.problems) > 20:
        failures.append(f"... and {len(ledger.problems) - 20} more unanswered or badly answered requests")
    expected = duplicates = 0
    latest = 0.0
    for a in subscribed:
        got, named, dup = a.receiver.events()
        missing = sorted(set(a.expected) - got, key=lambda k: a.expected[k])
        expected, duplicates = expected + len(a.expected), duplicates + dup
        if missing:
            failures.append(f"{a.aid}: {len(missing)} of {len(a.expected)} webhooks never came within {WEBHOOK_WAIT:.0f} s, "
                            f"the first: {missing[:5]}")
        if named - {a.aid}:
            failures.append(f"{a.aid}: its receiver got events of {sorted(named - {a.aid})}")
        arrivals = {}
        for _, doc, at in a.receiver.got:
            resource = doc.get("order") or doc.get("draft") or {}
            arrivals.setdefault((doc.get("event"), resource.get("id"), doc.get("version")), at)
        latest = max([latest] + [arrivals[k] - t for k, t in a.expected.items() if k in arrivals])
    print(f"long run: {expected} webhooks expected by {len(subscribed)} subscribed accounts, all after "
          f"{time.monotonic() - wrote:.1f} s more; slowest {latest:.1f} s after its write; {duplicates} duplicates; "
          f"{time.monotonic() - started:.0f} s in all")
    if failures:
        print("long run: FAILED\n  " + "\n  ".join(failures), file=sys.stderr)
        return 1
    print(f"long run: every request answered, every webhook delivered ({ledger.writes} writes, {expected} webhooks)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
