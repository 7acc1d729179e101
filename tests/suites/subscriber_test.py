"""An EventBridge subscriber on the stack as AWS runs it, from README's own commands.

Usage: subscriber_test.py --stack DIR   (a running `tests/stack up --webhook-allow-loopback`)

1. Runs README's "Subscribing to events" commands with the AWS CLI against the stack's
   emulator (the bus ARN line pointing at the stack's bus): a queue and its DLQ, a rule on
   the bus for one account's `shopping_order_update`, the queue's policy, the target.
2. Makes two changes to an order (two updates) with a webhook subscription listening, and reads the subscriber's queue with README's own
   receive command: exactly one message per change, each an EventBridge event that validates
   against the schema the stack registers for its type (Draft 4), whose `detail` carries the
   event's `id`, the order's `version` and `schema_version`.
3. Replays the archive (README's `start-replay`) into the bus: the replayed events reach the
   subscriber's rule carrying `replay-name`; the stack's webhook rule does not queue them, so
   the webhook receiver gets nothing more.
4. Deploys README's CloudFormation rule (with two queues) into the emulator: it is on the bus
   with its pattern, retry policy and dead-letter queue.
"""

import argparse
import json
import os
import re
import subprocess
import sys
import time
import urllib.request

import hosts

AID = "T12345678"
README = os.path.join(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))), "README.md")


def fail(msg: str) -> None:
    raise SystemExit(f"subscriber: {msg}")


def readme_blocks(language: str) -> list[str]:
    """The ```{language} blocks of README's "Subscribing to events" section, in order."""
    text = open(README).read()
    section = text[text.index("## Subscribing to events"):]
    section = section[:section.index("\n## ", 1)]
    return re.findall(rf"```{language}\n(.*?)```", section, re.S)


def cloudformation_subscriber(state: dict, bus_arn: str) -> None:
    """README's CloudFormation rule, deployed into the emulator in a stack of its own with the
    two queues it names: the rule is on the shopping bus with its retry policy and DLQ."""
    import boto3
    from cfnlint.decode.cfn_yaml import loads

    example = "arn:aws:events:eu-west-1:111111111111:event-bus/shopping-prod-shopping"
    resources = json.loads(json.dumps(loads(readme_blocks("yaml")[0].replace(example, bus_arn))))
    # "plus the two `AWS::SQS::Queue`s and an `AWS::SQS::QueuePolicy` like step 3's": without
    # the policy, the stack's IAM (as AWS) lets the rule deliver nothing.
    policy = {"Version": "2012-10-17", "Statement": [{
        "Effect": "Allow", "Principal": {"Service": "events.amazonaws.com"}, "Action": "sqs:SendMessage",
        "Resource": "*", "Condition": {"ArnEquals": {"aws:SourceArn": {"Fn::GetAtt": ["OrderUpdates", "Arn"]}}}}]}
    resources.update(WarehouseQueue={"Type": "AWS::SQS::Queue"}, WarehouseDeadLetters={"Type": "AWS::SQS::Queue"},
                     WarehousePolicy={"Type": "AWS::SQS::QueuePolicy", "Properties": {
                         "Queues": [{"Ref": "WarehouseQueue"}, {"Ref": "WarehouseDeadLetters"}], "PolicyDocument": policy}})
    aws = lambda s: boto3.client(s, endpoint_url=state["endpoint"], region_name=state["region"],  # noqa: E731
                                 aws_access_key_id="test", aws_secret_access_key="test")
    cfn = aws("cloudformation")
    cfn.create_stack(StackName="warehouse-subscriber", TemplateBody=json.dumps({"Resources": resources}))
    status = cfn.describe_stacks(StackName="warehouse-subscriber")["Stacks"][0]["StackStatus"]
    if status != "CREATE_COMPLETE":
        fail(f"README's CloudFormation rule: {status}")
    bus = bus_arn.rsplit("/", 1)[-1]
    rules = {r["Name"]: r for r in aws("events").list_rules(EventBusName=bus)["Rules"]}
    rule = next((r for n, r in rules.items() if "OrderUpdates" in n), None)
    if rule is None or json.loads(rule["EventPattern"]) != {"source": ["shopping.T12345678"], "detail-type": ["shopping_order_update"]}:
        fail(f"README's CloudFormation rule is not on the bus: {sorted(rules)}")
    (t,) = aws("events").list_targets_by_rule(Rule=rule["Name"], EventBusName=bus)["Targets"]
    if t.get("RetryPolicy", {}).get("MaximumRetryAttempts") != 185 or "DeadLetterConfig" not in t:
        fail(f"README's CloudFormation target: {t}")
    queue = aws("sqs").get_queue_url(QueueName=[q for q in aws("sqs").list_queues()["QueueUrls"]
                                                 if "WarehouseQueue" in q][0].rsplit("/", 1)[-1])["QueueUrl"]
    applied = aws("sqs").get_queue_attributes(QueueUrl=queue, AttributeNames=["Policy"])["Attributes"].get("Policy", "")
    if rule["Arn"] not in applied:
        fail(f"README's CloudFormation queue policy does not name the rule: {applied!r}")
    print("subscriber: README's CloudFormation rule deploys onto the bus with its retry policy, DLQ and queue policy")


