"""Deploy rehearsal: the SAM template, transformed offline the way CloudFormation's SAM
transform does it (aws-sam-translator), deployed into the emulator's CloudFormation (moto),
and the stack checked for what the emulator keeps: the table's keys, indexes and stream; the
queues and their redrive; the bus, its rule and the rule's queue target; every function with
its environment; both event source mappings; and each role's inline policy naming only what
its function uses. The transform and the shims moto needs to deploy the template as AWS does
are the stack harness's (tests/harness/template.py and shims.py), so both deploy alike.

Usage: deploy_rehearsal.py   (run with the test virtualenv's python: moto, boto3,
aws-sam-translator and cfn-lint). Exits non-zero on the first thing that does not hold.
"""

import ast
import io
import json
import logging
import os
import sys
import warnings
import zipfile

import boto3
from moto import mock_aws

import event_registry

# The stack harness, tests/harness, is a package beside this folder.
sys.path.insert(1, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from harness.shims import REGISTRIES, install_shims  # noqa: E402
from harness.template import FUNCTIONS, transformed  # noqa: E402

REGION = "us-east-1"
STACK = "shopping-rehearsal"
# The keys function exists only when the stack is its own issuer (JwtIssuer empty).
OWN_ISSUER_ONLY = {"Keys"}

# Which actions each function's policy grants is not kept here: the stack enforces IAM on
# every call (tests/harness/iam.py), so a missing grant fails the suites that make the call, and
# tests/suites/iam_test.py usage fails a grant that no suite was seen to call.
# The partitions each of the token function's table actions is held to.
TOKEN_LEADING_KEYS = {"dynamodb:GetItem": ["CLIENT#*", "AUTH#KEYS"], "dynamodb:PutItem": ["CLIENT#*"]}
# No function may read the whole table: Scan, PartiQL and exports ignore dynamodb:LeadingKeys
# ("The list of actions does not include permissions for Scan because Scan returns all items
# regardless of the leading keys", DynamoDB developer guide, "Using IAM policy conditions for
# fine-grained access control").
WHOLE_TABLE = {"dynamodb:*", "dynamodb:Scan", "dynamodb:PartiQLSelect", "dynamodb:PartiQLInsert",
               "dynamodb:PartiQLUpdate", "dynamodb:PartiQLDelete", "dynamodb:ExecuteStatement",
               "dynamodb:BatchExecuteStatement", "dynamodb:ExecuteTransaction", "dynamodb:ExportTableToPointInTime",
               "dynamodb:RestoreTableToPointInTime", "dynamodb:CreateBackup", "dynamodb:GetRecords"}


def fail(msg: str) -> None:
    raise SystemExit(f"deploy rehearsal: {msg}")


def check(cond: bool, msg: str) -> None:
    if not cond:
        fail(msg)


def start_emulator():
    """The emulator, in this process (every call stays on loopback-free in-memory state)."""
    install_shims()
    mock = mock_aws()
    mock.start()
    return mock


def subscribers(events, bus: str, body: dict, stack: dict, resources: dict, given: dict) -> None:
    """What EventBridge subscribers get: the schema registry (every type, as
    event_registry.py generates it), the archive, the bus policy for other accounts."""
    outputs = {o["OutputKey"]: o["OutputValue"] for o in stack.get("Outputs", [])}
    registry = REGISTRIES.get(outputs.get("EventSchemaRegistryName"), {})
    check(sorted(registry) == sorted(event_registry.TYPES), f"registered schemas {sorted(registry)}")
    for t, (kind, content) in registry.items():
        check(kind == "JSONSchemaDraft4" and json.loads(content) == event_registry.registered(t),
              f"the registered {t} is not events/schemas/{t}.json as an EventBridge event")
    days = int(given.get("EventArchiveRetentionDays", "30"))
    if days:
        check("EventArchive" in resources, f"no archive: {sorted(resources)}")
        arn = outputs.get("EventArchiveArn", "")
        archive = events.describe_archive(ArchiveName=arn.rsplit("/", 1)[-1])
        # (moto answers the template's text; AWS an integer.)
        check(int(archive["RetentionDays"]) == days and archive["EventSourceArn"].endswith(f"event-bus/{bus}"),
              f"archive {archive}")
        check(arn == archive["ArchiveArn"], f"EventArchiveArn {arn}")
    else:
        check("EventArchive" not in resources and not outputs.get("EventArchiveArn"),
              f"no archive with 0 days: {outputs.get('EventArchiveArn')} {resources.get('EventArchive')}")
    policy = events.describe_event_bus(Name=bus).get("Policy")
    accounts = [a for a in given.get("SubscriberAccountIds", "").split(",") if a]
    org = given.get("SubscriberOrganizationId", "")
    if not accounts and not org:
        check(policy is None, f"a bus without subscribers grants nothing: {policy}")
        return
    statements = {st["Sid"]: st for st in json.loads(policy)["Statement"]}
    rules = f"arn:aws:events:{REGION}:123456789012:rule/{bus}/*"
    for sid, on in (("subscriber-accounts-own-rules", bool(accounts)), ("subscriber-organization-own-rules", bool(org))):
        check((sid in statements) == on, f"bus policy statements {sorted(statements)}")
        if on:
            st = statements[sid]
            check(st["Effect"] == "Allow" and st["Resource"] == rules, f"{sid}: {st}")
            check("events:PutEvents" not in st["Action"] and "events:PutRule" in st["Action"], f"{sid} actions {st['Action']}")
            own = st["Condition"]["StringEqualsIfExists"]["events:creatorAccount"]
            check(own == "${aws:PrincipalAccount}", f"{sid}: rules of the caller's own only: {st['Condition']}")
    if accounts:
        principal = statements["subscriber-accounts-own-rules"]["Principal"]["AWS"]
        check(sorted(principal if isinstance(principal, list) else [principal]) == sorted(accounts), f"principals {principal}")
    if org:
        cond = statements["subscriber-organization-own-rules"]["Condition"]["StringEquals"]
        check(cond == {"aws:PrincipalOrgID": org}, f"organization condition {cond}")


def rehearse(aws, bucket: str, key: str, STACK: str, params: list, functions: list):
    """Transforms the template with `params`, deploys it as stack `STACK` and checks what every
    stack holds; answers the stack, its resources and a logical → physical id lookup."""
    body = transformed(bucket, key, {p["ParameterKey"]: p["ParameterValue"] for p in params})
    kinds = sorted({r["Type"] for r in body["Resources"].values()})
    print(f"transformed: {len(body['Resources'])} resources of {len(kinds)} kinds")
    cfn = aws("cloudformation")
    cfn.create_stack(StackName=STACK, TemplateBody=json.dumps(body), Parameters=params, Capabilities=["CAPABILITY_IAM"])
    stack = cfn.describe_stacks(StackName=STACK)["Stacks"][0]
    check(stack["StackStatus"] == "CREATE_COMPLETE", f"stack is {stack['StackStatus']}: {stack.get('StackStatusReason')}")
    resources = {r["LogicalResourceId"]: r for r in cfn.list_stack_resources(StackName=STACK)["StackResourceSummaries"]}
    print(f"deployed: {stack['StackStatus']}, {len(resources)} resources")
    physical = lambda logical: resources[logical]["PhysicalResourceId"]  # noqa: E731

    # The table: keys, both indexes with their keys and projection, the stream.
    table = aws("dynamodb").describe_table(TableName=physical("Table"))["Table"]
    keys = lambda schema: [(k["AttributeName"], k["KeyType"]) for k in schema]  # noqa: E731
    check(keys(table["KeySchema"]) == [("pk", "HASH"), ("sk", "RANGE")], f"table keys {table['KeySchema']}")
    gsis = {g["IndexName"]: g for g in table.get("GlobalSecondaryIndexes", [])}
    for n in ("gsi1", "gsi2"):
        check(n in gsis, f"index {n} missing: {sorted(gsis)}")
        check(keys(gsis[n]["KeySchema"]) == [(f"{n}pk", "HASH"), (f"{n}sk", "RANGE")], f"{n} keys")
        check(set(gsis[n]["Projection"].get("NonKeyAttributes", [])) == {"sum", "ttl"}, f"{n} projection")
    check(table.get("StreamSpecification", {}).get("StreamViewType") == "NEW_AND_OLD_IMAGES", "table stream")
    check(table.get("BillingModeSummary", {}).get("BillingMode", "PAY_PER_REQUEST") == "PAY_PER_REQUEST", "billing")

    # The queues and their redrive.
    sqs = aws("sqs")
    attrs = lambda q: sqs.get_queue_attributes(QueueUrl=physical(q), AttributeNames=["All"])["Attributes"]  # noqa: E731
    delivery, dlq, failures = attrs("DeliveryQueue"), attrs("DeliveryDeadLetterQueue"), attrs("PipelineFailureQueue")
    redrive = json.loads(delivery["RedrivePolicy"])
    check(redrive["deadLetterTargetArn"] == dlq["QueueArn"], f"delivery queue redrive {redrive}")
    check(int(redrive["maxReceiveCount"]) == 8, f"delivery queue receives {redrive}")
    check(delivery["VisibilityTimeout"] == "360", "delivery queue visibility")
    for q in (dlq, failures):
        check(q["MessageRetentionPeriod"] == "1209600", "dead letters are kept 14 days")

    # The bus, its rule and the rule's target.
    events = aws("events")
    bus = physical("EventBus")
    check(any(b["Name"] == bus for b in events.list_event_buses()["EventBuses"]), f"bus {bus} missing")
    # (moto puts an archive's own rule on the bus, `Events-Archive-…`; AWS keeps it hidden.)
    rules = [r for r in events.list_rules(EventBusName=bus)["Rules"] if not r["Name"].startswith("Events-Archive-")]
    check(len(rules) == 1, f"rules on the bus: {rules}")
    pattern = json.loads(rules[0]["EventPattern"])
    given = {p["ParameterKey"]: p["ParameterValue"] for p in params}
    ours = {"source": [{"prefix": "shopping."}], "detail-type": [{"prefix": "shopping_"}]}
    if given.get("WebhooksForReplays") != "true":
        ours["replay-name"] = [{"exists": False}]
    check(pattern == ours, f"the webhook rule's pattern {pattern}")
    targets = events.list_targets_by_rule(Rule=rules[0]["Name"], EventBusName=bus)["Targets"]
    check([t["Arn"] for t in targets] == [delivery["QueueArn"]], f"rule targets {targets}")
    subscribers(events, bus, body, stack, resources, given)

    # Every function, with its environment and its role's inline policy.
    lam, iam = aws("lambda"), aws("iam")
    for name in functions:
        fn = lam.get_function(FunctionName=physical(f"{name}Function"))["Configuration"]
        env = fn.get("Environment", {}).get("Variables", {})
        check(env.get("TABLE_NAME") == physical("Table"), f"{name}: TABLE_NAME {env}")
        check(fn["Handler"] == "bootstrap" and fn["Runtime"] == "provided.al2023", f"{name}: runtime")
        if name == "Publisher":
            check(env.get("EVENT_BUS_NAME") == bus, f"{name}: EVENT_BUS_NAME {env}")
        if name in ("Hooks", "Deliverer"):
            check(env.get("DELIVERY_QUEUE_URL") == physical("DeliveryQueue"), f"{name}: DELIVERY_QUEUE_URL {env}")
        role = fn["Role"].rsplit("/", 1)[-1]
        allowed, resources_named = set(), []
        for pname in iam.list_role_policies(RoleName=role)["PolicyNames"]:
            doc = iam.get_role_policy(RoleName=role, PolicyName=pname)["PolicyDocument"]
            if isinstance(doc, str):
                # moto keeps a policy given as an object in its Python form.
                doc = json.loads(doc) if doc.startswith('{"') else ast.literal_eval(doc)
            # moto leaves an `AWS::NoValue` in a list as null where CloudFormation drops it.
            for st in filter(None, doc["Statement"]):
                check(st["Effect"] == "Allow", f"{name}: an inline policy denies {st}")
                acts = st["Action"] if isinstance(st["Action"], list) else [st["Action"]]
                allowed.update(acts)
                if name == "Token":
                    leading = st.get("Condition", {}).get("ForAllValues:StringLike", {}).get("dynamodb:LeadingKeys")
                    for act in acts:
                        check(leading == TOKEN_LEADING_KEYS.get(act),
                              f"Token: {act} must be held to {TOKEN_LEADING_KEYS.get(act)}, is held to {leading}")
                res = st["Resource"] if isinstance(st["Resource"], list) else [st["Resource"]]
                resources_named.extend(res)
        # Every function but the token and keys functions has the policy denying the API
        # clients' items.
        # (Read from what CloudFormation is given: moto's roles do not attach the managed
        # policies a template names.)
        managed = body["Resources"][f"{name}FunctionRole"]["Properties"].get("ManagedPolicyArns", [])
        denies = {"Ref": "ClientItemsDenied"} in managed
        check(denies == (name not in ("Token", "Keys")), f"{name}: ClientItemsDenied attached: {denies}")
        # (The publisher's stream reads come from its event source mapping's managed policy.)
        check(not (allowed & WHOLE_TABLE), f"{name}: may read the whole table: {sorted(allowed & WHOLE_TABLE)}")
        check("*" not in resources_named, f"{name}: an inline policy names every resource")

    # Both event source mappings: the stream feeds the publisher, the queue the deliverer.
    mappings = lam.list_event_source_mappings()["EventSourceMappings"]
    by_source = {m["EventSourceArn"]: m for m in mappings}
    stream = table["LatestStreamArn"]
    check(stream in by_source, f"no mapping from the stream: {list(by_source)}")
    check(physical("PublisherFunction") in by_source[stream]["FunctionArn"], "the stream feeds the publisher")
    check(delivery["QueueArn"] in by_source, f"no mapping from the delivery queue: {list(by_source)}")
    check(physical("DelivererFunction") in by_source[delivery["QueueArn"]]["FunctionArn"], "the queue feeds the deliverer")

    outputs = {o["OutputKey"] for o in stack.get("Outputs", [])}
    for name in ("ApiUrl", "TableStreamArn", "EventBusArn", "PipelineFailureQueueUrl", "DeliveryDeadLetterQueueUrl",
                 "EventSchemaRegistryName", "EventSourcePrefix"):
        check(name in outputs, f"output {name} missing: {sorted(outputs)}")
    # The policy that denies the API clients' items, as deployed.
    policy = iam.get_policy(PolicyArn=physical("ClientItemsDenied"))["Policy"]
    doc = iam.get_policy_version(PolicyArn=policy["Arn"], VersionId=policy["DefaultVersionId"])["PolicyVersion"]["Document"]
    if isinstance(doc, str):
        doc = json.loads(doc) if doc.startswith("{") else ast.literal_eval(doc)
    (st,) = doc["Statement"]
    leading = st.get("Condition", {}).get("ForAnyValue:StringLike", {}).get("dynamodb:LeadingKeys")
    check(st["Effect"] == "Deny" and leading == ["CLIENT#*", "AUTH#*"], f"ClientItemsDenied: {st}")
    # The token route is throttled on its own, below the API's default.
    stage = next(r for r in body["Resources"].values() if r["Type"] == "AWS::ApiGatewayV2::Stage")
    route = stage["Properties"].get("RouteSettings", {}).get("POST /v1/accounts/{aid}/auth/token", {})
    check(set(route) == {"ThrottlingRateLimit", "ThrottlingBurstLimit"}, f"the token route's own throttle: {stage}")
    return stack, resources, physical, body


def check_key_policy(aws, physical, slot: str) -> None:
    """Only the token function's role may sign with the key, only the keys function's read its
    public part; the account administers it but can neither sign nor grant (an IAM policy
    allowing kms:Sign on "*" gives nothing, since the key policy gives the account no kms:Sign)."""
    kms, iam = aws("kms"), aws("iam")
    key_id = physical(f"SigningKey{slot}")
    meta = kms.describe_key(KeyId=key_id)["KeyMetadata"]
    check(meta["Enabled"] and meta["KeySpec"] == "RSA_2048" and meta["KeyUsage"] == "SIGN_VERIFY",
          f"signing key {slot}: {meta}")
    check("RSASSA_PKCS1_V1_5_SHA_256" in meta.get("SigningAlgorithms", []), f"signing key {slot} signs RS256: {meta}")
    policy = json.loads(kms.get_key_policy(KeyId=key_id, PolicyName="default")["Policy"])
    role = lambda logical: iam.get_role(RoleName=physical(logical))["Role"]["Arn"]  # noqa: E731
    token, keys = role("TokenFunctionRole"), role("KeysFunctionRole")
    arn = lambda v: v if isinstance(v, str) else next(iter(v.values()))  # noqa: E731

    def principals(st):
        p = st.get("Principal", {})
        p = p.get("AWS", p) if isinstance(p, dict) else p
        return [arn(x) for x in (p if isinstance(p, list) else [p])]

    def allowed_to(action):
        return sorted(pr for st in policy["Statement"] if st["Effect"] == "Allow"
                      for pr in principals(st)
                      for a in (st["Action"] if isinstance(st["Action"], list) else [st["Action"]])
                      if a in (action, "kms:*") or (a.endswith("*") and action.startswith(a[:-1])))
    check(allowed_to("kms:Sign") == [token], f"key {slot}: kms:Sign allowed to {allowed_to('kms:Sign')}, not the token role alone")
    check(allowed_to("kms:CreateGrant") == [], f"key {slot}: grants allowed to {allowed_to('kms:CreateGrant')}")
    check(keys in allowed_to("kms:GetPublicKey"), f"key {slot}: the keys function cannot read the public key")
    check(any(pr.endswith(":root") for pr in allowed_to("kms:PutKeyPolicy")), f"key {slot}: nobody administers it")
    denies = [st for st in policy["Statement"] if st["Effect"] == "Deny"]
    check(any("kms:Sign" in st["Action"] and token in json.dumps(st.get("Condition")) for st in denies),
          f"key {slot}: no deny of kms:Sign to every other principal: {denies}")


def main() -> int:
    # moto says, for each resource type it does not model, that it skipped it: expected here.
    warnings.filterwarnings("ignore", category=UserWarning)
    logging.disable(logging.WARNING)

    os.environ.update(AWS_ACCESS_KEY_ID="test", AWS_SECRET_ACCESS_KEY="test", AWS_DEFAULT_REGION=REGION)
    start_emulator()
    aws = lambda service: boto3.client(service, region_name=REGION)  # noqa: E731

    bucket, key = "rehearsal-code", "bootstrap.zip"
    aws("s3").create_bucket(Bucket=bucket)
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        z.writestr("bootstrap", "#!/bin/sh\n")
    aws("s3").put_object(Bucket=bucket, Key=key, Body=buf.getvalue())
    lam = aws("lambda")

    def env_of(physical, name):
        fn = lam.get_function(FunctionName=physical(f"{name}Function"))["Configuration"]
        return fn.get("Environment", {}).get("Variables", {})

    # The default: the stack is its own issuer. Its key signs RS256 in KMS; the keys function's
    # public URL is the issuer the authorizer and the token function name.
    own = [{"ParameterKey": "JwtAudience", "ParameterValue": "shopping"}]
    stack, resources, physical, body = rehearse(aws, bucket, key, STACK, own, FUNCTIONS)
    check("SigningKeyB" not in resources, "one key slot at rest")
    check_key_policy(aws, physical, "A")
    url = lam.get_function_url_config(FunctionName=physical("KeysFunction"))
    check(url["AuthType"] == "NONE", f"the issuer's URL is public: {url}")
    token_env, keys_env = env_of(physical, "Token"), env_of(physical, "Keys")
    check(token_env.get("SIGNING_KEY_ID") == physical("SigningKeyA"), f"token signs with slot A: {token_env}")
    check(token_env.get("TOKEN_ISSUER") == url["FunctionUrl"] + "/", f"token's issuer is the keys URL: {token_env}")
    check(token_env.get("TOKEN_AUDIENCE") == "shopping", f"token's audience: {token_env}")
    check(keys_env.get("SIGNING_KEY_ID") == physical("SigningKeyA") and not keys_env.get("STANDBY_KEY_ID"),
          f"keys publishes slot A alone: {keys_env}")
    outputs = {o["OutputKey"]: o["OutputValue"] for o in stack.get("Outputs", [])}
    check(outputs.get("IssuerUrl") == url["FunctionUrl"] + "/", f"IssuerUrl output {outputs.get('IssuerUrl')}")
    check("TokenUrl" in outputs and "SigningKeyId" in outputs, f"token outputs: {sorted(outputs)}")

    # A rotation's first step: slot B is published while slot A signs; its second: B signs, A
    # is still published.
    for signing, standby in (("A", "B"), ("B", "A")):
        params = own + [{"ParameterKey": "SigningKeySlot", "ParameterValue": signing},
                        {"ParameterKey": "StandbyKeySlot", "ParameterValue": standby}]
        name = f"{STACK}-signs-{signing}-publishes-{standby}"
        stack, resources, physical, body = rehearse(aws, bucket, key, name, params, FUNCTIONS)
        token_env, keys_env = env_of(physical, "Token"), env_of(physical, "Keys")
        check(token_env.get("SIGNING_KEY_ID") == physical(f"SigningKey{signing}"),
              f"token signs with slot {signing}: {token_env}")
        check(keys_env.get("SIGNING_KEY_ID") == physical(f"SigningKey{signing}")
              and keys_env.get("STANDBY_KEY_ID") == physical(f"SigningKey{standby}"),
              f"keys publishes {signing} then {standby}: {keys_env}")
        for slot in (signing, standby):
            check_key_policy(aws, physical, slot)

    # An outside identity provider: no key, no keys function; the token function only serves
    # the reference (its token route answers that tokens come from the provider).
    outside = [{"ParameterKey": "JwtIssuer", "ParameterValue": "https://auth.example.com/"},
               {"ParameterKey": "JwtAudience", "ParameterValue": "shopping"}]
    stack, resources, physical, body = rehearse(aws, bucket, key, STACK + "-outside", outside,
                                                [f for f in FUNCTIONS if f not in OWN_ISSUER_ONLY])
    check(not {"SigningKeyA", "SigningKeyB", "KeysFunction"} & set(resources), f"no own issuer: {sorted(resources)}")
    check(not env_of(physical, "Token").get("SIGNING_KEY_ID"), "no signing key with an outside issuer")

    # Subscribers in other accounts and an organization, no archive, replays to webhooks.
    open_bus = own + [{"ParameterKey": "SubscriberAccountIds", "ParameterValue": "111111111111,222222222222"},
                      {"ParameterKey": "SubscriberOrganizationId", "ParameterValue": "o-abcdefghij"},
                      {"ParameterKey": "EventArchiveRetentionDays", "ParameterValue": "0"},
                      {"ParameterKey": "WebhooksForReplays", "ParameterValue": "true"}]
    rehearse(aws, bucket, key, STACK + "-subscribers", open_bus, FUNCTIONS)
    print("deploy rehearsal: the stacks hold what the template says")
    return 0


if __name__ == "__main__":
    sys.exit(main())
