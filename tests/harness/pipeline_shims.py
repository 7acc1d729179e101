"""The shims the harness puts on moto 5.2's event pipeline (DynamoDB and its stream, SQS,
EventBridge), each saying why: moto never runs an event source mapping itself (the harness
does: mappings.py), a cancelled transaction leaves the table and its stream as they were, shard
iterators expire as AWS's do, event patterns match as EventBridge's, and three costs that grew
with the work (a query read every item, a transaction copied the whole table, a rule's delivery
parsed its paths anew) are gone, what moto answers unchanged. Installed by `install_shims`
(shims.py), once, in the process that runs the emulator.
"""

import copy
import functools
import threading
import time

import jsonpath_ng.ext
from moto.core.exceptions import JsonRESTError
from moto.core.utils import unix_time
from moto.dynamodb.models import DynamoDBBackend
from moto.dynamodb.models.dynamo_type import DynamoType
from moto.dynamodb.models.table import StreamShard, Table
from moto.dynamodbstreams.models import DynamoDBStreamsBackend, ShardIterator
from moto.events.models import UNDEFINED, EventPattern
from moto.sqs.models import Queue, SQSBackend


def install_pipeline_shims() -> None:
    moto_runs_no_mappings()
    transactions_keep_the_stream()
    stream_iterators_expire()
    eventbridge_patterns()
    queries_read_their_partition()
    quicker_deliveries()


class NoMappings(dict):
    """A table's or a queue's own event source mappings, as the harness lets moto keep them: none
    (what is put in is dropped)."""

    def __setitem__(self, key, value):
        pass

    def update(self, *args, **kwargs):
        pass

    def setdefault(self, key, default=None):
        return default


def moto_runs_no_mappings() -> None:
    """moto 5.2 runs an event source mapping itself, from the write that feeds it.
    `StreamShard.add` (moto/dynamodb/models/table.py), on every stream record:
        for arn, esm in self.table.lambda_event_source_mappings.items():
            result = get_backend(...).send_dynamodb_items(arn, self.items, esm.event_source_arn)
        if result:
            self.items = []
    Its invoke answers "error running docker: …" when it cannot run the function, which is
    truthy: the shard's records are emptied, and since a record's sequence number is
    `len(self.items) + self.starting_sequence_number`, every later record takes a number at or
    below what a reader has read (its iterator sees nothing until the list grows past it).
    `Queue.add_message` (moto/sqs/models.py) receives the messages of every mapping in
    `queue.lambda_event_source_mappings`, invokes the function and deletes them, or makes them
    visible again with a receive counted towards the redrive. CloudFormation's `create_stack`,
    and any CreateEventSourceMapping through moto's Lambda API, put a mapping there. The harness
    runs the mappings (mappings.py), so on every table and queue that attribute is an empty
    mapping that keeps nothing (a class property: it covers tables and queues made before and
    after): moto never delivers, and its Lambda API still creates, lists, gets, updates and
    deletes the mappings (they live in its own registry, `_event_source_mappings`)."""
    none = property(lambda self: NoMappings(), lambda self, value: None)
    Table.lambda_event_source_mappings = none
    Queue.lambda_event_source_mappings = none


TRANSACTION = threading.local()


