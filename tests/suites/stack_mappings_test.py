"""The stack harness's event pipeline, as Lambda and DynamoDB run it (tests/harness/mappings.py
and the emulator's shims in tests/harness/pipeline_shims.py; FIDELITY-mappings.md names each behaviour's
test here). The functions are fakes; the emulator, where a test needs one, is moto served in
this process with the harness's shims, as `tests/stack up` serves it.

Usage: stack_mappings_test.py [TEST ...]   (the test virtualenv's python; all tests when none
is named)
"""

import collections
import json
import logging
import os
import sys
import threading
import time
import zipfile
from io import BytesIO

import boto3

# The stack harness, tests/harness, is a package beside this folder.
sys.path.insert(1, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from harness import mappings, pipeline_shims, shims  # noqa: E402
from harness.emulator import serve  # noqa: E402
from harness.mappings import EventSources, event_filter  # noqa: E402
from harness.runtime import InvocationError  # noqa: E402

TEMPLATE_FILTERS = {"Filters": [{"Pattern": '{"dynamodb": {"NewImage": {"ev": {"BOOL": [true]}}}}'},
                                {"Pattern": '{"eventName": ["REMOVE"], "dynamodb": {"Keys": {"sk": {"S": ["ORDER"]}}}}'}]}
ENDPOINT = []


def check(cond, msg):
    if not cond:
        raise SystemExit(f"stack mappings: {msg}")


def record(seq, poison=False, event="MODIFY", ev=True, age=0.0):
    image = {"pk": {"S": "p"}, "sk": {"S": "ORDER"}}
    if ev:
        image["ev"] = {"BOOL": True}
    return {"eventName": event, "poison": poison,
            "dynamodb": {"SequenceNumber": str(seq), "ApproximateCreationDateTime": time.time() - age, "Keys": image,
                         "NewImage": image}}


class FakeFunction:
    short, arn, concurrency = "publisher", "arn:aws:lambda:us-east-1:123456789012:function:publisher", 8
    credentials = ("test", "test", "")  # the harness's own key: the emulator's gate lets it by

    def __init__(self, answer=None, pause=0.0):
        self.batches, self.answer, self.pause = [], answer, pause
        self.running, self.most = 0, 0
        self.lock = threading.Lock()

    def invoke(self, payload, what=""):
        records = json.loads(payload)["Records"]
        with self.lock:
            self.batches.append([r["dynamodb"]["SequenceNumber"] if "dynamodb" in r else r["messageId"] for r in records])
            self.running += 1
            self.most = max(self.most, self.running)
        try:
            time.sleep(self.pause)
            if any(r.get("poison") for r in records):
                raise InvocationError("error", "poison")
            return self.answer(records) if self.answer else b""
        finally:
            with self.lock:
                self.running -= 1


class Harness(EventSources):
    """The Harness's mappings alone (harness/stack.py mixes them into the whole Harness)."""

    def __init__(self):
        self.stopping = threading.Event()
        self.failed = []
        self.swept, self.swept_lock = set(), threading.Lock()
        self.endpoint = ENDPOINT[0] if ENDPOINT else None

    def aws(self, service):
        return boto3.client(service, region_name="us-east-1", endpoint_url=self.endpoint,
                            aws_access_key_id="test", aws_secret_access_key="test")

    def aws_as(self, fn, service):
        return self.aws(service)

    def on_failure(self, props, fn, shard, records, attempts, condition, error):
        self.failed.append(([r["dynamodb"]["SequenceNumber"] for r in records], attempts, condition))

    @staticmethod
    def backoff(attempts):
        return 0


def until(cond, within=10.0):
    deadline = time.monotonic() + within
    while time.monotonic() < deadline and not cond():
        time.sleep(0.05)
    return cond()


def emulator():
    """moto with the harness's shims, served in this process (once)."""
    if not ENDPOINT:
        logging.getLogger("werkzeug").setLevel(logging.ERROR)  # each request's line
        shims.install_shims()
        ENDPOINT.append(serve(None)[1])
    return Harness()


def flat(batches):
    return [s for b in batches for s in b]


# ---- a batch: bisection, retries, partial failures, record age


def test_bisect_and_retries():
    props = {"MaximumRetryAttempts": 2, "BisectBatchOnFunctionError": True,
             "FunctionResponseTypes": ["ReportBatchItemFailures"]}
    h, fn = Harness(), FakeFunction()
    h.stream_batch(fn, props, "shard", [record(n, poison=(n == 3)) for n in range(1, 7)])
    check(h.failed == [(["3"], 3, "RetryAttemptsExhausted")], f"only the poison record goes to the destination, after 2 retries: {h.failed}")
    check({s for s in flat(fn.batches) if s != "3"} == {"1", "2", "4", "5", "6"}, f"every other record is delivered: {fn.batches}")
    check(fn.batches[0] == [str(n) for n in range(1, 7)] and ["1", "2", "3"] in fn.batches, f"bisected: {fn.batches}")
    # "Splitting a batch does not count towards the retry quota": 3 attempts of ["3"] itself.
    check(fn.batches.count(["3"]) == 3, f"the poison record alone was tried 3 times: {fn.batches}")


def test_partial_failures():
    props = {"MaximumRetryAttempts": 2, "FunctionResponseTypes": ["ReportBatchItemFailures"]}
    once = {"4": True}

    def answer(records):
        failed = [r["dynamodb"]["SequenceNumber"] for r in records if once.pop(r["dynamodb"]["SequenceNumber"], False)]
        return json.dumps({"batchItemFailures": [{"itemIdentifier": s} for s in failed]}).encode()

    h, fn = Harness(), FakeFunction(answer)
    h.stream_batch(fn, props, "shard", [record(n) for n in range(1, 7)])
    check(fn.batches == [["1", "2", "3", "4", "5", "6"], ["4", "5", "6"]], f"retried from the first failed record: {fn.batches}")
    check(not h.failed, f"nothing failed for good: {h.failed}")
    # "Lambda treats a batch as a complete failure if you return any of the following": an
    # empty or null itemIdentifier, a bad key name, an identifier not in the batch.
    for bad in ([{"itemIdentifier": ""}], [{"itemIdentifier": None}], [{"sequenceNumber": "2"}], [{"itemIdentifier": "99"}]):
        h, fn = Harness(), FakeFunction(lambda _, bad=bad: json.dumps({"batchItemFailures": bad}).encode())
        h.stream_batch(fn, props, "shard", [record(n) for n in range(1, 4)])
        check(fn.batches == [["1", "2", "3"]] * 3 and h.failed == [(["1", "2", "3"], 3, "RetryAttemptsExhausted")],
              f"{bad}: the whole batch failed, and was retried whole: {fn.batches} {h.failed}")
    for good in (b"", b"null", b"{}", b'{"batchItemFailures": null}', b'{"batchItemFailures": []}'):
        h, fn = Harness(), FakeFunction(lambda _, good=good: good)
        h.stream_batch(fn, props, "shard", [record(1)])
        check(fn.batches == [["1"]] and not h.failed, f"{good!r} is a complete success: {fn.batches} {h.failed}")


def test_record_age():
    h, fn = Harness(), FakeFunction()
    h.stream_batch(fn, {"MaximumRecordAgeInSeconds": 60}, "shard", [record(1, age=61), record(2, age=61)])
    check(not fn.batches and h.failed == [(["1", "2"], 0, "RecordAgeExceeded")], f"too old: discarded unread {fn.batches} {h.failed}")


# ---- filters: EventBridge's grammar


def test_filters():
    pipeline_shims.eventbridge_patterns()
    keep = event_filter(TEMPLATE_FILTERS)
    check(keep(record(1)), "a change with events passes the template's filter")
    check(not keep(record(1, ev=False)), "a change without events is filtered out")
    removed = record(1, event="REMOVE", ev=False)
    del removed["dynamodb"]["NewImage"]
    check(keep(removed), "an order's removal passes the filter")
    event = {"source": "shopping.T12345678", "detail-type": "shopping_order_update", "n": 5, "flag": True, "ip": "10.0.0.7",
             "dynamodb": {"NewImage": {"tags": {"L": [{"S": "red"}, {"S": "blue"}]}}}}
    cases = [
        ({"source": [{"prefix": "shopping."}]}, True), ({"source": [{"prefix": "Shopping."}]}, False),
        ({"detail-type": [{"suffix": "_update"}]}, True), ({"detail-type": [{"suffix": "_add"}]}, False),
        ({"detail-type": [{"anything-but": ["shopping_order_delete"]}]}, True),
        ({"detail-type": [{"anything-but": {"prefix": "shopping_"}}]}, False),
        ({"n": [{"numeric": [">", 0, "<=", 5]}]}, True), ({"n": [{"numeric": [">", 5]}]}, False),
        ({"replay-name": [{"exists": False}]}, True), ({"source": [{"exists": False}]}, False),
        ({"source": [{"exists": True}]}, True), ({"dynamodb": [{"exists": True}]}, False),  # leaves only
        ({"source": [{"equals-ignore-case": "SHOPPING.t12345678"}]}, True),
        ({"source": ["SHOPPING.T12345678"]}, False),  # "without case-folding"
        ({"detail-type": [{"wildcard": "shopping_*_update"}]}, True), ({"detail-type": [{"wildcard": "*_add"}]}, False),
        ({"ip": [{"cidr": "10.0.0.0/24"}]}, True),
        ({"$or": [{"n": [1]}, {"source": [{"prefix": "shopping."}]}]}, True), ({"$or": [{"n": [1]}, {"n": [2]}]}, False),
        ({"dynamodb": {"NewImage": {"tags": {"L": {"S": ["blue"]}}}}}, True),  # into a list of maps
        ({"flag": [1]}, False), ({"flag": [{"numeric": [">", 0]}]}, False), ({"flag": [True]}, True),  # a boolean is no number
    ]
    for pattern, want in cases:
        got = event_filter({"Filters": [{"Pattern": json.dumps(pattern)}]})(event)
        check(got == want, f"{json.dumps(pattern)} matches {got}, EventBridge says {want}")
    for bad in ({"Filters": [{"Pattern": '{"a": ["x"]}'}] * 6}, {"Filters": [{"Pattern": '{"a": "x"}'}]},
                {"Filters": [{"Pattern": '{"a": []}'}]}, {"Filters": [{"Pattern": "not json"}]}):
        try:
            event_filter(bad)
        except SystemExit:
            continue
        check(False, f"refused as Lambda refuses it: {bad}")


# ---- the stream poller: shards, windows, iterators (a scripted stream)


class ScriptedStream(Harness):
    """A stream whose shards the test writes: {shard id: (parent, [records], closed)}; GetRecords
    answers at most `per_read` records; `fail_reads` GetRecords calls fail first."""

    def __init__(self, shards, per_read=1000, fail_reads=0):
        super().__init__()
        self.shards, self.per_read, self.fail_reads, self.calls = shards, per_read, fail_reads, []

    def stream_call(self, fn, action, payload):
        self.calls.append((action, payload.get("ShardId") or payload.get("ShardIterator", "").split("|")[0]))
        if action == "DescribeStream":
            return {"StreamDescription": {"Shards": [
                {"ShardId": sid, **({"ParentShardId": parent} if parent else {}),
                 "SequenceNumberRange": {"StartingSequenceNumber": "0", **({"EndingSequenceNumber": "9"} if closed else {})}}
                for sid, (parent, _, closed) in list(self.shards.items())]}}
        if action == "GetShardIterator":
            recs = self.shards[payload["ShardId"]][1]
            kind = payload["ShardIteratorType"]
            at = 0 if kind == "TRIM_HORIZON" else len(recs) if kind == "LATEST" else \
                next((i + 1 for i, r in enumerate(recs) if r["dynamodb"]["SequenceNumber"] == payload["SequenceNumber"]), 0)
            return {"ShardIterator": f"{payload['ShardId']}|{at}"}
        if self.fail_reads:
            self.fail_reads -= 1
            raise OSError("the connection broke")
        sid, at = payload["ShardIterator"].split("|")
        parent, recs, closed = self.shards[sid]
        out = recs[int(at):int(at) + self.per_read]
        end = int(at) + len(out)
        return {"Records": [json.loads(json.dumps(r)) for r in out],
                **({} if closed and end == len(recs) else {"NextShardIterator": f"{sid}|{end}"})}


def run_poller(h, props, fn, done, within=10.0):
    threading.Thread(target=h.stream_loop, args=(props, fn, event_filter(props.get("FilterCriteria"))), daemon=True).start()
    ok = until(done, within)
    h.stopping.set()
    return ok


def test_shards_parent_first():
    mappings.DESCRIBE_EVERY = 0.2
    shards = {"parent": (None, [record(n) for n in range(1, 6)], True),
              "child-a": ("parent", [record(n) for n in range(10, 13)], True),
              "child-b": ("parent", [record(n) for n in range(20, 23)], False)}
    h, fn = ScriptedStream(shards, per_read=2), FakeFunction()
    props = {"EventSourceArn": "arn:stream", "StartingPosition": "TRIM_HORIZON", "BatchSize": 100}
    threading.Timer(0.6, lambda: shards.update({"late": ("child-a", [record(30)], False)})).start()
    run_poller(h, props, fn, lambda: len(flat(fn.batches)) == 12, within=5)
    got = flat(fn.batches)
    check(sorted(got, key=int) == [str(n) for n in (1, 2, 3, 4, 5, 10, 11, 12, 20, 21, 22, 30)], f"every shard read, each record once: {fn.batches}")
    check(got[:5] == ["1", "2", "3", "4", "5"], f"the parent first: {got}")
    first_child = min(i for i, c in enumerate(h.calls) if c[1] in ("child-a", "child-b"))
    last_parent = max(i for i, c in enumerate(h.calls) if c == ("GetRecords", "parent"))
    check(last_parent < first_child, f"no child read before the parent ended: {h.calls[:first_child + 1]}")
    check(got.index("30") > got.index("12"), f"a shard described later is read, after its parent: {got}")


def test_batching_window_and_size():
    h, fn = ScriptedStream({"s": (None, [record(n) for n in range(1, 251)], False)}), FakeFunction()
    run_poller(h, {"EventSourceArn": "arn:stream", "StartingPosition": "TRIM_HORIZON", "BatchSize": 100}, fn,
               lambda: len(flat(fn.batches)) == 250)
    check([len(b) for b in fn.batches] == [100, 100, 50] and flat(fn.batches) == [str(n) for n in range(1, 251)],
          f"batches of BatchSize, in order: {[len(b) for b in fn.batches]}")
    shards = {"s": (None, [record(1)], False)}
    h, fn = ScriptedStream(shards), FakeFunction()
    threading.Timer(0.3, lambda: shards["s"][1].append(record(2))).start()
    started = time.monotonic()
    run_poller(h, {"EventSourceArn": "arn:stream", "StartingPosition": "TRIM_HORIZON", "MaximumBatchingWindowInSeconds": 1},
               fn, lambda: len(flat(fn.batches)) == 2)
    check(fn.batches == [["1", "2"]] and time.monotonic() - started >= 1, f"one batch after the window: {fn.batches}")


def test_iterator_fails():
    h, fn = ScriptedStream({"s": (None, [record(n) for n in range(1, 8)], False)}, per_read=3, fail_reads=0), FakeFunction()
    original = h.stream_batch

    def batch_then_break(*args):
        original(*args)
        h.fail_reads = 2  # the next two reads fail: a new iterator after the checkpoint

    h.stream_batch = batch_then_break
    run_poller(h, {"EventSourceArn": "arn:stream", "StartingPosition": "TRIM_HORIZON", "BatchSize": 3}, fn,
               lambda: len(flat(fn.batches)) >= 7, within=15)
    check(flat(fn.batches) == [str(n) for n in range(1, 8)], f"every record once, in order, across failed reads: {fn.batches}")
    after = [c for c in h.calls if c[0] == "GetShardIterator"]
    check(len(after) >= 2, f"new iterators were asked for: {h.calls}")


# ---- hostile mode's virtual shards (tests/harness/hostile.py)


def hostile(**rates):
    from harness.hostile import DEFAULTS, Hostile

    return Hostile({**DEFAULTS, "throttle_rate": 0, "conflict_rate": 0, "recycle_rate": 0, "duplicate_rate": 0,
                    "seed": 1, **rates})


def item_record(seq, item):
    keys = {"pk": {"S": f"item-{item}"}, "sk": {"S": "ORDER"}}
    return {"eventName": "MODIFY", "dynamodb": {"SequenceNumber": str(seq), "ApproximateCreationDateTime": time.time(),
                                                "Keys": keys, "NewImage": {**keys, "ev": {"BOOL": True}}}}


class ItemFunction(FakeFunction):
    """Records each delivery's (item, sequence number); item-0's batches are slow."""

    def __init__(self):
        super().__init__()
        self.delivered = []

    def invoke(self, payload, what=""):
        records = json.loads(payload)["Records"]
        if any(r["dynamodb"]["Keys"]["pk"]["S"] == "item-0" for r in records):
            time.sleep(0.3)
        with self.lock:
            self.delivered += [(r["dynamodb"]["Keys"]["pk"]["S"], int(r["dynamodb"]["SequenceNumber"])) for r in records]
        return super().invoke(payload, what)


def in_item_order(delivered):
    """Whether each item's records were delivered as a stream's mapping may deliver them: new
    records in order, and a record delivered again (a retry from it) followed by its item's
    records delivered since, again and in order, before any new one."""
    by_item = collections.defaultdict(list)
    for item, seq in delivered:
        by_item[item].append(seq)
    for seqs in by_item.values():
        seen, replay = [], None  # records delivered, in order; the index of the next due again
        for s in seqs:
            if replay is not None and s == seen[replay]:
                replay = replay + 1 if replay + 1 < len(seen) else None
            elif s in seen:
                at = seen.index(s) + 1
                replay = at if at < len(seen) else None
            elif replay is None and (not seen or s > seen[-1]):
                seen.append(s)
            else:
                return False
    return True


def test_hostile_virtual_shards():
    """Records of one item in order, of different items reordered, every record delivered, the
    shard's checkpoint never at or past a record with a delivery to come; duplicates."""
    recs = [item_record(n, n % 5) for n in range(1, 61)]
    h, fn = ScriptedStream({"s": (None, recs, True)}, per_read=7), ItemFunction()
    h.hostile = hostile(shards=4, duplicate_rate=0.2)
    shard, ended = mappings.Shard("s", None, "TRIM_HORIZON"), threading.Event()
    completed, wrong = set(), []
    original = h.stream_batch

    def batch(fn_, props, shard_id, records):
        at = int(shard.checkpoint or 0)
        seqs = {int(r["dynamodb"]["SequenceNumber"]) for r in records}
        if any(s <= at for s in seqs) or not set(range(1, at + 1)) <= completed:
            wrong.append((at, sorted(seqs)))
        original(fn_, props, shard_id, records)
        completed.update(seqs)

    h.stream_batch = batch
    props = {"EventSourceArn": "arn:stream", "StartingPosition": "TRIM_HORIZON", "BatchSize": 4}
    threading.Thread(target=h.hostile.shard_loop, args=(h, props, fn, event_filter(None), shard, ended), daemon=True).start()
    until(lambda: shard.done, 30)
    h.stopping.set()
    seqs = [s for _, s in fn.delivered]
    check(shard.done and set(seqs) == set(range(1, 61)), f"every record delivered: {sorted(set(range(1, 61)) - set(seqs))} missing")
    check(in_item_order(fn.delivered), f"each item's records in order: {fn.delivered}")
    firsts = [s for i, s in enumerate(seqs) if s not in seqs[:i]]
    check(firsts != sorted(firsts), f"records of different items reordered: {firsts}")
    check(len(seqs) > 60 and h.hostile.stats()["stream-duplicate"] > 0, f"duplicates delivered: {len(seqs)} deliveries")
    check(not wrong, f"the checkpoint passed records with a delivery to come (checkpoint, batch): {wrong[:5]}")
    check(shard.checkpoint == "60", f"the checkpoint at the end: {shard.checkpoint}")
    check(not in_item_order([("a", 1), ("a", 3), ("a", 2)]) and not in_item_order([("a", 1), ("a", 2), ("a", 1), ("a", 3)])
          and in_item_order([("a", 1), ("a", 2), ("a", 1), ("a", 1), ("a", 2), ("a", 3)]), "the order check itself")
    # The checkpoint only passes records whose deliveries are all done.
    from harness.hostile import Checkpoint

    cp, real = Checkpoint(mappings.Shard("c", None, "TRIM_HORIZON")), None
    real = cp.shard
    for seq, owed in (("1", 1), ("2", 0), ("3", 1), ("4", 1)):
        cp.owe(seq, owed)
    check(real.checkpoint is None, "nothing done: no checkpoint")
    cp.done("3")
    check(real.checkpoint is None, "3 done before 1: still none")
    cp.done("1")
    check(real.checkpoint == "3", f"1 done: past 1, the filtered 2 and the done 3: {real.checkpoint}")
    cp.owe("4")  # delivered again (a duplicate, or read again after a failed iterator)
    cp.done("4")
    check(real.checkpoint == "3" and cp.pending() == 1, f"4 is owed once more: {real.checkpoint}")
    cp.done("4")
    check(real.checkpoint == "4" and cp.pending() == 0, f"then past 4: {real.checkpoint}")


def test_hostile_iterator_fails():
    """A failed iterator under virtual shards: read again after the checkpoint, nothing skipped."""
    recs = [item_record(n, n % 3) for n in range(1, 31)]
    h, fn = ScriptedStream({"s": (None, recs, False)}, per_read=4), ItemFunction()
    h.hostile = hostile(shards=3)
    original = h.stream_call

    def flaky(fn_, action, payload):
        if action == "GetRecords" and len(fn.delivered) in (5, 6, 7, 8, 13, 14) and not getattr(h, "broke", 0) > 3:
            h.broke = getattr(h, "broke", 0) + 1
            raise OSError("the connection broke")
        return original(fn_, action, payload)

    h.stream_call = flaky
    run_poller(h, {"EventSourceArn": "arn:stream", "StartingPosition": "TRIM_HORIZON", "BatchSize": 2}, fn,
               lambda: set(range(1, 31)) <= {s for _, s in fn.delivered}, within=30)
    got = {s for _, s in fn.delivered}
    check(got == set(range(1, 31)), f"every record delivered across failed reads: {sorted(set(range(1, 31)) - got)} missing")
    check(in_item_order(fn.delivered), f"each item's records in order: {fn.delivered}")


def test_hostile_gate():
    """Hostile mode's gate: a function's DynamoDB calls throttled (the two codes in turn), its
    transactions cancelled for a conflict on one item; the harness's own calls and DynamoDB
    Streams' never."""
    from harness.account import session_credentials

    key = session_credentials("arn:aws:iam::123456789012:role/shopping-OrdersFunctionRole-X")[0]
    environ = lambda target, who=key: {"HTTP_X_AMZ_TARGET": target,  # noqa: E731
                                       "HTTP_AUTHORIZATION": f"AWS4-HMAC-SHA256 Credential={who}/20260101/us-east-1/dynamodb/aws4_request, "
                                                             "SignedHeaders=host, Signature=x"}
    body = json.dumps({"TransactItems": [{"Put": {}}, {"Put": {}}, {"ConditionCheck": {}}]}).encode()
    g = hostile(throttle_rate=0.999999)
    codes = []
    for _ in range(2):
        status, headers, out = g.gate(environ("DynamoDB_20120810.GetItem"), b"{}")
        doc = json.loads(out)
        codes.append(doc["__type"].rsplit("#", 1)[-1])
        check(status == 400 and ("Content-Type", "application/x-amz-json-1.0") in headers and doc["message"], f"a throttle: {status} {doc}")
    check(codes == ["ProvisionedThroughputExceededException", "ThrottlingException"], f"the two throttles in turn: {codes}")
    check(g.gate(environ("DynamoDB_20120810.GetItem", "test"), b"{}") is None, "the harness's own calls pass")
    check(g.gate(environ("DynamoDBStreams_20120810.GetRecords"), b"{}") is None, "DynamoDB Streams' calls pass")
    g = hostile(conflict_rate=0.999999)
    check(g.gate(environ("DynamoDB_20120810.PutItem"), b"{}") is None, "a conflict only cancels a transaction")
    status, _, out = g.gate(environ("DynamoDB_20120810.TransactWriteItems"), body)
    doc = json.loads(out)
    reasons = [r["Code"] for r in doc["CancellationReasons"]]
    check(status == 400 and doc["__type"].endswith("#TransactionCanceledException") and sorted(reasons) == ["None", "None", "TransactionConflict"]
          and doc["Message"] == f"Transaction cancelled, please refer cancellation reasons for specific reasons [{', '.join(reasons)}]",
          f"a conflict on one item of three: {doc}")
    check(g.stats()["conflict"] == 1 and g.stats()["throttle"] == 0, f"counted: {g.stats()}")


# ---- the stream poller on the emulator: transactions, moto's own mappings, expiring iterators


def table(h, name):
    ddb = h.aws("dynamodb")
    return ddb.create_table(TableName=name, KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}, {"AttributeName": "sk", "KeyType": "RANGE"}],
                            AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"}, {"AttributeName": "sk", "AttributeType": "S"}],
                            BillingMode="PAY_PER_REQUEST",
                            StreamSpecification={"StreamEnabled": True, "StreamViewType": "NEW_AND_OLD_IMAGES"})["TableDescription"]["LatestStreamArn"]


