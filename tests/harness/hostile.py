"""Hostile mode (`tests/stack up --hostile`): the stack as hostile as AWS is allowed to be. Where
the harness is otherwise kinder than AWS (FIDELITY.md's **Kinder** rows), hostile mode does what
AWS documents it may do, each fault at a rate of its own (a flag, DEFAULTS below), every
injection logged (one `hostile: KIND: ...` line in DIR/stack.log) and counted (the control
server's `GET /stats`, `"hostile"`):

  - the stream in several shards keyed by item (`--shards`): the stream's mapping routes each
    record it reads (after the filter) to one of N virtual shards by a hash of its item key, each
    processed on its own (its batches, batching window, retries, bisection), so records of one
    item stay in order and records of different items are reordered (`shard_loop`);
  - at-least-once delivery (`--duplicate-rate`): a stream record delivered again in a later
    invocation; a queue message the deliverer processed made visible again instead of deleted;
    an event EventBridge delivers to an SQS target sent twice;
  - throttles and transaction conflicts (`--throttle-rate`, `--conflict-rate`): a gate before
    moto answers a function's DynamoDB call with DynamoDB's throttle, or its TransactWriteItems
    with a cancellation for a conflict, without applying it (`gate`);
  - recycled instances (`--recycle-rate`): an instance ended after an invocation instead of
    kept warm (`recycle`);
  - `--seed`: each kind of fault draws from its own generator seeded from it (default: random,
    logged), so a seed gives each kind the same sequence of decisions (which call or record a
    decision falls on still depends on the threads' timing).

This module imports only the standard library and `account` at load (the command line reads its
flags without loading moto); what it needs of `mappings` and moto it imports where it uses it.
"""

import collections
import copy
import hashlib
import json
import random
import re
import threading
import time
import uuid

from .account import SESSIONS, log

# Each fault's default rate, and why that rate.
DEFAULTS = {
    # "Lambda can process up to 10 batches in each shard simultaneously" (with-ddb.html): four
    # virtual shards reorder what they can on two cores without starving the publisher's
    # UNRESERVED_CAP processes.
    "shards": 4,
    # Rare on AWS; one delivery in ten, so a run of a thousand writes meets a hundred duplicates
    # at every hop (the stream, the queue, EventBridge).
    "duplicate_rate": 0.10,
    # 3 %: the SDKs retry a throttle ("The AWS SDKs for DynamoDB automatically retry requests
    # that receive this exception", the API reference's ProvisionedThroughputExceededException);
    # the product's client makes 8 attempts from a 50 ms pause (infra::dynamo::retry_config), so
    # a call fails through once in 0.03^-8 (about 10^12) and a throttle costs ~25 ms, while a
    # run of a thousand writes (some fifteen thousand DynamoDB calls) meets hundreds of them in
    # every function. Higher would add little but time; lower, too few to reach the rare paths.
    "throttle_rate": 0.03,
    # 5 % of the functions' transactions: the product's write loop retries a conflict (up to 24
    # attempts), so this exercises it on every kind of write without a 409 ever being due.
    "conflict_rate": 0.05,
    # One invocation in ten ends its instance: every function starts cold again and again.
    "recycle_rate": 0.10,
}
KINDS = ("stream-duplicate", "queue-duplicate", "eventbridge-duplicate", "throttle", "conflict", "recycle")
# How many records a real shard's reader may have read and not yet seen done by its virtual
# shards before it waits (the emulator's stream is in memory; this only bounds the harness's).
READ_AHEAD = 5000

# DynamoDB's throttles, as its API answers them (HTTP 400, awsJson1_0), taken in turn.
THROTTLES = (
    ("ProvisionedThroughputExceededException",
     "The level of configured provisioned throughput for the table was exceeded. Consider increasing your "
     "provisioning level with the UpdateTable API."),
    ("ThrottlingException",
     "Throughput exceeds the current capacity of your table or index. DynamoDB is automatically scaling your "
     "table or index so please try again shortly."),
)
CREDENTIAL = re.compile(r"Credential=([^/,\s]+)/")


