"""Event source mappings and TTL, as Lambda and DynamoDB run them: the stream's mapping into the
publisher (every shard the stream describes, a parent before its children, its filters as
EventBridge matches patterns, batch size, batching window, partial batch failures, bisect on
error, retries, record age and on-failure destination; a new iterator after the last checkpoint
when one fails or expires), the delivery queue's into the deliverer (batch size, batching
window, partial batch failures, maximum concurrency; the queue's visibility timeout and redrive
are the emulator's), and the TTL sweeper (items whose `ttl` has passed deleted, with a REMOVE
stream record marked as the service's). What each does against AWS's documentation:
FIDELITY-mappings.md ("Event pipeline").

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
import urllib.error
import urllib.request
import uuid
from decimal import Decimal

from moto.events.exceptions import InvalidEventPatternException
from moto.events.models import EventPattern, EventPatternParser

from .account import ACCOUNT, LAMBDA_PAYLOAD_MAX, REGION, TTL_SWEEP_EVERY, log
from .runtime import InvocationError

# "Lambda polls shards in your DynamoDB stream for records at a base rate of 4 times per
# second." (with-ddb.html); the queue is polled as often.
POLL_EVERY = 0.25
# How often a stream's shards are described again, for new ones (not documented; a shard that
# ends has its stream described at once).
DESCRIBE_EVERY = 10.0
# "By default, you can define up to five different filters for a single event source mapping."
FILTERS_MAX = 5


def event_filter(criteria):
    """The mapping's FilterCriteria as Lambda applies them ("For filter rules, Lambda supports
    the same set of syntax and rules as Amazon EventBridge": moto's EventBridge matcher, as
    pipeline_shims.py corrects it): a record passes when any filter matches it
    ("Your filters are logically ORed together"), every record when there is none.
    Refuses (SystemExit) what Lambda refuses: more than FILTERS_MAX filters, a pattern that is
    not EventBridge's grammar."""
    filters = (criteria or {}).get("Filters") or []
    if len(filters) > FILTERS_MAX:
        raise SystemExit(f"FilterCriteria: {len(filters)} filters, at most {FILTERS_MAX}")
    try:
        patterns = [EventPattern(f["Pattern"], EventPatternParser(f["Pattern"]).parse()) for f in filters]
    except InvalidEventPatternException as e:
        raise SystemExit(f"FilterCriteria: invalid pattern: {e.message}")
    except (AttributeError, TypeError, KeyError):
        raise SystemExit(f"FilterCriteria: a filter is not {{\"Pattern\": \"<an object as JSON>\"}}: {filters}")
    return lambda record: not patterns or any(p.matches_event(record) for p in patterns)


class BatchFailed(Exception):
    """A partial batch response Lambda reads as a complete failure."""


def failed_items(out, ids):
    """The identifiers a ReportBatchItemFailures response names (services-ddb-batchfailurereporting:
    a complete success is an empty or null list or response; "Lambda treats a batch as a
    complete failure if you return any of the following": an empty or null itemIdentifier, a
    bad key name, an identifier not in the batch; and, the harsher reading of what is not
    documented, a response that is not JSON or not an object)."""
    try:
        doc = json.loads(out) if out and out.strip() else None
    except ValueError:
        raise BatchFailed("the response is not JSON")
    if doc is None:
        return []
    if not isinstance(doc, dict):
        raise BatchFailed("the response is not an object")
    failures = doc.get("batchItemFailures") or []
    if not isinstance(failures, list):
        raise BatchFailed("batchItemFailures is not a list")
    named = []
    for f in failures:
        if not isinstance(f, dict) or not f.get("itemIdentifier") or f["itemIdentifier"] not in ids:
            raise BatchFailed(f"batchItemFailures names {f!r}, no item of the batch")
        named.append(f["itemIdentifier"])
    return named


def payload_batches(records, size):
    """`records` cut in order into batches of at most `size` whose event stays within Lambda's
    6 MB payload."""
    batch, used = [], 20
    for r in records:
        n = len(json.dumps(r)) + 2
        if batch and (len(batch) >= size or used + n > LAMBDA_PAYLOAD_MAX):
            yield batch
            batch, used = [], 20
        batch.append(r)
        used += n
    if batch:
        yield batch


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


