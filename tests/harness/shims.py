"""Every shim the harness puts on moto 5.2, each saying why: what its CloudFormation needs to
deploy the template as AWS does, and its event pipeline as AWS runs it (`install_shims`, called
once before the first stack in the process that runs the emulator: the deploy rehearsal's or the
harness's: moto never runs an event source mapping itself, a cancelled transaction leaves the
stream as it was, shard iterators expire, event patterns match as EventBridge's), its stack update as CloudFormation's
(`conditional_updates`, the harness's redeploy), and its KMS `Sign` of a digest
(`kms_digest_signing`, every emulator). The second shim, the template's own (moto has no Lambda
aliases), is in template.py.

The models are defined when their shim is installed, not when this module is imported: moto
registers a CloudFormation model when its class is defined.
"""

import base64
import json
import time

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, padding
from cryptography.hazmat.primitives.asymmetric.utils import Prehashed
from moto.awslambda.models import lambda_backends
from moto.cloudformation import parsing
from moto.cloudformation.exceptions import ValidationError
from moto.core.common_models import CloudFormationModel
from moto.core.exceptions import JsonRESTError
from moto.dynamodb.models import DynamoDBBackend
from moto.dynamodb.models.table import StreamShard, Table
from moto.dynamodbstreams.models import DynamoDBStreamsBackend, ShardIterator
from moto.events.models import UNDEFINED, EventBus, EventPattern, events_backends
from moto.kms.exceptions import ValidationException
from moto.kms.models import Key, kms_backends
from moto.kms.responses import KmsResponse
from moto.sqs.models import Queue

from .account import REGION


def install_shims() -> None:
    """What moto 5.2's CloudFormation needs to deploy the template as AWS does (each shim says
    why); called once, before the first stack, in the process that runs the emulator (the deploy
    rehearsal's, or the harness's)."""
    # Its EventBus has no physical id, so a `Ref` to the bus resolves to the resource object
    # instead of the bus's name (what CloudFormation returns).
    EventBus.physical_resource_id = property(lambda self: self.name)
    function_urls()
    key_specs()
    event_schemas()
    bus_policies()
    moto_runs_no_mappings()
    transactions_keep_the_stream()
    stream_iterators_expire()
    eventbridge_patterns()


# The schema registry as the shim keeps it (moto has no EventBridge Schemas service):
# registry name -> {schema name -> (type, content)}.
REGISTRIES: dict = {}


def event_schemas() -> None:
    """The fifth shim: moto 5.2 has no EventBridge schema registry (`AWS::EventSchemas::Registry`
    and `::Schema`; its CloudFormation skips both, so `!GetAtt …RegistryName` fails). These
    models keep the registry and its schemas in `REGISTRIES`, which the rehearsal and the
    subscriber test read as a client would read `DescribeSchema`."""

    class Registry(CloudFormationModel):
        __module__ = "moto.events.schema_registry_shim"

        def __init__(self, name):
            self.name = name

        @staticmethod
        def cloudformation_type() -> str:
            return "AWS::EventSchemas::Registry"

        @classmethod
        def create_from_cloudformation_json(cls, resource_name, cloudformation_json, account_id, region_name, **kwargs):
            name = cloudformation_json["Properties"].get("RegistryName") or resource_name
            REGISTRIES.setdefault(name, {})
            return cls(name)

        @classmethod
        def has_cfn_attr(cls, attr: str) -> bool:
            return attr in ("RegistryName", "RegistryArn")

        def get_cfn_attribute(self, attribute_name: str) -> str:
            return self.name if attribute_name == "RegistryName" else f"arn:aws:schemas:{REGION}:123456789012:registry/{self.name}"

        @property
        def physical_resource_id(self) -> str:
            return self.name

    class Schema(CloudFormationModel):
        __module__ = "moto.events.schema_shim"

        def __init__(self, registry, name):
            self.registry, self.name = registry, name

        @staticmethod
        def cloudformation_type() -> str:
            return "AWS::EventSchemas::Schema"

        @classmethod
        def create_from_cloudformation_json(cls, resource_name, cloudformation_json, account_id, region_name, **kwargs):
            props = cloudformation_json["Properties"]
            registry = REGISTRIES.setdefault(props["RegistryName"], {})
            registry[props["SchemaName"]] = (props["Type"], props["Content"])
            return cls(props["RegistryName"], props["SchemaName"])

        @property
        def physical_resource_id(self) -> str:
            return f"{self.registry}/{self.name}"