def add_arguments(up) -> None:
    """`up`'s hostile flags (the usage in this package's docstring)."""
    up.add_argument("--hostile", action="store_true",
                    help="inject the faults AWS documents it may cause (tests/harness/hostile.py)")
    up.add_argument("--shards", type=int, help=f"virtual stream shards keyed by item (default {DEFAULTS['shards']})")
    for name in ("duplicate_rate", "throttle_rate", "conflict_rate", "recycle_rate"):
        up.add_argument("--" + name.replace("_", "-"), type=float, help=f"default {DEFAULTS[name]}")
    up.add_argument("--seed", type=int, help="the faults' seed (default: random, logged)")


def settings(args):
    """The hostile settings `up`'s flags give (None without --hostile); refuses (SystemExit) a
    fault flag without --hostile and a rate out of range."""
    given = {k: getattr(args, k, None) for k in (*DEFAULTS, "seed")}
    if not getattr(args, "hostile", False):
        named = [f"--{k.replace('_', '-')}" for k, v in given.items() if v is not None]
        if named:
            raise SystemExit(f"{', '.join(named)}: only with --hostile")
        return None
    out = {k: DEFAULTS[k] if given[k] is None else given[k] for k in DEFAULTS}
    if not 1 <= out["shards"] <= 10:
        raise SystemExit("--shards: 1 to 10 (a shard's ParallelizationFactor is at most 10)")
    for k in ("duplicate_rate", "throttle_rate", "conflict_rate"):
        # At 1 a duplicate would be duplicated for ever, a throttled call never get through.
        if not 0 <= out[k] < 1:
            raise SystemExit(f"--{k.replace('_', '-')}: at least 0, below 1")
    if not 0 <= out["recycle_rate"] <= 1:
        raise SystemExit("--recycle-rate: 0 to 1")
    out["seed"] = random.SystemRandom().randrange(2 ** 32) if given["seed"] is None else given["seed"]
    return out