def checked(props, name, low, high, default):
    """A mapping's numeric setting, refused (SystemExit) outside the range Lambda's API takes
    ("When you set BatchSize to a value greater than 10, you must set
    MaximumBatchingWindowInSeconds to at least 1.")."""
    if name == "BatchSize" and int(props.get(name, default)) > 10 and float(props.get("MaximumBatchingWindowInSeconds", 0)) < 1:
        raise SystemExit("event source mapping: a BatchSize over 10 needs a MaximumBatchingWindowInSeconds of at least 1")
    value = props.get(name, default)
    if value is None:
        return None
    if not low <= float(value) <= high:
        raise SystemExit(f"event source mapping: {name} {value} is not within {low}..{high}")
    return value


class Shard:
    """One shard as a mapping reads it: where it starts, its parent, the last sequence number
    checkpointed, and whether it has been read to its end (then its children may start)."""

    def __init__(self, shard_id, parent, start):
        self.id, self.parent, self.start = shard_id, parent, start
        self.checkpoint = None
        self.done = False
        self.thread = None


def why(e):
    if isinstance(e, urllib.error.HTTPError):
        try:
            doc = json.loads(e.read())
            return f"{doc.get('__type', e.code)}: {doc.get('message', '')}"
        except ValueError:
            return f"HTTP {e.code}"
    return f"{type(e).__name__}: {e}"