def bus_policies() -> None:
    """The sixth shim: moto 5.2's CloudFormation has no `AWS::Events::EventBusPolicy`. This
    model adds its statement to the bus's policy through moto's EventBridge API
    (`PutPermission` with a policy), as CloudFormation does."""

    class EventBusPolicy(CloudFormationModel):
        __module__ = "moto.events.bus_policy_shim"

        def __init__(self, bus, sid):
            self.bus, self.sid = bus, sid

        @staticmethod
        def cloudformation_type() -> str:
            return "AWS::Events::EventBusPolicy"

        @classmethod
        def create_from_cloudformation_json(cls, resource_name, cloudformation_json, account_id, region_name, **kwargs):
            props = cloudformation_json["Properties"]
            bus, sid = props.get("EventBusName", "default"), props["StatementId"]
            statement = dict(props["Statement"], Sid=sid)
            backend = events_backends[account_id][region_name]
            current = backend.describe_event_bus(bus).policy
            policy = json.loads(current) if current else {"Version": "2012-10-17", "Statement": []}
            policy["Statement"] = [s for s in policy["Statement"] if s.get("Sid") != sid] + [statement]
            backend.put_permission(bus, None, None, None, None, json.dumps(policy))
            return cls(bus, sid)

        @property
        def physical_resource_id(self) -> str:
            return f"{self.bus}|{self.sid}"


def function_urls() -> None:
    """The third shim: moto 5.2's CloudFormation has no `AWS::Lambda::Url` (its Lambda API has
    function URL configs), so this model makes one through that API and answers its
    `FunctionUrl`. Defined before the first stack: moto reads its models once."""

    class FunctionUrl(CloudFormationModel):
        # moto's model metaclass finds a model's service by its module name.
        __module__ = "moto.awslambda.function_url_shim"

        def __init__(self, config):
            self.config = config

        @staticmethod
        def cloudformation_type() -> str:
            return "AWS::Lambda::Url"

        @classmethod
        def create_from_cloudformation_json(cls, resource_name, cloudformation_json, account_id, region_name, **kwargs):
            props = cloudformation_json["Properties"]
            backend = lambda_backends[account_id][region_name]
            config = backend.create_function_url_config(props["TargetFunctionArn"], {"AuthType": props["AuthType"]})
            return cls(config)

        @classmethod
        def has_cfn_attr(cls, attr: str) -> bool:
            return attr in ("FunctionUrl", "FunctionArn")

        def get_cfn_attribute(self, attribute_name: str) -> str:
            # CloudFormation's FunctionUrl ends with a slash; moto's config URL does not.
            return {"FunctionUrl": self.config.url + "/", "FunctionArn": self.config.function.function_arn}[attribute_name]

        @property
        def physical_resource_id(self) -> str:
            return self.config.function.function_arn


def key_specs() -> None:
    """The fourth shim: moto 5.2's CloudFormation makes every `AWS::KMS::Key` a symmetric
    encryption key and keeps its policy as the template's object, where CloudFormation creates
    the key the template specifies (`KeySpec`, `KeyUsage`) with its policy as JSON text. This
    model does what CloudFormation does, through moto's KMS API."""

    def create(cls, resource_name, cloudformation_json, account_id, region_name, **kwargs):
        props = cloudformation_json["Properties"]
        policy = props.get("KeyPolicy")
        key = kms_backends[account_id][region_name].create_key(
            policy=json.dumps(policy) if isinstance(policy, dict) else policy,
            key_usage=props.get("KeyUsage", "ENCRYPT_DECRYPT"),
            key_spec=props.get("KeySpec", "SYMMETRIC_DEFAULT"),
            description=props.get("Description"),
            tags=props.get("Tags", []),
        )
        key.key_rotation_status = props.get("EnableKeyRotation", False)
        key.enabled = props.get("Enabled", True)
        return key

    Key.create_from_cloudformation_json = classmethod(create)