def put(h, name, pk):
    h.aws("dynamodb").put_item(TableName=name, Item={"pk": {"S": pk}, "sk": {"S": "x"}})


def keys(fn_batches_records):
    return [r["dynamodb"]["Keys"]["pk"]["S"] for r in fn_batches_records]


class KeyedFunction(FakeFunction):
    def __init__(self, pause=0.0):
        super().__init__(pause=pause)
        self.keys = []

    def invoke(self, payload, what=""):
        self.keys += keys(json.loads(payload)["Records"])
        return super().invoke(payload, what)


def test_cancelled_transaction():
    h = emulator()
    arn, ddb, fn = table(h, "tx"), h.aws("dynamodb"), KeyedFunction()
    threading.Thread(target=h.stream_loop, args=({"EventSourceArn": arn, "StartingPosition": "TRIM_HORIZON"}, fn, event_filter(None)),
                     daemon=True).start()
    for k in ("a", "u", "d"):
        ddb.put_item(TableName="tx", Item={"pk": {"S": k}, "sk": {"S": "x"}, "v": {"N": "1"}})
    until(lambda: fn.keys == ["a", "u", "d"])
    before = ddb.scan(TableName="tx")["Items"]
    key = lambda k: {"pk": {"S": k}, "sk": {"S": "x"}}  # noqa: E731
    try:
        ddb.transact_write_items(TransactItems=[
            {"Put": {"TableName": "tx", "Item": {"pk": {"S": "phantom"}, "sk": {"S": "x"}}}},
            {"Update": {"TableName": "tx", "Key": key("u"), "UpdateExpression": "SET v = :two",
                        "ExpressionAttributeValues": {":two": {"N": "2"}}}},
            {"Delete": {"TableName": "tx", "Key": key("d")}},
            {"Put": {"TableName": "tx", "Item": {"pk": {"S": "a"}, "sk": {"S": "x"}}, "ConditionExpression": "attribute_not_exists(pk)"}}])
        check(False, "the transaction was cancelled")
    except ddb.exceptions.TransactionCanceledException:
        pass
    check(ddb.scan(TableName="tx")["Items"] == before, f"a cancelled transaction changed nothing: {ddb.scan(TableName='tx')['Items']}")
    put(h, "tx", "b")
    put(h, "tx", "c")
    until(lambda: len(fn.keys) >= 5, 5)
    h.stopping.set()
    check(fn.keys == ["a", "u", "d", "b", "c"], f"after a cancelled transaction the stream goes on, without its writes: {fn.keys}")


