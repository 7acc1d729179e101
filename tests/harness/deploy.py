"""CloudFormation: the template deployed into the emulator and updated there (`sam deploy` with
`--parameter-overrides`), its parameters checked as CloudFormation checks them, and its
intrinsic functions resolved for what the harness reads from the transformed template.

`Deployment` is a part of the Harness (harness/stack.py): `deploy` and `redeploy` set the
Harness's `body`, `given`, `params`, `outputs`, `physical_ids` and `resolver`, `load_functions`
makes its `functions`; `redeploy` reconfigures them, reads the routes again (`load_api`,
gateway.py) and rewrites DIR/stack.json (`write_state`, stack.py).
"""

import io
import json
import os
import re
import zipfile

import boto3
from botocore.config import Config
from cfnlint.decode.cfn_yaml import load
from moto.dynamodb.models import dynamodb_backends
from moto.sqs.models import sqs_backends

from .account import ACCOUNT, REGION, STACK, log
from .runtime import Function
from .template import TEMPLATE, transformed


class Resolver:
    def __init__(self, body, params, physical, attribute):
        self.body, self.params, self.physical, self.attribute = body, params, physical, attribute

    def condition(self, name) -> bool:
        return bool(self.resolve(self.body.get("Conditions", {})[name]))

    def resolve(self, node):
        if isinstance(node, list):
            return [self.resolve(v) for v in node]
        if not isinstance(node, dict):
            return node
        if len(node) == 1:
            (k, v), = node.items()
            if k == "Ref":
                pseudo = {"AWS::Region": REGION, "AWS::AccountId": ACCOUNT, "AWS::Partition": "aws",
                          "AWS::StackName": STACK, "AWS::URLSuffix": "amazonaws.com", "AWS::NoValue": None}
                if v in pseudo:
                    return pseudo[v]
                return self.params[v] if v in self.params else self.physical(v)
            if k == "Fn::GetAtt":
                logical, attr = v if isinstance(v, list) else v.split(".", 1)
                return self.attribute(logical, attr)
            if k == "Fn::If":
                return self.resolve(v[1] if self.condition(v[0]) else v[2])
            if k == "Fn::Equals":
                a, b = self.resolve(v)
                return str(a) == str(b)
            if k == "Fn::Not":
                return not self.resolve(v[0])
            if k == "Fn::And":
                return all(self.resolve(x) for x in v)
            if k == "Fn::Or":
                return any(self.resolve(x) for x in v)
            if k == "Condition":
                return self.condition(v)
            if k == "Fn::Sub":
                text = v if isinstance(v, str) else v[0]

                def sub(m):
                    name = m.group(1)
                    if "." in name:
                        logical, attr = name.split(".", 1)
                        return str(self.attribute(logical, attr))
                    return str(self.resolve({"Ref": name}))

                return re.sub(r"\$\{([^}!]+)\}", sub, text)
        return {k: self.resolve(v) for k, v in node.items()}


# ---------------------------------------------------------------------------------------------
# CloudFormation: the parameters and stack updates, as `sam deploy` has them checked and applied


def parameter_values(body, given) -> dict:
    """The parameters as the template reads them (a CommaDelimitedList as a list)."""
    declared = body.get("Parameters", {})
    return {k: [x.strip() for x in v.split(",")] if declared[k].get("Type") == "CommaDelimitedList" else v
            for k, v in given.items()}


def check_parameters(body, given) -> None:
    """What CloudFormation checks before it changes anything, and moto 5.2 does not: each value
    among its AllowedValues and matching its AllowedPattern, and the template's Rules."""
    for k, spec in body.get("Parameters", {}).items():
        if "AllowedValues" in spec and given[k] not in [str(v) for v in spec["AllowedValues"]]:
            raise SystemExit(f"Parameter '{k}' must be one of AllowedValues {spec['AllowedValues']}, not {given[k]!r}")
        if "AllowedPattern" in spec and not re.fullmatch(spec["AllowedPattern"], given[k]):
            raise SystemExit(f"Parameter '{k}' must match pattern {spec['AllowedPattern']}, not {given[k]!r}")
    resolver = Resolver(body, parameter_values(body, given), None, None)
    for name, rule in body.get("Rules", {}).items():
        if "RuleCondition" in rule and resolver.resolve(rule["RuleCondition"]) is not True:
            continue
        for assertion in rule.get("Assertions", []):
            if resolver.resolve(assertion["Assert"]) is not True:
                raise SystemExit(f"Template rule {name}: {assertion.get('AssertDescription', 'an assertion failed')}")


