"""IAM, enforced on the stack (tests/harness/iam.py): each function's AWS calls are allowed or
refused by its own role, as AWS would.

  iam_test.py leading-keys --stack DIR   on a running stack: a `dynamodb:LeadingKeys` condition
                                         holds (an API function cannot read a `CLIENT#` item, the
                                         token function can read only those), a key policy holds
                                         (only the token function signs), a queue's grants hold
  iam_test.py trimmed                    starts a stack of its own from a copy of the template with
                                         `dynamodb:PutItem` taken out of the drafts function's
                                         policy, as an operator trimming it would: creating a
                                         draft is refused (AccessDeniedException, logged), nothing
                                         is written, reads still work
  iam_test.py usage --stack DIR          after the suites: no call of any function was refused,
                                         and each function's inline policy grants only actions it
                                         was seen to call (the action lists follow from the
                                         calls), but for the rare paths named here
"""

import argparse
import ast
import json
import os
import re
import sys
import tempfile
import urllib.error
import urllib.request

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import hosts  # noqa: E402
from harness.account import session_credentials  # noqa: E402

ROOT = hosts.ROOT


def fail(msg):
    raise SystemExit(f"iam test: {msg}")


def as_role(state, function, service):
    """A client calling as `function`'s execution role, with the session credentials the
    harness gives that function."""
    import boto3
    from botocore.config import Config

    key, secret, token = session_credentials(state["functions"][function]["role"])
    return boto3.client(service, region_name=state["region"], endpoint_url=state["endpoint"],
                        aws_access_key_id=key, aws_secret_access_key=secret, aws_session_token=token,
                        config=Config(retries={"max_attempts": 1}))


def refused(call, what):
    from botocore.exceptions import ClientError

    try:
        call()
    except ClientError as e:
        code = e.response["Error"]["Code"]
        if code not in ("AccessDeniedException", "AccessDenied"):
            fail(f"{what}: refused with {code}, not AccessDenied: {e}")
        return str(e)
    fail(f"{what}: allowed; its role's policies refuse it")


def leading_keys(stack_dir):
    state = json.load(open(os.path.join(stack_dir, "stack.json")))
    table = state["resources"]["Table"]
    drafts, token = as_role(state, "drafts", "dynamodb"), as_role(state, "token", "dynamodb")
    client_key = {"pk": {"S": "CLIENT#iam-test"}, "sk": {"S": "CLIENT"}}
    tenant_key = {"pk": {"S": "ACCOUNT#iam-test#DRAFT#d1"}, "sk": {"S": "DRAFT"}}
    # ClientItemsDenied: "ForAnyValue:StringLike dynamodb:LeadingKeys CLIENT#*, AUTH#*", Deny.
    why = refused(lambda: drafts.get_item(TableName=table, Key=client_key), "drafts reading a CLIENT# item")
    if "explicit deny in an identity-based policy" not in why:
        fail(f"the drafts function's refusal names the wrong reason: {why}")
    refused(lambda: drafts.query(TableName=table, KeyConditionExpression="pk = :p",
                                 ExpressionAttributeValues={":p": {"S": "AUTH#KEYS"}}), "drafts querying AUTH#KEYS")
    refused(lambda: as_role(state, "views", "dynamodb").batch_get_item(
        RequestItems={table: {"Keys": [tenant_key, client_key]}}), "views batch-reading a CLIENT# item among others")
    drafts.get_item(TableName=table, Key=tenant_key)  # its own partitions: allowed
    # The token function: "ForAllValues:StringLike dynamodb:LeadingKeys CLIENT#*, AUTH#KEYS", Allow.
    token.get_item(TableName=table, Key=client_key)
    refused(lambda: token.get_item(TableName=table, Key=tenant_key), "token reading a tenant's item")
    refused(lambda: token.put_item(TableName=table, Item={"pk": {"S": "AUTH#KEYS"}, "sk": {"S": "x"}}),
            "token writing AUTH#KEYS (its PutItem is held to CLIENT#*)")
    # The key policy: only the token function signs; the keys function reads the public key.
    kms_key = state["resources"].get("SigningKeyA") or state["resources"].get("SigningKeyB")
    digest = dict(Message=b"\0" * 32, MessageType="DIGEST", SigningAlgorithm="RSASSA_PKCS1_V1_5_SHA_256")
    refused(lambda: as_role(state, "drafts", "kms").sign(KeyId=kms_key, **digest), "drafts signing")
    refused(lambda: as_role(state, "keys", "kms").sign(KeyId=kms_key, **digest), "keys signing")
    as_role(state, "keys", "kms").get_public_key(KeyId=kms_key)
    # A queue: the hooks function sends to the delivery queue but does not consume it.
    queue = state["resources"]["DeliveryQueue"]
    refused(lambda: as_role(state, "hooks", "sqs").receive_message(QueueUrl=queue), "hooks receiving deliveries")
    with urllib.request.urlopen(state["control"] + "/iam", timeout=10) as res:
        report = json.loads(res.read())
    drafts_role = state["functions"]["drafts"]["role"]
    if not report.get(drafts_role, {}).get("denied", {}).get("dynamodb:GetItem"):
        fail(f"the stack's IAM report does not count the drafts function's refused GetItem: {report.get(drafts_role)}")
    print("iam leading-keys: LeadingKeys conditions, the key policy and the queue's grants hold on the stack")


