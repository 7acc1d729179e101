"""The two hosts the client-facing suites run against, behind one interface: `shopping-local`
on the embedded engine, and the stack as AWS runs it (`tests/stack up`).

A suite is given `--local BINARY` (it starts shopping-local on a fresh data directory, loopback
webhooks allowed) or `--stack DIR` (a running `tests/stack up --data-dir DIR
--webhook-allow-loopback`), and uses:
  host.base                       the API's base URL
  host.credentials(aid, scopes)   a new API client's (client_id, client_secret)
  host.credentials_command(aid)   the shell command that prints `client_id=…`/`client_secret=…`
  host.move_clock(seconds)        the host's clock moved forward to `seconds` from now (local:
                                  restarted with SHOPPING_CLOCK_OFFSET_SECONDS, its data kept;
                                  the stack: `tests/stack clock`, its functions restarted)

With `--shards N` (N > 1), every account a suite makes clients for first gets the operator's
limit override that spreads its list partitions over N shards (`shopping-local tenant limit`,
a rate of 500·N a second: one shard per 500, domain/src/table.rs), so the suite runs on the
sharded keys of a big merchant (issue 39); when the suite ends, the host checks that list
entries were written to shards other than the first, so a run that never sharded cannot pass.
"""

import argparse
import contextlib
import os
import shlex
import shutil
import socket
import subprocess
import tempfile
import time
import json
import urllib.request

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
STACK = os.path.join(ROOT, "tests", "stack")
# A shard per this many requests a second of an account's limit (domain::table::SHARD_WRITES_PER_SECOND).
SHARD_RATE = 500


def shard_of(item_pk: str, shards: int) -> int:
    """The shard of an item whose table partition is `item_pk` (domain::table::shard_of: FNV-1a
    of the key's bytes, 64-bit, modulo the count)."""
    h = 0xCBF29CE484222325
    for b in item_pk.encode():
        h = ((h ^ b) * 0x100000001B3) & 0xFFFFFFFFFFFFFFFF
    return h % shards if shards > 1 else 0


def shard_pk(list_pk: str, shard: int) -> str:
    return list_pk if shard == 0 else f"{list_pk}#{shard}"


class Sharding:
    """`--shards N`: the override each account gets before its first client, and the check after."""

    def __init__(self, shards: int):
        self.shards, self.accounts = shards, set()

    def account(self, host, aid: str):
        if self.shards <= 1 or aid in self.accounts:
            return
        rate = SHARD_RATE * self.shards
        out = subprocess.run(host.tenant_limit_command(aid, rate, 2 * rate), capture_output=True, text=True,
                             env=host.operator_env())
        if out.returncode != 0:
            raise SystemExit(f"tenant limit for {aid}: {out.stderr}")
        self.accounts.add(aid)

    def check(self, host):
        """Every list entry of each account sits in the shard its item's key hashes to, and one
        at least in a shard other than the first. A suite leaves few entries (each lands in the
        first shard one time in N), so when none of them belongs elsewhere the check first adds
        drafts until one does: the outcome never depends on the ids the suite happened to get."""
        n = self.shards
        for aid in sorted(self.accounts):
            entries = host.list_entries(aid, n)
            if not any(shard_of(pk, n) for pk, _ in entries):
                tok = token(host, aid, "admin:shopping")
                for _ in range(32):
                    if shard_of(f"A#{aid}#D#{create_draft(host, aid, tok)}", n):
                        break
                entries = host.list_entries(aid, n)
            # `at` is `A#{aid}#DRAFTS` or `A#{aid}#DRAFTS#{k}` (ORDERS alike): its list is the first three parts.
            misplaced = [(pk, at) for pk, at in entries if at != shard_pk("#".join(at.split("#")[:3]), shard_of(pk, n))]
            beyond = sum(1 for pk, _ in entries if shard_of(pk, n))
            if misplaced or not beyond:
                raise SystemExit(f"--shards {n}: {aid}'s list entries are not where {n} shards put them: "
                                 f"{misplaced or 'none beyond the first shard'}")
            entry = "entry" if beyond == 1 else "entries"
            print(f"ok: {aid}'s lists spread over {n} shards ({beyond} {entry} beyond the first, each in its shard)")


def parse_values(text: str) -> dict:
    return dict(line.split("=", 1) for line in text.split() if "=" in line)


def create_draft(host, aid: str, tok: str) -> str:
    """A small draft of `aid` through the API; answers its id."""
    body = json.dumps({"order": {"currency": "NOK", "items": [
        {"line_id": 1, "description": "Mug", "quantity": 1, "gross_amount": 19900, "tax_lines": [{"percentage": 25}]}]}})
    req = urllib.request.Request(f"{host.base}/v1/accounts/{aid}/shopping/draft_orders", method="POST",
                                 data=body.encode(), headers={"Content-Type": "application/json",
                                                              "Authorization": f"Bearer {tok}"})
    with urllib.request.urlopen(req, timeout=30) as res:
        return json.loads(res.read())["id"]


