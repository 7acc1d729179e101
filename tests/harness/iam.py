"""IAM, enforced: every AWS call a function makes (and Lambda makes for it: its stream and queue
pollers, its on-failure destination) is allowed or refused by the function's execution role's
identity policies and the resource's own policy, as AWS evaluates them; a refused call is
answered as AWS answers it (`AccessDeniedException`) and logged. moto's own enforcement checks
many calls against resource `*` and ignores conditions, so the harness evaluates each call
here, from its action, resource ARN and condition keys. What it follows, page by page and
sentence by sentence: FIDELITY.md ("IAM").

`Iam` is a gate (the emulator's `before`: ahead of stack.py's `gates`, outside moto's lock):
it reads each request's credentials (a function's session, `account.SESSIONS`; the harness's
own `test` key passes), its action (the JSON protocols' `X-Amz-Target`, the query
protocol's `Action`) and resources (the table, index or stream; the key; the bus; the queue),
and the condition keys AWS sets for it (`dynamodb:LeadingKeys`, `aws:PrincipalArn`, ...). The policies are read from the deployed
stack (`refresh`, after every deploy): each role's inline policies as moto holds them, its
managed policies (moto keeps none of a role's: read from the template, their documents from
moto's IAM or, for AWS's own, moto's copy of them); the resources' policies (keys, queues,
buses) as moto holds them when the call comes. It also refuses what EventBridge
could not deliver to a queue whose policy does not let the rule send (`rule_sends_to_queue`).

Every decision is counted per role and action in DIR/iam.json (allowed and denied), which
tests/suites/iam_usage.py reads: the actions each function's policy grants follow from what it
was seen to call, not from a hand-kept copy.
"""

import json
import re
import threading
import urllib.parse
from functools import lru_cache

from .account import ACCOUNT, REGION, SESSIONS, log

ROOT_ARN = f"arn:aws:iam::{ACCOUNT}:root"


# ---- policy evaluation (policies_evaluation-logic.html, reference_policies_condition-operators.html)

@lru_cache(maxsize=4096)
def glob(pattern: str, case: bool):
    """A policy's `*` (any run of characters) and `?` (one character) as a regex; actions match
    without regard to case ("action names are case insensitive"), ARNs and strings with it."""
    rx = "".join(".*" if c == "*" else "." if c == "?" else re.escape(c) for c in pattern)
    return re.compile(rx, 0 if case else re.IGNORECASE).fullmatch


def listed(v):
    return v if isinstance(v, list) else [v]


def statements(doc):
    if not doc:
        return []
    if isinstance(doc, str):
        doc = json.loads(doc)
    return listed(doc.get("Statement", []))


def substituted(value, ctx):
    """Policy variables (`${aws:PrincipalAccount}`) replaced by the request's values."""
    if not isinstance(value, str) or "${" not in value:
        return value
    return re.sub(r"\$\{([^}]+)\}", lambda m: str(context_value(ctx, m.group(1)) or ""), value)


def context_value(ctx, key):
    """Condition key names are case insensitive ("Condition key names are not case-sensitive")."""
    for k, v in ctx.items():
        if k.lower() == key.lower():
            return v
    return None


def matches(base, actual, pattern):
    actual, pattern = str(actual), str(pattern)
    if base in ("StringEquals", "StringNotEquals"):
        return actual == pattern
    if base in ("StringEqualsIgnoreCase", "StringNotEqualsIgnoreCase"):
        return actual.lower() == pattern.lower()
    if base in ("StringLike", "StringNotLike", "ArnEquals", "ArnLike", "ArnNotEquals", "ArnNotLike"):
        # "ArnEquals, ArnLike: ... each can include multi-character match wildcards (*) or
        # single-character match wildcards (?)"
        return bool(glob(pattern, True)(actual))
    if base == "Bool":
        return actual.lower() == pattern.lower()
    if base.startswith("Numeric"):
        a, p = float(actual), float(pattern)
        return {"NumericEquals": a == p, "NumericNotEquals": a == p, "NumericLessThan": a < p,
                "NumericLessThanEquals": a <= p, "NumericGreaterThan": a > p,
                "NumericGreaterThanEquals": a >= p}[base]
    raise ValueError(f"condition operator {base} is not emulated")