def trimmed_template(dest):
    """infra/template.yaml with `dynamodb:PutItem` taken out of the drafts function's policy."""
    text = open(os.path.join(ROOT, "infra", "template.yaml")).read()
    start = text.index("\n  DraftsFunction:\n")
    end = text.index("\n  DraftsLogGroup:\n")
    block = text[start:end]
    cut = re.sub(r"\n +- dynamodb:PutItem(?=\n)", "", block, count=1)
    if cut == block:
        fail("the drafts function's policy has no `- dynamodb:PutItem` line to take out")
    with open(dest, "w") as f:
        f.write(text[:start] + cut + text[end:])


def trimmed():
    template = os.path.join(tempfile.mkdtemp(prefix="iam-template-"), "template.yaml")
    trimmed_template(template)
    with hosts.own_stack("iam-trimmed", "--template", template) as (data, _):
        host = hosts.StackHost(data)
        aid = "T10000042"
        tok = hosts.token(host, aid, "admin:shopping")

        def call(method, path, body=None):
            req = urllib.request.Request(f"{host.base}/v1/accounts/{aid}/shopping{path}", method=method,
                                         data=None if body is None else json.dumps(body).encode(),
                                         headers={"Authorization": f"Bearer {tok}", "Content-Type": "application/json"})
            try:
                with urllib.request.urlopen(req, timeout=60) as res:
                    return res.status, json.loads(res.read() or b"null")
            except urllib.error.HTTPError as e:
                return e.code, json.loads(e.read() or b"null")

        status, body = call("POST", "/draft_orders", {"order": {"currency": "NOK", "customer": {"id": "cust-1"}}})
        if status < 500:
            fail(f"creating a draft without dynamodb:PutItem answered {status} {body}; AWS would refuse the write")
        stack_log = open(os.path.join(data, "stack.log")).read()
        if not re.search(r"iam: AccessDenied: \S*DraftsFunctionRole\S* may not dynamodb:PutItem", stack_log):
            fail("the stack's log does not say the drafts function's PutItem was refused")
        drafts_log = open(os.path.join(data, "logs", "drafts.log")).read()
        if "AccessDenied" not in drafts_log:
            fail("the drafts function's log does not show the AccessDeniedException it got")
        created = status
        status, listed = call("GET", "/draft_orders")
        if status != 200 or not isinstance(listed, dict) or "draft_orders" not in listed:
            fail(f"listing drafts (reads are still granted) answered {status} {listed}")
        items = listed["draft_orders"]
        if items:
            fail(f"a refused write left a draft behind: {items}")
        print(f"iam trimmed: without dynamodb:PutItem the drafts function's write is refused ({created} on "
              "create, AccessDeniedException logged), nothing written, reads still served")