def run_bash(script: str, env: dict) -> str:
    run = subprocess.run(["bash", "-euo", "pipefail", "-c", script], capture_output=True, text=True, env=env)
    if run.returncode != 0:
        fail(f"README's commands failed ({run.returncode}):\n{script}\n{run.stdout}\n{run.stderr}")
    return run.stdout


def call(base: str, token: str, method: str, path: str, body=None) -> dict:
    req = urllib.request.Request(f"{base}{path}", method=method, data=None if body is None else json.dumps(body).encode(),
                                 headers={"authorization": f"Bearer {token}", "content-type": "application/json"})
    with urllib.request.urlopen(req, timeout=30) as res:
        return json.loads(res.read())


# What the webhook receiver got: (headers, body) pairs.
RECEIVED = []


def order_updates() -> int:
    return sum(1 for _, body in RECEIVED if json.loads(body).get("event") == "shopping_order_update")


def main() -> int:
    import jsonschema

    parser = argparse.ArgumentParser()
    parser.add_argument("--stack", required=True, help="the data directory of a running tests/stack up")
    args = parser.parse_args()
    host = hosts.StackHost(args.stack)
    state = json.load(open(os.path.join(args.stack, "stack.json")))
    outputs = state["outputs"]
    bus_arn, archive_arn = outputs["EventBusArn"], outputs["EventArchiveArn"]
    venv_bin = os.path.dirname(sys.executable)
    # The AWS CLI v1 from PyPI honours neither AWS_ENDPOINT_URL nor a profile's endpoint_url,
    # so an `aws` first on PATH adds --endpoint-url to every call; README's commands run as
    # written.
    shim = os.path.join(args.stack, "aws-cli")
    os.makedirs(shim, exist_ok=True)
    with open(os.path.join(shim, "aws"), "w") as f:
        f.write(f'#!/bin/sh\nexec "{venv_bin}/aws" --endpoint-url "{state["endpoint"]}" "$@"\n')
    os.chmod(os.path.join(shim, "aws"), 0o755)
    env = dict(os.environ, PATH=f"{shim}:{venv_bin}:{os.environ['PATH']}", AWS_DEFAULT_REGION=state["region"],
               AWS_ACCESS_KEY_ID="test", AWS_SECRET_ACCESS_KEY="test", AWS_PAGER="")

    # 1. README's subscription, on this stack's bus; its last line (receive) runs in step 2.
    setup, replay = readme_blocks("sh")
    lines = setup.rstrip("\n").split("\n")
    receive = lines[-1]
    check = lambda cond, msg: cond or fail(msg)  # noqa: E731
    check(receive.startswith("aws sqs receive-message"), f"README's subscription block ends with {receive!r}")
    script = "\n".join(re.sub(r"^BUS_ARN=\S+", f"BUS_ARN={bus_arn}", line) for line in lines[:-1])
    shown = run_bash(script + '\nprintf "%s\\n" "$QUEUE_URL" "$RULE_ARN"', env).split()
    queue_url, rule_arn = shown[-2], shown[-1]

    # 2. Two changes of one order, with a webhook subscription listening too.
    token = hosts.token(host, AID, "admin:shopping admin:hooks")
    base = f"{host.base}/v1/accounts/{AID}"
    hook = call(base, token, "POST", "/hooks/subscriptions",
                {"events": ["shopping_order_update"], "config": {"url": hosts.webhook_receiver(RECEIVED),
                                                                  "content_type": "application/json"}})
    draft = call(base, token, "POST", "/shopping/draft_orders", {"order": {"currency": "NOK", "items": [
        {"line_id": 1, "gross_amount": 1000, "tax_lines": [{"percentage": 25}]}]}})
    done = call(base, token, "PUT", f"/shopping/draft_orders/{draft['id']}/complete")
    order_id = done["orders"][0]["id"]
    call(base, token, "PUT", f"/shopping/orders/{order_id}", {"courier_id": "bring"})
    updated = call(base, token, "PUT", f"/shopping/orders/{order_id}", {"courier_id": "posten"})

    schemas = state["schemas"]
    check(sorted(schemas) == sorted(["shopping_draft_add", "shopping_draft_update", "shopping_draft_complete",
                                     "shopping_order_update", "shopping_order_event_add", "shopping_order_delete"]),
          f"the registry holds {sorted(schemas)}")
    # The detail against the registered schema's `detail` (moto's SQS messages lack the
    # envelope's `account`, which AWS always sets; the envelope is checked field by field).
    registered = json.loads(schemas["shopping_order_update"]["content"])
    validator = jsonschema.Draft4Validator(registered["properties"]["detail"])

    def receive_all(want: int, within: float) -> list[dict]:
        got, deadline = [], time.monotonic() + within
        while time.monotonic() < deadline and len(got) < want:
            out = run_bash(f'QUEUE_URL={queue_url}\n{receive.replace("--wait-time-seconds 10", "--wait-time-seconds 1")}', env)
            for m in (json.loads(out).get("Messages", []) if out.strip() else []):
                got.append(json.loads(m["Body"]))
                subprocess.run([os.path.join(shim, "aws"), "sqs", "delete-message", "--queue-url", queue_url,
                                "--receipt-handle", m["ReceiptHandle"]], env=env, check=True, capture_output=True)
        return got

    events = receive_all(2, 30)
    events += receive_all(1, 3)  # nothing more may come
    check(len(events) == 2, f"one message per change, not {len(events)}: {[e.get('detail', {}).get('id') for e in events]}")
    for ev in events:
        errors = [f"{e.message} at {list(e.absolute_path)}" for e in validator.iter_errors(ev["detail"])]
        check(not errors, f"the event does not match the registered schema: {errors}\n{json.dumps(ev)[:1500]}")
        d = ev["detail"]
        check(ev["source"] == f"shopping.{AID}" and ev["detail-type"] == "shopping_order_update", f"event {ev}")
        check(d["order"]["id"] == order_id and d["schema_version"] == "1", f"detail {d}")
        check(d["version"] == d["order"]["version"], f"the event's version is the order's: {d['version']}")
    ids = {e["detail"]["id"] for e in events}
    versions = sorted(e["detail"]["version"] for e in events)
    check(len(ids) == 2 and versions[-1] == updated["version"], f"ids {ids}, versions {versions}")
    print(f"subscriber: README's rule delivered {len(events)} shopping_order_update events, one per change, "
          "each valid against the registered schema, with the event id and the order version")

    # 3. A replay for that rule: the events come again with replay-name; no webhook again.
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and order_updates() < 2:
        time.sleep(0.2)
    webhooks = order_updates()
    check(webhooks == 2, f"the webhook receiver got {webhooks} order updates before the replay, not 2")
    start = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(time.time() - 3600))
    end = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(time.time() + 60))
    script = replay.replace("2026-12-04T00:00:00Z", start).replace("2026-12-05T00:00:00Z", end)
    run_bash(f"BUS_ARN={bus_arn}\nARCHIVE_ARN={archive_arn}\nRULE_ARN={rule_arn}\n{script}", env)
    # The archive holds every order update of the stack's life (earlier suites' too): read
    # until this test's two came again.
    replayed, deadline = [], time.monotonic() + 30
    while time.monotonic() < deadline and not ids <= {e["detail"]["id"] for e in replayed}:
        replayed += receive_all(1, 2)
    check(ids <= {e["detail"]["id"] for e in replayed}, f"the replay sent this test's events again: {ids}")
    check(all(e.get("replay-name") == "warehouse-2026-12-04" for e in replayed),
          f"replayed events carry replay-name: {[(e.get('replay-name'), e['detail']['id']) for e in replayed]}")
    time.sleep(3)
    after = order_updates()
    check(after == webhooks, f"the replay reached the webhooks: {after - webhooks} more deliveries")
    call(base, token, "DELETE", f"/hooks/subscriptions/{hook['id']}")
    print("subscriber: the archive's replay reached the subscriber's rule with replay-name, and no webhook")

    # 4. README's CloudFormation form of the same rule.
    cloudformation_subscriber(state, bus_arn)
    return 0


if __name__ == "__main__":
    sys.exit(main())