NEGATED = {"StringNotEquals", "StringNotEqualsIgnoreCase", "StringNotLike", "ArnNotEquals", "ArnNotLike",
           "NumericNotEquals"}


def operator_holds(op, key, patterns, ctx):
    """One condition key under one operator. "If the key that you specify in a policy condition
    is not present in the request context, the values do not match and the condition is false.
    If the policy condition requires that the key is not matched, such as StringNotLike or
    ArnNotLike, and the right key is not present, the condition is true." ForAllValues: "true if
    every key value in the request matches at least one value in the policy ... also returns
    true if there are no keys in the request"; ForAnyValue: "true if any one of the key values
    in the request matches any one of the condition values in your policy ... returns false if
    there are no keys"."""
    qualifier, _, base = op.rpartition(":")
    if_exists = base.endswith("IfExists")
    base = base[: -len("IfExists")] if if_exists else base
    actual = context_value(ctx, key)
    values = [] if actual is None else listed(actual)
    patterns = [substituted(p, ctx) for p in listed(patterns)]
    if base == "Null":
        absent = not values
        return any(absent == (str(p).lower() == "true") for p in patterns)
    negated = base in NEGATED
    hit = lambda v: any(matches(base, v, p) for p in patterns)  # noqa: E731
    if qualifier == "ForAllValues":
        return all((not hit(v)) if negated else hit(v) for v in values)
    if qualifier == "ForAnyValue":
        return any((not hit(v)) if negated else hit(v) for v in values)
    if qualifier:
        raise ValueError(f"condition qualifier {qualifier} is not emulated")
    if not values:
        return if_exists or negated
    return not any(hit(v) for v in values) if negated else any(hit(v) for v in values)


def conditions_hold(block, ctx):
    """Every operator, and every key under it ("If your policy has multiple condition
    operators or multiple keys attached to a single condition operator, the conditions are
    evaluated using a logical AND"); the values of one key OR'd."""
    return all(operator_holds(op, key, values, ctx)
               for op, keys in (block or {}).items() for key, values in keys.items())


def statement_applies(st, action, resource, ctx):
    if "Action" in st:
        if not any(glob(a, False)(action) for a in listed(st["Action"])):
            return False
    elif "NotAction" in st:
        if any(glob(a, False)(action) for a in listed(st["NotAction"])):
            return False
    if "Resource" in st:
        if not any(glob(r, True)(resource) for r in listed(st["Resource"])):
            return False
    elif "NotResource" in st:
        if any(glob(r, True)(resource) for r in listed(st["NotResource"])):
            return False
    return conditions_hold(st.get("Condition"), ctx)


def principal_reach(st, principal):
    """How a resource policy's statement names the caller: "direct" (its role, or everyone),
    "account" (its account, which delegates to the account's IAM policies), or None.
    `principal` is a role ARN, or ("service", name) for an AWS service."""
    named = st.get("Principal")
    if named == "*":
        return "direct"
    if not isinstance(named, dict):
        return None
    if isinstance(principal, tuple):
        return "direct" if principal[1] in listed(named.get("Service", [])) else None
    for p in listed(named.get("AWS", [])):
        if p == "*" or p == principal:
            return "direct"
        if p in (ROOT_ARN, ACCOUNT):
            return "account"
    return None