class LocalHost:
    name = "shopping-local"

    def __init__(self, binary: str, prefix: str = "shopping-suite-", shards: int = 1):
        self.sharding = Sharding(shards)
        self.binary = os.path.abspath(binary)
        self.data = tempfile.mkdtemp(prefix=prefix)
        self.server = None
        self.offset = 0
        self.addr = "127.0.0.1:0"
        self.start()

    def start(self):
        env = dict(os.environ, SHOPPING_CLOCK_OFFSET_SECONDS=str(self.offset))
        self.server = subprocess.Popen(
            [self.binary, "serve", "--addr", self.addr, "--data-dir", self.data, "--webhook-allow-loopback"],
            stdout=subprocess.PIPE, stderr=open(os.path.join(self.data, "server.log"), "a"), text=True, env=env)
        line = self.server.stdout.readline()
        base = line.strip().rsplit(" ", 1)[-1]
        if not base.startswith("http://127.0.0.1:"):
            raise SystemExit(f"shopping-local did not start: {line!r}")
        self.base = base
        # A restart keeps the address, as a redeployed stack keeps its URL.
        self.addr = base[len("http://"):]

    def stop(self):
        if self.server is not None:
            self.server.kill()
            self.server.wait()
            self.server = None

    def operator_env(self) -> dict:
        return dict(os.environ, SHOPPING_CLOCK_OFFSET_SECONDS=str(self.offset))

    def tenant_limit_command(self, aid: str, rate: int, burst: int) -> list:
        return [self.binary, "tenant", "limit", "--account", aid, "--rate", str(rate), "--burst", str(burst),
                "--data-dir", self.data]

    def list_entries(self, aid: str, shards: int) -> list:
        """(item pk, gsi1pk) of every entry in the account's drafts and orders lists, every shard."""
        import sqlite3

        db = sqlite3.connect(f"file:{os.path.join(self.data, 'shopping.db')}?mode=ro", uri=True)
        try:
            return db.execute("SELECT pk, gsi1pk FROM items WHERE gsi1pk IN (?, ?) OR gsi1pk LIKE ? OR gsi1pk LIKE ?",
                              (f"A#{aid}#DRAFTS", f"A#{aid}#ORDERS", f"A#{aid}#DRAFTS#%",
                               f"A#{aid}#ORDERS#%")).fetchall()
        finally:
            db.close()

    def credentials_command(self, aid: str, scopes: str = None) -> str:
        self.sharding.account(self, aid)
        cmd = [self.binary, "client", "create", "--account", aid, "--data-dir", self.data]
        if scopes is not None:
            cmd += ["--scopes", scopes]
        return shlex.join(cmd)

    def credentials(self, aid: str, scopes: str = None):
        out = subprocess.run(self.credentials_command(aid, scopes), shell=True, check=True, capture_output=True,
                             text=True, env=dict(os.environ, SHOPPING_CLOCK_OFFSET_SECONDS=str(self.offset))).stdout
        values = parse_values(out)
        return values["client_id"], values["client_secret"]

    def move_clock(self, seconds: int):
        self.stop()
        self.offset = seconds
        self.start()


class StackHost:
    name = "tests/stack"

    def __init__(self, data_dir: str, shards: int = 1):
        self.sharding = Sharding(shards)
        self.data = os.path.abspath(data_dir)
        with open(os.path.join(self.data, "stack.json")) as f:
            self.state = json.load(f)
        self.base = self.state["api"]

    def stop(self):
        pass  # the stack belongs to whoever started it

    def operator_env(self) -> dict:
        env = dict(os.environ, AWS_ENDPOINT_URL=self.state["endpoint"], AWS_REGION=self.state["region"],
                   AWS_ACCESS_KEY_ID="test", AWS_SECRET_ACCESS_KEY="test")
        env.pop("AWS_PROFILE", None)
        return env

    def tenant_limit_command(self, aid: str, rate: int, burst: int) -> list:
        binary = os.path.join(os.environ.get("SHOPPING_STACK_BIN_DIR", os.path.join(ROOT, "target", "debug")),
                              "shopping-local")
        return [binary, "tenant", "limit", "--account", aid, "--rate", str(rate), "--burst", str(burst),
                "--table", self.state["resources"]["Table"]]

    def list_entries(self, aid: str, shards: int) -> list:
        """(item pk, gsi1pk) of every entry in the account's drafts and orders lists, every shard."""
        import boto3

        env = self.operator_env()
        db = boto3.client("dynamodb", region_name=env["AWS_REGION"], endpoint_url=env["AWS_ENDPOINT_URL"],
                          aws_access_key_id="test", aws_secret_access_key="test")
        found = []
        for name in ("DRAFTS", "ORDERS"):
            for shard in range(shards):
                pages = db.get_paginator("query").paginate(
                    TableName=self.state["resources"]["Table"], IndexName="gsi1",
                    KeyConditionExpression="gsi1pk = :p", ProjectionExpression="pk, gsi1pk",
                    ExpressionAttributeValues={":p": {"S": shard_pk(f"A#{aid}#{name}", shard)}})
                found += [(i["pk"]["S"], i["gsi1pk"]["S"]) for page in pages for i in page["Items"]]
        return found

    def credentials_command(self, aid: str, scopes: str = None) -> str:
        self.sharding.account(self, aid)
        cmd = [STACK, "client", "create", "--data-dir", self.data, "--account", aid]
        if scopes is not None:
            cmd += ["--scopes", scopes]
        return shlex.join(cmd)

    def credentials(self, aid: str, scopes: str = None):
        out = subprocess.run(self.credentials_command(aid, scopes), shell=True, check=True, capture_output=True,
                             text=True).stdout
        values = parse_values(out)
        return values["client_id"], values["client_secret"]

    def move_clock(self, seconds: int):
        subprocess.run([STACK, "clock", "--data-dir", self.data, "--offset-seconds", str(seconds)], check=True,
                       capture_output=True)

    def emulator_seconds(self) -> float:
        with urllib.request.urlopen(self.state["control"] + "/stats", timeout=10) as res:
            return json.loads(res.read())["emulator_seconds"]