def transactions_keep_the_stream() -> None:
    """moto 5.2's `transact_write_items` deep-copies each table it writes before it starts and,
    when the transaction is cancelled (a condition failed), puts the copies in the tables'
    place (`self.tables[table_name] = original_table_state[table_name]`). The copy has a copy of
    the stream shard, so the table's shard is swapped: every iterator handed out before holds
    the old one (`ShardIterator.stream_shard`), which has the cancelled transaction's writes as
    records and which no later write reaches. A reader of the stream sees records of writes that
    never happened, then nothing for ever (no error: an empty answer), while a new TRIM_HORIZON
    iterator reads the copy. Concurrent writers of one order cancel transactions all the time,
    so the stack's webhooks stopped after the first conflict. DynamoDB has one log per table
    ("Each stream record appears exactly once in the stream.", Streams.html) and a cancelled
    transaction writes nothing. So a table's copy shares its shard, and after a cancelled
    transaction the table keeps its shard, without the records the transaction added.
    And the copy, moto's snapshot for the rollback, is a deep copy of the whole table on every
    transaction (55 ms on a table of 2,000 items, growing with it: the serialised emulator's
    largest cost after Query). A transaction changes only the items it names: the snapshot here
    copies those, and shares the rest (as moto's rollback puts the snapshot back whole)."""
    original = DynamoDBBackend.transact_write_items
    if getattr(original, "keeps_the_stream", False):
        return
    StreamShard.__deepcopy__ = lambda self, memo: self

    def snapshot(self, memo):
        keys = (getattr(TRANSACTION, "keys", None) or {}).get(self.name)
        if keys is None:  # not a transaction's: the deep copy Python makes by default
            new = type(self).__new__(type(self))
            memo[id(self)] = new
            new.__dict__.update(copy.deepcopy(self.__dict__, memo))
            return new
        new = copy.copy(self)
        new.items = copy.copy(self.items)
        for h, r in keys:
            if h in self.items and self.range_key_attr:
                new.items[h] = {k: copy.deepcopy(v) if k == r else v for k, v in self.items[h].items()}
            elif h in self.items:
                new.items[h] = copy.deepcopy(self.items[h])
        return new

    def named(backend, transact_items):
        keys = {}
        try:
            for item in transact_items:
                for kind, op in item.items():
                    table = backend.tables[op["TableName"]]
                    attrs = op["Item"] if kind == "Put" else op["Key"]
                    rng = DynamoType(attrs[table.range_key_attr]) if table.range_key_attr else None
                    keys.setdefault(table.name, []).append((DynamoType(attrs[table.hash_key_attr]), rng))
        except (KeyError, TypeError, AttributeError):
            return None  # moto refuses it, or copies the whole table
        return keys

    def transact_write_items(self, transact_items):
        names = {op.get("TableName") for item in transact_items for op in item.values() if isinstance(op, dict)}
        kept = {name: (self.tables[name].stream_shard, len(self.tables[name].stream_shard.items))
                for name in names if name in self.tables and self.tables[name].stream_shard is not None}
        TRANSACTION.keys = named(self, transact_items)
        try:
            return original(self, transact_items)
        except Exception:
            for name, (shard, count) in kept.items():
                table = self.tables.get(name)
                if table is not None:
                    table.stream_shard, shard.table = shard, table
                del shard.items[count:]
            raise
        finally:
            TRANSACTION.keys = None

    Table.__deepcopy__ = snapshot
    transact_write_items.keeps_the_stream = True
    DynamoDBBackend.transact_write_items = transact_write_items


# AWS's GetShardIterator reference: "A shard iterator expires 15 minutes after it is returned to
# the requester." (A test may shorten it.)
ITERATOR_LIFETIME_SECONDS = 15 * 60


class ExpiredIteratorException(JsonRESTError):
    def __init__(self):
        super().__init__("ExpiredIteratorException", "The provided iterator exceeds the maximum age allowed.")


def stream_iterators_expire() -> None:
    """moto 5.2's shard iterators never expire and are never forgotten: every GetRecords adds
    one to `shard_iterators` (a poller four times a second adds 14,400 an hour, kept for good).
    Each iterator here is stamped when made; GetRecords with one older than
    ITERATOR_LIFETIME_SECONDS answers ExpiredIteratorException, as AWS does, and expired
    iterators are forgotten (at most once a minute)."""
    if getattr(DynamoDBStreamsBackend.get_records, "expiring", False):
        return
    made, original = ShardIterator.__init__, DynamoDBStreamsBackend.get_records

    def stamped(self, *args, **kwargs):
        made(self, *args, **kwargs)
        self.issued = time.monotonic()

    def get_records(self, iterator_arn, limit):
        now = time.monotonic()
        if now - getattr(self, "pruned", 0.0) > 60:
            self.pruned = now
            for arn, old in list(self.shard_iterators.items()):
                if now - getattr(old, "issued", now) > ITERATOR_LIFETIME_SECONDS and arn != iterator_arn:
                    del self.shard_iterators[arn]
        iterator = self.shard_iterators.get(iterator_arn)
        if iterator is not None and now - getattr(iterator, "issued", now) > ITERATOR_LIFETIME_SECONDS:
            del self.shard_iterators[iterator_arn]
            raise ExpiredIteratorException()
        return original(self, iterator_arn, limit)

    get_records.expiring = True
    ShardIterator.__init__ = stamped
    DynamoDBStreamsBackend.get_records = get_records