class EventSources:
    """The Harness's event source mappings and TTL sweeper."""

    # ---- the stream into the publisher

    def stream_call(self, fn, action, payload):
        """A DynamoDB Streams call as the mapping makes it: with `fn`'s execution role ("Lambda
        needs the following permissions to manage resources related to your DynamoDB stream.
        Add them to your function's execution role: dynamodb:DescribeStream,
        dynamodb:GetRecords, dynamodb:GetShardIterator, dynamodb:ListStreams", with-ddb.html)."""
        req = urllib.request.Request(self.endpoint, data=json.dumps(payload).encode(), headers={
            "Content-Type": "application/x-amz-json-1.0", "X-Amz-Target": f"DynamoDBStreams_20120810.{action}",
            "Authorization": f"AWS4-HMAC-SHA256 Credential={fn.credentials[0]}/20260101/{REGION}/dynamodb/aws4_request, "
                             "SignedHeaders=host, Signature=x",
            "X-Amz-Security-Token": fn.credentials[2],
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
                checked(props, "BatchSize", 1, 10000, 100)
                checked(props, "MaximumBatchingWindowInSeconds", 0, 300, 0)
                checked(props, "ParallelizationFactor", 1, 10, 1)
                checked(props, "MaximumRetryAttempts", -1, 10000, -1)
                if int(props.get("MaximumRecordAgeInSeconds", -1)) != -1:
                    checked(props, "MaximumRecordAgeInSeconds", 60, 604800, -1)
                keep = event_filter(props.get("FilterCriteria"))
                threading.Thread(target=self.stream_loop, args=(props, fn, keep), daemon=True, name=logical).start()
            elif ":sqs:" in arn:
                checked(props, "BatchSize", 1, 10000, 10)
                checked(props, "MaximumBatchingWindowInSeconds", 0, 300, 0)
                # "Valid Range: Minimum value of 2. Maximum value of 1000." (API_ScalingConfig)
                most = checked(props.get("ScalingConfig") or {}, "MaximumConcurrency", 2, 1000, None)
                workers = int(most or min(fn.concurrency, 5))
                keep = event_filter(props.get("FilterCriteria"))
                threading.Thread(target=self.queue_loop, args=(props, fn, workers, keep), daemon=True, name=logical).start()
            else:
                raise SystemExit(f"mapping {logical}: source {arn} is not emulated")

    def describe_shards(self, fn, arn):
        """Every shard the stream describes (DescribeStream's pages)."""
        shards, after = [], None
        while True:
            req = {"StreamArn": arn, **({"ExclusiveStartShardId": after} if after else {})}
            desc = self.stream_call(fn, "DescribeStream", req)["StreamDescription"]
            shards += desc.get("Shards", [])
            after = desc.get("LastEvaluatedShardId")
            if not after:
                return shards

    def stream_loop(self, props, fn, keep):
        """The mapping's poller: the stream described every DESCRIBE_EVERY seconds (and when a
        shard ends), a reader started for each shard whose parent has been read to its end
        ("an application must always process a parent shard before it processes a child
        shard"; a parent the stream no longer describes is past its retention). The shards
        there at the start begin at the mapping's StartingPosition (with LATEST, a closed one is
        skipped); those that come later, at their beginning."""
        arn, shards, first, ended = props["EventSourceArn"], {}, True, threading.Event()
        while not self.stopping.is_set():
            try:
                described = self.describe_shards(fn, arn)
            except Exception as e:  # noqa: BLE001 - the poller outlives a failed describe
                log(f"mapping {fn.short}: DescribeStream failed ({why(e)}); again in {DESCRIBE_EVERY:.0f} s")
                described = []
            for s in described:
                if s["ShardId"] not in shards:
                    start = props.get("StartingPosition", "LATEST") if first else "TRIM_HORIZON"
                    shard = shards[s["ShardId"]] = Shard(s["ShardId"], s.get("ParentShardId"), start)
                    shard.done = first and start == "LATEST" and "EndingSequenceNumber" in s.get("SequenceNumberRange", {})
            first = first and not described
            for shard in shards.values():
                parent = shards.get(shard.parent)
                if shard.thread is None and not shard.done and (parent is None or parent.done):
                    shard.thread = threading.Thread(target=self.shard_loop, args=(props, fn, keep, shard, ended),
                                                    daemon=True, name=f"{fn.short}:{shard.id}")
                    shard.thread.start()
            ended.wait(DESCRIBE_EVERY)
            ended.clear()

    def shard_iterator(self, fn, arn, shard):
        """An iterator after the shard's checkpoint, or at its start when it has none."""
        req = {"StreamArn": arn, "ShardId": shard.id, "ShardIteratorType": shard.start}
        if shard.checkpoint is not None:
            req.update(ShardIteratorType="AFTER_SEQUENCE_NUMBER", SequenceNumber=shard.checkpoint)
        return self.stream_call(fn, "GetShardIterator", req)["ShardIterator"]

    def shard_loop(self, props, fn, keep, shard, ended):
        """One shard, read in order and handed on in batches: a batch is invoked when it has
        BatchSize records, when its first record has waited the batching window, or when the
        shard has ended. The checkpoint moves past a batch once it is done (and past records
        no filter matched). A failed or expired iterator is replaced by one after the
        checkpoint; the records read since are read again. In hostile mode, the shard's records
        go to virtual shards keyed by item instead (hostile.py)."""
        if getattr(self, "hostile", None) is not None:
            return self.hostile.shard_loop(self, props, fn, keep, shard, ended)
        arn = props["EventSourceArn"]
        size, window = int(props.get("BatchSize", 100)), float(props.get("MaximumBatchingWindowInSeconds", 0))
        iterator, pending, first_seen, last_read = None, [], None, None
        while not self.stopping.is_set():
            try:
                if iterator is None:
                    iterator = self.shard_iterator(fn, arn, shard)
                got = self.stream_call(fn, "GetRecords", {"ShardIterator": iterator, "Limit": 1000})
            except Exception as e:  # noqa: BLE001 - the poller outlives a failed poll
                log(f"mapping {fn.short}: shard {shard.id}: {why(e)}; a new iterator after "
                    f"{shard.checkpoint or 'none'} ({len(pending)} records to read again)")
                iterator, pending, first_seen = None, [], None
                self.stopping.wait(1)
                continue
            records = got.get("Records") or []
            iterator = got.get("NextShardIterator")  # none: the shard is closed and read to its end
            for rec in records:
                rec["eventSourceARN"] = arn
                self.mark_swept(rec)
                last_read = rec["dynamodb"]["SequenceNumber"]
                # Records no filter matches are dropped, as Lambda's event filtering drops them.
                if keep(rec):
                    pending.append(rec)
            if records and not pending:
                shard.checkpoint = last_read
            if pending and first_seen is None:
                first_seen = time.monotonic()
            due = iterator is None or (pending and time.monotonic() - first_seen >= window)
            while pending and (due or len(pending) >= size) and not self.stopping.is_set():
                batch = next(payload_batches(pending, size))
                pending = pending[len(batch):]
                self.stream_batch(fn, props, shard.id, batch)
                shard.checkpoint = batch[-1]["dynamodb"]["SequenceNumber"] if pending else last_read
                first_seen = time.monotonic() if pending else None
            if iterator is None and not pending:
                shard.done = True
                log(f"mapping {fn.short}: shard {shard.id} read to its end; its children may start")
                ended.set()
                return
            if not records:
                self.stopping.wait(POLL_EVERY)

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
        a failing batch bisected, a record that has used its retries (or is too old) sent to the
        on-failure destination and skipped."""
        retries = int(props.get("MaximumRetryAttempts", -1))
        max_age = int(props.get("MaximumRecordAgeInSeconds", -1))
        bisect = bool(props.get("BisectBatchOnFunctionError"))
        partial = "ReportBatchItemFailures" in (props.get("FunctionResponseTypes") or [])
        work = [(batch, 0)]
        while work and not self.stopping.is_set():
            records, attempts = work.pop(0)
            seqs = [r["dynamodb"]["SequenceNumber"] for r in records]
            oldest = min(float(r["dynamodb"].get("ApproximateCreationDateTime", time.time())) for r in records)
            if 0 <= max_age < time.time() - oldest:
                # Checked before every invocation, the first too (the harsher reading: Lambda
                # does not say when it checks).
                self.on_failure(props, fn, shard, records, attempts, "RecordAgeExceeded", "too old")
                continue
            try:
                out = fn.invoke(json.dumps({"Records": records}).encode(), f"{len(records)} stream records")
                failed = failed_items(out, seqs) if partial else []
                if not failed:
                    continue
                # "Lambda uses the record with the lowest sequence number as the checkpoint.
                # Lambda then retries all records starting from that checkpoint."
                records = records[min(seqs.index(s) for s in failed):]
                error = "partial batch failure"
            except BatchFailed as e:
                error = f"a complete failure: {e}"
            except InvocationError as e:
                error = str(e)[:300]
                if bisect and len(records) > 1:
                    # "Splitting a batch does not count towards the retry quota."
                    half = len(records) // 2
                    work[:0] = [(records[:half], attempts), (records[half:], attempts)]
                    continue
            attempts += 1
            if 0 <= retries < attempts:
                self.on_failure(props, fn, shard, records, attempts, "RetryAttemptsExhausted", error)
                continue
            self.stopping.wait(self.backoff(attempts))
            work.insert(0, (records, attempts))

    @staticmethod
    def backoff(attempts):
        """The pause before a batch's next attempt (not documented)."""
        return min(0.2 * 2 ** min(attempts, 8), 10)

    def on_failure(self, props, fn, shard, records, attempts, condition, error):
        """"When Lambda discards a batch of records that's too old or has exhausted all retries,
        Lambda sends details about the batch to the queue or topic." """
        dest = (props.get("DestinationConfig") or {}).get("OnFailure", {}).get("Destination")
        log(f"mapping {fn.short}: {len(records)} records discarded after {attempts} attempts ({condition}: {error}); to {dest}")
        if not dest:
            return
        when = lambda r: datetime.datetime.fromtimestamp(float(r["dynamodb"]["ApproximateCreationDateTime"]),  # noqa: E731
                                                         datetime.timezone.utc).isoformat()
        body = {
            "requestContext": {"requestId": str(uuid.uuid4()), "functionArn": fn.arn,
                               "condition": condition, "approximateInvokeCount": attempts},
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
        # "Lambda sends details about the batch to the queue": with the function's execution
        # role ("your function's execution role must have … sqs:SendMessage", invocation-async-retain-records.html).
        url = self.aws("sqs").get_queue_url(QueueName=dest.rsplit(":", 1)[-1])["QueueUrl"]
        self.aws_as(fn, "sqs").send_message(QueueUrl=url, MessageBody=json.dumps(body))

    # ---- the delivery queue into the deliverer

    def queue_loop(self, props, fn, workers, keep):
        """One poller (the emulator cannot long-poll without holding every other request up),
        handing each batch to one of at most `workers` concurrent invocations: the mapping's
        maximum concurrency. A batch is gathered until it has BatchSize messages or its first
        message has waited the batching window; a message no filter matches is deleted
        unprocessed, as Lambda's event filtering deletes it."""
        arn = props["EventSourceArn"]
        size, window = int(props.get("BatchSize", 10)), float(props.get("MaximumBatchingWindowInSeconds", 0))
        # Lambda has the queue's ARN; its URL, the harness's lookup. The polling itself is the
        # function's execution role's ("sqs:ReceiveMessage, sqs:DeleteMessage,
        # sqs:GetQueueAttributes", with-sqs.html).
        url = self.aws("sqs").get_queue_url(QueueName=arn.rsplit(":", 1)[-1])["QueueUrl"]
        sqs = self.aws_as(fn, "sqs")
        slots = threading.BoundedSemaphore(workers)
        while not self.stopping.is_set():
            if not slots.acquire(timeout=1):
                continue
            got, since = [], None
            while not self.stopping.is_set() and len(got) < size:
                try:
                    more = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=min(size - len(got), 10),
                                               WaitTimeSeconds=0, AttributeNames=["All"],
                                               MessageAttributeNames=["All"]).get("Messages", [])
                except Exception as e:  # noqa: BLE001 - the poller outlives a failed poll
                    log(f"mapping {fn.short}: queue poll failed: {e}")
                    more = []
                    self.stopping.wait(1)
                records = [sqs_record(m, arn) for m in more]
                dropped = [r for r in records if not keep(r)]
                self.delete_messages(sqs, url, dropped)
                got += [r for r in records if keep(r)]
                since = since or (time.monotonic() if got else None)
                if not got or time.monotonic() - since >= window:
                    break
                if not more:
                    self.stopping.wait(POLL_EVERY)
            if not got:
                slots.release()
                self.stopping.wait(POLL_EVERY)
                continue
            threading.Thread(target=self.queue_batch, args=(props, fn, sqs, url, got, slots), daemon=True).start()

    def delete_messages(self, sqs, url, records):
        for chunk in range(0, len(records), 10):
            entries = [{"Id": str(i), "ReceiptHandle": r["receiptHandle"]} for i, r in enumerate(records[chunk:chunk + 10])]
            failed = sqs.delete_message_batch(QueueUrl=url, Entries=entries).get("Failed")
            if failed:
                log(f"queue {url}: {len(failed)} messages not deleted: {failed}")

    def queue_batch(self, props, fn, sqs, url, records, slots):
        """One batch (in invocations within Lambda's payload): the messages the function did not
        report failed are deleted; on a function error or a response Lambda reads as a complete
        failure none is, and all come back after the queue's visibility timeout."""
        try:
            partial = "ReportBatchItemFailures" in (props.get("FunctionResponseTypes") or [])
            for batch in payload_batches(records, len(records)):
                try:
                    out = fn.invoke(json.dumps({"Records": batch}).encode(), f"{len(batch)} queue messages")
                    failed = set(failed_items(out, {r["messageId"] for r in batch})) if partial else set()
                except (InvocationError, BatchFailed) as e:
                    log(f"mapping {fn.short}: {len(batch)} messages back to the queue after its visibility timeout ({e})")
                    continue
                done = [r for r in batch if r["messageId"] not in failed]
                if getattr(self, "hostile", None) is not None:
                    done = self.hostile.redeliver(fn, sqs, url, done)  # some received again (hostile.py)
                self.delete_messages(sqs, url, done)
        except Exception as e:  # noqa: BLE001
            log(f"queue batch failed: {e}")
        finally:
            slots.release()

    # ---- TTL

    def expired(self, table, attr, now):
        """The key and `attr` of every item whose `attr` is a number before `now`, read from moto's
        table in this process under the emulator's lock (as a request would be served). It was a
        Scan with a filter through the emulator, which copies and sorts every item of the table:
        every 2 s, a hold of the lock that grew with the table (tens of ms, hundreds with a
        collection of the heap inside it), during which no function's call was answered."""
        from moto.dynamodb.models import dynamodb_backends

        with self.emulator_lock:
            t = dynamodb_backends[ACCOUNT][REGION].get_table(table)
            groups = t.items.values()
            items = [i for g in groups for i in g.values()] if t.range_key_attr else list(groups)
            return [({"pk": i.attrs["pk"].to_json(), "sk": i.attrs["sk"].to_json()}, i.attrs[attr].to_json())
                    for i in items
                    if attr in i.attrs and i.attrs[attr].type == "N" and Decimal(i.attrs[attr].value) < now]

    def sweep_loop(self):
        spec = next(r["Properties"] for r in self.body["Resources"].values() if r["Type"] == "AWS::DynamoDB::Table")
        ttl = spec.get("TimeToLiveSpecification", {})
        if not ttl.get("Enabled"):
            return
        attr = ttl["AttributeName"]
        table = self.physical(next(k for k, r in self.body["Resources"].items() if r["Type"] == "AWS::DynamoDB::Table"))
        ddb = self.aws("dynamodb")
        while not self.stopping.wait(TTL_SWEEP_EVERY):
            try:
                for key, expiry in self.expired(table, attr, Decimal(int(self.world.now()))):
                    swept = (key["pk"]["S"], key["sk"]["S"])
                    with self.swept_lock:
                        self.swept.add(swept)
                    try:
                        # Only if it has not been given a later expiry meanwhile.
                        ddb.delete_item(TableName=table, Key=key,
                                        ConditionExpression="#t = :t", ExpressionAttributeNames={"#t": attr},
                                        ExpressionAttributeValues={":t": expiry})
                    except ddb.exceptions.ConditionalCheckFailedException:
                        with self.swept_lock:
                            self.swept.discard(swept)
            except Exception as e:  # noqa: BLE001
                log(f"ttl sweep failed: {e}")