def add_arguments(parser: argparse.ArgumentParser) -> None:
    which = parser.add_mutually_exclusive_group(required=True)
    which.add_argument("--local", metavar="BINARY", help="start shopping-local (this binary) for the suite")
    which.add_argument("--stack", metavar="DIR", help="a running `tests/stack up --data-dir DIR --webhook-allow-loopback`")
    parser.add_argument("--shards", type=int, default=1, metavar="N",
                        help="give each account a limit override that spreads its lists over N shards, and check they were used")


@contextlib.contextmanager
def host_from(args, prefix: str = "shopping-suite-"):
    host = LocalHost(args.local, prefix, args.shards) if args.local else StackHost(args.stack, args.shards)
    try:
        yield host
        host.sharding.check(host)
    finally:
        host.stop()


def token(host, aid: str, scopes: str = None) -> str:
    """A token from the host's token endpoint for a new client, as an upstream client gets one."""
    import base64

    cid, secret = host.credentials(aid, scopes)
    req = urllib.request.Request(
        f"{host.base}/v1/accounts/{aid}/auth/token", method="POST", data=b'{"grant_type":"client_credentials"}',
        headers={"Content-Type": "application/json",
                 "Authorization": "Basic " + base64.b64encode(f"{cid}:{secret}".encode()).decode()})
    with urllib.request.urlopen(req, timeout=30) as res:
        return json.loads(res.read())["access_token"]


def webhook_receiver(received: list) -> str:
    """A loopback webhook receiver answering 200, appending each request's (headers with
    lower-case names, body bytes) to `received`; answers its URL."""
    import http.server
    import threading

    class Ok(http.server.BaseHTTPRequestHandler):
        def do_POST(self):  # noqa: N802 - the stdlib's name
            body = self.rfile.read(int(self.headers.get("content-length", 0)))
            received.append(({k.lower(): v for k, v in self.headers.items()}, body))
            self.send_response(200)
            self.end_headers()

        def log_message(self, *_):
            pass

    class Server(http.server.ThreadingHTTPServer):
        # socketserver's listen backlog is 5: concurrent deliveries would be refused (and
        # retried a minute later), which no receiver on the internet does.
        request_queue_size = 128

    server = Server(("127.0.0.1", 0), Ok)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return f"http://127.0.0.1:{server.server_address[1]}/hook"


@contextlib.contextmanager
def own_stack(name: str, *up_args: str):
    """A `tests/stack up` of a suite's own (its extra `up_args`, `{work}` in them its work
    directory), stopped and removed after; yields its data directory and work directory."""
    work = tempfile.mkdtemp(prefix=f"{name}-")
    data = os.path.join(work, "stack")
    with socket.create_server(("127.0.0.1", 0)) as s:
        port = s.getsockname()[1]
    env = dict(os.environ)
    env.setdefault("SHOPPING_STACK_BIN_DIR", os.path.join(ROOT, "target", "debug"))
    log = open(os.path.join(work, "up.log"), "w")
    args = [a.replace("{work}", work) for a in up_args]
    proc = subprocess.Popen([STACK, "up", "--port", str(port), "--data-dir", data, *args],
                            stdout=log, stderr=subprocess.STDOUT, env=env)
    try:
        deadline = time.time() + 120
        while not os.path.exists(os.path.join(data, "stack.json")):
            if proc.poll() is not None or time.time() > deadline:
                raise SystemExit(f"the {name} stack did not start: {open(log.name).read()[-2000:]}")
            time.sleep(0.5)
        yield data, work
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
        shutil.rmtree(work, ignore_errors=True)
