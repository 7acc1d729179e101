"""The cold-request bench's AWS (cold_request.py): a CA made for the run, the test suite's emulator
(moto, serialised) over HTTPS, the webhook receiver, and the invocations each function is timed
on, seeded through the functions themselves.
"""

import base64
import datetime
import http.server
import ipaddress
import json
import os
import socket
import ssl
import subprocess
import sys
import threading
import time

import boto3
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import NameOID

from cold_request_runtime import Quiet, check, converse

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
RECEIVER_IP = "203.0.113.10"


# ---------------------------------------------------------------------------------------------
# TLS: a CA, an intermediate and a leaf made for the run


def make_pki(folder):
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


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_aws(pki):
    port = free_port()
    # The test suite's emulator (moto, serialised) over HTTPS, keeping connections open.
    proc = subprocess.Popen([sys.executable, "-m", "harness.emulator", str(port), pki["chain.pem"], pki["key.pem"]],
                            env=dict(os.environ, PYTHONPATH=os.path.join(ROOT, "tests")),
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
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
