"""The stack harness's event source mappings, as Lambda runs them (tests/harness/mappings.py):
the stream's filters, a failing batch bisected down to the record that fails, that record sent
to the on-failure destination once its retries are spent and the records after it still
delivered, and a partial batch failure retried from its first failed record.

Usage: stack_mappings_test.py   (the test virtualenv's python; no emulator needed)
"""

import json
import os
import sys
import threading
import time

# The stack harness, tests/harness, is a package beside this folder.
sys.path.insert(1, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from harness.mappings import EventSources, matches  # noqa: E402
from harness.runtime import InvocationError  # noqa: E402


def record(seq, poison=False, event="MODIFY", ev=True):
    image = {"pk": {"S": "p"}, "sk": {"S": "ORDER"}}
    if ev:
        image["ev"] = {"BOOL": True}
    return {"eventName": event, "poison": poison,
            "dynamodb": {"SequenceNumber": str(seq), "ApproximateCreationDateTime": 9e9, "Keys": image,
                         "NewImage": image}}


class FakeFunction:
    short, arn = "publisher", "arn:aws:lambda:us-east-1:123456789012:function:publisher"

    def __init__(self, partial_once=None):
        self.batches, self.partial_once = [], partial_once

    def invoke(self, payload, what=""):
        records = json.loads(payload)["Records"]
        self.batches.append([r["dynamodb"]["SequenceNumber"] for r in records])
        if any(r["poison"] for r in records):
            raise InvocationError("error", "poison")
        if self.partial_once and self.partial_once in self.batches[-1]:
            failed, self.partial_once = self.partial_once, None
            return json.dumps({"batchItemFailures": [{"itemIdentifier": failed}]}).encode()
        return b'{"batchItemFailures":[]}'


class Harness(EventSources):
    """The Harness's mappings alone (harness/stack.py mixes them into the whole Harness)."""

    def __init__(self):
        self.stopping = threading.Event()
        self.failed = []

    def on_failure(self, props, fn, shard, records, attempts, error):
        self.failed.append(([r["dynamodb"]["SequenceNumber"] for r in records], attempts))


def check(cond, msg):
    if not cond:
        raise SystemExit(f"stack mappings: {msg}")


def main() -> int:
    time.sleep = lambda _: None  # retries without their backoff
    props = {"MaximumRetryAttempts": 2, "BisectBatchOnFunctionError": True,
             "FunctionResponseTypes": ["ReportBatchItemFailures"]}

    h, fn = Harness(), FakeFunction()
    batch = [record(n, poison=(n == 3)) for n in range(1, 7)]
    h.stream_batch(fn, props, "shard", batch)
    delivered = {s for b in fn.batches for s in b if s != "3"}
    check(h.failed == [(["3"], 3)], f"only the poison record goes to the destination, after 2 retries: {h.failed}")
    check(delivered == {"1", "2", "4", "5", "6"}, f"every other record is delivered: {fn.batches}")
    check(fn.batches[0] == [str(n) for n in range(1, 7)] and ["1", "2", "3"] in fn.batches, f"bisected: {fn.batches}")

    h, fn = Harness(), FakeFunction(partial_once="4")
    h.stream_batch(fn, props, "shard", [record(n) for n in range(1, 7)])
    check(fn.batches == [["1", "2", "3", "4", "5", "6"], ["4", "5", "6"]], f"retried from the first failed record: {fn.batches}")
    check(not h.failed, f"nothing failed for good: {h.failed}")

    filters = [{"dynamodb": {"NewImage": {"ev": {"BOOL": [True]}}}},
               {"eventName": ["REMOVE"], "dynamodb": {"Keys": {"sk": {"S": ["ORDER"]}}}}]
    keep = lambda r: any(matches(f, r) for f in filters)  # noqa: E731
    check(keep(record(1)), "a change with events passes the filter")
    check(not keep(record(1, ev=False)), "a change without events is filtered out")
    removed = record(1, event="REMOVE", ev=False)
    del removed["dynamodb"]["NewImage"]
    check(keep(removed), "an order's removal passes the filter")
    check(matches({"source": [{"prefix": "shopping."}]}, {"source": "shopping.orders"}), "prefix")
    check(matches({"replay-name": [{"exists": False}]}, {}), "exists: false")
    print("stack mappings: filters, bisection, retries, on-failure destination and partial failures as Lambda runs them")
    return 0


if __name__ == "__main__":
    sys.exit(main())