class Hostile:
    """The faults of one stack: their settings, generators and counts."""

    def __init__(self, settings: dict):
        self.settings = settings
        self.shards = settings["shards"]
        self.seed = settings["seed"]
        self.lock = threading.Lock()
        self.rngs = {kind: random.Random(f"{self.seed}/{kind}") for kind in KINDS}
        self.counts = collections.Counter()
        self.throttles = 0

    def chance(self, kind: str, rate: float) -> bool:
        if rate <= 0:
            return False
        with self.lock:
            return self.rngs[kind].random() < rate

    def injected(self, kind: str, detail: str) -> None:
        with self.lock:
            self.counts[kind] += 1
        log(f"hostile: {kind}: {detail}")

    def state(self) -> dict:
        """What DIR/stack.json says of it: the settings in force."""
        return dict(self.settings)

    def stats(self) -> dict:
        """Its injections so far, by kind (the control server's GET /stats)."""
        with self.lock:
            return {kind: self.counts[kind] for kind in KINDS}

    def install(self, harness) -> None:
        """Puts the faults on the running stack: the gate after those there (IAM's first), and
        EventBridge's duplicates around whatever delivers to SQS now (IAM's check of the queue
        policy, installed before). The stream, the queue and Lambda ask `shard_loop`,
        `redeliver` and `recycle` themselves (mappings.py, runtime.py)."""
        harness.gates.append(self.gate)
        self.duplicate_eventbridge_deliveries()
        log(f"hostile: seed {self.seed}; " + ", ".join(f"{k} {v}" for k, v in self.settings.items() if k != "seed"))

    # ---- throttles and transaction conflicts (DynamoDB)

    def gate(self, environ, body):
        """A function's DynamoDB call (its session's key; not DynamoDB Streams, not the
        harness's own `test` key) throttled at `throttle_rate`, a TransactWriteItems cancelled
        for a conflict at `conflict_rate`: AWS's answer, and moto never sees the call."""
        target = environ.get("HTTP_X_AMZ_TARGET", "")
        if not target.startswith("DynamoDB_20120810."):
            return None
        key = CREDENTIAL.search(environ.get("HTTP_AUTHORIZATION", ""))
        role = SESSIONS.get(key.group(1)) if key else None
        if role is None:
            return None
        action, who = target.split(".", 1)[1], role.rsplit("/", 1)[-1]
        if self.chance("throttle", self.settings["throttle_rate"]):
            with self.lock:
                code, message = THROTTLES[self.throttles % len(THROTTLES)]
                self.throttles += 1
            self.injected("throttle", f"{code} to {action} by {who}")
            return self.answer({"__type": f"com.amazonaws.dynamodb.v20120810#{code}", "message": message})
        if action == "TransactWriteItems" and self.chance("conflict", self.settings["conflict_rate"]):
            try:
                items = len(json.loads(body or b"{}").get("TransactItems") or [])
            except ValueError:
                return None
            if not items:
                return None
            with self.lock:
                at = self.rngs["conflict"].randrange(items)
            # "Transaction cancellation reasons are ordered in the order of requested items, if
            # an item has no error it will have None code and Null message." (API_TransactWriteItems)
            reasons = [{"Code": "None"}] * items
            reasons[at] = {"Code": "TransactionConflict", "Message": "Transaction is ongoing for the item"}
            codes = ", ".join(r["Code"] for r in reasons)
            self.injected("conflict", f"TransactionConflict on item {at + 1} of {items} of TransactWriteItems by {who}")
            return self.answer({
                "__type": "com.amazonaws.dynamodb.v20120810#TransactionCanceledException",
                "CancellationReasons": reasons,
                "Message": f"Transaction cancelled, please refer cancellation reasons for specific reasons [{codes}]",
            })
        return None

    @staticmethod
    def answer(doc):
        return 400, [("Content-Type", "application/x-amz-json-1.0"), ("x-amzn-RequestId", str(uuid.uuid4()))], \
            json.dumps(doc).encode()

    # ---- EventBridge: a target invoked more than once

    def duplicate_eventbridge_deliveries(self) -> None:
        """Wraps moto's delivery of a rule's event to an SQS target (`Rule._send_to_sqs_queue`,
        whatever is installed there now): at `duplicate_rate` it is made twice, each time with
        its own copy of the event (moto rewrites the event's `time` in place). "In rare cases,
        the same rule can run more than once for a single event or scheduled time, or the same
        target can be invoked more than once for a given triggered rule." (eb-troubleshooting.html)"""
        from moto.events.models import Rule

        installed = Rule._send_to_sqs_queue
        hostile, rate = self, self.settings["duplicate_rate"]

        def send(rule, *args, **kwargs):
            again = copy.deepcopy((args, kwargs))
            installed(rule, *args, **kwargs)
            if hostile.chance("eventbridge-duplicate", rate):
                event = again[0][1] if len(again[0]) > 1 else again[1].get("event", {})
                installed(rule, *again[0], **again[1])
                detail = event.get("detail") if isinstance(event, dict) else None
                what = f"{event.get('detail-type')} {detail.get('id', '')}" if isinstance(detail, dict) else "an event"
                hostile.injected("eventbridge-duplicate", f"rule {rule.name} sent {what} to {args[0] if args else 'its queue'} twice")

        send.hostile = True
        Rule._send_to_sqs_queue = send

    # ---- Lambda: instances recycled, queue messages received again

    def recycle(self, fn) -> bool:
        """Whether the instance that has just served an invocation of `fn` ends now instead of
        being kept warm (then the next invocation starts cold). "When you write your function
        code, do not assume that Lambda automatically reuses the execution environment for
        subsequent function invocations. Other factors may dictate a need for Lambda to create a
        new execution environment" (lambda-runtime-environment.html)."""
        if self.chance("recycle", self.settings["recycle_rate"]):
            self.injected("recycle", f"{fn.short}: its instance ends after the invocation")
            return True
        return False

    def redeliver(self, fn, sqs, url, records):
        """Of the queue messages `fn` processed, those to delete: at `duplicate_rate` one is made
        visible again at once instead (ChangeMessageVisibility to 0, as the function's role), so
        the mapping receives it again (a new receipt handle, its receive count one more).
        "Standard queues ensure at-least-once message delivery, but due to the highly
        distributed architecture, more than one copy of a message might be delivered"
        (standard-queues.html); "your function code must be able to process the same message
        multiple times without unintended side effects" (with-sqs.html)."""
        delete = []
        for r in records:
            if self.chance("queue-duplicate", self.settings["duplicate_rate"]):
                try:
                    sqs.change_message_visibility(QueueUrl=url, ReceiptHandle=r["receiptHandle"], VisibilityTimeout=0)
                    self.injected("queue-duplicate", f"{fn.short}: message {r['messageId']} (received "
                                  f"{r['attributes'].get('ApproximateReceiveCount', '?')} times) visible again, not deleted")
                    continue
                except Exception as e:  # noqa: BLE001 - then it is deleted, as without the fault
                    log(f"hostile: queue-duplicate of {r['messageId']} not made ({type(e).__name__}: {e}); deleted")
            delete.append(r)
        return delete

    # ---- the stream: virtual shards keyed by item

    def route(self, record) -> int:
        """The virtual shard of a record: a hash of its item's key (its `dynamodb.Keys`)."""
        keys = json.dumps(record["dynamodb"].get("Keys", {}), sort_keys=True).encode()
        return int.from_bytes(hashlib.sha1(keys).digest()[:4], "big") % self.shards

    def shard_loop(self, sources, props, fn, keep, shard, ended):
        """One real shard, read in order as `EventSources.shard_loop` reads it, its records (those
        a filter keeps) handed to `shards` virtual shards by item key, each with its own batches,
        batching window, retries and bisection (`VirtualShard`). "Lambda can process up to 10
        batches in each shard simultaneously. If you increase the number of concurrent batches
        per shard, Lambda still ensures in-order processing at the item (partition and sort key)
        level." (with-ddb.html, ParallelizationFactor; moto has one shard, which never splits.)
        So an item's records stay in order and different items' are reordered.

        The shard's checkpoint moves past a record only once every delivery owed of it and of
        every record before it is done (`Checkpoint`): a failed or expired iterator is replaced
        by one after the checkpoint, and what was read since is read, and delivered, again
        (never skipped)."""
        from .mappings import POLL_EVERY, why

        arn = props["EventSourceArn"]
        checkpoint = Checkpoint(shard)
        closed, finished = threading.Event(), threading.Event()
        vshards = [VirtualShard(self, sources, props, fn, shard, n, checkpoint, closed, finished)
                   for n in range(self.shards)]
        for v in vshards:
            threading.Thread(target=v.loop, daemon=True, name=f"{fn.short}:{shard.id}#{v.n}").start()
        iterator = None
        try:
            while not sources.stopping.is_set():
                if checkpoint.pending() >= READ_AHEAD:
                    sources.stopping.wait(POLL_EVERY)
                    continue
                try:
                    if iterator is None:
                        iterator = sources.shard_iterator(fn, arn, shard)
                    got = sources.stream_call(fn, "GetRecords", {"ShardIterator": iterator, "Limit": 1000})
                except Exception as e:  # noqa: BLE001 - the poller outlives a failed poll
                    log(f"mapping {fn.short}: shard {shard.id}: {why(e)}; a new iterator after "
                        f"{shard.checkpoint or 'none'} ({checkpoint.pending()} records read since, to be read again)")
                    iterator = None
                    sources.stopping.wait(1)
                    continue
                records = got.get("Records") or []
                iterator = got.get("NextShardIterator")
                for rec in records:
                    rec["eventSourceARN"] = arn
                    sources.mark_swept(rec)
                    seq = rec["dynamodb"]["SequenceNumber"]
                    if keep(rec):
                        checkpoint.owe(seq)
                        vshards[self.route(rec)].put([rec])
                    else:
                        checkpoint.owe(seq, 0)  # dropped by the filter: done with
                if iterator is None:
                    # Closed and read to its end: every virtual shard's records go at once, and
                    # the shard is done when all are.
                    closed.set()
                    for v in vshards:
                        v.wake()
                    while checkpoint.pending() and not sources.stopping.wait(POLL_EVERY):
                        pass
                    if sources.stopping.is_set():
                        return
                    shard.done = True
                    log(f"mapping {fn.short}: shard {shard.id} read to its end; its children may start")
                    ended.set()
                    return
                if not records:
                    sources.stopping.wait(POLL_EVERY)
        finally:
            finished.set()
            for v in vshards:
                v.wake()

    def stream_duplicates(self, batch):
        """The records of a batch done with to be delivered again: each at `duplicate_rate`,
        with the records of its item after it in the batch (a retried batch is re-delivered from
        a record on, so its item's later records come again after it). "Lambda event source
        mappings process each event at least once, and duplicate processing of records can
        occur." (invocation-eventsourcemapping.html)"""
        rate = self.settings["duplicate_rate"]
        chosen, again, items = [], [], set()
        for r in batch:
            item = json.dumps(r["dynamodb"].get("Keys", {}), sort_keys=True)
            if item in items:
                again.append(r)
            elif self.chance("stream-duplicate", rate):
                chosen.append(r)
                items.add(item)
                again.append(r)
        return chosen, again


