"""Nothing lost, nothing doubled, on a stack as hostile as AWS may be (`tests/stack up --hostile`:
stream records reordered across items and delivered again, queue messages and EventBridge
deliveries doubled, DynamoDB throttles and transaction conflicts, instances recycled;
tests/harness/hostile.py).

ACCOUNTS accounts (each an API client of its own) subscribe a loopback receiver to the shopping
events through the Hooks API, then write at once, one client each: DRAFTS drafts each (created,
two items added, completed), and each draft's order changed ORDER_WRITES times (courier updates,
comments, closed): WRITES writes in all. Every write carries an `Idempotency-Key` and is sent
again with it until it is answered 2xx (a dropped connection, a 5xx, a 409 or a 429 may leave a
client unsure whether a write happened; the key makes sending it again safe: README, "Endpoints (today)"),
so the events the writes produced are exactly those their 2xx answers name: each write's event,
resource id and the version its ETag carries.

Then, once the deliveries settle (every expected event arrived, and then nothing more for QUIET
seconds), it checks:
  - zero lost: every expected (event, resource, version) was POSTed to its account's receiver;
  - zero duplicated: each `event-delivery` (one per event and subscription, README "Webhooks")
    was POSTed once, and so each (`webhook-id`, subscription);
  - nothing unexplained: no event no write produced, none of another account;
  - no second history entry: each order's history (`GET …/events`) lists each entry once;
  - no double-counted meter: the webhook deliveries the deliverer metered (its Embedded Metric
    Format lines) are as many as the POSTs received;
  - the faults were injected: the stack is hostile, and its `/stats` counts stream, queue and
    EventBridge duplicates, throttles, conflicts and recycled instances (so it cannot pass on a
    kind stack).

Usage: hostile_test.py --stack DIR   (a running `tests/stack up --hostile --webhook-allow-loopback`)
Exits non-zero, naming what was lost, doubled or not injected.
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
import urllib.request
import uuid

import hosts

ACCOUNTS = 6
DRAFTS = 17  # per account: 1 create + 2 items + 1 completion + ORDER_WRITES = 10 writes each
ORDER_WRITES = 6
WRITES = ACCOUNTS * DRAFTS * (4 + ORDER_WRITES)
EVENTS = ["shopping_draft_add", "shopping_draft_update", "shopping_draft_complete", "shopping_order_update"]
ITEM = {"gross_amount": 1000, "tax_lines": [{"percentage": 25}]}
# A write is sent again with its Idempotency-Key after a pause, at most this many times in all.
ATTEMPTS = 10
WEBHOOK_WAIT = 300.0
QUIET = 15.0
INJECTED = ["stream-duplicate", "queue-duplicate", "eventbridge-duplicate", "throttle", "conflict", "recycle"]


def fail(msg: str) -> None:
    raise SystemExit(f"hostile: {msg}")


class Receiver(http.server.ThreadingHTTPServer):
    """One loopback webhook receiver for every account (`/hook/AID`): answers 200 at once and
    keeps each POST's account, headers and body."""

    daemon_threads = True
    request_queue_size = 512

    def __init__(self):
        self.got = []
        self.lock = threading.Lock()
        receiver = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self):  # noqa: N802 - the stdlib's name
                body = self.rfile.read(int(self.headers.get("content-length", 0)))
                headers = {k.lower(): v for k, v in self.headers.items()}
                with receiver.lock:
                    receiver.got.append((self.path.rsplit("/", 1)[-1], headers, body, time.monotonic()))
                self.send_response(200)
                self.send_header("content-length", "0")
                self.end_headers()

            def log_message(self, *_):
                pass

        super().__init__(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.serve_forever, daemon=True).start()
        self.base = f"http://127.0.0.1:{self.server_address[1]}/hook"

    def posts(self):
        with self.lock:
            return list(self.got)

    def last(self) -> float:
        with self.lock:
            return self.got[-1][3] if self.got else 0.0


def event_key(body: bytes):
    """(event, resource id, version) of a delivered body; None for a ping."""
    doc = json.loads(body)
    if doc.get("event") == "ping":
        return None
    resource = doc.get("order") or doc.get("draft") or {}
    return doc.get("event"), resource.get("id"), doc.get("version")


