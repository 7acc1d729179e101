"""`shopping-local smoke` against the stack as AWS runs it: passing, interrupted, and failing.

Usage:
  smoke_test.py --stack DIR [--bin BINARY]   a running `tests/stack up` (its stack.json)
  smoke_test.py broken [--bin BINARY]        starts a stack of its own from a broken copy of
                                             the template (SHOPPING_STACK_BIN_DIR as tests/stack)

The smoke command gets the environment an operator has: AWS_ENDPOINT_URL, AWS_REGION and
the operator's credentials (access key `test`, unrestricted, as the account's administrator),
nothing else from stack.json but SHOPPING_SMOKE_URL_MAP, which fetches the issuer's public
`https://….lambda-url….on.aws/` from the port the stack serves it at (its testing aid).

--stack DIR:
1. `shopping-local smoke --stack shopping`: every check ok, in the documented order, one line
   each, `smoke: 18 passed, 0 failed` last, exit 0, within the 30 s budget (printed).
2. Nothing it made is left: no rule or queue of its own, every client of the smoke account
   revoked (`client list --table`), the audit trail showing who made and revoked it.
3. Interrupted (SIGINT while it waits for the event): `smoke: interrupted`, the clean-up line
   ok, exit 130, and again nothing left.
4. `--bus no-such-bus` (an override): `event subscription` fails naming that bus, the event
   checks are skipped, everything else passes, exit 1, nothing left.
5. With a schema registry: the emulator has none, so run 1 holds the event to
   events/schemas (the line says so); here `AWS_ENDPOINT_URL_SCHEMAS` points at a stand-in that
   answers `DescribeSchema` (SigV4-signed for `schemas`) with what the stack registered
   (stack.json's `schemas`), and the line names the registry.

broken (1): the keys function publishes the standby key only (a copy of the template where its
SIGNING_KEY_ID names the other slot, deployed with SigningKeySlot=A StandbyKeySlot=B), so the
token function signs with a key the issuer does not publish: a key the gateway cannot use.
Smoke must fail `token algorithm` and `draft` (a 401), naming the token's kid, the keys' kty
and kids and that cause; skip what needs a draft; clean up; exit 1.
broken (2): README's key-compromise runbook, step 2 with no standby key (`tests/stack redeploy
SigningKeySlot=B StandbyKeySlot=none` after a passing run filled the authorizer's key cache):
`token` shows the new kid, `token algorithm` passes, and `draft` alone fails, naming the
gateway's key cache.
"""

import argparse
import http.server
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time

import hosts

ROOT = hosts.ROOT
ACCOUNT = "T00000000"
CHECKS = [
    "stack shopping", "event subscription", "api client", "token", "issuer discovery", "issuer keys",
    "token algorithm", "gateway refuses a missing token", "gateway refuses a forged token", "draft", "item",
    "completion", "order by order_id", "order list", "reference pages", "event on the bus", "event schema",
    "clean-up",
]
BUDGET_SECONDS = 30


def fail(msg: str) -> None:
    raise SystemExit(f"smoke_test: {msg}")


