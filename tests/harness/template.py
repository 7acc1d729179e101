"""The SAM template, transformed offline the way CloudFormation's SAM transform does it
(aws-sam-translator), with the template's own shim for moto (no Lambda aliases): what the deploy
rehearsal deploys and the harness runs.
"""

import json
import os

from cfnlint.decode.cfn_yaml import load
from samtranslator.translator.transform import transform

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
TEMPLATE = os.path.join(ROOT, "infra", "template.yaml")
# The template's functions, each with its `live` alias.
FUNCTIONS = ["Drafts", "Orders", "Payments", "Views", "Hooks", "Publisher", "Deliverer", "Token", "Keys"]


def check(cond: bool, msg: str) -> None:
    if not cond:
        raise SystemExit(f"deploy rehearsal: {msg}")


def transformed(bucket: str, key: str, params: dict, path: str = TEMPLATE) -> dict:
    """The template at `path` (infra/template.yaml unless told) with every function's code at
    `bucket`/`key`, transformed with `params` as CloudFormation's SAM transform does, its
    aliases left out (`without_aliases`)."""
    template = load(path)
    for r in template["Resources"].values():
        if r["Type"] == "AWS::Serverless::Function":
            r["Properties"]["CodeUri"] = {"Bucket": bucket, "Key": key}

    class Policies:
        """The managed policies SAM attaches, by name (the transform asks for their ARNs)."""

        def load(self):
            names = ["AWSLambdaBasicExecutionRole", "AWSXrayWriteOnlyAccess", "AWSLambdaDynamoDBExecutionRole",
                     "AWSLambdaSQSQueueExecutionRole", "AWSCodeDeployRoleForLambda"]
            return {n: f"arn:aws:iam::aws:policy/service-role/{n}" for n in names}

    body = json.loads(json.dumps(transform(template, params, Policies()), default=str))
    return without_aliases(body)


def without_aliases(body: dict) -> dict:
    """The second shim: moto 5.2's CloudFormation has no `AWS::Lambda::Alias`, so whatever
    names a function's `live` alias (its event source mappings, the API's integrations) is
    pointed at the function itself, and the aliases and their gradual-deployment resources
    (CodeDeploy, which moto lacks too) are left out. Checked before: every alias is the
    `live` alias of one of our functions."""
    aliases = {}
    for name, r in list(body["Resources"].items()):
        if r["Type"] == "AWS::Lambda::Alias":
            check(r["Properties"]["Name"] == "live", f"{name} is not the live alias")
            aliases[name] = r["Properties"]["FunctionName"]
            del body["Resources"][name]
    check(len(aliases) == len(FUNCTIONS), f"every function has its live alias: {sorted(aliases)}")
    for name, r in list(body["Resources"].items()):
        if r["Type"].startswith("AWS::CodeDeploy::"):
            del body["Resources"][name]

    def swap(node):
        if isinstance(node, dict):
            if set(node) == {"Ref"} and node["Ref"] in aliases:
                return aliases[node["Ref"]]
            return {k: swap(v) for k, v in node.items() if k != "UpdatePolicy"}
        if isinstance(node, list):
            return [swap(v) for v in node]
        return node

    return swap(body)