class Deployment:
    """The Harness's CloudFormation stack and its functions."""

    @property
    def template_path(self):
        """The SAM template deployed: `up --template PATH`, else infra/template.yaml."""
        return getattr(self.args, "template", None) or TEMPLATE

    def aws(self, service):
        return boto3.client(service, region_name=REGION, endpoint_url=self.endpoint, aws_access_key_id="test",
                            aws_secret_access_key="test", config=Config(retries={"max_attempts": 2}))

    def aws_as(self, fn, service):
        """A client calling as `fn`'s execution role: what Lambda itself does for the function
        (reading its stream or queue, sending to its on-failure destination) it does with the
        function's execution role, which must allow it."""
        key, secret, token = fn.credentials
        return boto3.client(service, region_name=REGION, endpoint_url=self.endpoint, aws_access_key_id=key,
                            aws_secret_access_key=secret, aws_session_token=token,
                            config=Config(retries={"max_attempts": 2}))

    def deploy(self, overrides):
        s3 = self.aws("s3")
        s3.create_bucket(Bucket="shopping-code")
        buf = io.BytesIO()
        with zipfile.ZipFile(buf, "w") as z:
            z.writestr("bootstrap", "#!/bin/sh\n")
        s3.put_object(Bucket="shopping-code", Key="bootstrap.zip", Body=buf.getvalue())
        body, given = self.template(overrides, {})
        cfn = self.aws("cloudformation")
        cfn.create_stack(StackName=STACK, TemplateBody=json.dumps(body), Capabilities=["CAPABILITY_IAM"],
                         Parameters=[{"ParameterKey": k, "ParameterValue": v} for k, v in given.items()])
        stack = cfn.describe_stacks(StackName=STACK)["Stacks"][0]
        if stack["StackStatus"] != "CREATE_COMPLETE":
            raise SystemExit(f"the stack did not deploy: {stack['StackStatus']} {stack.get('StackStatusReason')}")
        self.read_stack(body, given)
        self.detach_emulator_mappings()

    def template(self, overrides, previous):
        """The transformed template and every parameter's value: as `overrides` names it, else
        as `previous` has it, else its default; checked as CloudFormation checks them."""
        body = transformed("shopping-code", "bootstrap.zip", {**previous, **overrides}, self.template_path)
        declared = body.get("Parameters", {})
        unknown = [k for k in overrides if k not in declared]
        if unknown:
            raise SystemExit(f"Parameters: {unknown} do not exist in the template")
        # Every parameter is passed, at its default unless given: moto 5.2 leaves a
        # CommaDelimitedList's default unsplit (a `!Select [0, …]` of it answers its first
        # character), where CloudFormation splits defaults as it splits values given.
        given = {k: str(v["Default"]) for k, v in declared.items() if "Default" in v}
        given.update(previous)
        given.update(overrides)
        missing = [k for k in declared if k not in given]
        if missing:
            raise SystemExit(f"Parameters: {missing} must have values")
        check_parameters(body, given)
        return body, given

    def read_stack(self, body, given):
        """The deployed stack as the harness reads it: its template and parameters (as given;
        moto answers a list parameter's value as Python's repr), outputs and resources."""
        cfn = self.aws("cloudformation")
        stack = cfn.describe_stacks(StackName=STACK)["Stacks"][0]
        self.body, self.given, self.params = body, given, parameter_values(body, given)
        self.outputs = {o["OutputKey"]: o["OutputValue"] for o in stack.get("Outputs", [])}
        summaries = cfn.list_stack_resources(StackName=STACK)["StackResourceSummaries"]
        # (moto lists each resource it did not create, its condition false or its type not
        # modelled, with no logical id.)
        self.physical_ids = {r["LogicalResourceId"]: r["PhysicalResourceId"] for r in summaries
                             if r["LogicalResourceId"]}
        self.resolver = Resolver(body, self.params, self.physical, self.attribute)
        if getattr(self, "iam", None) is not None:
            self.iam.refresh()

    def physical(self, logical):
        return self.physical_ids[logical]

    def attribute(self, logical, attr):
        kind = self.body["Resources"][logical]["Type"]
        if kind == "AWS::DynamoDB::Table" and attr == "StreamArn":
            return self.aws("dynamodb").describe_table(TableName=self.physical(logical))["Table"]["LatestStreamArn"]
        if kind == "AWS::SQS::Queue" and attr == "Arn":
            return self.aws("sqs").get_queue_attributes(QueueUrl=self.physical(logical),
                                                        AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
        if kind == "AWS::Lambda::Function" and attr == "Arn":
            return self.aws("lambda").get_function(FunctionName=self.physical(logical))["Configuration"]["FunctionArn"]
        if kind == "AWS::Lambda::Url" and attr == "FunctionUrl":
            target = self.body["Resources"][logical]["Properties"]["TargetFunctionArn"]["Ref"]
            return self.aws("lambda").get_function_url_config(FunctionName=self.physical(target))["FunctionUrl"] + "/"
        if kind == "AWS::DynamoDB::Table" and attr == "Arn":
            return self.aws("dynamodb").describe_table(TableName=self.physical(logical))["Table"]["TableArn"]
        if kind == "AWS::IAM::Role" and attr == "Arn":
            return self.aws("iam").get_role(RoleName=self.physical(logical))["Role"]["Arn"]
        if kind in ("AWS::Events::Rule", "AWS::Events::EventBus") and attr == "Arn":
            from moto.events.models import events_backends

            buses = events_backends[ACCOUNT][REGION].event_buses
            if kind == "AWS::Events::EventBus":
                return buses[self.physical(logical)].arn
            name = self.physical(logical).rsplit("|", 1)[-1]
            return next(r.arn for b in buses.values() for r in b.rules.values() if r.name == name)
        raise SystemExit(f"the harness cannot resolve {logical}.{attr}")

    def detach_emulator_mappings(self):
        """moto would run an event source mapping itself, by invoking the function in Docker,
        and drop the records or messages when it cannot: the harness runs the mappings, so
        moto's own are detached (the mappings stay readable through its Lambda API)."""
        for table in dynamodb_backends[ACCOUNT][REGION].tables.values():
            table.lambda_event_source_mappings.clear()
        for q in sqs_backends[ACCOUNT][REGION].queues.values():
            q.lambda_event_source_mappings.clear()

    # ---- functions

    def load_functions(self):
        source = load(self.template_path)
        lam = self.aws("lambda")
        for logical, r in self.body["Resources"].items():
            if r["Type"] != "AWS::Lambda::Function" or logical not in self.physical_ids:
                continue
            binary = source["Resources"][logical]["Metadata"]["BuildProperties"]["Binary"]
            bootstrap = os.path.join(self.args.bin_dir, binary)
            if not os.access(bootstrap, os.X_OK):
                raise SystemExit(f"no bootstrap {bootstrap} for {logical}: build it first (tests/stack does)")
            config, concurrency = self.deployed_config(lam, logical)
            self.functions[logical] = Function(self, logical, config, bootstrap, concurrency)

    def deployed_config(self, lam, logical):
        """A function's configuration as the emulator holds it, and its reserved concurrency
        (None when it has none)."""
        config = lam.get_function_configuration(FunctionName=self.physical(logical))
        reserved = lam.get_function_concurrency(FunctionName=self.physical(logical)).get("ReservedConcurrentExecutions")
        return config, None if reserved is None else int(reserved)

    def redeploy(self, overrides):
        """`sam deploy` of the running stack with `overrides` (the other parameters as they
        were): the stack updated in the emulator, the functions whose configuration changed
        restarted, the routes and authorizers read again, DIR/stack.json rewritten. Answers the
        functions restarted; refuses (SystemExit) before changing anything what the harness
        cannot apply to running functions."""
        with self.deploying:
            body, given = self.template(overrides, self.given)
            present, mappings = self.fixed(body, parameter_values(body, given))
            was, were = self.fixed(self.body, self.params)
            change = (f"adds or removes {sorted(set(present) ^ set(was))}" if present != was else
                      "changes an event source mapping" if mappings != were else None)
            if change:
                raise SystemExit(f"the change {change}: not emulated on a running stack "
                                 "(start one with up --parameter-overrides)")
            cfn = self.aws("cloudformation")
            cfn.update_stack(StackName=STACK, TemplateBody=json.dumps(body), Capabilities=["CAPABILITY_IAM"],
                             Parameters=[{"ParameterKey": k, "ParameterValue": v} for k, v in given.items()])
            status = cfn.describe_stacks(StackName=STACK)["Stacks"][0]["StackStatus"]
            if status != "UPDATE_COMPLETE":
                raise SystemExit(f"the stack did not update: {status}")
            self.read_stack(body, given)
            self.detach_emulator_mappings()
            lam = self.aws("lambda")
            restarted = []
            for logical, fn in self.functions.items():
                if fn.configure(*self.deployed_config(lam, logical)):
                    fn.recycle()
                    restarted.append(fn.short)
            self.load_api()
            self.write_state()
            log(f"redeployed: {' '.join(f'{k}={v}' for k, v in overrides.items())}; "
                f"restarted: {', '.join(restarted) or 'none'}")
            return restarted

    def fixed(self, body, params):
        """What a running harness keeps from `up`: which functions and function URLs exist, and
        each event source mapping's properties."""
        resolver = Resolver(body, params, self.physical, self.attribute)
        active = {k: r for k, r in body["Resources"].items()
                  if "Condition" not in r or resolver.condition(r["Condition"])}
        kinds = ("AWS::Lambda::Function", "AWS::Lambda::Url", "AWS::Lambda::EventSourceMapping")
        present = sorted(k for k, r in active.items() if r["Type"] in kinds)
        if not set(present) <= set(self.physical_ids):
            return present, None  # one is new: the lists differ already
        return present, [resolver.resolve(r["Properties"]) for r in active.values()
                         if r["Type"] == "AWS::Lambda::EventSourceMapping"]