def decide(principal, identity, resource_policy, action, resource, ctx, key_policy=False):
    """Allowed or not, and why not, in AWS's order: an explicit deny in any policy; then an
    allow. Within one account, "either an identity-based policy or a resource-based policy"
    may allow, but a resource policy that names the account delegates to the identity
    policies; and for KMS, "Every KMS key must have exactly one key policy ... unless the key
    policy explicitly allows it, you cannot use IAM policies to allow access to a KMS key"."""
    reaching = [(st, principal_reach(st, principal)) for st in statements(resource_policy)]
    reaching = [(st, how) for st, how in reaching if how]
    for st in (s for d in identity for s in statements(d)):
        if st.get("Effect") == "Deny" and statement_applies(st, action, resource, ctx):
            return False, "with an explicit deny in an identity-based policy"
    for st, _ in reaching:
        if st.get("Effect") == "Deny" and statement_applies(st, action, resource, ctx):
            return False, "with an explicit deny in a resource-based policy"
    id_allows = any(st.get("Effect") == "Allow" and statement_applies(st, action, resource, ctx)
                    for d in identity for st in statements(d))
    res_allows = {how for st, how in reaching if st.get("Effect") == "Allow" and statement_applies(st, action, resource, ctx)}
    if key_policy:
        if "direct" in res_allows or ("account" in res_allows and id_allows):
            return True, ""
        return False, "because no resource-based policy allows the " + action + " action"
    if id_allows or "direct" in res_allows:
        return True, ""
    return False, "because no identity-based policy allows the " + action + " action"


# ---- requests: action, resources, condition keys

class Refused(Exception):
    """A request the gate cannot read (its action, its resource): refused, the harsher reading."""


def table_arn(name, index=None):
    arn = name if name.startswith("arn:") else f"arn:aws:dynamodb:{REGION}:{ACCOUNT}:table/{name}"
    return f"{arn}/index/{index}" if index else arn


def attr_value(v):
    if isinstance(v, dict):
        for t in ("S", "N", "B"):
            if t in v:
                return str(v[t])
    return None


