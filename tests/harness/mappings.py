"""Event source mappings and TTL, as Lambda and DynamoDB run them: the stream's mapping into the
publisher (its filters, batch size, batching window, partial batch failures, bisect on error,
retries and on-failure destination), the delivery queue's into the deliverer (batch size,
partial batch failures, maximum concurrency; the queue's visibility timeout and redrive are
the emulator's), and the TTL sweeper (items whose `ttl` has passed deleted, with a REMOVE
stream record marked as the service's).

`EventSources` is a part of the Harness (harness/stack.py): it reads the deployed stack through
the Harness's `body`, `resolver`, `functions`, `physical_ids`, `endpoint`, `aws`, `physical`,
`world` and `stopping`, and shares `swept` (under `swept_lock`) between the sweeper and the
stream.
"""

import base64
import datetime
import json
import threading
import time
import urllib.request
import uuid

from .account import REGION, TTL_SWEEP_EVERY, log
from .runtime import InvocationError


def matches(pattern, value) -> bool:
    """EventBridge-style pattern matching, as event filtering uses it (exact values, prefix,
    exists), enough for the filters the template writes."""
    if isinstance(pattern, dict):
        if not isinstance(value, dict):
            return False
        return all(matches(p, value.get(k, _MISSING)) for k, p in pattern.items())
    if isinstance(pattern, list):
        for p in pattern:
            if isinstance(p, dict):
                if "prefix" in p and isinstance(value, str) and value.startswith(p["prefix"]):
                    return True
                if "exists" in p and (value is not _MISSING) == p["exists"]:
                    return True
            elif value is not _MISSING and value == p:
                return True
        return False
    return value == pattern


_MISSING = object()


def sqs_record(m, arn):
    attrs = m.get("Attributes", {})
    msg_attrs = {}
    for k, v in (m.get("MessageAttributes") or {}).items():
        a = {"dataType": v["DataType"], "stringListValues": [], "binaryListValues": []}
        if "StringValue" in v:
            a["stringValue"] = v["StringValue"]
        if "BinaryValue" in v:
            a["binaryValue"] = base64.b64encode(v["BinaryValue"]).decode()
        msg_attrs[k] = a
    return {
        "messageId": m["MessageId"],
        "receiptHandle": m["ReceiptHandle"],
        "body": m["Body"],
        "attributes": {k: attrs[k] for k in ("ApproximateReceiveCount", "SentTimestamp", "SenderId",
                                             "ApproximateFirstReceiveTimestamp") if k in attrs},
        "messageAttributes": msg_attrs,
        "md5OfBody": m.get("MD5OfBody", ""),
        "eventSource": "aws:sqs",
        "eventSourceARN": arn,
        "awsRegion": REGION,
    }