def operator_env(state: dict) -> dict:
    """What an operator's shell holds for the stack's account, and nothing of the harness's."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "SHOPPING_"))}
    keys = state["function_urls"]["keys"]
    env.update(AWS_ENDPOINT_URL=state["endpoint"], AWS_REGION=state["region"], AWS_ACCESS_KEY_ID="test",
               AWS_SECRET_ACCESS_KEY="test", SHOPPING_SMOKE_URL_MAP=f"{keys['url']}={keys['local']}")
    return env


def parse(out: str) -> tuple[dict, str]:
    """The check lines ({name: (status, text)}, in order) and the last line."""
    lines = out.rstrip("\n").split("\n")
    checks = {}
    for line in lines[:-1]:
        if line.startswith("smoke: interrupted"):
            continue
        m = re.fullmatch(r"(ok|failed|skipped) +([^:]+): (.+)", line)
        if not m:
            fail(f"not a check line: {line!r}\n{out}")
        checks[m.group(2)] = (m.group(1), m.group(3))
    return checks, lines[-1]


class Stack:
    def __init__(self, data: str):
        import boto3

        self.state = json.load(open(os.path.join(data, "stack.json")))
        self.env = operator_env(self.state)
        self.aws = lambda s: boto3.client(s, endpoint_url=self.state["endpoint"], region_name=self.state["region"],  # noqa: E731
                                          aws_access_key_id="test", aws_secret_access_key="test")
        self.bus = self.state["outputs"]["EventBusName"]
        self.table = self.state["outputs"]["TableName"]

    def smoke(self, binary: str, *extra: str, interrupt_after: str = None):
        """Runs smoke; answers (exit code, stdout, seconds)."""
        cmd = [binary, "smoke", "--stack", self.state["stack"], *extra]
        started = time.monotonic()
        proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=self.env)
        out = []
        for line in proc.stdout:
            out.append(line)
            if interrupt_after and line.startswith(("ok", "failed", "skipped")) and f" {interrupt_after}:" in line:
                proc.send_signal(signal.SIGINT)
        code = proc.wait(timeout=120)
        err = proc.stderr.read()
        if err.strip():
            print(err, file=sys.stderr)
        return code, "".join(out), time.monotonic() - started

    def own_rules(self) -> list:
        rules = self.aws("events").list_rules(EventBusName=self.bus, NamePrefix="shopping-smoke-")["Rules"]
        return [r["Name"] for r in rules]

    def own_queues(self) -> list:
        return self.aws("sqs").list_queues(QueueNamePrefix="shopping-smoke-").get("QueueUrls", [])

    def smoke_clients(self, binary: str) -> list:
        out = subprocess.run([binary, "client", "list", "--table", self.table], env=self.env, check=True,
                             capture_output=True, text=True).stdout
        rows = [line.split("\t") for line in out.strip().split("\n")[1:] if line]
        return [r for r in rows if r[1] == ACCOUNT]

    def nothing_left(self, binary: str, what: str) -> int:
        """Checks that the run left no rule, queue or usable client; answers the clients seen."""
        if self.own_rules() or self.own_queues():
            fail(f"{what}: left behind rules {self.own_rules()} and queues {self.own_queues()}")
        clients = self.smoke_clients(binary)
        active = [c for c in clients if c[2] != "revoked"]
        if not clients or active:
            fail(f"{what}: the smoke account's clients are {clients}: every one must be revoked")
        audit = subprocess.run([binary, "client", "audit", "--table", self.table], env=self.env, check=True,
                               capture_output=True, text=True).stdout
        for c in clients:
            actions = [line.split("\t")[1] for line in audit.split("\n") if f"\t{c[0]}\t" in line]
            if actions != ["create", "revoke"] or "(smoke)\n" not in audit:
                fail(f"{what}: the audit trail of {c[0]} is {actions}, not made and revoked by smoke")
        return len(clients)


def healthy(args) -> None:
    stack = Stack(args.stack)
    rules_before = stack.aws("events").list_rules(EventBusName=stack.bus)["Rules"]
    code, out, seconds = stack.smoke(args.bin)
    checks, last = parse(out)
    if list(checks) != CHECKS:
        fail(f"the checks are {list(checks)}, not {CHECKS}\n{out}")
    bad = {k: v for k, v in checks.items() if v[0] != "ok"}
    if bad or code != 0 or last != f"smoke: {len(CHECKS)} passed, 0 failed":
        fail(f"a healthy stack did not pass (exit {code}): {bad}\n{out}")
    if "RS256" not in checks["token algorithm"][1] or "401" not in checks["gateway refuses a forged token"][1]:
        fail(f"the token lines do not say what they checked:\n{out}")
    if "matches events/schemas/shopping_order_update.json (no registry answered" not in checks["event schema"][1]:
        fail(f"the event schema line does not say it fell back to events/schemas:\n{out}")
    if seconds > BUDGET_SECONDS:
        fail(f"a run took {seconds:.1f} s, over the budget of {BUDGET_SECONDS} s")
    made = stack.nothing_left(args.bin, "a passing run")
    if len(stack.aws("events").list_rules(EventBusName=stack.bus)["Rules"]) != len(rules_before):
        fail("the bus has another number of rules than before the run")
    print(f"smoke: a passing run on tests/stack, {len(CHECKS)} checks ok in {seconds:.1f} s "
          f"(budget {BUDGET_SECONDS} s); its rule, queue and client removed")
    print(out, end="")

    code, out, seconds = stack.smoke(args.bin, interrupt_after="reference pages")
    checks, last = parse(out)
    if code != 130 or "smoke: interrupted; removing what it made" not in out or checks.get("clean-up", ("",))[0] != "ok":
        fail(f"an interrupted run (exit {code}) did not clean up and say so:\n{out}")
    if "event schema" in checks:
        fail(f"the run went on after the interruption:\n{out}")
    if stack.nothing_left(args.bin, "an interrupted run") != made + 1:
        fail("the interrupted run's client is not among the revoked ones")
    print(f"smoke: interrupted while waiting for the event (SIGINT), it removed what it made and exited 130 ({last})")

    code, out, seconds = stack.smoke(args.bin, "--bus", "no-such-bus")
    checks, last = parse(out)
    failed = [k for k, v in checks.items() if v[0] == "failed"]
    skipped = [k for k, v in checks.items() if v[0] == "skipped"]
    cause = "likely cause: no bus no-such-bus"
    if (failed, skipped, code) != (["event subscription"], ["event on the bus", "event schema"], 1) \
            or cause not in checks["event subscription"][1] or last != f"smoke: {len(CHECKS) - 3} passed, 1 failed":
        fail(f"--bus no-such-bus (exit {code}) did not fail the event subscription alone, naming the bus:\n{out}")
    stack.nothing_left(args.bin, "a run with another bus")
    print(f"smoke: --bus overrides the stack's bus: a bus that does not exist fails `event subscription` ({cause}), "
          "the rest passes, exit 1")

    server, seen = schema_registry(stack.state)
    try:
        stack.env["AWS_ENDPOINT_URL_SCHEMAS"] = f"http://127.0.0.1:{server.server_address[1]}"
        code, out, seconds = stack.smoke(args.bin)
    finally:
        server.shutdown()
        del stack.env["AWS_ENDPOINT_URL_SCHEMAS"]
    checks, last = parse(out)
    registry = stack.state["outputs"]["EventSchemaRegistryName"]
    line = checks.get("event schema", ("", ""))
    if code != 0 or line != ("ok", f"its detail matches the shopping_order_update schema of registry {registry}"):
        fail(f"with a registry answering (exit {code}) the event was not held to its schema:\n{out}")
    if [p for p, _ in seen] != [f"/v1/registries/name/{registry}/schemas/name/shopping_order_update"] \
            or "/schemas/aws4_request" not in seen[0][1]:
        fail(f"DescribeSchema was not one SigV4-signed GET for the schemas service: {seen}")
    stack.nothing_left(args.bin, "a run with a registry")
    print(f"smoke: with a schema registry answering DescribeSchema, the event's detail is held to the registered "
          f"schema (registry {registry})")


def schema_registry(state: dict) -> tuple:
    """A stand-in for EventBridge Schemas' DescribeSchema, answering what the stack registered
    (stack.json's `schemas`, as `aws schemas describe-schema` would); answers (server, the
    requests it saw)."""
    registry, seen = state["outputs"]["EventSchemaRegistryName"], []

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self):
            seen.append((self.path, self.headers.get("Authorization", "")))
            m = re.fullmatch(r"/v1/registries/name/([^/]+)/schemas/name/([^/]+)", self.path)
            schema = state["schemas"].get(m.group(2)) if m and m.group(1) == registry else None
            body = json.dumps({"Content": schema["content"], "SchemaName": m.group(2), "Type": schema["type"],
                               "SchemaVersion": "1"} if schema else {"Code": "NotFoundException"}).encode()
            self.send_response(200 if schema else 404)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args):
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server, seen


def broken_template(dest: str) -> None:
    """infra/template.yaml whose keys function publishes the standby key alone: the signing
    slot's key is made and signs, but the issuer never publishes it."""
    text = open(os.path.join(ROOT, "infra", "template.yaml")).read()
    start, end = text.index("\n  KeysFunction:\n"), text.index("\n  KeysLogGroup:\n")
    block = text[start:end]
    signing = "          SIGNING_KEY_ID: !If [SignsWithA, !Ref SigningKeyA, !Ref SigningKeyB]\n"
    standby = re.search(r"          STANDBY_KEY_ID: .*\n", block)
    if signing not in block or not standby:
        fail("the keys function's environment is not SIGNING_KEY_ID and STANDBY_KEY_ID as this test expects")
    cut = block.replace(signing, "          SIGNING_KEY_ID: !If [SignsWithA, !Ref SigningKeyB, !Ref SigningKeyA]\n")
    cut = cut.replace(standby.group(0), '          STANDBY_KEY_ID: ""\n')
    with open(dest, "w") as f:
        f.write(text[:start] + cut + text[end:])