def conditional_updates() -> None:
    """A shim for moto 5.2's stack update, which decides what to change from the template's text:
    a resource is updated only if its JSON changed or it `Ref`s a changed parameter itself, so
    one that depends on a parameter through a condition (`!If [SignsWithA, …]` in a function's
    environment or a role's policy) keeps its previous properties; a resource whose `Condition`
    turns true is created only when something first refers to it (moto's resource map is lazy);
    one whose `Condition` turns false is never deleted. CloudFormation compares each resource's
    resolved properties and condition. So, after moto's own update, this updates each resource
    whose resolved properties changed, creates those whose condition turned true and then
    deletes those whose condition turned false, as CloudFormation's cleanup does: a KMS key is
    scheduled for deletion after its PendingWindowInDays, as CloudFormation does (moto's own
    deletion is immediate). moto's function update leaves the reserved concurrency, and its role
    update the inline policies, as they were created: those are set again after every update. A
    resource whose properties changed and that moto cannot update fails the update. Installed
    once, in the process that runs the emulator."""
    moto_update = parsing.ResourceMap.update

    def update(self, template, parameters=None):
        def resolved(name):
            return parsing.clean_json(self._resource_json_map[name].get("Properties", {}), self)

        before = {n: resolved(n) for n in self._resource_json_map if self._parsed_resources.get(n) is not None}
        updated = set(self.build_resource_diff(template, parameters)["Modify"])
        moto_update(self, template, parameters)
        withdrawn = []
        for name, spec in self._resource_json_map.items():
            wanted = "Condition" not in spec or self.lazy_condition_map[spec["Condition"]]
            present = self._parsed_resources.get(name) is not None
            if not wanted:
                if present:
                    withdrawn.append(name)
            elif not present:
                self[name]
            elif name in before and (name in updated or resolved(name) != before[name]):
                if name not in updated:
                    kind = parsing.resource_class_from_type(spec["Type"])
                    if getattr(kind.update_from_cloudformation_json, "__isabstractmethod__", False):
                        raise ValidationError(message=f"the emulator cannot update {name} ({spec['Type']})")
                    self._parsed_resources[name] = parsing.parse_and_update_resource(
                        name, spec, self, self._account_id, self._region_name)
                resource, props = self._parsed_resources[name], resolved(name)
                if spec["Type"] == "AWS::Lambda::Function":
                    resource.reserved_concurrency = props.get("ReservedConcurrentExecutions")
                elif spec["Type"] == "AWS::IAM::Role":
                    policies = {p["PolicyName"]: p["PolicyDocument"] for p in props.get("Policies", [])}
                    for gone in set(resource.policies) - set(policies):
                        resource.delete_policy(gone)
                    for policy, document in policies.items():
                        resource.put_policy(policy, document)
        for name in withdrawn:
            spec, resource = self._resource_json_map[name], self._parsed_resources.pop(name)
            if spec["Type"] == "AWS::KMS::Key":
                days = int(before[name].get("PendingWindowInDays", 30))
                kms_backends[self._account_id][self._region_name].schedule_key_deletion(resource.id, days)
            else:
                self._delete_resource(resource, spec)

    parsing.ResourceMap.update = update


def kms_digest_signing() -> None:
    """A shim: moto 5.2's KMS `Sign` ignores `MessageType` and always hashes the message, where
    AWS's Sign reference says "When the value is DIGEST, KMS skips the hashing step in the
    signing algorithm" and "the length of the Message value must match the length of hashed
    messages for the specified signing algorithm". The issuer signs digests (RS256 tokens of any
    length fit KMS's 4,096-byte Message), so this signs a DIGEST as AWS does, with the key moto
    made, and refuses a digest of the wrong length as AWS does."""
    if getattr(KmsResponse.sign, "digest_shim", False):
        return
    original = KmsResponse.sign

    def sign(self):
        if self._get_param("MessageType") != "DIGEST":
            return original(self)
        key = self.kms_backend.describe_key(self._get_param("KeyId"))
        algorithm, digest = self._get_param("SigningAlgorithm"), self._get_param("Message")
        if key.key_usage != "SIGN_VERIFY" or algorithm not in (key.signing_algorithms or []):
            raise ValidationException(f"SigningAlgorithm {algorithm} is not one of {key.signing_algorithms}")
        h = {"256": hashes.SHA256(), "384": hashes.SHA384(), "512": hashes.SHA512()}[algorithm[-3:]]
        if len(digest) != h.digest_size:
            raise ValidationException(f"Digest is invalid length for algorithm {algorithm}.")
        private = key.private_key.private_key
        if algorithm.startswith("RSASSA_PKCS1_V1_5"):
            signature = private.sign(digest, padding.PKCS1v15(), Prehashed(h))
        elif algorithm.startswith("RSASSA_PSS"):
            pss = padding.PSS(mgf=padding.MGF1(h), salt_length=padding.PSS.DIGEST_LENGTH)
            signature = private.sign(digest, pss, Prehashed(h))
        else:
            signature = private.sign(digest, ec.ECDSA(Prehashed(h)))
        return json.dumps({"KeyId": key.arn, "Signature": base64.b64encode(signature).decode(),
                           "SigningAlgorithm": algorithm})

    sign.digest_shim = True
    KmsResponse.sign = sign


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
    transaction writes nothing. So a table's copy shares its shard (nothing to copy, either),
    and after a cancelled transaction the table keeps its shard, without the records the
    transaction added."""
    original = DynamoDBBackend.transact_write_items
    if getattr(original, "keeps_the_stream", False):
        return
    StreamShard.__deepcopy__ = lambda self, memo: self

    def transact_write_items(self, transact_items):
        names = {op.get("TableName") for item in transact_items for op in item.values() if isinstance(op, dict)}
        kept = {name: (self.tables[name].stream_shard, len(self.tables[name].stream_shard.items))
                for name in names if name in self.tables and self.tables[name].stream_shard is not None}
        try:
            return original(self, transact_items)
        except Exception:
            for name, (shard, count) in kept.items():
                table = self.tables.get(name)
                if table is not None:
                    table.stream_shard, shard.table = shard, table
                del shard.items[count:]
            raise

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