class Writer:
    """One account's API client: its connection (kept alive), its writes each sent until
    answered 2xx with its Idempotency-Key, and the events their answers name."""

    def __init__(self, base, aid, token):
        url = urllib.parse.urlsplit(base)
        self.host, self.port, self.prefix, self.token = url.hostname, url.port, f"/v1/accounts/{aid}", token
        self.aid, self.conn = aid, None
        self.expected = set()
        self.orders = []
        self.writes = self.resent = 0
        self.statuses = collections.Counter()
        self.error = None

    def send(self, method, path, body, key):
        headers = {"authorization": f"Bearer {self.token}", "content-type": "application/json"}
        if key:
            headers["idempotency-key"] = key
        try:
            if self.conn is None:
                self.conn = http.client.HTTPConnection(self.host, self.port, timeout=60)
            self.conn.request(method, self.prefix + path, body=None if body is None else json.dumps(body).encode(),
                              headers=headers)
            res = self.conn.getresponse()
            return res.status, {k.lower(): v for k, v in res.getheaders()}, res.read()
        except (OSError, http.client.HTTPException) as e:
            self.conn = None
            return 0, {}, f"no answer: {type(e).__name__}: {e}".encode()

    def write(self, event, method, path, body=None):
        """The write's answer once 2xx (its document, with its ETag's version as `_version`);
        its event expected. Raises after ATTEMPTS."""
        key, last = str(uuid.uuid4()), None
        self.writes += bool(event)
        for attempt in range(ATTEMPTS):
            status, headers, raw = self.send(method, path, body, key)
            self.statuses[status] += 1
            if 200 <= status < 300:
                doc = json.loads(raw) if raw else {}
                if event:
                    etag = headers.get("etag", "")
                    if not etag.startswith('W/"'):
                        raise RuntimeError(f"{method} {path}: {status} without a version (ETag {etag!r})")
                    doc["_version"] = int(etag[3:-1])
                    self.expected.add((event, doc["id"], doc["_version"]))
                return doc
            if 400 <= status < 500 and status not in (409, 429):
                raise RuntimeError(f"{method} {path}: {status} {raw[:300]!r}")
            last = f"{status} {raw[:300]!r}"
            self.resent += 1
            time.sleep(min(0.2 * 2 ** attempt, 5.0) + float(headers.get("retry-after", "0") or 0))
        raise RuntimeError(f"{method} {path}: not answered 2xx in {ATTEMPTS} attempts, the last {last}")

    def subscribe(self, url):
        hook = self.write(None, "POST", "/hooks/subscriptions",
                          {"events": EVENTS, "config": {"url": url, "content_type": "application/json"}})
        return hook["id"]

    def run(self):
        try:
            for d in range(DRAFTS):
                draft = self.write("shopping_draft_add", "POST", "/shopping/draft_orders",
                                   {"order": {"currency": "NOK", "items": [{"line_id": 1, **ITEM}]}})
                for line in (2, 3):
                    self.write("shopping_draft_update", "POST", f"/shopping/draft_orders/{draft['id']}/items",
                               {"line_id": line, **ITEM})
                done = self.write("shopping_draft_complete", "PUT", f"/shopping/draft_orders/{draft['id']}/complete")
                oid = done["orders"][0]["id"]
                self.orders.append(oid)
                for k in range(ORDER_WRITES - 1):
                    if k % 2 == 0:
                        self.write("shopping_order_update", "PUT", f"/shopping/orders/{oid}", {"courier_id": f"c{d}-{k}"})
                    else:
                        self.write("shopping_order_update", "POST", f"/shopping/orders/{oid}/comments", {"body": f"note {d}-{k}"})
                self.write("shopping_order_update", "POST", f"/shopping/orders/{oid}/close")
        except Exception as e:  # noqa: BLE001 - reported with the account
            self.error = f"{type(e).__name__}: {e}"


def history_doubled(writer):
    """Orders whose history (`GET …/orders/{id}/events`) lists one entry twice: the publisher
    writes an image's history item, so a duplicated stream record must rewrite it, not add one."""
    doubled = []
    for oid in writer.orders:
        status, _, raw = writer.send("GET", f"/shopping/orders/{oid}/events", None, None)
        if status != 200:
            doubled.append(f"{oid}: {status} {raw[:200]!r}")
            continue
        ids = [e.get("id") for e in json.loads(raw)["events"]]
        versions = [(e.get("event_type"), e.get("version")) for e in json.loads(raw)["events"] if e.get("version") is not None]
        if len(ids) != len(set(ids)) or len(versions) != len(set(versions)):
            doubled.append(f"{oid}: {len(ids)} entries, {len(set(ids))} distinct")
    return doubled


def metered_deliveries(state, aids):
    """The webhook deliveries the deliverer metered for `aids` (its Embedded Metric Format
    lines, as CloudWatch would sum them): one per attempt made, none for a duplicate it
    acknowledged without a POST."""
    total = 0
    with open(state["functions"]["deliverer"]["log"]) as f:
        for line in f:
            if '"_aws"' not in line:
                continue
            try:
                doc = json.loads(line[line.index("{"):])
            except ValueError:
                continue
            if doc.get("account") in aids:
                total += int(doc.get("WebhookDeliveries") or 0)
    return total


