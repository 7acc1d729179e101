"""The cold request as a caller feels it: process start -> the first invocation's response, over
TLS, at a Lambda's CPU share.

Each bootstrap runs against a stand-in Runtime API on 127.0.0.1 that hands it one invocation
doing its real work, then a few more (the warm figure):
  drafts    GET draft          orders  GET order            payments  list authorizations
  views     customer's order   hooks   GET subscription     (all read DynamoDB)
  publisher one stream record (history write on DynamoDB, PutEvents on EventBridge)
  deliverer one queue message whose webhook goes to a receiver over TLS (subscription read,
            delivery record written)
  token     the upstream token request (client read on DynamoDB, RS256 signature by KMS Sign)
  hello     the bare `lambda_http` hello world, as the baseline
DynamoDB, EventBridge, SQS and KMS are moto serving HTTPS with a CA made for the run. The functions
find it through the SDK's standard `AWS_ENDPOINT_URL` and trust it the way they trust
certificates on Lambda: Lambda's provided.al2023 has one system bundle file of about 140 roots,
and the run's bundle is this machine's bundle plus the run's root, named by `SSL_CERT_FILE`
(so the system-store design pays for parsing about 145 roots, as on Lambda).

CPU: unthrottled, and inside cgroup v1 cpu quotas emulating 128, 256 and 1,024 MB (Lambda gives
1 vCPU at 1,769 MB: quota = 100 ms x MB / 1769 per 100 ms period). For each size, init either
throttled too (the quota applies from exec: the conservative case) or at full CPU (the quota is
set at its first poll: Lambda's faster init). CPU time comes from a cpuacct cgroup.

The whole run is inside its own network namespace (loopback only), where the receiver's
address, 203.0.113.10, is a loopback address: the deliverer's SSRF guard refuses 127.0.0.1 as
it must on AWS, and nothing can leave the machine.

Usage (as root, after `cargo build --release -p functions -p shopping-tests --bin hello_lambda
--bins` and `tests/run.sh` once for target/pyenv; BENCHMARKS.md has the full command):
  target/pyenv/bin/python tests/bench_cold_request.py [--runs 7] [--warm 3]
      [--sizes full,128,256,1024] [--functions drafts,orders,...]
      [--variant NAME[,dir=BIN_DIR|,rev=COMMIT][,VAR=VALUE...]]... [--compare BASE,CHOSEN]
A variant runs every function from BIN_DIR (default target/release; `rev=COMMIT` builds that
commit's release bootstraps once, in a worktree under target/cold-variants) with the extra environment
(`{run_root}` in a value is the run's root certificate alone: `SSL_CERT_FILE={run_root}` is a
trust store of one certificate, the cost of compiled-in roots at most); without --variant, one
variant "release". The hello baseline always runs from --hello. Results also go to
target/cold-request.json.
"""

import argparse
import base64
import datetime
import http.server
import json
import os
import queue
import shutil
import socket
import ssl
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
RECEIVER_IP = "203.0.113.10"
FUNCTIONS = ["drafts", "orders", "payments", "views", "hooks", "publisher", "deliverer", "token"]
PERIOD_US = 100_000


# ---------------------------------------------------------------------------------------------
# The stand-in Runtime API


class Run:
    """One process's conversation with the Runtime API."""

    def __init__(self, invocations, on_first_poll=None, cpu_ns=lambda: 0):
        self.invocations: "queue.Queue[bytes]" = queue.Queue()
        for body in invocations:
            self.invocations.put(body)
        self.on_first_poll = on_first_poll
        self.cpu_ns = cpu_ns
        self.polls = []  # (time, cpu ns)
        self.polled = {}  # request id -> (time, cpu ns) of the poll that fetched it
        self.responses: "queue.Queue[tuple]" = queue.Queue()  # (kind, time, cpu ns, body)


CURRENT = {"run": None}


