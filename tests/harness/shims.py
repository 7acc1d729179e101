"""Every shim the harness puts on moto 5.2, each saying why: what its CloudFormation needs to
deploy the template as AWS does, and its event pipeline as AWS runs it (those in
pipeline_shims.py) (`install_shims`, called once before the first stack in the process that runs
the emulator: the deploy rehearsal's or the harness's), its stack update as CloudFormation's (`conditional_updates`,
the harness's redeploy). KMS `Sign` of a digest, which every emulator needs, is kms_shim.py's:
it imports only moto's KMS, so an emulator starts without moto's CloudFormation.
The second shim, the template's own (moto has no Lambda aliases), is in template.py.

The models are defined when their shim is installed, not when this module is imported: moto
registers a CloudFormation model when its class is defined.
"""

import json

from moto.awslambda.models import lambda_backends
from moto.cloudformation import parsing
from moto.cloudformation.exceptions import ValidationError
from moto.core.common_models import CloudFormationModel
from moto.events.models import EventBus, events_backends
from moto.kms.models import Key, kms_backends
from moto.sqs.models import sqs_backends

from .account import REGION
from .pipeline_shims import install_pipeline_shims


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
    queue_policies()
    install_pipeline_shims()


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


def queue_policies() -> None:
    """The seventh shim: moto 5.2's CloudFormation has no `AWS::SQS::QueuePolicy` (it skips it:
    the queues keep no policy). This model sets the policy on each queue it names through
    moto's SQS API (`SetQueueAttributes` `Policy`), as CloudFormation does, so the harness's IAM
    (iam.py) holds every sender to it, EventBridge's rules among them."""

    class QueuePolicy(CloudFormationModel):
        __module__ = "moto.sqs.queue_policy_shim"

        def __init__(self, queues):
            self.queues = queues

        @staticmethod
        def cloudformation_type() -> str:
            return "AWS::SQS::QueuePolicy"

        @classmethod
        def create_from_cloudformation_json(cls, resource_name, cloudformation_json, account_id, region_name, **kwargs):
            props = cloudformation_json["Properties"]
            doc = props["PolicyDocument"]
            names = [url.rstrip("/").rsplit("/", 1)[-1] for url in props["Queues"]]
            backend = sqs_backends[account_id][region_name]
            for name in names:
                backend.set_queue_attributes(name, {"Policy": doc if isinstance(doc, str) else json.dumps(doc)})
            return cls(names)

        @classmethod
        def update_from_cloudformation_json(cls, original_resource, new_resource_name, cloudformation_json,
                                            account_id, region_name):
            return cls.create_from_cloudformation_json(new_resource_name, cloudformation_json, account_id, region_name)

        @property
        def physical_resource_id(self) -> str:
            return "|".join(self.queues)


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