# Granted for a path the suites do not take on a healthy stack, each with the code that takes it
# (a grant that only these paths use would otherwise be reported unused and taken out, and the
# path would fail on AWS).
RARE_PATHS = {
    # The stream mapping's on-failure destination: Lambda sends a failed batch's description
    # with the function's role (tests/suites/stack_mappings_test.py takes that path).
    ("publisher", "sqs:SendMessage"),
    # A completion's order read by its order_id when its own id no longer answers
    # (functions/src/app/aggregate.rs load_order, from the publisher's completed_orders).
    ("publisher", "dynamodb:GetItem"),
    # A chosen order_id shaped like an id must not be another order's id: a ConditionCheck in
    # the completion's transaction (domain/src/draft/complete.rs).
    ("drafts", "dynamodb:ConditionCheckItem"),
    # A failed webhook attempt's back-off, and a job another deliverer holds, postponed
    # (functions/src/workers/deliverer.rs: queue.postpone).
    ("deliverer", "sqs:ChangeMessageVisibility"),
    # A draft list's `starting_after` cursor and an `Idempotency-Key` replayed
    # (functions/src/api/drafts.rs, functions/src/app/idempotency.rs).
    ("drafts", "dynamodb:GetItem"),
    # A credential stored under the legacy keyed hash is rehashed on its next token
    # (functions/src/api/issuer/token.rs; functions/tests/issuer.rs takes that path).
    ("token", "dynamodb:PutItem"),
}


def granted(state, function):
    """The actions a function's inline policies grant (its managed policies: the harness's
    ClientItemsDenied and SAM's execution roles, not ours to trim)."""
    import boto3

    iam = boto3.client("iam", region_name=state["region"], endpoint_url=state["endpoint"],
                       aws_access_key_id="test", aws_secret_access_key="test")
    role = state["functions"][function]["role"].rsplit("/", 1)[-1]
    actions = set()
    for name in iam.list_role_policies(RoleName=role)["PolicyNames"]:
        doc = iam.get_role_policy(RoleName=role, PolicyName=name)["PolicyDocument"]
        if isinstance(doc, str):
            # moto keeps a policy given as an object in its Python form (as the rehearsal reads it).
            doc = json.loads(doc) if doc.startswith('{"') else ast.literal_eval(doc)
        for st in filter(None, doc["Statement"]):
            if st["Effect"] == "Allow":
                actions.update(st["Action"] if isinstance(st["Action"], list) else [st["Action"]])
    return actions


def usage(stack_dir):
    state = json.load(open(os.path.join(stack_dir, "stack.json")))
    with urllib.request.urlopen(state["control"] + "/iam", timeout=10) as res:
        report = json.loads(res.read())
    problems = []
    for short, fn in sorted(state["functions"].items()):
        seen = report.get(fn["role"], {"allowed": {}, "denied": {}})
        # The leading-keys check's refusals are its own; any other is a function's call refused.
        denied = {a: n for a, n in seen["denied"].items()}
        called = set(seen["allowed"])
        grants = granted(state, short)
        unused = sorted(a for a in grants - called if (short, a) not in RARE_PATHS)
        print(f"iam usage: {short}: called {', '.join(sorted(called)) or 'nothing'}"
              + (f"; refused {denied}" if denied else ""))
        if unused:
            problems.append(f"{short}'s policy grants {unused}, which it never called: take them out")
    with_refusals = {s: report[f["role"]]["denied"] for s, f in state["functions"].items()
                     if report.get(f["role"], {}).get("denied")}
    if with_refusals:
        problems.append(f"calls were refused: {with_refusals} (see iam: lines in stack.log)")
    refused_deliveries = report.get("events.amazonaws.com", {}).get("denied")
    if refused_deliveries:
        problems.append(f"EventBridge could not deliver to a queue: {refused_deliveries}")
    if problems:
        fail("; ".join(problems))
    print("iam usage: no call refused; every action granted was called")


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("check", choices=["leading-keys", "trimmed", "usage"])
    parser.add_argument("--stack")
    args = parser.parse_args()
    if args.check != "trimmed" and not args.stack:
        parser.error("--stack DIR is needed")
    {"leading-keys": lambda: leading_keys(args.stack), "trimmed": trimmed, "usage": lambda: usage(args.stack)}[args.check]()
    return 0


if __name__ == "__main__":
    sys.exit(main())