def stats(state):
    with urllib.request.urlopen(state["control"] + "/stats", timeout=10) as res:
        return json.loads(res.read())


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--stack", required=True, help="the data directory of a running tests/stack up --hostile --webhook-allow-loopback")
    args = parser.parse_args()
    host = hosts.StackHost(args.stack)
    state = host.state
    started = time.monotonic()
    receiver = Receiver()
    run = uuid.uuid4().int % 10 ** 6  # accounts of this run's own, should the stack have served another
    aids = [f"T5{n}{run:06d}" for n in range(ACCOUNTS)]
    writers = [Writer(host.base, aid, hosts.token(host, aid, "admin:shopping admin:hooks")) for aid in aids]
    subscriptions = {w.aid: w.subscribe(f"{receiver.base}/{w.aid}") for w in writers}
    threads = [threading.Thread(target=w.run) for w in writers]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    wrote = time.monotonic()
    statuses = sum((w.statuses for w in writers), collections.Counter())
    writes = sum(w.writes for w in writers)
    print(f"hostile: {writes} writes by {ACCOUNTS} concurrent clients in {wrote - started:.0f} s "
          f"({sum(w.resent for w in writers)} sent again); answers {dict(sorted(statuses.items()))}")

    expected = {(w.aid, *k) for w in writers for k in w.expected}

    def received():
        return {(aid, *k) for aid, _, body, _ in receiver.posts() for k in [event_key(body)] if k}

    deadline = wrote + WEBHOOK_WAIT
    while time.monotonic() < deadline and not expected <= received():
        time.sleep(0.5)
    arrived = time.monotonic()
    # Then nothing more for QUIET seconds: a duplicate comes after its first.
    while time.monotonic() < deadline + QUIET and time.monotonic() - max(receiver.last(), arrived) < QUIET:
        time.sleep(0.5)

    failures = [f"{w.aid}: {w.error}" for w in writers if w.error]
    posts = receiver.posts()
    got = received()
    lost = sorted(expected - got)
    if lost:
        failures.append(f"{len(lost)} of {len(expected)} events never delivered within {WEBHOOK_WAIT:.0f} s, the first: {lost[:5]}")
    deliveries = collections.Counter()
    per_webhook = collections.Counter()
    for aid, headers, body, _ in posts:
        if event_key(body) is None:
            continue
        deliveries[(aid, headers.get("event-delivery"))] += 1
        per_webhook[(aid, headers.get("webhook-id"), subscriptions.get(aid))] += 1
    doubled = {k: n for k, n in deliveries.items() if n > 1}
    if doubled:
        events = {headers.get("event-delivery"): event_key(body) for _, headers, body, _ in posts}
        failures.append(f"{len(doubled)} of {len(deliveries)} event deliveries POSTed more than once "
                        f"({sum(doubled.values()) - len(doubled)} extra POSTs), the first: "
                        + ", ".join(f"{events.get(k[1])} x{n}" for k, n in list(doubled.items())[:5]))
    twice = sum(1 for n in per_webhook.values() if n > 1)
    if twice != len(doubled):
        failures.append(f"{twice} (webhook-id, subscription) pairs came more than once, {len(doubled)} event-delivery ids")
    unexplained = sorted(got - expected)
    if unexplained and not any(w.error for w in writers):
        failures.append(f"{len(unexplained)} events no write produced (or of another account), the first: {unexplained[:5]}")

    doubled_history = [d for w in writers for d in history_doubled(w)]
    if doubled_history:
        failures.append(f"{len(doubled_history)} orders' histories list an entry twice, the first: {doubled_history[:3]}")
    metered = metered_deliveries(state, set(aids))
    if metered != len(posts):
        failures.append(f"the deliverer metered {metered} webhook deliveries for {len(posts)} POSTs received")
    print(f"hostile: {sum(len(w.orders) for w in writers)} orders' histories without a doubled entry; "
          f"{metered} webhook deliveries metered for {len(posts)} POSTs")

    hostile = state.get("hostile")
    counts = (stats(state).get("hostile") or {}) if hostile else {}
    print(f"hostile: {len(expected)} events expected, {len(got & expected)} delivered, {len(posts)} POSTs in all, "
          f"{len(doubled)} doubled; settled {arrived - wrote:.1f} s after the writes; {time.monotonic() - started:.0f} s in all")
    print(f"hostile: the stack's settings {hostile}; injected {counts}")
    if not hostile:
        failures.append("the stack is not hostile: start it with tests/stack up --hostile")
    else:
        missing = [k for k in INJECTED if not counts.get(k)]
        if missing:
            failures.append(f"nothing injected of {missing}: the run proves nothing of them")
    if writes < 1000:
        failures.append(f"only {writes} writes")
    if failures:
        print("hostile: FAILED\n  " + "\n  ".join(failures), file=sys.stderr)
        return 1
    print(f"hostile: every event of {writes} writes delivered once ({len(expected)} events)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