def broken(args) -> None:
    template = os.path.join(tempfile.mkdtemp(prefix="smoke-template-"), "template.yaml")
    broken_template(template)
    with hosts.own_stack("smoke-broken", "--template", template, "--parameter-overrides", "SigningKeySlot=A", "StandbyKeySlot=B") \
            as (data, _):
        stack = Stack(data)
        signing = stack.state["outputs"]["SigningKeyId"]
        code, out, seconds = stack.smoke(args.bin)
        checks, last = parse(out)
        if list(checks) != CHECKS:
            fail(f"the checks are {list(checks)}, not {CHECKS}\n{out}")
        failed = [k for k, v in checks.items() if v[0] == "failed"]
        if failed != ["token algorithm", "draft"] or code != 1 or not re.fullmatch(r"smoke: \d+ passed, 2 failed", last):
            fail(f"the broken stack's run (exit {code}) failed {failed}, not the token algorithm and the draft:\n{out}")
        algorithm, draft = checks["token algorithm"][1], checks["draft"][1]
        cause = f"the token's kid {signing} is not among the issuer's keys"
        for text in (algorithm, draft):
            if cause not in text or "kty RSA" not in text or "SIGNING_KEY_ID" not in text:
                fail(f"a failed line does not name the unpublished kid, the keys' kty and the cause: {text}")
        if not draft.startswith('saw 401 {"message":"Unauthorized"} (token alg RS256, kid ' + signing):
            fail(f"the draft's line does not show the 401 with the token's alg and kid: {draft}")
        skipped = [k for k, v in checks.items() if v[0] == "skipped"]
        if skipped != ["item", "completion", "order by order_id", "order list", "event on the bus", "event schema"]:
            fail(f"skipped {skipped}\n{out}")
        if checks["clean-up"][0] != "ok":
            fail(f"the clean-up failed:\n{out}")
        stack.nothing_left(args.bin, "a failing run")
        print(f"smoke: a stack whose issuer does not publish the signing key fails `token algorithm` and `draft` "
              f"(401, kid {signing} not among the keys), skips what needs a draft, cleans up, exits 1 ({seconds:.1f} s)")
        print(out, end="")
    shutil.rmtree(os.path.dirname(template), ignore_errors=True)

    # README's key-compromise runbook, step 2 without a standby key: the new key signs at once,
    # and the gateway keeps the keys it fetched (two hours), so smoke's `draft` names its cache.
    with hosts.own_stack("smoke-compromise") as (data, _):
        stack = Stack(data)
        code, out, _ = stack.smoke(args.bin)
        if code != 0:
            fail(f"the compromise drill's stack did not pass before the drill:\n{out}")
        subprocess.run([hosts.STACK, "redeploy", "--data-dir", data, "--parameter-overrides", "SigningKeySlot=B",
                        "StandbyKeySlot=none"], check=True, capture_output=True)
        stack = Stack(data)
        signing = stack.state["outputs"]["SigningKeyId"]
        code, out, _ = stack.smoke(args.bin)
        checks, last = parse(out)
        failed = [k for k, v in checks.items() if v[0] == "failed"]
        draft = checks["draft"][1]
        if failed != ["draft"] or code != 1 or checks["token algorithm"][0] != "ok" \
                or f"kid {signing}" not in checks["token"][1] or "the gateway still holds keys it fetched" not in draft:
            fail(f"in the key-compromise window smoke did not fail `draft` alone, naming the gateway's key cache:\n{out}")
        stack.nothing_left(args.bin, "a run in the compromise window")
        print(f"smoke: right after the key-compromise runbook's step 2 (no standby), `token algorithm` passes with the "
              f"new kid and `draft` fails naming the gateway's key cache, as README says")
        print(out, end="")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("mode", nargs="?", choices=["broken"])
    parser.add_argument("--stack", help="the data directory of a running tests/stack up")
    parser.add_argument("--bin", default=os.path.join(ROOT, "target", "debug", "shopping-local"))
    args = parser.parse_args()
    args.bin = os.path.abspath(args.bin)
    if args.mode == "broken":
        broken(args)
    elif args.stack:
        healthy(args)
    else:
        parser.error("--stack DIR or broken")


if __name__ == "__main__":
    main()