class Checkpoint:
    """A real shard's checkpoint under virtual shards: each record read is owed its deliveries
    (one when a filter keeps it, none when not; one more for each duplicate or re-read), and the
    shard's checkpoint moves past the records read, in order, whose deliveries are all done."""

    def __init__(self, shard):
        self.shard = shard
        self.lock = threading.Lock()
        self.order = collections.deque()  # sequence numbers read past the checkpoint, in order
        self.owed = {}

    def owe(self, seq, deliveries=1):
        with self.lock:
            if seq not in self.owed:
                self.order.append(seq)
                self.owed[seq] = 0
            self.owed[seq] += deliveries
            self.advance()

    def done(self, seq):
        with self.lock:
            self.owed[seq] -= 1
            self.advance()

    def advance(self):
        while self.order and self.owed[self.order[0]] <= 0:
            seq = self.order.popleft()
            del self.owed[seq]
            self.shard.checkpoint = seq

    def pending(self) -> int:
        with self.lock:
            return len(self.order)


class VirtualShard:
    """One virtual shard of a real shard: its records in order (an item's records always come to
    the same one), handed to the function one batch at a time as the mapping batches a shard
    (BatchSize, the batching window; at once when the real shard has closed), each batch through
    `stream_batch` (retries, bisection, partial failures, the on-failure destination). After a
    batch, `stream_duplicates` are put back at its front, for the next invocation."""

    def __init__(self, hostile, sources, props, fn, shard, n, checkpoint, closed, finished):
        self.hostile, self.sources, self.props, self.fn, self.shard, self.n = hostile, sources, props, fn, shard, n
        self.checkpoint, self.closed, self.finished = checkpoint, closed, finished
        self.size = int(props.get("BatchSize", 100))
        self.window = float(props.get("MaximumBatchingWindowInSeconds", 0))
        self.queue = collections.deque()
        self.first_seen = None
        self.cv = threading.Condition()

    def put(self, records, front=False):
        with self.cv:
            if front:
                self.queue.extendleft(reversed(records))
                # A retried batch goes again at once, not after another window.
                self.first_seen = time.monotonic() - self.window
            else:
                self.queue.extend(records)
                self.first_seen = self.first_seen if self.first_seen is not None else time.monotonic()
            self.cv.notify()

    def wake(self):
        with self.cv:
            self.cv.notify()

    def next_batch(self):
        """The next batch once it is due (None when the stack stops or the shard is done)."""
        from .mappings import POLL_EVERY, payload_batches

        with self.cv:
            while not (self.sources.stopping.is_set() or self.finished.is_set()):
                if self.queue:
                    waited = time.monotonic() - self.first_seen
                    if self.closed.is_set() or len(self.queue) >= self.size or waited >= self.window:
                        batch = next(payload_batches(list(self.queue), self.size))
                        for _ in batch:
                            self.queue.popleft()
                        self.first_seen = time.monotonic() if self.queue else None
                        return batch
                    self.cv.wait(min(POLL_EVERY, self.window - waited))
                else:
                    self.cv.wait(POLL_EVERY)
        return None

    def loop(self):
        while True:
            batch = self.next_batch()
            if batch is None:
                return
            try:
                self.sources.stream_batch(self.fn, self.props, self.shard.id, batch)
            except Exception as e:  # noqa: BLE001 - a harness failure: the batch goes again, as a retry would
                log(f"mapping {self.fn.short}: shard {self.shard.id}#{self.n}: the harness failed a batch "
                    f"({type(e).__name__}: {e}); again")
                self.put(batch, front=True)
                self.sources.stopping.wait(1)
                continue
            if self.sources.stopping.is_set():
                return
            chosen, again = self.hostile.stream_duplicates(batch)
            for r in again:
                self.checkpoint.owe(r["dynamodb"]["SequenceNumber"])
            if again:
                self.put(again, front=True)
            for r in chosen:
                later = sum(1 for x in again if x is not r and x["dynamodb"]["Keys"] == r["dynamodb"]["Keys"])
                self.hostile.injected("stream-duplicate", f"{self.fn.short} shard {self.shard.id}#{self.n}: record "
                                      f"{r['dynamodb']['SequenceNumber']} delivered again"
                                      + (f", with {later} later records of its item" if later else ""))
            for r in batch:
                self.checkpoint.done(r["dynamodb"]["SequenceNumber"])