def test_query_by_partition():
    h = emulator()
    ddb = h.aws("dynamodb")
    ddb.create_table(TableName="q", KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}, {"AttributeName": "sk", "KeyType": "RANGE"}],
                     AttributeDefinitions=[{"AttributeName": n, "AttributeType": "S"} for n in ("pk", "sk", "g")],
                     GlobalSecondaryIndexes=[{"IndexName": "gsi", "KeySchema": [{"AttributeName": "g", "KeyType": "HASH"},
                                                                              {"AttributeName": "sk", "KeyType": "RANGE"}],
                                              "Projection": {"ProjectionType": "ALL"}}], BillingMode="PAY_PER_REQUEST")
    for p in range(5):
        for r in range(7):
            ddb.put_item(TableName="q", Item={"pk": {"S": f"p{p}"}, "sk": {"S": f"s{(r * 3) % 7}"}, "g": {"S": f"g{r % 2}"}})
    pages, start = [], {}
    while True:
        out = ddb.query(TableName="q", KeyConditionExpression="pk = :p AND sk > :s", Limit=2, ScanIndexForward=False,
                        ExpressionAttributeValues={":p": {"S": "p3"}, ":s": {"S": "s1"}}, **start)
        pages.append([i["sk"]["S"] for i in out["Items"]])
        if "LastEvaluatedKey" not in out:
            break
        start = {"ExclusiveStartKey": out["LastEvaluatedKey"]}
    check(pages == [["s6", "s5"], ["s4", "s3"], ["s2"]], f"a partition's items, in order, paged: {pages}")
    out = ddb.query(TableName="q", IndexName="gsi", KeyConditionExpression="g = :g", ExpressionAttributeValues={":g": {"S": "g1"}})
    got = [i["sk"]["S"] for i in out["Items"]]
    check(got == sorted(got) and len(got) == 15, f"an index's items across partitions, in order: {got}")