class Iam:
    """The gate, and the deployed stack's policies it holds calls to."""

    def __init__(self, harness):
        self.harness = harness
        self.roles = {}  # role ARN -> [policy documents]
        self.seen = {}  # role ARN -> {"allowed": {action: n}, "denied": {action: n}}
        self.lock = threading.Lock()

    # ---- the policies, from the deployed stack

    def refresh(self):
        from moto.iam.aws_managed_policies import aws_managed_policies_data
        from moto.iam.models import iam_backends

        iam = iam_backends[ACCOUNT]["global"]
        aws_managed = json.loads(aws_managed_policies_data)
        h = self.harness
        roles = {}
        for logical, r in h.body["Resources"].items():
            if r["Type"] != "AWS::IAM::Role" or logical not in h.physical_ids:
                continue
            role = iam.get_role(h.physical(logical))
            docs = [json.loads(d) if isinstance(d, str) else d for d in role.policies.values()]
            for arn in listed(h.resolver.resolve(r["Properties"].get("ManagedPolicyArns", []))):
                if arn.startswith("arn:aws:iam::aws:policy/"):
                    name = arn.rsplit("/", 1)[-1]
                    if name not in aws_managed:
                        raise SystemExit(f"iam: the AWS managed policy {arn} is unknown to the harness")
                    docs.append(aws_managed[name]["Document"])
                else:
                    policy = iam.get_policy(arn)
                    version = next(v for v in policy.versions if v.is_default)
                    docs.append(json.loads(version.document))
            roles[role.arn] = docs
        self.roles = roles

    @staticmethod
    def queue_policy(arn):
        """A queue's policy as set on it (`SetQueueAttributes`, or CloudFormation's
        `AWS::SQS::QueuePolicy` through shims.py's `queue_policies`)."""
        from moto.sqs.models import sqs_backends

        queue = sqs_backends[ACCOUNT][REGION].queues.get(arn.rsplit(":", 1)[-1])
        return queue.policy if queue is not None else None

    @staticmethod
    def bus_policy(arn):
        """A bus's policy as moto keeps it (`PutPermission`, or CloudFormation's
        `AWS::Events::EventBusPolicy` through shims.py's `bus_policies`)."""
        from moto.events.models import events_backends

        bus = events_backends[ACCOUNT][REGION].event_buses.get(arn.rsplit("/", 1)[-1])
        return bus.policy if bus is not None else None

    @staticmethod
    def queue_arn(url_or_name):
        name = url_or_name.rstrip("/").rsplit("/", 1)[-1]
        return f"arn:aws:sqs:{REGION}:{ACCOUNT}:{name}"

    # ---- the gate

    def gate(self, environ, body):
        auth = environ.get("HTTP_AUTHORIZATION", "")
        m = re.search(r"Credential=([^/]+)/[^/]+/[^/]+/([^/]+)/", auth)
        if not m:
            query = urllib.parse.parse_qs(environ.get("QUERY_STRING", ""))
            cred = (query.get("X-Amz-Credential") or [""])[0].split("/")
            m_key, service = (cred[0], cred[3]) if len(cred) > 3 else ("", "")
        else:
            m_key, service = m.group(1), m.group(2)
        role = SESSIONS.get(m_key)
        if role is None:
            return None  # the harness's own call (the emulated AWS services, the suites)
        target = environ.get("HTTP_X_AMZ_TARGET", "")
        try:
            doc = json.loads(body) if target and body else {}
            if target:
                prefix, _, operation = target.partition(".")
            else:
                form = urllib.parse.parse_qs(body.decode("utf-8", "replace"))
                prefix, operation = service, (form.get("Action") or [""])[0]
                doc = {k: v[0] for k, v in form.items()}
            checks = self.requested(prefix, operation, doc)
        except Refused as e:
            checks, unreadable = None, str(e)
        except (ValueError, KeyError, TypeError, AttributeError) as e:
            checks, unreadable = None, f"{type(e).__name__}: {e}"
        if checks is None:
            log(f"iam: refused a call of {role} the harness cannot read ({target or service}): {unreadable}")
            return self.denied(target, service, role, f"{service}:{target or 'unknown'}", "*",
                               "because the harness cannot evaluate this request")
        for action, resource, ctx, resource_policy, key_policy in checks:
            ctx = {"aws:PrincipalArn": role, "aws:PrincipalAccount": ACCOUNT, "aws:PrincipalType": "AssumedRole",
                   "aws:RequestedRegion": REGION, **ctx}
            allowed, why = decide(role, self.roles.get(role, []), resource_policy, action, resource, ctx, key_policy)
            self.count(role, action, allowed)
            if not allowed:
                log(f"iam: AccessDenied: {role.rsplit('/', 1)[-1]} may not {action} on {resource} {why}")
                return self.denied(target, service, role, action, resource, why)
        return None

    def count(self, role, action, allowed):
        with self.lock:
            seen = self.seen.setdefault(role, {"allowed": {}, "denied": {}})
            bucket = seen["allowed" if allowed else "denied"]
            bucket[action] = bucket.get(action, 0) + 1

    def report(self):
        """What each role was allowed and refused, by action (DIR/iam.json)."""
        with self.lock:
            return json.loads(json.dumps(self.seen))

    @staticmethod
    def denied(target, service, role, action, resource, why):
        """AWS's refusal, in the protocol the call used."""
        name = role.rsplit("/", 1)[-1]
        message = (f"User: arn:aws:sts::{ACCOUNT}:assumed-role/{name}/{name} is not authorized to perform: "
                   f"{action} on resource: {resource} {why}")
        if target.startswith("AmazonSQS."):
            body = {"__type": "com.amazonaws.sqs#AccessDenied", "message": message}
            return 403, [("Content-Type", "application/x-amz-json-1.0"),
                         ("x-amzn-query-error", "AccessDenied;Sender")], json.dumps(body).encode()
        if target:
            kind = ("com.amazon.coral.service#AccessDeniedException" if target.startswith("DynamoDB")
                    else "AccessDeniedException")
            version = "1.0" if target.startswith("DynamoDB") else "1.1"
            return 400, [("Content-Type", f"application/x-amz-json-{version}")], \
                json.dumps({"__type": kind, "message": message}).encode()
        xml = (f"<ErrorResponse><Error><Type>Sender</Type><Code>AccessDenied</Code><Message>{message}</Message>"
               f"</Error><RequestId>00000000-0000-0000-0000-000000000000</RequestId></ErrorResponse>")
        return 403, [("Content-Type", "text/xml")], xml.encode()

    # ---- what a request asks, service by service

    def requested(self, prefix, operation, doc):
        """[(action, resource ARN, condition keys, the resource's policy, whether it is a key
        policy)] that must all be allowed for the request to be served."""
        if prefix == "DynamoDB_20120810":
            return [(a, r, c, None, False) for a, r, c in self.dynamodb(operation, doc)]
        if prefix == "DynamoDBStreams_20120810":
            if operation == "ListStreams":
                return [("dynamodb:ListStreams", "*", {}, None, False)]
            arn = doc.get("StreamArn") or doc.get("ShardIterator", "").split("|", 1)[0]
            if not arn.startswith("arn:"):
                raise Refused(f"{operation}: no stream named")
            return [(f"dynamodb:{operation}", arn, {}, None, False)]
        if prefix == "TrentService":
            arn, policy = self.key(doc.get("KeyId", ""))
            return [(f"kms:{operation}", arn, {}, policy, True)]
        if prefix == "AWSEvents":
            if operation != "PutEvents":
                raise Refused(f"events:{operation} is not emulated")
            checks = []
            for entry in doc.get("Entries", []):
                bus = entry.get("EventBusName") or "default"
                arn = bus if bus.startswith("arn:") else f"arn:aws:events:{REGION}:{ACCOUNT}:event-bus/{bus}"
                checks.append(("events:PutEvents", arn, {"events:source": entry.get("Source"),
                                                         "events:detail-type": entry.get("DetailType")},
                               self.bus_policy(arn), False))
            return checks
        if prefix in ("AmazonSQS", "sqs"):
            # "the permission for SendMessageBatch is the same as for SendMessage" (sqs-api-permissions-reference.html)
            action = re.sub(r"Batch$", "", operation)
            url = doc.get("QueueUrl") or doc.get("QueueName")
            if not url:
                raise Refused(f"sqs:{operation}: no queue named")
            arn = self.queue_arn(url)
            return [(f"sqs:{action}", arn, {}, self.queue_policy(arn), False)]
        raise Refused(f"{prefix}.{operation} is not emulated")

    def key(self, key_id):
        from moto.kms.models import kms_backends

        kms = kms_backends[ACCOUNT][REGION]
        # IAM is decided outside the emulator's lock, so a deploy may be adding keys or aliases
        # while this reads them: a dict that changed size mid-read is read again, not taken
        # for an unknown key (which would be refused).
        for _ in range(10):
            try:
                key = kms.keys[kms.any_id_to_key_id(key_id)]
            except RuntimeError:
                continue
            except Exception:  # noqa: BLE001 - an unknown key: its ARN as named, no policy (refused)
                break
            return key.arn, key.policy
        return key_id if key_id.startswith("arn:") else f"arn:aws:kms:{REGION}:{ACCOUNT}:key/{key_id}", None

    def dynamodb(self, operation, doc):
        """DynamoDB's actions and their resources (api-permissions-reference.html): a
        transaction is authorised item by item ("TransactWriteItems ... dynamodb:PutItem,
        dynamodb:UpdateItem, dynamodb:DeleteItem, dynamodb:ConditionCheckItem" for its parts),
        a batch per table; `dynamodb:LeadingKeys` is the partition key values the request
        names (none for a Scan)."""
        single = {"GetItem": "Key", "DeleteItem": "Key", "UpdateItem": "Key", "PutItem": "Item"}
        if operation in single:
            name = doc["TableName"]
            return [(f"dynamodb:{operation}", table_arn(name), self.leading(name, None, [doc[single[operation]]]))]
        if operation == "Query":
            name, index = doc["TableName"], doc.get("IndexName")
            return [("dynamodb:Query", table_arn(name, index), self.query_keys(name, index, doc))]
        if operation == "BatchGetItem":
            return [("dynamodb:BatchGetItem", table_arn(t), self.leading(t, None, spec.get("Keys", [])))
                    for t, spec in doc["RequestItems"].items()]
        if operation == "BatchWriteItem":
            out = []
            for t, reqs in doc["RequestItems"].items():
                items = [r["PutRequest"]["Item"] if "PutRequest" in r else r["DeleteRequest"]["Key"] for r in reqs]
                out.append(("dynamodb:BatchWriteItem", table_arn(t), self.leading(t, None, items)))
            return out
        if operation in ("TransactWriteItems", "TransactGetItems"):
            parts = {"Put": ("PutItem", "Item"), "Update": ("UpdateItem", "Key"), "Delete": ("DeleteItem", "Key"),
                     "ConditionCheck": ("ConditionCheckItem", "Key"), "Get": ("GetItem", "Key")}
            out = []
            for item in doc["TransactItems"]:
                (kind, spec), = item.items()
                action, field = parts[kind]
                out.append((f"dynamodb:{action}", table_arn(spec["TableName"]),
                            self.leading(spec["TableName"], None, [spec[field]])))
            return out
        if "TableName" in doc:
            return [(f"dynamodb:{operation}", table_arn(doc["TableName"]), {})]
        raise Refused(f"dynamodb:{operation} is not emulated")

    @staticmethod
    def hash_key(name, index):
        from moto.dynamodb.models import dynamodb_backends

        table = dynamodb_backends[ACCOUNT][REGION].get_table(name.rsplit("/", 1)[-1])
        if index is None:
            return table.hash_key_attr
        for ix in list(table.global_indexes) + list(table.indexes):
            if ix.name == index:
                return next(k["AttributeName"] for k in ix.schema if k["KeyType"] == "HASH")
        raise Refused(f"no index {index} on {name}")

    def leading(self, name, index, items):
        attr = self.hash_key(name, index)
        values = [attr_value(i.get(attr)) for i in items]
        return {"dynamodb:LeadingKeys": [v for v in values if v is not None]}

    def query_keys(self, name, index, doc):
        """The partition key value a query names: its key condition's `key = :value`."""
        attr = self.hash_key(name, index)
        names = doc.get("ExpressionAttributeNames") or {}
        values = doc.get("ExpressionAttributeValues") or {}
        for lhs, rhs in re.findall(r"(#?[\w.]+)\s*=\s*(:\w+)", doc.get("KeyConditionExpression", "")):
            if names.get(lhs, lhs) == attr and attr_value(values.get(rhs)) is not None:
                return {"dynamodb:LeadingKeys": [attr_value(values[rhs])]}
        legacy = (doc.get("KeyConditions") or {}).get(attr)
        if legacy:
            return {"dynamodb:LeadingKeys": [attr_value(v) for v in legacy.get("AttributeValueList", [])]}
        return {}

    # ---- EventBridge's delivery to a queue

    def rule_sends_to_queue(self, rule_arn, queue_name):
        """Whether the queue's policy lets EventBridge send for this rule: "make sure that the
        Amazon SQS queue has a resource-based policy that grants EventBridge permission to
        send messages" (eb-use-resource-based.html#eb-sqs-permissions), the rule as the
        `aws:SourceArn`."""
        arn = self.queue_arn(queue_name)
        ctx = {"aws:SourceArn": rule_arn, "aws:SourceAccount": ACCOUNT}
        allowed, why = decide(("service", "events.amazonaws.com"), [], self.queue_policy(arn),
                              "sqs:SendMessage", arn, ctx)
        self.count("events.amazonaws.com", "sqs:SendMessage", allowed)
        if not allowed:
            log(f"iam: AccessDenied: EventBridge rule {rule_arn} may not sqs:SendMessage to {arn} "
                "(no statement of the queue's policy allows it)")
        return allowed


def enforce_queue_policies(iam_of):
    """moto's EventBridge sends a rule's events to an SQS target without asking the queue's
    policy: wrapped, so a rule the policy does not name delivers nothing (AWS retries it, then
    sends it to the target's dead-letter queue; the harness logs and drops it). `iam_of()`
    answers the running Harness's Iam (or None: no check)."""
    from moto.events.models import Rule

    original = Rule._send_to_sqs_queue
    if getattr(original, "held_to_policy", False):
        return

    def send(self, resource_id, event, group_id=None):
        iam = iam_of()
        if iam is not None and not iam.rule_sends_to_queue(self.arn, resource_id):
            return None
        return original(self, resource_id, event, group_id)

    send.held_to_policy = True
    Rule._send_to_sqs_queue = send