def eventbridge_patterns() -> None:
    """moto 5.2's EventBridge pattern matching (`EventPattern`: prefix, suffix, anything-but,
    numeric, exists, equals-ignore-case, wildcard, cidr, $or), which the bus's rules and the
    harness's event filtering (mappings.py) use, with two corrections where it is not
    EventBridge: values in arrays of objects are matched (moto's flattening stops at an array,
    so a DynamoDB list, `{"L": [{"S": "a"}]}`, could not be matched), and a JSON boolean is not a
    number (Python's `True == 1` matched `[1]` to `true`, and `numeric` to a boolean)."""

    def flatten(node, prefix="", result=None):
        result = {} if result is None else result

        def walk(value, key):
            if isinstance(value, dict) and value:
                for k, v in value.items():
                    walk(v, f"{key}.{k}" if key else k)
            elif isinstance(value, list) and any(isinstance(v, dict) for v in value):
                for v in value:
                    walk(v, key)
            elif key in result:  # several values at one path: an array, any of which may match
                before = result[key] if isinstance(result[key], list) else [result[key]]
                result[key] = before + (value if isinstance(value, list) else [value])
            else:
                result[key] = value

        walk(node, prefix)
        return result

    def item_matches(self, item, filters):
        values = item if isinstance(item, list) else [item]
        for f in filters:
            if isinstance(f, dict) and "numeric" in f:
                if any(isinstance(v, (int, float)) and not isinstance(v, bool)
                       and self._does_item_match_named_filter(v, f) for v in values):
                    return True
            elif isinstance(f, dict):
                if self._does_item_match_named_filter(item, f):
                    return True
            elif item is not UNDEFINED and any(v == f and isinstance(v, bool) == isinstance(f, bool) for v in values):
                return True
        return False

    EventPattern._flatten_dict = staticmethod(flatten)
    EventPattern._does_item_match_filters = item_matches


QUERYING = threading.local()


def queries_read_their_partition() -> None:
    """moto 5.2's Query reads `Table.all_items()`, which lists and sorts every item of the table,
    on every query: on the table it then keeps one partition's items, on an index it sorts
    what matches again. A query's cost grows with the table (38 ms on a table of 2,000 items:
    most of the serialised emulator's time in a long run, where functions then timed out
    waiting for it). DynamoDB reads one partition. During a Query, `all_items` answers the
    partition's items (on the table) or every item unsorted (on an index, whose matches moto
    sorts): the same results, in the same order."""
    if getattr(Table.query, "by_partition", False):
        return
    listed, original = Table.all_items, Table.query

    def all_items(self):
        items = getattr(QUERYING, "items", None)
        return listed(self) if items is None or QUERYING.table is not self else items

    def query(self, hash_key, *args, **kwargs):
        index_name = args[6] if len(args) > 6 else kwargs.get("index_name")
        partitions = self.items.values() if index_name else [self.items.get(hash_key, {})] if hash_key is not None else None
        if partitions is None:
            return original(self, hash_key, *args, **kwargs)
        QUERYING.table = self
        QUERYING.items = [i for p in partitions for i in (p.values() if self.range_key_attr else [p])]
        try:
            return original(self, hash_key, *args, **kwargs)
        finally:
            QUERYING.items = None

    query.by_partition = True
    Table.all_items, Table.query = all_items, query


def quicker_deliveries() -> None:
    """Two costs of moto 5.2 that grow with the work and change nothing of what it answers.
    A rule's delivery parses its input template's JSONPaths anew for every event and target
    (`EventTemplateParser.parse` calls `jsonpath_ng.ext.parse`, which builds a parser each
    time: most of PutEvents' 170 ms): the parsed paths are kept. ReceiveMessage checks each
    message's retention through `get_queue_attributes`, which computes every attribute of the
    queue (counting its messages) three times a message: the retention is read directly."""
    if getattr(jsonpath_ng.ext.parse, "cache_info", None) is None:
        jsonpath_ng.ext.parse = functools.lru_cache(maxsize=512)(jsonpath_ng.ext.parse)

    def retained(self, queue_name, message):
        return int(self.get_queue(queue_name).message_retention_period) + message.sent_timestamp / 1000 > unix_time()

    SQSBackend.is_message_valid_based_on_retention_period = retained
