"""The harness's policy evaluation (tests/harness/iam.py `decide`) against the sentences of AWS's
IAM pages it follows (quoted in iam.py and FIDELITY.md, "IAM"): one case per rule the stack's
policies rely on. Runs without the emulator: `python tests/suites/iam_eval_test.py`.
"""

import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from harness.iam import ROOT_ARN, decide  # noqa: E402

ROLE = "arn:aws:iam::123456789012:role/shopping-DraftsFunctionRole-X"
OTHER = "arn:aws:iam::123456789012:role/shopping-TokenFunctionRole-Y"
TABLE = "arn:aws:dynamodb:us-east-1:123456789012:table/shopping-Table-Z"
KEY = "arn:aws:kms:us-east-1:123456789012:key/k"
QUEUE = "arn:aws:sqs:us-east-1:123456789012:delivery"
RULE = "arn:aws:events:us-east-1:123456789012:rule/bus/delivery"


def policy(*statements):
    return {"Version": "2012-10-17", "Statement": list(statements)}


def allow(action, resource=TABLE, **cond):
    st = {"Effect": "Allow", "Action": action, "Resource": resource}
    if cond:
        st["Condition"] = cond
    return st


def deny(action, resource=TABLE, **cond):
    return {**allow(action, resource, **cond), "Effect": "Deny"}


def expect(outcome, want, what):
    if outcome[0] != want:
        raise SystemExit(f"iam eval: {what}: {'allowed' if outcome[0] else 'refused'} ({outcome[1]}), expected "
                         f"{'allowed' if want else 'refused'}")


def leading(*keys):
    return {"dynamodb:LeadingKeys": list(keys)}


def main():
    grants = [policy(allow(["dynamodb:GetItem", "dynamodb:Query"]))]
    expect(decide(ROLE, grants, None, "dynamodb:GetItem", TABLE, {}), True, "an identity policy's allow")
    expect(decide(ROLE, grants, None, "DynamoDB:getitem", TABLE, {}), True, "action names are case insensitive")
    expect(decide(ROLE, grants, None, "dynamodb:PutItem", TABLE, {}), False, "an action no policy names")
    expect(decide(ROLE, grants, None, "dynamodb:GetItem", TABLE + "/index/gsi1", {}), False,
           "an index is a resource of its own")

    # ClientItemsDenied: a Deny ForAnyValue:StringLike on the leading keys wins over any allow.
    denied = grants + [policy(deny("dynamodb:*", **{"ForAnyValue:StringLike": {"dynamodb:LeadingKeys": ["CLIENT#*", "AUTH#*"]}}))]
    expect(decide(ROLE, denied, None, "dynamodb:GetItem", TABLE, leading("CLIENT#c1")), False, "an explicit deny wins")
    expect(decide(ROLE, denied, None, "dynamodb:GetItem", TABLE, leading("ACCOUNT#a")), True, "a deny whose condition fails")
    expect(decide(ROLE, denied, None, "dynamodb:Query", TABLE, leading("ACCOUNT#a", "AUTH#KEYS")), False,
           "ForAnyValue: one value matching is enough")
    expect(decide(ROLE, denied, None, "dynamodb:Query", TABLE, {}), True,
           "ForAnyValue \"returns false if there are no keys\": the deny does not apply")

    # The token function: Allow ForAllValues:StringLike on the leading keys.
    held = [policy(allow("dynamodb:GetItem", **{"ForAllValues:StringLike": {"dynamodb:LeadingKeys": ["CLIENT#*", "AUTH#KEYS"]}}))]
    expect(decide(OTHER, held, None, "dynamodb:GetItem", TABLE, leading("CLIENT#c1")), True, "ForAllValues: every value matches")
    expect(decide(OTHER, held, None, "dynamodb:GetItem", TABLE, leading("ACCOUNT#a")), False, "ForAllValues: a value outside")
    expect(decide(OTHER, held, None, "dynamodb:GetItem", TABLE, {}), True,
           "ForAllValues \"also returns true if there are no keys\" (why no policy grants Scan)")

    # Single-valued operators and a missing key.
    only_if = [policy(allow("dynamodb:GetItem", **{"StringEqualsIfExists": {"aws:SourceVpc": "vpc-1"}}))]
    expect(decide(ROLE, only_if, None, "dynamodb:GetItem", TABLE, {}), True, "...IfExists: a missing key passes")
    needs = [policy(allow("dynamodb:GetItem", **{"StringEquals": {"aws:SourceVpc": "vpc-1"}}))]
    expect(decide(ROLE, needs, None, "dynamodb:GetItem", TABLE, {}), False, "a missing key \"does not match\"")
    unlike = [policy(allow("dynamodb:GetItem", **{"StringNotLike": {"aws:SourceVpc": "vpc-*"}}))]
    expect(decide(ROLE, unlike, None, "dynamodb:GetItem", TABLE, {}), True, "StringNotLike: a missing key \"is true\"")

    # A key policy: "unless the key policy explicitly allows it, you cannot use IAM policies".
    signer = [policy(allow("kms:Sign", KEY))]
    key_policy = policy(
        {"Effect": "Allow", "Principal": {"AWS": ROOT_ARN}, "Action": ["kms:Describe*", "kms:Get*"], "Resource": "*"},
        {"Effect": "Allow", "Principal": {"AWS": OTHER}, "Action": "kms:Sign", "Resource": "*"},
        {"Effect": "Deny", "Principal": "*", "Action": "kms:Sign", "Resource": "*",
         "Condition": {"ArnNotEquals": {"aws:PrincipalArn": OTHER}}})
    ctx = lambda who: {"aws:PrincipalArn": who}  # noqa: E731
    expect(decide(OTHER, [], key_policy, "kms:Sign", KEY, ctx(OTHER), True), True, "the key policy names the signer")
    expect(decide(ROLE, signer, key_policy, "kms:Sign", KEY, ctx(ROLE), True), False,
           "an identity policy cannot grant what the key policy does not (and the deny)")
    expect(decide(ROLE, [policy(allow("kms:GetPublicKey", KEY))], key_policy, "kms:GetPublicKey", KEY, ctx(ROLE), True), True,
           "the key policy delegating to the account (root): the identity policy then decides")
    expect(decide(ROLE, [], key_policy, "kms:GetPublicKey", KEY, ctx(ROLE), True), False,
           "delegated to the account, but no identity policy allows it")

    # A queue policy: EventBridge's rule as aws:SourceArn.
    queue_policy = policy({"Effect": "Allow", "Principal": {"Service": "events.amazonaws.com"}, "Action": "sqs:SendMessage",
                           "Resource": QUEUE, "Condition": {"ArnEquals": {"aws:SourceArn": RULE}}})
    service = ("service", "events.amazonaws.com")
    expect(decide(service, [], queue_policy, "sqs:SendMessage", QUEUE, {"aws:SourceArn": RULE}), True, "the rule the policy names")
    expect(decide(service, [], queue_policy, "sqs:SendMessage", QUEUE, {"aws:SourceArn": RULE + "-other"}), False,
           "another rule")
    expect(decide(ROLE, [], queue_policy, "sqs:SendMessage", QUEUE, {}), False, "a role the queue policy does not name")
    print("iam eval: every documented rule the stack's policies rely on holds")
    return 0


if __name__ == "__main__":
    sys.exit(main())