class RuntimeApi(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def do_GET(self):
        run = CURRENT["run"]
        if run is None or not self.path.endswith("/runtime/invocation/next"):
            return self.answer(404, b"{}")
        polled = (time.perf_counter(), run.cpu_ns())
        run.polls.append(polled)
        if len(run.polls) == 1 and run.on_first_poll:
            run.on_first_poll()
        try:
            body = run.invocations.get(timeout=120)
        except queue.Empty:
            return self.answer(500, b"{}")
        request_id = str(uuid.uuid4())
        # Each answer is paired with the poll that fetched its invocation, by request id.
        run.polled[request_id] = polled
        self.answer(200, body, {
            "Lambda-Runtime-Aws-Request-Id": request_id,
            "Lambda-Runtime-Deadline-Ms": str(int(time.time() * 1000) + 30_000),
            "Lambda-Runtime-Invoked-Function-Arn": "arn:aws:lambda:eu-west-1:123456789012:function:bench",
            "Lambda-Runtime-Trace-Id": "Root=1-5bef4de7-ad49b0e87f6ef6c87fc2e700;Parent=9a9197af755a6419;Sampled=1",
        })

    def do_POST(self):
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        run = CURRENT["run"]
        now, cpu = time.perf_counter(), (run.cpu_ns() if run else 0)
        kind = "response" if self.path.endswith("/response") else "error"
        parts = self.path.split("/")
        request_id = parts[-2] if len(parts) >= 2 else ""
        if run is not None:
            run.responses.put((kind, now, cpu, body, run.polled.get(request_id)))
        self.answer(202, b"{}")

    def answer(self, status, body, headers=None):
        self.send_response(status)
        for k, v in (headers or {}).items():
            self.send_header(k, v)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


# ---------------------------------------------------------------------------------------------
# CPU quotas


class Cgroup:
    """A cpu cgroup (quota) and a cpuacct cgroup (CPU time) made for one process."""

    count = 0

    def __init__(self, quota_us=None):
        Cgroup.count += 1
        name = f"shopping-cold-{os.getpid()}-{Cgroup.count}"
        self.cpu = f"/sys/fs/cgroup/cpu/{name}"
        self.acct = f"/sys/fs/cgroup/cpuacct/{name}"
        os.mkdir(self.cpu)
        os.mkdir(self.acct)
        self.write(self.cpu, "cpu.cfs_period_us", PERIOD_US)
        self.set_quota(quota_us)

    def set_quota(self, quota_us):
        self.write(self.cpu, "cpu.cfs_quota_us", quota_us if quota_us else -1)

    @staticmethod
    def write(folder, file, value):
        with open(f"{folder}/{file}", "w") as f:
            f.write(str(value))


    def usage_ns(self):
        with open(f"{self.acct}/cpuacct.usage") as f:
            return int(f.read())

    def throttled(self):
        with open(f"{self.cpu}/cpu.stat") as f:
            stat = dict(line.split() for line in f)
        return int(stat.get("nr_throttled", 0))

    def remove(self):
        for folder in (self.cpu, self.acct):
            for _ in range(100):
                try:
                    os.rmdir(folder)
                    break
                except OSError:
                    time.sleep(0.01)


def quota_for(size):
    return None if size == "full" else PERIOD_US * int(size) // 1769


# ---------------------------------------------------------------------------------------------
# TLS: a CA, an intermediate and a leaf made for the run


def make_pki(folder):
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import rsa
    from cryptography.x509.oid import NameOID
    import ipaddress

    now = datetime.datetime.now(datetime.timezone.utc)

    def cert(subject, issuer_name, key, issuer_key, ca, sans=None):
        b = (x509.CertificateBuilder().subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, subject)]))
             .issuer_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, issuer_name)]))
             .public_key(key.public_key()).serial_number(x509.random_serial_number())
             .not_valid_before(now - datetime.timedelta(hours=1)).not_valid_after(now + datetime.timedelta(days=2))
             .add_extension(x509.BasicConstraints(ca=ca, path_length=None if not ca else 1), critical=True))
        if ca:
            b = b.add_extension(x509.KeyUsage(False, False, False, False, False, True, True, False, False), critical=True)
        else:
            b = b.add_extension(x509.SubjectAlternativeName(sans), critical=False)
            b = b.add_extension(x509.ExtendedKeyUsage([x509.oid.ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        return b.sign(issuer_key, hashes.SHA256())

    # RSA 2048 throughout, as the chain AWS endpoints present (Amazon Root CA 1 -> RSA 2048 M0x).
    keys = [rsa.generate_private_key(public_exponent=65537, key_size=2048) for _ in range(3)]
    root = cert("bench root CA", "bench root CA", keys[0], keys[0], True)
    inter = cert("bench intermediate CA", "bench root CA", keys[1], keys[0], True)
    leaf = cert("127.0.0.1", "bench intermediate CA", keys[2], keys[1], False,
                [x509.IPAddress(ipaddress.ip_address("127.0.0.1")), x509.IPAddress(ipaddress.ip_address(RECEIVER_IP)),
                 x509.DNSName("localhost")])
    pem = lambda c: c.public_bytes(serialization.Encoding.PEM)
    paths = {k: os.path.join(folder, k) for k in ("chain.pem", "key.pem", "root.pem", "bundle.pem")}
    with open(paths["chain.pem"], "wb") as f:
        f.write(pem(leaf) + pem(inter))
    with open(paths["key.pem"], "wb") as f:
        f.write(keys[2].private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.TraditionalOpenSSL,
                                      serialization.NoEncryption()))
    with open(paths["root.pem"], "wb") as f:
        f.write(pem(root))
    system = next((p for p in ("/etc/ssl/certs/ca-certificates.crt", "/etc/pki/tls/certs/ca-bundle.crt")
                   if os.path.exists(p)), None)
    if system is None:
        sys.exit("no system CA bundle found (ca-certificates)")
    with open(paths["bundle.pem"], "wb") as f, open(system, "rb") as s:
        f.write(s.read() + b"\n" + pem(root))
    return paths


# ---------------------------------------------------------------------------------------------
# The webhook receiver


class Receiver(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    seen = []

    def do_POST(self):
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        Receiver.seen.append((self.headers.get("event"), body))
        self.send_response(200)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, *args):
        pass


# ---------------------------------------------------------------------------------------------
# Processes


def spawn(bootstrap, env, cgroup):
    """Starts `bootstrap` inside the cgroups. A small shell enters them and execs it; the clock
    starts when the shell says it is in (joining a cgroup waits for the kernel, ~10 ms here,
    which is the harness's time, not the function's), so the CPU time and the wall time both
    start at a small process's exec."""
    enter = " && ".join(f"echo $$ > {f}/cgroup.procs" for f in (cgroup.acct, cgroup.cpu))
    p = subprocess.Popen(["/bin/sh", "-c", f'{enter} && echo in && exec "$0" >/dev/null', bootstrap], env=env,
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    if p.stdout.readline() != b"in\n":
        sys.exit(f"{bootstrap}: could not enter the cgroups: {p.stderr.read()[-500:]!r}")
    return time.perf_counter(), p


def wait_answer(run, p, limit=10):
    deadline = time.time() + limit
    while time.time() < deadline:
        try:
            return run.responses.get(timeout=0.05)
        except queue.Empty:
            if p.poll() is not None:
                break
    raise queue.Empty


def converse(bootstrap, env, invocations, size="full", throttle_init=True):
    """Runs `bootstrap` for `invocations`; answers the timings and the responses."""
    # Init at full CPU: the quota is set at the first poll (setting it is immediate; moving
    # the process into another cgroup then would not be).
    cgroup = Cgroup(quota_for(size) if throttle_init else None)
    run = Run(invocations, cpu_ns=cgroup.usage_ns)
    if not throttle_init:
        run.on_first_poll = lambda: cgroup.set_quota(quota_for(size))
    CURRENT["run"] = run
    p = None
    try:
        start, p = spawn(bootstrap, env, cgroup)
        answers = []
        for _ in invocations:
            try:
                kind, t, cpu, body, polled = wait_answer(run, p)
            except queue.Empty:
                alive = p.poll() is None
                if alive and len(answers) >= 2:
                    # A warm invocation went missing between the stand-in and the runtime (rare:
                    # the runtime polled again without answering it); the cold figures and the
                    # other warm ones stand.
                    break
                p.kill()
                err = p.stderr.read().decode(errors="replace")[-500:]
                why = (f"no answer within 10 s (after {len(run.polls)} polls, {len(answers)} answers)" if alive
                       else f"exited with {p.returncode}")
                return {"failed": f"{why} {err}".strip()}
            if kind != "response":
                return {"failed": f"invocation error {body[:300]!r}"}
            if polled is None:
                return {"failed": "an answer for an invocation that was never handed out"}
            answers.append((t, cpu, body, polled))
        throttled = cgroup.throttled()
    finally:
        if p is not None:
            p.kill()
            p.wait()
        CURRENT["run"] = None
        cgroup.remove()
    (t1, cpu_end1, _, first_poll) = answers[0]
    if first_poll is not run.polls[0]:
        return {"failed": "the first invocation went missing"}
    poll1, cpu1 = first_poll
    warm = [t - polled[0] for (t, _, _, polled) in answers[1:]]
    warm_cpu = [cpu - polled[1] for (_, cpu, _, polled) in answers[1:]]
    return {
        "init": (poll1 - start) * 1000,
        "first": (t1 - poll1) * 1000,
        "cold": (t1 - start) * 1000,
        "warm": statistics.median(warm) * 1000 if warm else float("nan"),
        "cpu_init": cpu1 / 1e6,
        "cpu_first": (cpu_end1 - cpu1) / 1e6,
        "cpu_warm": statistics.median(warm_cpu) / 1e6 if warm_cpu else float("nan"),
        "throttled": throttled,
        "bodies": [a[2] for a in answers],
    }


def check(fn, body):
    """Fails the run when an invocation did not do its work."""
    doc = json.loads(body)
    if "statusCode" in doc:
        if doc["statusCode"] != 200:
            sys.exit(f"{fn}: answered {doc['statusCode']}: {doc.get('body', '')[:500]}")
        return json.loads(doc.get("body") or "null")
    if doc.get("batchItemFailures"):
        sys.exit(f"{fn}: batch item failures {doc}")
    return doc


# ---------------------------------------------------------------------------------------------
# Invocations


def apigw(name, **vars):
    with open(os.path.join(ROOT, "events", "apigw", f"{name}.json")) as f:
        raw = f.read()
    vars.setdefault("exp", str(int(time.time()) + 24 * 3600))
    for k, v in vars.items():
        raw = raw.replace("{{" + k + "}}", v)
    return raw.encode()


def attribute_json(value):
    """boto3's low-level attribute value as Lambda's stream JSON (binary base64)."""
    (t, v), = value.items()
    if t == "B":
        return {"B": base64.b64encode(v).decode()}
    if t == "BS":
        return {"BS": [base64.b64encode(x).decode() for x in v]}
    if t == "M":
        return {"M": {k: attribute_json(x) for k, x in v.items()}}
    if t == "L":
        return {"L": [attribute_json(x) for x in v]}
    return {t: v}


def seed(bin_dir, env, aws):
    """Writes what the measured invocations read, through the functions themselves."""
    def run(fn, events):
        done = converse(os.path.join(bin_dir, fn), env, events)
        if "failed" in done:
            sys.exit(f"seeding with {fn}: {done['failed']}")
        return [check(fn, b) for b in done["bodies"]]

    open_draft, done = run("drafts", [apigw("drafts-create"), apigw("drafts-create")])
    order = run("drafts", [apigw("drafts-complete", draft_id=done["id"])])[0]
    order_id = order["orders"][0]["order_id"]
    hook_body = json.dumps({"events": ["shopping_order_update", "shopping_draft_complete"], "config": {
        "url": f"https://{RECEIVER_IP}:{aws['receiver_port']}/hook", "content_type": "application/json",
        "insecure_ssl": 0, "secret": {"type": "HMAC-SHA1", "value": "whsec-bench"}}})
    create = json.loads(apigw("hooks-create"))
    create["body"] = hook_body
    hook = run("hooks", [json.dumps(create).encode()])[0]
    # The subscription's ping: a job message on the delivery queue, as the deliverer gets it.
    sqs, ddb = aws["sqs"], aws["ddb"]
    got = sqs.receive_message(QueueUrl=aws["queue_url"], MaxNumberOfMessages=10, AttributeNames=["All"])
    messages = got.get("Messages", [])
    if not messages:
        sys.exit("the hooks function queued no ping")
    m = messages[0]
    sqs_event = {"Records": [{"messageId": m["MessageId"], "receiptHandle": m["ReceiptHandle"], "body": m["Body"],
                              "attributes": m.get("Attributes", {}), "messageAttributes": {}, "md5OfBody": m["MD5OfBody"],
                              "eventSource": "aws:sqs", "awsRegion": "eu-west-1",
                              "eventSourceARN": "arn:aws:sqs:eu-west-1:123456789012:bench-deliveries"}]}
    # A stream record: the order's image with its events, as the table's stream hands it over.
    items = ddb.scan(TableName="bench")["Items"]
    # `ev` marks an image whose payload carries events (the stream's filter passes only these).
    image = next((i for i in items if "ev" in i and order_id in i["pk"]["S"]), None) \
        or next((i for i in items if "ev" in i), None)
    if image is None:
        sys.exit("no item with events in the table")
    record = {"eventID": "1", "eventName": "MODIFY", "eventVersion": "1.1", "eventSource": "aws:dynamodb",
              "awsRegion": "eu-west-1", "eventSourceARN": "arn:aws:dynamodb:eu-west-1:123456789012:table/bench/stream/x",
              "dynamodb": {"ApproximateCreationDateTime": time.time(),
                           "Keys": {"pk": attribute_json(image["pk"]), "sk": attribute_json(image["sk"])},
                           "NewImage": {k: attribute_json(v) for k, v in image.items()},
                           "SequenceNumber": "100000000000000000001", "SizeBytes": 512,
                           "StreamViewType": "NEW_AND_OLD_IMAGES"}}
    # An API client on the table, made by the operator command as on a stack.
    made = subprocess.run([os.path.join(bin_dir, "shopping-local"), "client", "create", "--table", "bench",
                           "--account", "T12345678", "--by", "bench"], env=env, capture_output=True, text=True)
    if made.returncode != 0:
        sys.exit(f"client create: {made.stderr}")
    creds = dict(line.split("=", 1) for line in made.stdout.split())
    basic = base64.b64encode(f"{creds['client_id']}:{creds['client_secret']}".encode()).decode()
    return {
        "token": apigw("auth-token", basic=basic),
        "drafts": apigw("drafts-get", draft_id=open_draft["id"]),
        "orders": apigw("orders-get", order_id=order_id),
        "payments": apigw("payments-authorizations-list", order_id=order_id),
        "views": apigw("views-customer-order", order_id=order_id, customer_id="cust-1"),
        "hooks": apigw("hooks-get", hook_id=hook["id"]),
        "publisher": json.dumps({"Records": [record]}).encode(),
        "deliverer": json.dumps(sqs_event).encode(),
        "hello": apigw("orders-get", order_id=order_id),
    }


# ---------------------------------------------------------------------------------------------


class Quiet(http.server.ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request, client_address):
        pass  # a killed process's connection


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_aws(pki):
    port = free_port()
    # The test suite's emulator (moto, serialised) over HTTPS, keeping connections open.
    proc = subprocess.Popen([sys.executable, os.path.join(ROOT, "tests", "emulator.py"), str(port),
                             pki["chain.pem"], pki["key.pem"]], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    import boto3
    endpoint = f"https://127.0.0.1:{port}"
    kw = dict(endpoint_url=endpoint, region_name="eu-west-1", aws_access_key_id="bench",
              aws_secret_access_key="bench", verify=pki["root.pem"])
    ddb, sqs, events = boto3.client("dynamodb", **kw), boto3.client("sqs", **kw), boto3.client("events", **kw)
    for _ in range(200):
        try:
            ddb.list_tables()
            break
        except Exception:
            time.sleep(0.05)
    attr = lambda n: {"AttributeName": n, "AttributeType": "S"}
    gsi = lambda n: {"IndexName": n, "KeySchema": [{"AttributeName": f"{n}pk", "KeyType": "HASH"},
                                                   {"AttributeName": f"{n}sk", "KeyType": "RANGE"}],
                     "Projection": {"ProjectionType": "INCLUDE", "NonKeyAttributes": ["sum", "ttl"]}}
    ddb.create_table(TableName="bench", BillingMode="PAY_PER_REQUEST",
                     KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}, {"AttributeName": "sk", "KeyType": "RANGE"}],
                     AttributeDefinitions=[attr(n) for n in ("pk", "sk", "gsi1pk", "gsi1sk", "gsi2pk", "gsi2sk")],
                     GlobalSecondaryIndexes=[gsi("gsi1"), gsi("gsi2")],
                     StreamSpecification={"StreamEnabled": True, "StreamViewType": "NEW_AND_OLD_IMAGES"})
    events.create_event_bus(Name="bench")
    queue_url = sqs.create_queue(QueueName="bench-deliveries")["QueueUrl"]
    key = boto3.client("kms", **kw).create_key(KeySpec="RSA_2048", KeyUsage="SIGN_VERIFY")
    return proc, {"endpoint": endpoint, "ddb": ddb, "sqs": sqs, "queue_url": queue_url,
                  "signing_key": key["KeyMetadata"]["KeyId"]}


def start_receiver(pki):
    server = Quiet((RECEIVER_IP, 0), Receiver)
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(pki["chain.pem"], pki["key.pem"])
    server.socket = ctx.wrap_socket(server.socket, server_side=True)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server.server_address[1]


def built_at(rev):
    """The release bootstraps of commit `rev`, built once in a worktree under target/."""
    src = os.path.join(ROOT, "target", "cold-variants", f"src-{rev}")
    out = os.path.join(ROOT, "target", "cold-variants", f"build-{rev}")
    if not os.path.isdir(src):
        subprocess.run(["git", "-C", ROOT, "worktree", "add", "--detach", src, rev], check=True)
    subprocess.run(["cargo", "build", "--release", "-p", "functions", "--bins", "--target-dir", out],
                   cwd=src, check=True)
    return os.path.join(out, "release")


def parse_variant(spec, default_dir):
    name, *rest = spec.split(",")
    folder, extra = default_dir, {}
    for part in rest:
        k, _, v = part.partition("=")
        if k == "dir":
            folder = v
        elif k == "rev":
            folder = built_at(v)
        else:
            extra[k] = v
    return name, folder, extra


def in_own_network():
    """Re-runs this script in a network namespace of its own (loopback only, plus the
    receiver's address on loopback)."""
    if os.environ.get("SHOPPING_BENCH_NETNS") == "1":
        return
    if os.geteuid() != 0:
        sys.exit("run as root: the bench makes cgroups and a network namespace")
    script = f"ip link set lo up && ip addr add {RECEIVER_IP}/32 dev lo && exec \"$@\""
    os.environ["SHOPPING_BENCH_NETNS"] = "1"
    os.execvp("unshare", ["unshare", "-n", "sh", "-c", script, "sh", sys.executable, *sys.argv])


def fmt(values):
    return f"{statistics.median(values):.1f}"


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--runs", type=int, default=7, help="interleaved rounds (one start of each row per round)")
    ap.add_argument("--warm", type=int, default=3, help="warm invocations after the first (their median)")
    ap.add_argument("--sizes", default="full,128,256,1024")
    ap.add_argument("--functions", default=",".join(FUNCTIONS))
    ap.add_argument("--bin-dir", default=os.path.join(ROOT, "target", "release"))
    ap.add_argument("--hello", default=os.path.join(ROOT, "target", "release", "hello_lambda"))
    ap.add_argument("--variant", action="append", default=[])
    ap.add_argument("--compare", help="BASE,CHOSEN: also print CHOSEN's cold request as a share of BASE's")
    args = ap.parse_args()
    # Before the network namespace: building a `rev=` variant may need the registry.
    variants = [parse_variant(v, args.bin_dir) for v in args.variant] or [("release", args.bin_dir, {})]
    in_own_network()
    # Timestamps are taken by this process's threads: hand the interpreter lock over quickly
    # (the default 5 ms switch interval would be most of a hello world's init).
    sys.setswitchinterval(0.0001)

    folder = tempfile.mkdtemp(prefix="cold-request-")
    pki = make_pki(folder)
    receiver_port = start_receiver(pki)
    moto, aws = start_aws(pki)
    aws["receiver_port"] = receiver_port
    server = Quiet(("127.0.0.1", 0), RuntimeApi)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "AWS_LAMBDA_RUNTIME_API": f"127.0.0.1:{server.server_address[1]}",
        "AWS_LAMBDA_FUNCTION_NAME": "bench", "AWS_LAMBDA_FUNCTION_VERSION": "$LATEST",
        "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": "1769",
        "AWS_LAMBDA_LOG_STREAM_NAME": "bench", "AWS_LAMBDA_LOG_GROUP_NAME": "bench",
        "AWS_REGION": "eu-west-1", "AWS_ACCESS_KEY_ID": "bench", "AWS_SECRET_ACCESS_KEY": "bench",
        "AWS_SESSION_TOKEN": "bench", "TABLE_NAME": "bench", "RUST_LOG": "warn",
        "AWS_ENDPOINT_URL": aws["endpoint"], "SSL_CERT_FILE": pki["bundle.pem"],
        "DELIVERY_QUEUE_URL": aws["queue_url"], "EVENT_BUS_NAME": "bench",
        # The token function's: the stack's own issuer.
        "SIGNING_KEY_ID": aws["signing_key"], "TOKEN_ISSUER": "https://keys.bench.on.aws/",
        "TOKEN_AUDIENCE": "shopping-api",
        # KMS under another name of the same emulator: a connection and a TLS handshake of its
        # own, as KMS is another host than DynamoDB on AWS.
        "AWS_ENDPOINT_URL_KMS": aws["endpoint"].replace("127.0.0.1", "localhost"),
    }
    functions = [f for f in args.functions.split(",") if f]
    sizes = args.sizes.split(",")
    try:
        invocations = seed(variants[0][1], env, aws)
        # Rows: (function, variant); columns: (size, init mode).
        modes = [(s, True) for s in sizes if s == "full"] + \
                [(s, t) for s in sizes if s != "full" for t in (True, False)]
        rows = [("hello", "baseline", args.hello, {})] + \
               [(f, v, os.path.join(d, f), extra) for f in functions for (v, d, extra) in variants]
        results, failures = {}, {}
        for _ in range(args.runs):
            for size, throttle_init in modes:
                for fn, variant, path, extra in rows:
                    extra = {k: v.replace("{run_root}", pki["root.pem"]) for k, v in extra.items()}
                    e = dict(env, AWS_LAMBDA_FUNCTION_MEMORY_SIZE="1769" if size == "full" else size, **extra)
                    r = converse(path, e, [invocations[fn]] * (1 + args.warm), size, throttle_init)
                    if "failed" in r:
                        print(f"{fn} ({variant}, {size}, {'throttled' if throttle_init else 'full'} init): "
                              f"{r['failed']}", file=sys.stderr)
                        failures[(fn, variant, size, throttle_init)] = failures.get((fn, variant, size, throttle_init), 0) + 1
                        continue
                    for b in r.pop("bodies"):
                        if fn != "hello":
                            check(fn, b)
                    results.setdefault((fn, variant, size, throttle_init), []).append(r)
    finally:
        moto.kill()
        server.shutdown()
        shutil.rmtree(folder, ignore_errors=True)

    machine = f"{os.uname().machine}, {os.cpu_count()} cores"
    print(f"Cold request, {datetime.date.today()}, {machine}: medians of {args.runs} interleaved rounds "
          f"(ms; CPU = CPU time used in that phase)\n")
    print("| function | variant | CPU | init | init CPU | 1st invocation | 1st CPU | **cold request** | warm | warm CPU | × hello cold |"
          + (" failed |" if failures else ""))
    print("|---|---|---|---|---|---|---|---|---|---|---|" + ("---|" if failures else ""))
    for size, throttle_init in modes:
        label = "full" if size == "full" else f"{size} MB, init {'throttled' if throttle_init else 'full CPU'}"
        hello = statistics.median(r["cold"] for r in results[("hello", "baseline", size, throttle_init)])
        for fn, variant, _, _ in rows:
            rs = results.get((fn, variant, size, throttle_init), [])
            failed = failures.get((fn, variant, size, throttle_init), 0)
            if not rs:
                print(f"| {fn} | {variant} | {label} | | | | | all failed | | | | {failed} |")
                continue
            col = lambda k: fmt([r[k] for r in rs])
            cold = statistics.median(r["cold"] for r in rs)
            print(f"| {fn} | {variant} | {label} | {col('init')} | {col('cpu_init')} | {col('first')} | "
                  f"{col('cpu_first')} | **{cold:.1f}** | {col('warm')} | {col('cpu_warm')} | {cold / hello:.2f} |"
                  + (f" {failed} |" if failures else ""))
    if args.compare:
        base, chosen = args.compare.split(",")
        print(f"\n{chosen}'s cold request as a share of {base}'s (budget at 256 MB: at most 1/3, both init modes)\n")
        print("| function | " + " | ".join("full" if s == "full" else f"{s} MB, init {'throttled' if t else 'full CPU'}"
                                         for s, t in modes) + " |")
        print("|---|" + "---|" * len(modes))
        for fn in functions:
            cells = []
            for size, throttle_init in modes:
                a = results.get((fn, base, size, throttle_init))
                b = results.get((fn, chosen, size, throttle_init))
                cells.append(f"{statistics.median(r['cold'] for r in b) / statistics.median(r['cold'] for r in a):.2f}"
                             if a and b else "–")
            print(f"| {fn} | " + " | ".join(cells) + " |")
    json.dump({f"{k[0]}|{k[1]}|{k[2]}|{'throttled' if k[3] else 'full-init'}": v for k, v in results.items()},
              open(os.path.join(ROOT, "target", "cold-request.json"), "w"))


if __name__ == "__main__":
    main()