class EventSources:
    """The Harness's event source mappings and TTL sweeper."""

    # ---- the stream into the publisher

    def stream_call(self, action, payload):
        req = urllib.request.Request(self.endpoint, data=json.dumps(payload).encode(), headers={
            "Content-Type": "application/x-amz-json-1.0", "X-Amz-Target": f"DynamoDBStreams_20120810.{action}",
            "Authorization": f"AWS4-HMAC-SHA256 Credential=test/20260101/{REGION}/dynamodb/aws4_request, SignedHeaders=host, Signature=x",
        })
        with urllib.request.urlopen(req, timeout=30) as res:
            return json.loads(res.read())

    def mappings(self):
        for logical, r in self.body["Resources"].items():
            if r["Type"] == "AWS::Lambda::EventSourceMapping" and logical in self.physical_ids:
                props = self.resolver.resolve(r["Properties"])
                fn_ref = r["Properties"]["FunctionName"]
                fn = fn_ref["Ref"] if isinstance(fn_ref, dict) else fn_ref
                yield logical, props, self.functions[fn]

    def start_mappings(self):
        for logical, props, fn in self.mappings():
            arn = props["EventSourceArn"]
            if ":dynamodb:" in arn:
                threading.Thread(target=self.stream_loop, args=(props, fn), daemon=True, name=logical).start()
            elif ":sqs:" in arn:
                workers = int(props.get("ScalingConfig", {}).get("MaximumConcurrency") or min(fn.concurrency, 5))
                threading.Thread(target=self.queue_loop, args=(props, fn, workers), daemon=True, name=logical).start()
            else:
                raise SystemExit(f"mapping {logical}: source {arn} is not emulated")

    def stream_loop(self, props, fn):
        arn = props["EventSourceArn"]
        batch_size = int(props.get("BatchSize", 100))
        window = float(props.get("MaximumBatchingWindowInSeconds", 0))
        filters = [json.loads(f["Pattern"]) for f in props.get("FilterCriteria", {}).get("Filters", [])]
        shard = self.stream_call("DescribeStream", {"StreamArn": arn})["StreamDescription"]["Shards"][0]["ShardId"]
        start = props.get("StartingPosition", "LATEST")
        iterator = self.stream_call("GetShardIterator", {"StreamArn": arn, "ShardId": shard,
                                                         "ShardIteratorType": start})["ShardIterator"]
        pending, first_seen = [], None
        while not self.stopping.is_set():
            try:
                got = self.stream_call("GetRecords", {"ShardIterator": iterator, "Limit": 1000})
            except Exception as e:  # noqa: BLE001 - the poller outlives a failed poll
                log(f"stream poll failed: {e}")
                time.sleep(1)
                continue
            iterator = got.get("NextShardIterator") or iterator
            for rec in got.get("Records", []):
                rec["eventSourceARN"] = arn
                self.mark_swept(rec)
                # Records no filter matches are dropped, as Lambda's event filtering drops them.
                if not filters or any(matches(f, rec) for f in filters):
                    pending.append(rec)
            if pending and first_seen is None:
                first_seen = time.time()
            if pending and (len(pending) >= batch_size or time.time() - first_seen >= window):
                batch, pending = pending[:batch_size], pending[batch_size:]
                self.stream_batch(fn, props, shard, batch)
                first_seen = time.time() if pending else None
            elif not got.get("Records"):
                time.sleep(0.1)

    def mark_swept(self, rec):
        """A REMOVE record of an item the TTL sweeper deleted carries the service's identity,
        as DynamoDB's TTL deletions do."""
        if rec.get("eventName") != "REMOVE":
            return
        keys = rec["dynamodb"]["Keys"]
        key = (keys.get("pk", {}).get("S"), keys.get("sk", {}).get("S"))
        with self.swept_lock:
            if key in self.swept:
                self.swept.discard(key)
                rec["userIdentity"] = {"type": "Service", "principalId": "dynamodb.amazonaws.com"}

    def stream_batch(self, fn, props, shard, batch):
        """One batch until it is done: partial failures retried from the first failed record,
        a failing batch bisected, a record that has used its retries sent to the on-failure
        destination and skipped."""
        retries = int(props.get("MaximumRetryAttempts", -1))
        max_age = int(props.get("MaximumRecordAgeInSeconds", -1))
        bisect = bool(props.get("BisectBatchOnFunctionError"))
        partial = "ReportBatchItemFailures" in (props.get("FunctionResponseTypes") or [])
        work = [(batch, 0)]
        while work and not self.stopping.is_set():
            records, attempts = work.pop(0)
            try:
                out = fn.invoke(json.dumps({"Records": records}).encode(), f"{len(records)} stream records")
                failed = [f.get("itemIdentifier") for f in (json.loads(out or b"{}") or {}).get("batchItemFailures") or []] if partial else []
                if not failed:
                    continue
                seqs = [r["dynamodb"]["SequenceNumber"] for r in records]
                first = min((seqs.index(s) for s in failed if s in seqs), default=0)
                records = records[first:]
                error = "partial batch failure"
            except InvocationError as e:
                error = str(e)[:300]
                if bisect and len(records) > 1:
                    # A split is not a retry: each half still has the retries its records had.
                    half = len(records) // 2
                    work[:0] = [(records[:half], attempts), (records[half:], attempts)]
                    continue
            attempts += 1
            oldest = min(float(r["dynamodb"].get("ApproximateCreationDateTime", time.time())) for r in records)
            if (0 <= retries < attempts) or (0 <= max_age < time.time() - oldest):
                self.on_failure(props, fn, shard, records, attempts, error)
                continue
            time.sleep(min(0.2 * 2 ** min(attempts, 8), 10))
            work.insert(0, (records, attempts))

    def on_failure(self, props, fn, shard, records, attempts, error):
        dest = (props.get("DestinationConfig") or {}).get("OnFailure", {}).get("Destination")
        log(f"mapping {fn.short}: {len(records)} records failed after {attempts} attempts ({error}); to {dest}")
        if not dest:
            return
        when = lambda r: datetime.datetime.fromtimestamp(float(r["dynamodb"]["ApproximateCreationDateTime"]),  # noqa: E731
                                                         datetime.timezone.utc).isoformat()
        body = {
            "requestContext": {"requestId": str(uuid.uuid4()), "functionArn": fn.arn,
                               "condition": "RetryAttemptsExhausted", "approximateInvokeCount": attempts},
            "responseContext": {"statusCode": 200, "executedVersion": "$LATEST", "functionError": "Unhandled"},
            "version": "1.0",
            "timestamp": datetime.datetime.now(datetime.timezone.utc).isoformat(),
            "DDBStreamBatchInfo": {
                "shardId": shard, "startSequenceNumber": records[0]["dynamodb"]["SequenceNumber"],
                "endSequenceNumber": records[-1]["dynamodb"]["SequenceNumber"],
                "approximateArrivalOfFirstRecord": when(records[0]), "approximateArrivalOfLastRecord": when(records[-1]),
                "batchSize": len(records), "streamArn": props["EventSourceArn"],
            },
        }
        sqs = self.aws("sqs")
        url = sqs.get_queue_url(QueueName=dest.rsplit(":", 1)[-1])["QueueUrl"]
        sqs.send_message(QueueUrl=url, MessageBody=json.dumps(body))

    # ---- the delivery queue into the deliverer

    def queue_loop(self, props, fn, workers):
        """One poller (the emulator cannot long-poll without holding every other request up),
        handing each batch to one of at most `workers` concurrent invocations: the mapping's
        maximum concurrency."""
        arn = props["EventSourceArn"]
        batch_size = min(int(props.get("BatchSize", 10)), 10)
        sqs = self.aws("sqs")
        url = sqs.get_queue_url(QueueName=arn.rsplit(":", 1)[-1])["QueueUrl"]
        slots = threading.BoundedSemaphore(workers)
        while not self.stopping.is_set():
            if not slots.acquire(timeout=1):
                continue
            try:
                got = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=batch_size, WaitTimeSeconds=0,
                                          AttributeNames=["All"], MessageAttributeNames=["All"]).get("Messages", [])
            except Exception as e:  # noqa: BLE001 - the poller outlives a failed poll
                log(f"queue poll failed: {e}")
                got = []
                time.sleep(1)
            if not got:
                slots.release()
                time.sleep(0.1)
                continue
            threading.Thread(target=self.queue_batch, args=(props, fn, sqs, url, got, slots), daemon=True).start()

    def queue_batch(self, props, fn, sqs, url, got, slots):
        """One batch: the messages the function did not report failed are deleted; on a
        function error none is, and all come back after the queue's visibility timeout."""
        try:
            partial = "ReportBatchItemFailures" in (props.get("FunctionResponseTypes") or [])
            records = [sqs_record(m, props["EventSourceArn"]) for m in got]
            try:
                out = fn.invoke(json.dumps({"Records": records}).encode(), f"{len(records)} queue messages")
                doc = json.loads(out or b"{}") or {}
                failed = {f.get("itemIdentifier") for f in doc.get("batchItemFailures") or []} if partial else set()
            except (InvocationError, ValueError, AttributeError):
                return
            done = [m for m in got if m["MessageId"] not in failed]
            for chunk in range(0, len(done), 10):
                entries = [{"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]} for i, m in enumerate(done[chunk:chunk + 10])]
                sqs.delete_message_batch(QueueUrl=url, Entries=entries)
        except Exception as e:  # noqa: BLE001
            log(f"queue batch failed: {e}")
        finally:
            slots.release()

    # ---- TTL

    def sweep_loop(self):
        spec = next(r["Properties"] for r in self.body["Resources"].values() if r["Type"] == "AWS::DynamoDB::Table")
        ttl = spec.get("TimeToLiveSpecification", {})
        if not ttl.get("Enabled"):
            return
        attr = ttl["AttributeName"]
        table = self.physical(next(k for k, r in self.body["Resources"].items() if r["Type"] == "AWS::DynamoDB::Table"))
        ddb = self.aws("dynamodb")
        while not self.stopping.wait(TTL_SWEEP_EVERY):
            now = str(int(self.world.now()))
            try:
                pages = ddb.get_paginator("scan").paginate(
                    TableName=table, ProjectionExpression="pk, sk, #t", FilterExpression="#t < :now",
                    ExpressionAttributeNames={"#t": attr}, ExpressionAttributeValues={":now": {"N": now}})
                for page in pages:
                    for item in page.get("Items", []):
                        key = (item["pk"]["S"], item["sk"]["S"])
                        with self.swept_lock:
                            self.swept.add(key)
                        try:
                            # Only if it has not been given a later expiry meanwhile.
                            ddb.delete_item(TableName=table, Key={"pk": item["pk"], "sk": item["sk"]},
                                            ConditionExpression="#t = :t", ExpressionAttributeNames={"#t": attr},
                                            ExpressionAttributeValues={":t": item[attr]})
                        except ddb.exceptions.ConditionalCheckFailedException:
                            with self.swept_lock:
                                self.swept.discard(key)
            except Exception as e:  # noqa: BLE001
                log(f"ttl sweep failed: {e}")