def test_moto_runs_no_mapping():
    h = emulator()
    arn, fn = table(h, "own"), KeyedFunction()
    iam, lam, sqs = h.aws("iam"), h.aws("lambda"), h.aws("sqs")
    role = iam.create_role(RoleName="r", AssumeRolePolicyDocument="{}")["Role"]["Arn"]
    code = BytesIO()
    with zipfile.ZipFile(code, "w") as z:
        z.writestr("bootstrap", "")
    lam.create_function(FunctionName="f", Runtime="provided.al2023", Role=role, Handler="x", Code={"ZipFile": code.getvalue()})
    queue = sqs.create_queue(QueueName="q")["QueueUrl"]
    qarn = sqs.get_queue_attributes(QueueUrl=queue, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    lam.create_event_source_mapping(FunctionName="f", EventSourceArn=arn, StartingPosition="TRIM_HORIZON")
    lam.create_event_source_mapping(FunctionName="f", EventSourceArn=qarn)
    check(len(lam.list_event_source_mappings(FunctionName="f")["EventSourceMappings"]) == 2, "moto's Lambda API lists the mappings")
    threading.Thread(target=h.stream_loop, args=({"EventSourceArn": arn, "StartingPosition": "TRIM_HORIZON"}, fn, event_filter(None)),
                     daemon=True).start()
    for k in "abcd":
        put(h, "own", k)
    sqs.send_message(QueueUrl=queue, MessageBody="m")
    until(lambda: len(fn.keys) >= 4, 5)
    h.stopping.set()
    check(fn.keys == list("abcd"), f"moto's own mapping neither delivered nor emptied the stream: {fn.keys}")
    got = sqs.receive_message(QueueUrl=queue, AttributeNames=["All"]).get("Messages", [])
    check(len(got) == 1 and got[0]["Attributes"]["ApproximateReceiveCount"] == "1", f"moto left the queue's message alone: {got}")


def test_iterator_expires():
    h, logged = emulator(), []
    arn, fn = table(h, "exp"), KeyedFunction(pause=1.5)
    pipeline_shims.ITERATOR_LIFETIME_SECONDS = 1
    mappings.log, log = logged.append, mappings.log
    try:
        threading.Thread(target=h.stream_loop, args=({"EventSourceArn": arn, "StartingPosition": "TRIM_HORIZON", "BatchSize": 2}, fn,
                                                     event_filter(None)), daemon=True).start()
        for k in "ab":
            put(h, "exp", k)
        until(lambda: fn.keys)
        for k in "cde":
            put(h, "exp", k)
        until(lambda: len(fn.keys) >= 5, 15)
    finally:
        h.stopping.set()
        pipeline_shims.ITERATOR_LIFETIME_SECONDS, mappings.log = 15 * 60, log
    check(fn.keys == list("abcde"), f"every record once, in order, across expired iterators: {fn.keys}")
    check(any("ExpiredIteratorException" in line and "a new iterator after" in line for line in logged), f"logged: {logged}")


# ---- the queue: partial failures, concurrency


def test_queue():
    h = emulator()
    sqs = h.aws("sqs")
    url = sqs.create_queue(QueueName="deliveries", Attributes={"VisibilityTimeout": "30"})["QueueUrl"]
    arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    for n in range(30):
        sqs.send_message(QueueUrl=url, MessageBody=f"m{n}")
    failing = set()

    def answer(records):
        bad = [r["messageId"] for r in records if r["body"] in ("m3", "m17")]
        failing.update(bad)
        return json.dumps({"batchItemFailures": [{"itemIdentifier": i} for i in bad]}).encode()

    fn = FakeFunction(answer, pause=0.3)
    props = {"EventSourceArn": arn, "BatchSize": 10, "FunctionResponseTypes": ["ReportBatchItemFailures"]}
    threading.Thread(target=h.queue_loop, args=(props, fn, 2, event_filter(None)), daemon=True).start()
    until(lambda: len(flat(fn.batches)) >= 30)
    time.sleep(0.5)
    h.stopping.set()
    check(len(flat(fn.batches)) == 30 and fn.most <= 2, f"30 messages in batches of at most 10, at most 2 at once: {fn.batches} {fn.most}")
    left = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["All"])["Attributes"]
    check(left["ApproximateNumberOfMessagesNotVisible"] == "2" and left["ApproximateNumberOfMessages"] == "0",
          f"only the 2 reported failures stay, invisible until the visibility timeout: {left}")
    for props, name, low, high in (({"MaximumConcurrency": 1}, "MaximumConcurrency", 2, 1000), ({"BatchSize": 11}, "BatchSize", 1, 10000),
                                   ({"ParallelizationFactor": 11}, "ParallelizationFactor", 1, 10)):
        try:
            mappings.checked(props, name, low, high, None)
            check(False, f"{props} refused")
        except SystemExit:
            pass
    # The batching window: 3 messages wait for more, then go as one batch.
    url = sqs.create_queue(QueueName="windowed")["QueueUrl"]
    for n in range(3):
        sqs.send_message(QueueUrl=url, MessageBody=f"w{n}")
    h, fn = emulator(), FakeFunction()
    props = {"EventSourceArn": arn.replace("deliveries", "windowed"), "BatchSize": 10, "MaximumBatchingWindowInSeconds": 1}
    started = time.monotonic()
    threading.Thread(target=h.queue_loop, args=(props, fn, 2, event_filter(None)), daemon=True).start()
    until(lambda: fn.batches)
    h.stopping.set()
    check(len(fn.batches) == 1 and len(fn.batches[0]) == 3 and time.monotonic() - started >= 1, f"one batch after the window: {fn.batches}")


def test_on_failure_destination():
    h = emulator()
    sqs = h.aws("sqs")
    url = sqs.create_queue(QueueName="failures")["QueueUrl"]
    props = {"EventSourceArn": "arn:aws:dynamodb:us-east-1:123456789012:table/t/stream/x",
             "DestinationConfig": {"OnFailure": {"Destination": "arn:aws:sqs:us-east-1:123456789012:failures"}}}
    EventSources.on_failure(h, props, FakeFunction(), "shard-1", [record(7), record(9)], 4, "RetryAttemptsExhausted", "boom")
    body = json.loads(sqs.receive_message(QueueUrl=url)["Messages"][0]["Body"])
    info, context = body["DDBStreamBatchInfo"], body["requestContext"]
    check((context["condition"], context["approximateInvokeCount"], info["shardId"], info["startSequenceNumber"],
           info["endSequenceNumber"], info["batchSize"], info["streamArn"]) ==
          ("RetryAttemptsExhausted", 4, "shard-1", "7", "9", 2, props["EventSourceArn"]), f"the invocation record: {body}")


TESTS = {name[5:]: f for name, f in sorted(globals().items()) if name.startswith("test_")}


def main() -> int:
    wanted = sys.argv[1:] or list(TESTS)
    for name in wanted:
        started = time.monotonic()
        TESTS[name]()
        print(f"stack mappings: {name} ({time.monotonic() - started:.1f} s)")
    print("stack mappings: filters as EventBridge, bisection, retries, record age, partial failures, shards in order, "
          "batching, failed and expired iterators, cancelled transactions, the queue's partial failures and concurrency; "
          "hostile mode's virtual shards and gate")
    return 0


if __name__ == "__main__":
    sys.exit(main())
