"""The stack on one machine, as AWS runs it: the emulator (moto) with `infra/template.yaml`
deployed into its CloudFormation the way the deploy rehearsal does it (the same transform and
shims), and each function's real bootstrap run as the deployed stack configures it.

What the emulator keeps (the table and its stream, the queues and their redrive, the bus and
its rule delivering to the delivery queue, KMS, every function's configuration and event source
mappings) it serves itself. What it does not run, this harness emulates, reading the deployed
configuration:
  - Lambda: each function's bootstrap behind a Runtime API served here, one process per
    concurrent invocation up to the function's concurrency, with the deployed environment (plus
    the emulator's endpoint), memory size and timeout;
  - the HTTP API: the deployed routes and integrations (payload format 2.0), the JWT authorizer
    (RS256, RS384 or RS512 only, as AWS's HTTP API authorizer; the token checked against the
    issuer's discovery document and keys, `iss`, `aud`, `exp`, `nbf`, `iat`; the keys cached for
    KEY_CACHE_SECONDS of the emulated clock, an unknown `kid` refused until they expire), API
    Gateway's own answers and its payload limit;
  - the function URL of the issuer's keys, on a port of its own;
  - the stream's event source mapping into the publisher (its filters, batch size, batching
    window, partial batch failures, bisect on error, retries and on-failure destination), and
    the delivery queue's into the deliverer (batch size, partial batch failures, maximum
    concurrency; the queue's visibility timeout and redrive are the emulator's);
  - TTL: items whose `ttl` has passed are deleted as DynamoDB's sweeper deletes them, with a
    REMOVE stream record marked as the service's.

Usage (through `tests/stack`, which installs the Python tools and builds the bootstraps):
  stack.py up --port PORT --data-dir DIR --bin-dir BIN [--webhook-allow-loopback]
              [--parameter-overrides K=V [K=V ...]]
  stack.py client create --data-dir DIR --account AID [--scopes "..."] --bin-dir BIN
  stack.py clock --data-dir DIR --offset-seconds N
  stack.py redeploy --data-dir DIR --parameter-overrides K=V [K=V ...]

`up` deploys with the template's defaults, but for the parameters `--parameter-overrides` names
(as `sam deploy --parameter-overrides` does), writes DIR/stack.json once every function has
answered, prints `stack listening on http://127.0.0.1:PORT`, logs each invocation (function,
request id, duration, status) and stops everything on SIGTERM or SIGINT. Each function's own log
is in DIR/logs/FUNCTION.log. `SHOPPING_CLOCK_OFFSET_SECONDS` moves the clock of the whole
emulated account (functions, authorizer and its key cache, TTL sweeper); `clock` moves it on a
running stack, restarting the functions as a configuration change would.

`redeploy` updates the running stack's CloudFormation stack with the template and its parameters,
those named changed and the others as they were (as `sam deploy` keeps samconfig's): the functions
whose configuration changed restart (as a new version would), the routes and authorizers are read
again (an authorizer whose issuer and audiences are unchanged keeps its key cache, as API
Gateway's does), DIR/stack.json is rewritten, and it prints `redeployed: K=V ...`. A change that
adds or removes a function or changes an event source mapping needs a new `up`.
"""

import argparse
import base64
import datetime
import http.server
import json
import os
import queue
import re
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
import uuid

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

REGION = "us-east-1"
ACCOUNT = "123456789012"
STACK = "shopping"
# A function without reserved concurrency may scale to the account's unreserved concurrency;
# on a laptop, this many processes at most.
UNRESERVED_CAP = 8
# Lambda's limits: init within 10 s, a synchronous payload of at most 6 MB each way.
INIT_TIMEOUT = 10.0
LAMBDA_PAYLOAD_MAX = 6 * 1024 * 1024
# API Gateway's: a request body of at most 10 MB, an integration answers within 30 s.
API_PAYLOAD_MAX = 10 * 1024 * 1024
INTEGRATION_TIMEOUT = 30.0
TTL_SWEEP_EVERY = 2.0
# How long the JWT authorizer keeps the issuer's keys, on the emulated clock, with no fetch for a
# kid it has not seen. The REST API's "Signing keys and troubleshooting JWT authorizers"
# (https://docs.aws.amazon.com/apigateway/latest/developerguide/rest-api-jwt-authorizer-keys.html)
# caches them "for up to 1 hour on a best-effort basis" and, for a key it hasn't seen, "retrieves
# the key set again"; but that is the REST API. The HTTP API's page (see Authorizer) promises no
# fetch for an unseen kid, and its China-region edition (docs.amazonaws.cn) says in the same step
# that API Gateway can cache the public keys for two hours. So the harness takes the harsher
# reading: two hours, and a token signed by a key the cache lacks is 401 until the cache expires.
KEY_CACHE_SECONDS = 7200

LOG_LOCK = threading.Lock()
LOG_FILE = None


def log(line: str) -> None:
    with LOG_LOCK:
        print(line, flush=True)
        if LOG_FILE is not None:
            LOG_FILE.write(line + "\n")
            LOG_FILE.flush()


class World:
    """The emulated account's clock: the wall clock moved by SHOPPING_CLOCK_OFFSET_SECONDS."""

    def __init__(self, offset: int):
        self.offset = offset

    def now(self) -> float:
        return time.time() + self.offset


def clock_offset(value) -> int:
    try:
        offset = int(str(value).strip())
    except ValueError:
        raise SystemExit("SHOPPING_CLOCK_OFFSET_SECONDS must be an integer number of seconds")
    if abs(offset) > 100 * 366 * 86400:
        raise SystemExit("SHOPPING_CLOCK_OFFSET_SECONDS must be within ±100 years")
    return offset


# ---------------------------------------------------------------------------------------------
# Lambda: a Runtime API per process, a pool of processes per function


class QuietServer(http.server.ThreadingHTTPServer):
    """A peer that goes away mid-answer (a process killed, a client gone) is not an error.
    Answers go out at once (TCP_NODELAY): the stdlib writes a response's head and body
    separately, and on a kept-alive connection Nagle's algorithm would hold the body until
    the client's delayed acknowledgement, ~40 ms a request."""

    daemon_threads = True

    def get_request(self):
        conn, addr = super().get_request()
        conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        return conn, addr

    def handle_error(self, request, client_address):
        if not isinstance(sys.exc_info()[1], (BrokenPipeError, ConnectionResetError)):
            super().handle_error(request, client_address)


class InvocationError(Exception):
    def __init__(self, kind: str, detail: str):
        super().__init__(detail)
        self.kind = kind  # "error" (the function failed), "timeout", "crash", "throttle", "payload"


class Instance:
    """One execution environment: a bootstrap process and the Runtime API it polls."""

    def __init__(self, fn: "Function"):
        self.fn = fn
        self.generation = fn.generation
        self.pending: "queue.Queue[tuple]" = queue.Queue()
        self.results: "queue.Queue[tuple]" = queue.Queue()
        self.initialised = threading.Event()
        self.init_error = None
        self.current = None
        instance = self

        class RuntimeApi(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_GET(self):  # noqa: N802 - the stdlib's name
                if not self.path.endswith("/runtime/invocation/next"):
                    return self.answer(404, b'{"errorMessage":"not found"}')
                instance.initialised.set()
                while True:
                    try:
                        rid, payload, deadline_ms = instance.pending.get(timeout=1)
                        break
                    except queue.Empty:
                        if instance.proc.poll() is not None or instance.fn.stopping:
                            return self.answer(410, b"{}")
                instance.current = rid
                self.answer(200, payload, {
                    "Lambda-Runtime-Aws-Request-Id": rid,
                    "Lambda-Runtime-Deadline-Ms": str(deadline_ms),
                    "Lambda-Runtime-Invoked-Function-Arn": instance.fn.arn,
                    "Lambda-Runtime-Trace-Id": f"Root=1-{int(time.time()):08x}-{uuid.uuid4().hex[:24]};Sampled=0",
                    "Content-Type": "application/json",
                })

            def do_POST(self):  # noqa: N802
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                parts = self.path.rstrip("/").split("/")
                if self.path.endswith("/init/error"):
                    instance.init_error = body.decode("utf-8", "replace")
                    instance.initialised.set()
                elif len(parts) >= 2 and parts[-1] in ("response", "error"):
                    instance.results.put((parts[-2], parts[-1], body))
                self.answer(202, b'{"status":"OK"}')

            def answer(self, status, body, headers=None):
                self.send_response(status)
                for k, v in (headers or {}).items():
                    self.send_header(k, v)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *_):
                pass

        self.server = QuietServer(("127.0.0.1", 0), RuntimeApi)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        fn.instances_started += 1
        n = fn.instances_started
        env = dict(fn.env)
        env.update(
            AWS_LAMBDA_RUNTIME_API=f"127.0.0.1:{self.server.server_address[1]}",
            AWS_LAMBDA_LOG_STREAM_NAME=f"{time.strftime('%Y/%m/%d')}/[$LATEST]{uuid.uuid4().hex}",
        )
        if fn.harness.world.offset:
            env["SHOPPING_CLOCK_OFFSET_SECONDS"] = str(fn.harness.world.offset)
        out = open(os.path.join(fn.harness.log_dir, f"{fn.short}.log"), "ab")
        out.write(f"--- {fn.short} process {n} starting\n".encode())
        out.flush()
        self.proc = subprocess.Popen([fn.bootstrap], env=env, stdout=out, stderr=subprocess.STDOUT,
                                     stdin=subprocess.DEVNULL, cwd=fn.harness.data_dir)
        out.close()

    def invoke(self, payload: bytes, timeout: float, cold: bool) -> bytes:
        rid = str(uuid.uuid4())
        if cold:
            if not self.initialised.wait(INIT_TIMEOUT) or self.init_error is not None or self.proc.poll() is not None:
                self.kill()
                raise InvocationError("crash", f"init failed: {self.init_error or 'no poll within 10 s'}")
        deadline = time.time() + timeout
        self.pending.put((rid, payload, int(deadline * 1000)))
        while True:
            try:
                got, kind, body = self.results.get(timeout=min(0.5, max(0.01, deadline - time.time())))
            except queue.Empty:
                if self.proc.poll() is not None:
                    raise InvocationError("crash", f"the process exited ({self.proc.returncode})")
                if time.time() >= deadline:
                    self.kill()
                    raise InvocationError("timeout", f"Task timed out after {timeout:.2f} seconds")
                continue
            if got != rid:
                continue
            if kind == "error":
                raise InvocationError("error", body.decode("utf-8", "replace"))
            return body

    def alive(self) -> bool:
        return self.proc.poll() is None

    def kill(self):
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
        # Its Runtime API stops in the background: shutdown waits out a poll interval.
        threading.Thread(target=lambda: (self.server.shutdown(), self.server.server_close()), daemon=True).start()


class Function:
    """A deployed function: its configuration as the emulator holds it, its warm instances."""

    def __init__(self, harness, logical, config, bootstrap, concurrency):
        self.harness = harness
        self.logical = logical
        self.short = logical[: -len("Function")].lower()
        self.bootstrap = bootstrap
        self.stopping = False
        self.instances_started = 0
        self.generation = 0
        self.idle: list = []
        self.busy = 0
        self.cv = threading.Condition()
        self.configure(config, concurrency)

    def configure(self, config, concurrency) -> bool:
        """Takes the function's deployed configuration; answers whether it changed (then the
        instances running the previous one are to be recycled)."""
        deployed = (config["FunctionName"], config["FunctionArn"], float(config.get("Timeout", 3)),
                    int(config.get("MemorySize", 128)), config.get("Handler", "bootstrap"),
                    dict(config.get("Environment", {}).get("Variables", {})), concurrency)
        if deployed == getattr(self, "deployed", None):
            return False
        self.deployed = deployed
        self.name, self.arn, self.timeout, self.memory, handler, env, self.concurrency = deployed
        env = dict(env)
        env.update(
            AWS_ACCESS_KEY_ID="test", AWS_SECRET_ACCESS_KEY="test", AWS_SESSION_TOKEN="test",
            AWS_REGION=REGION, AWS_DEFAULT_REGION=REGION, AWS_ENDPOINT_URL=self.harness.endpoint,
            AWS_LAMBDA_FUNCTION_NAME=self.name, AWS_LAMBDA_FUNCTION_VERSION="$LATEST",
            AWS_LAMBDA_FUNCTION_MEMORY_SIZE=str(self.memory), AWS_LAMBDA_LOG_GROUP_NAME=f"/aws/lambda/{self.name}",
            AWS_EXECUTION_ENV="AWS_Lambda_provided.al2023", _HANDLER=handler,
            LAMBDA_TASK_ROOT=os.path.dirname(self.bootstrap), TZ=":UTC", LANG="en_US.UTF-8",
            PATH="/usr/local/bin:/usr/bin:/bin",
        )
        if self.harness.webhook_loopback:
            env["SHOPPING_WEBHOOK_ALLOW_LOOPBACK"] = "true"
        self.env = env
        return True

    def invoke(self, payload: bytes, what: str = "") -> bytes:
        """Runs one invocation; answers the function's response or raises InvocationError.
        Logs it: function, request id, duration, status."""
        started = time.perf_counter()
        if len(payload) > LAMBDA_PAYLOAD_MAX:
            raise InvocationError("payload", "Request must be smaller than 6291456 bytes for the InvokeFunction operation")
        with self.cv:
            while not self.idle and self.busy >= self.concurrency:
                if not self.cv.wait(timeout=INTEGRATION_TIMEOUT):
                    raise InvocationError("throttle", "Rate Exceeded.")
            cold = not self.idle
            inst = self.idle.pop() if self.idle else None
            self.busy += 1
        rid, status = "-", "error"
        try:
            if inst is None:
                inst = Instance(self)
            out = inst.invoke(payload, self.timeout, cold)
            rid = inst.current or "-"
            status = describe(out)
            if len(out) > LAMBDA_PAYLOAD_MAX:
                raise InvocationError("payload", "Response payload size exceeded maximum allowed payload size (6291456 bytes).")
            return out
        except InvocationError as e:
            rid = (inst.current if inst else None) or "-"
            status = f"{e.kind}: {str(e)[:200]}"
            raise
        finally:
            elapsed = (time.perf_counter() - started) * 1000
            with self.cv:
                self.busy -= 1
                # An instance started before the last restart (a moved clock) ends with its
                # invocation, as the idle ones did at the restart.
                if inst is not None and inst.alive() and not self.stopping and inst.generation == self.generation:
                    self.idle.append(inst)
                elif inst is not None:
                    inst.kill()
                self.cv.notify()
            log(f"invoke {self.short} {rid} {elapsed:.1f}ms {'cold ' if cold else ''}{status}{' ' + what if what else ''}")

    def recycle(self):
        """Ends every instance (a configuration change: the next invocations start cold)."""
        with self.cv:
            self.generation += 1
            idle, self.idle = self.idle, []
        for inst in idle:
            inst.kill()

    def stop(self):
        self.stopping = True
        self.recycle()


def describe(out: bytes) -> str:
    try:
        doc = json.loads(out)
    except ValueError:
        return "ok"
    if isinstance(doc, dict) and "statusCode" in doc:
        return str(doc["statusCode"])
    if isinstance(doc, dict) and "batchItemFailures" in doc:
        failed = len(doc["batchItemFailures"] or [])
        return f"ok ({failed} failed)" if failed else "ok"
    return "ok"


# ---------------------------------------------------------------------------------------------
# CloudFormation's intrinsic functions, for what the harness reads from the transformed template


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
# API Gateway: the HTTP API and its JWT authorizer, and function URLs


def gateway_answer(status: int, message: str):
    return status, {"content-type": "application/json"}, json.dumps({"message": message}).encode()


class Authorizer:
    """API Gateway's JWT authorizer: the token from the identity source (with or without
    `Bearer `), its signature by an RSA key of the issuer's JWKS (found through the issuer's
    discovery document), `iss` equal to the issuer, `aud` (or `client_id`) one of the
    audiences, `exp`, `nbf` and `iat` against the clock, and a route's scopes. One per authorizer
    configuration: its key cache outlives redeployed functions, as API Gateway's does."""

    # "Control access to HTTP APIs with JWT authorizers in API Gateway"
    # (https://docs.aws.amazon.com/apigateway/latest/developerguide/http-api-jwt-authorizer.html),
    # step 3 of its workflow: "Check the token's algorithm and signature by using the public key
    # that is fetched from the issuer's jwks_uri. Currently, only RSA-based algorithms are
    # supported." So ES256, HS256 (a public key used as an HMAC secret included) and `none` are 401.
    ALGORITHMS = ("RS256", "RS384", "RS512")

    def __init__(self, issuer, audiences, fetch, world):
        self.issuer, self.audiences, self.fetch, self.world = issuer, audiences, fetch, world
        self.keys, self.fetched_at, self.lock = {}, None, threading.Lock()

    def key(self, kid):
        """The issuer's JWK `kid`: the keys are fetched on first need, then kept for
        KEY_CACHE_SECONDS of the emulated clock whatever kid a token names."""
        with self.lock:
            if self.fetched_at is None or self.world.now() - self.fetched_at >= KEY_CACHE_SECONDS:
                discovery = json.loads(self.fetch(self.issuer.rstrip("/") + "/.well-known/openid-configuration"))
                jwks = json.loads(self.fetch(discovery["jwks_uri"]))
                self.keys = {k["kid"]: k for k in jwks.get("keys", []) if isinstance(k, dict) and k.get("kid")}
                self.fetched_at = self.world.now()
            return self.keys.get(kid)

    def claims(self, header, scopes):
        """The token's claims, or an API Gateway answer refusing the request."""
        import jwt

        if not header:
            return refused(401, "no token in the Authorization header")
        token = header[7:].strip() if header[:7].lower() == "bearer " else header.strip()
        try:
            head = jwt.get_unverified_header(token)
            alg = head.get("alg")
            if alg not in self.ALGORITHMS:
                return refused(401, f"algorithm {alg} is not accepted (RSA only)")
            jwk = self.key(head.get("kid"))
            if jwk is None:
                return refused(401, f"the cached keys have no kid {head.get('kid')!r}")
            if jwk.get("kty") != "RSA" or jwk.get("alg", alg) != alg:
                return refused(401, f"the key is {jwk.get('kty')} {jwk.get('alg')}, the token {alg}")
            claims = jwt.decode(token, jwt.algorithms.RSAAlgorithm.from_jwk(jwk), algorithms=[alg],
                                options={"verify_aud": False, "verify_iss": False, "verify_exp": False,
                                         "verify_nbf": False, "verify_iat": False})
        except Exception as e:  # noqa: BLE001 - every malformed or unverifiable token is refused alike
            return refused(401, f"the token does not verify: {type(e).__name__}: {e}")
        now = self.world.now()
        aud = claims.get("aud", claims.get("client_id"))
        auds = aud if isinstance(aud, list) else [aud]
        if claims.get("iss") != self.issuer:
            return refused(401, f"iss {claims.get('iss')!r} is not the issuer {self.issuer!r}")
        if not set(auds) & set(self.audiences):
            return refused(401, f"aud {aud!r} is none of {self.audiences}")
        if not isinstance(claims.get("exp"), (int, float)) or claims["exp"] <= now:
            return refused(401, "the token has expired")
        if claims.get("nbf", 0) > now or claims.get("iat", 0) > now:
            return refused(401, "the token is not valid yet (nbf or iat)")
        granted = str(claims.get("scope", claims.get("scp", ""))).split()
        if scopes and not set(scopes) & set(granted):
            return refused(403, "the token has none of the route's scopes")
        return claims


def refused(status, why):
    """API Gateway's answer to a refused token; `why` goes to the log (its authorizerError)."""
    answer = gateway_answer(status, "Unauthorized" if status == 401 else "Forbidden")
    return answer + ({"why": why},)


def claim_text(v):
    """API Gateway hands claims to the integration as strings."""
    if isinstance(v, str):
        return v
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, list):
        return "[" + " ".join(claim_text(x) for x in v) + "]"
    if isinstance(v, dict):
        return json.dumps(v, separators=(",", ":"))
    return str(v)


def v2_event(method, raw_path, query, headers, body, source_ip, request_id, domain, route_key=None,
             path_params=None, authorizer=None, api_id="local"):
    """A payload format 2.0 event, as API Gateway (and a function URL) sends it."""
    hdrs, cookies = {}, []
    for k, v in headers:
        k = k.lower()
        if k == "cookie":
            cookies.extend(c.strip() for c in v.split(";") if c.strip())
            continue
        hdrs[k] = f"{hdrs[k]},{v}" if k in hdrs else v
    qs = {}
    for k, v in urllib.parse.parse_qsl(query, keep_blank_values=True):
        qs[k] = f"{qs[k]},{v}" if k in qs else v
    now = datetime.datetime.now(datetime.timezone.utc)
    ctx = {
        "accountId": ACCOUNT if route_key else "anonymous",
        "apiId": api_id,
        "domainName": domain,
        "domainPrefix": domain.split(".")[0],
        "http": {"method": method, "path": raw_path, "protocol": "HTTP/1.1", "sourceIp": source_ip,
                 "userAgent": hdrs.get("user-agent", "")},
        "requestId": request_id,
        "routeKey": route_key or "$default",
        "stage": "$default",
        "time": now.strftime("%d/%b/%Y:%H:%M:%S +0000"),
        "timeEpoch": int(now.timestamp() * 1000),
    }
    if authorizer is not None:
        ctx["authorizer"] = authorizer
    event = {"version": "2.0", "routeKey": route_key or "$default", "rawPath": raw_path, "rawQueryString": query,
             "headers": hdrs, "requestContext": ctx, "isBase64Encoded": False}
    if cookies:
        event["cookies"] = cookies
    if qs:
        event["queryStringParameters"] = qs
    if path_params:
        event["pathParameters"] = path_params
    if body:
        text_types = ("application/json", "text/", "application/x-www-form-urlencoded", "application/xml")
        ctype = hdrs.get("content-type", "")
        if ctype.startswith(text_types) or not ctype:
            try:
                event["body"] = body.decode("utf-8")
            except UnicodeDecodeError:
                event["body"], event["isBase64Encoded"] = base64.b64encode(body).decode(), True
        else:
            event["body"], event["isBase64Encoded"] = base64.b64encode(body).decode(), True
    return event


def v2_response(out: bytes):
    """A function's answer (payload format 2.0) as HTTP: status, headers, body."""
    try:
        doc = json.loads(out)
    except ValueError:
        return gateway_answer(500, "Internal Server Error")
    if not isinstance(doc, dict) or "statusCode" not in doc:
        # Format 2.0 reads an answer without statusCode as a JSON body with 200.
        return 200, {"content-type": "application/json"}, json.dumps(doc).encode()
    headers = {k.lower(): str(v) for k, v in (doc.get("headers") or {}).items()}
    for k, vs in (doc.get("multiValueHeaders") or {}).items():
        headers[k.lower()] = ",".join(str(v) for v in vs)
    body = doc.get("body") or ""
    raw = base64.b64decode(body) if doc.get("isBase64Encoded") else body.encode("utf-8")
    cookies = doc.get("cookies") or []
    return int(doc["statusCode"]), headers, raw, cookies


class Route:
    def __init__(self, method, path, function, secured, scopes):
        self.method, self.path, self.function, self.secured, self.scopes = method, path, function, secured, scopes
        parts = path.strip("/").split("/")
        self.params = [p[1:-1] if p.startswith("{") else None for p in parts]
        self.literals = [p for p in parts]
        self.key = f"{method} {path}"

    def match(self, method, path):
        if method != self.method:
            return None
        parts = path.strip("/").split("/") if path != "/" else [""]
        if len(parts) != len(self.params):
            return None
        got = {}
        for name, lit, seg in zip(self.params, self.literals, parts):
            if name is None:
                if lit != seg:
                    return None
            elif not seg:
                return None
            else:
                got[name] = urllib.parse.unquote(seg)
        return got

    def specificity(self):
        # API Gateway prefers the most specific route: more literal segments first.
        return sum(1 for p in self.params if p is None)


def serve_http(port, handle):
    """A threaded HTTP/1.1 server whose every request goes to `handle(method, path, query,
    headers, body, ip)` → (status, headers, body[, cookies])."""

    class Handler(http.server.BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def any(self):
            split = urllib.parse.urlsplit(self.path)
            length = self.headers.get("Content-Length")
            if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
                body = b""
                while True:
                    size = int(self.rfile.readline().strip() or b"0", 16)
                    if size == 0:
                        self.rfile.readline()
                        break
                    body += self.rfile.read(size)
                    self.rfile.readline()
                    if len(body) > API_PAYLOAD_MAX:
                        return self.reply(*gateway_answer(413, "Request Entity Too Large"), close=True)
            elif length and int(length) > API_PAYLOAD_MAX:
                # Read (and drop) what the client sends, so that it reads the answer.
                left = int(length)
                while left > 0:
                    chunk = self.rfile.read(min(left, 1 << 20))
                    if not chunk:
                        break
                    left -= len(chunk)
                return self.reply(*gateway_answer(413, "Request Entity Too Large"), close=True)
            else:
                body = self.rfile.read(int(length or 0))
            answer = handle(self.command, split.path, split.query, list(self.headers.items()), body, self.client_address[0])
            self.reply(*answer)

        do_GET = do_POST = do_PUT = do_DELETE = do_PATCH = do_HEAD = do_OPTIONS = any

        def reply(self, status, headers, body, cookies=(), close=False):
            self.send_response(status)
            for k, v in headers.items():
                if k not in ("content-length", "connection", "transfer-encoding", "date", "server"):
                    self.send_header(k, v)
            for c in cookies:
                self.send_header("set-cookie", c)
            self.send_header("Content-Length", str(len(body)))
            if close:
                self.send_header("Connection", "close")
                self.close_connection = True
            self.end_headers()
            if self.command != "HEAD":
                self.wfile.write(body)

        def send_response(self, code, message=None):
            self.log_request(code)
            self.send_response_only(code, message)
            self.send_header("Date", self.date_time_string())

        def log_message(self, *_):
            pass

    server = QuietServer(("127.0.0.1", port), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


# ---------------------------------------------------------------------------------------------
# Event source mappings and TTL


def matches(pattern, value) -> bool:
    """EventBridge-style pattern matching, as event filtering uses it (exact values, prefix,
    exists), enough for the filters the template writes."""
    if isinstance(pattern, dict):
        if not isinstance(value, dict):
            return False
        return all(matches(p, value.get(k, _MISSING)) for k, p in pattern.items())
    if isinstance(pattern, list):
        for p in pattern:
            if isinstance(p, dict):
                if "prefix" in p and isinstance(value, str) and value.startswith(p["prefix"]):
                    return True
                if "exists" in p and (value is not _MISSING) == p["exists"]:
                    return True
            elif value is not _MISSING and value == p:
                return True
        return False
    return value == pattern


_MISSING = object()


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


def conditional_updates() -> None:
    """A shim for moto 5.2's stack update, which decides what to change from the template's text:
    a resource is updated only if its JSON changed or it `Ref`s a changed parameter itself, so
    one that depends on a parameter through a condition (`!If [SignsWithA, …]` in a function's
    environment or a role's policy) keeps its previous properties; a resource whose `Condition`
    turns true is created only when something first refers to it (moto's resource map is lazy);
    one whose `Condition` turns false is never deleted. CloudFormation compares each resource's
    resolved properties and condition. So, after moto's own update, this updates each resource
    whose resolved properties changed, creates those whose condition turned true and then
    deletes those whose condition turned false, as CloudFormation's cleanup does: a KMS key is
    scheduled for deletion after its PendingWindowInDays, as CloudFormation does (moto's own
    deletion is immediate). moto's function update leaves the reserved concurrency, and its role
    update the inline policies, as they were created: those are set again after every update. A
    resource whose properties changed and that moto cannot update fails the update. Installed
    once, in the process that runs the emulator."""
    from moto.cloudformation import parsing
    from moto.cloudformation.exceptions import ValidationError
    from moto.kms.models import kms_backends

    moto_update = parsing.ResourceMap.update

    def update(self, template, parameters=None):
        def resolved(name):
            return parsing.clean_json(self._resource_json_map[name].get("Properties", {}), self)

        before = {n: resolved(n) for n in self._resource_json_map if self._parsed_resources.get(n) is not None}
        updated = set(self.build_resource_diff(template, parameters)["Modify"])
        moto_update(self, template, parameters)
        withdrawn = []
        for name, spec in self._resource_json_map.items():
            wanted = "Condition" not in spec or self.lazy_condition_map[spec["Condition"]]
            present = self._parsed_resources.get(name) is not None
            if not wanted:
                if present:
                    withdrawn.append(name)
            elif not present:
                self[name]
            elif name in before and (name in updated or resolved(name) != before[name]):
                if name not in updated:
                    kind = parsing.resource_class_from_type(spec["Type"])
                    if getattr(kind.update_from_cloudformation_json, "__isabstractmethod__", False):
                        raise ValidationError(message=f"the emulator cannot update {name} ({spec['Type']})")
                    self._parsed_resources[name] = parsing.parse_and_update_resource(
                        name, spec, self, self._account_id, self._region_name)
                resource, props = self._parsed_resources[name], resolved(name)
                if spec["Type"] == "AWS::Lambda::Function":
                    resource.reserved_concurrency = props.get("ReservedConcurrentExecutions")
                elif spec["Type"] == "AWS::IAM::Role":
                    policies = {p["PolicyName"]: p["PolicyDocument"] for p in props.get("Policies", [])}
                    for gone in set(resource.policies) - set(policies):
                        resource.delete_policy(gone)
                    for policy, document in policies.items():
                        resource.put_policy(policy, document)
        for name in withdrawn:
            spec, resource = self._resource_json_map[name], self._parsed_resources.pop(name)
            if spec["Type"] == "AWS::KMS::Key":
                days = int(before[name].get("PendingWindowInDays", 30))
                kms_backends[self._account_id][self._region_name].schedule_key_deletion(resource.id, days)
            else:
                self._delete_resource(resource, spec)

    parsing.ResourceMap.update = update


class Harness:
    def __init__(self, args):
        self.args = args
        self.data_dir = os.path.abspath(args.data_dir)
        self.log_dir = os.path.join(self.data_dir, "logs")
        os.makedirs(self.log_dir, exist_ok=True)
        self.world = World(clock_offset(os.environ.get("SHOPPING_CLOCK_OFFSET_SECONDS", "0")))
        self.webhook_loopback = args.webhook_allow_loopback
        self.functions = {}
        self.routes = []
        self.authorizers = {}
        self.api_id = uuid.uuid4().hex[:10]
        self.deploying = threading.Lock()
        self.url_hosts = {}  # a function URL's host -> its local base URL
        self.stopping = threading.Event()
        self.swept = set()
        self.swept_lock = threading.Lock()
        self.emulator_busy = [0.0, 0]
        self.servers = []

    # ---- the emulator and the deploy

    def start_emulator(self):
        from werkzeug.serving import make_server
        from moto.moto_server.werkzeug_app import MotoRequestHandler

        import deploy_rehearsal
        from emulator import serialised_app

        deploy_rehearsal.install_shims()
        conditional_updates()

        def busy(seconds):
            self.emulator_busy[0] += seconds
            self.emulator_busy[1] += 1

        class NoDelay(MotoRequestHandler):
            def setup(self):
                super().setup()
                # As QuietServer's: each answer at once, not after a delayed acknowledgement.
                self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

        port = free_port()
        server = make_server("127.0.0.1", port, serialised_app(busy), threaded=True, request_handler=NoDelay)
        threading.Thread(target=server.serve_forever, daemon=True).start()
        self.servers.append(server)
        self.endpoint = f"http://127.0.0.1:{port}"

    def aws(self, service):
        import boto3
        from botocore.config import Config

        return boto3.client(service, region_name=REGION, endpoint_url=self.endpoint, aws_access_key_id="test",
                            aws_secret_access_key="test", config=Config(retries={"max_attempts": 2}))

    def deploy(self, overrides):
        import io
        import zipfile

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
        import deploy_rehearsal

        body = deploy_rehearsal.transformed("shopping-code", "bootstrap.zip", {**previous, **overrides})
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
        raise SystemExit(f"the harness cannot resolve {logical}.{attr}")

    def detach_emulator_mappings(self):
        """moto would run an event source mapping itself, by invoking the function in Docker,
        and drop the records or messages when it cannot: the harness runs the mappings, so
        moto's own are detached (the mappings stay readable through its Lambda API)."""
        from moto.dynamodb.models import dynamodb_backends
        from moto.sqs.models import sqs_backends

        for table in dynamodb_backends[ACCOUNT][REGION].tables.values():
            table.lambda_event_source_mappings.clear()
        for q in sqs_backends[ACCOUNT][REGION].queues.values():
            q.lambda_event_source_mappings.clear()

    # ---- functions

    def load_functions(self):
        from cfnlint.decode.cfn_yaml import load

        import deploy_rehearsal

        source = load(deploy_rehearsal.TEMPLATE)
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
        """A function's configuration as the emulator holds it, and its concurrency."""
        config = lam.get_function_configuration(FunctionName=self.physical(logical))
        reserved = lam.get_function_concurrency(FunctionName=self.physical(logical)).get("ReservedConcurrentExecutions")
        return config, int(reserved) if reserved else UNRESERVED_CAP

    def by_reference(self, text):
        """The function a transformed reference names (`${DraftsFunctionAliaslive}`, a Ref)."""
        m = re.search(r"\$\{(\w+?Function)(Alias\w+)?(\.Arn)?\}", text)
        return m.group(1) if m else None

    # ---- the HTTP API

    def load_api(self):
        """The deployed routes and authorizers. An authorizer whose issuer and audiences are
        unchanged is kept, its key cache with it; a changed one is a new authorizer."""
        api = next(r for r in self.body["Resources"].values() if r["Type"] == "AWS::ApiGatewayV2::Api")
        doc = api["Properties"]["Body"]
        schemes = doc.get("components", {}).get("securitySchemes", {})
        authorizers, routes = {}, []
        for name, scheme in schemes.items():
            auth = self.resolver.resolve(scheme["x-amazon-apigateway-authorizer"])
            if auth.get("type") != "jwt":
                raise SystemExit(f"authorizer {name}: only JWT authorizers are emulated")
            jwt_config = auth["jwtConfiguration"]
            audience = jwt_config.get("audience") or []
            audience = [audience] if isinstance(audience, str) else audience
            kept = self.authorizers.get(name)
            if kept is not None and (kept.issuer, kept.audiences) == (jwt_config["issuer"], audience):
                authorizers[name] = kept
            else:
                authorizers[name] = Authorizer(jwt_config["issuer"], audience, self.fetch, self.world)
        for path, methods in doc["paths"].items():
            for method, op in methods.items():
                integration = op["x-amazon-apigateway-integration"]
                uri = integration["uri"]
                uri = uri.get("Fn::Sub") if isinstance(uri, dict) else uri
                fn = self.by_reference(uri if isinstance(uri, str) else uri[0])
                if fn not in self.functions or integration.get("payloadFormatVersion") != "2.0":
                    raise SystemExit(f"route {method.upper()} {path}: integration {integration} is not emulated")
                security = op.get("security") or [{name: [] for name in list(schemes)[:1]}]
                (scheme, scopes), = security[0].items()
                secured = scheme in authorizers
                routes.append(Route(method.upper(), path, fn, scheme if secured else None, scopes))
        routes.sort(key=Route.specificity, reverse=True)
        self.authorizers, self.routes = authorizers, routes

    def api(self, method, path, query, headers, body, ip):
        rid = base64.b32encode(uuid.uuid4().bytes).decode()[:16]
        route, params = None, None
        for r in self.routes:
            params = r.match(method, path)
            if params is not None:
                route = r
                break
        if route is None:
            log(f"api {method} {path} 404 (no route)")
            return gateway_answer(404, "Not Found")
        authorizer = None
        if route.secured:
            header = next((v for k, v in headers if k.lower() == "authorization"), None)
            claims = self.authorizers[route.secured].claims(header, route.scopes)
            if isinstance(claims, tuple):
                log(f"api {route.key} {claims[0]} (authorizer: {claims[3]['why']})")
                return claims[:3]
            scope = str(claims.get("scope", claims.get("scp", ""))).split()
            authorizer = {"jwt": {"claims": {k: claim_text(v) for k, v in claims.items()},
                                  "scopes": route.scopes and scope or None}}
        event = v2_event(method, path, query, headers, body, ip, rid, f"{self.api_id}.execute-api.{REGION}.amazonaws.com",
                         route.key, params, authorizer, self.api_id)
        return self.integrate(self.functions[route.function], event, route.key)

    def integrate(self, fn, event, what):
        try:
            out = fn.invoke(json.dumps(event).encode(), what)
        except InvocationError as e:
            if e.kind == "throttle":
                return gateway_answer(429, "Too Many Requests")
            if e.kind == "timeout" and fn.timeout >= INTEGRATION_TIMEOUT:
                return gateway_answer(503, "Service Unavailable")
            if e.kind == "payload":
                return gateway_answer(413, "Request Entity Too Large")
            return gateway_answer(500, "Internal Server Error")
        return v2_response(out)

    # ---- function URLs

    def serve_function_urls(self):
        self.function_urls = {}
        for logical, r in self.body["Resources"].items():
            if r["Type"] != "AWS::Lambda::Url" or logical not in self.physical_ids:
                continue
            target = r["Properties"]["TargetFunctionArn"]["Ref"]
            url = self.attribute(logical, "FunctionUrl")
            host = urllib.parse.urlsplit(url).hostname
            fn = self.functions[target]

            def handle(method, path, query, headers, body, ip, fn=fn, host=host):
                rid = str(uuid.uuid4())
                # Reached at its local address, answered as at its own: `Host` is the URL's domain.
                headers = [(k, host if k.lower() == "host" else v) for k, v in headers]
                event = v2_event(method, path, query, headers, body, ip, rid, host, api_id=host.split(".")[0])
                return self.integrate(fn, event, f"URL {method} {path}")

            server = serve_http(0, handle)
            self.servers.append(server)
            local = f"http://127.0.0.1:{server.server_address[1]}/"
            self.url_hosts[host] = local
            self.function_urls[target] = {"url": url, "local": local}

    def fetch(self, url):
        """An https fetch from the public internet, as API Gateway makes it: a function URL of
        the stack is answered by its local server."""
        split = urllib.parse.urlsplit(url)
        local = self.url_hosts.get(split.hostname)
        if local is None:
            raise ValueError(f"{url} is not reachable from this machine")
        with urllib.request.urlopen(local.rstrip("/") + split.path, timeout=10) as res:
            return res.read()

    # ---- the stream into the publisher

    def stream_call(self, action, payload):
        req = urllib.request.Request(self.endpoint, data=json.dumps(payload).encode(), headers={
            "Content-Type": "application/x-amz-json-1.0", "X-Amz-Target": f"DynamoDBStreams_20120810.{action}",
            "Authorization": f"AWS4-HMAC-SHA256 Credential=test/20260101/{REGION}/dynamodb/aws4_request, SignedHeaders=host, Signature=x",
        })
        with urllib.request.urlopen(req, timeout=30) as res:
            return json.loads(res.read())

    def mappings(self):
        for logical, r in self.body["Resources"].items():
            if r["Type"] == "AWS::Lambda::EventSourceMapping" and logical in self.physical_ids:
                props = self.resolver.resolve(r["Properties"])
                fn_ref = r["Properties"]["FunctionName"]
                fn = fn_ref["Ref"] if isinstance(fn_ref, dict) else fn_ref
                yield logical, props, self.functions[fn]

    def start_mappings(self):
        for logical, props, fn in self.mappings():
            arn = props["EventSourceArn"]
            if ":dynamodb:" in arn:
                threading.Thread(target=self.stream_loop, args=(props, fn), daemon=True, name=logical).start()
            elif ":sqs:" in arn:
                workers = int(props.get("ScalingConfig", {}).get("MaximumConcurrency") or min(fn.concurrency, 5))
                threading.Thread(target=self.queue_loop, args=(props, fn, workers), daemon=True, name=logical).start()
            else:
                raise SystemExit(f"mapping {logical}: source {arn} is not emulated")

    def stream_loop(self, props, fn):
        arn = props["EventSourceArn"]
        batch_size = int(props.get("BatchSize", 100))
        window = float(props.get("MaximumBatchingWindowInSeconds", 0))
        filters = [json.loads(f["Pattern"]) for f in props.get("FilterCriteria", {}).get("Filters", [])]
        shard = self.stream_call("DescribeStream", {"StreamArn": arn})["StreamDescription"]["Shards"][0]["ShardId"]
        start = props.get("StartingPosition", "LATEST")
        iterator = self.stream_call("GetShardIterator", {"StreamArn": arn, "ShardId": shard,
                                                         "ShardIteratorType": start})["ShardIterator"]
        pending, first_seen = [], None
        while not self.stopping.is_set():
            try:
                got = self.stream_call("GetRecords", {"ShardIterator": iterator, "Limit": 1000})
            except Exception as e:  # noqa: BLE001 - the poller outlives a failed poll
                log(f"stream poll failed: {e}")
                time.sleep(1)
                continue
            iterator = got.get("NextShardIterator") or iterator
            for rec in got.get("Records", []):
                rec["eventSourceARN"] = arn
                self.mark_swept(rec)
                # Records no filter matches are dropped, as Lambda's event filtering drops them.
                if not filters or any(matches(f, rec) for f in filters):
                    pending.append(rec)
            if pending and first_seen is None:
                first_seen = time.time()
            if pending and (len(pending) >= batch_size or time.time() - first_seen >= window):
                batch, pending = pending[:batch_size], pending[batch_size:]
                self.stream_batch(fn, props, shard, batch)
                first_seen = time.time() if pending else None
            elif not got.get("Records"):
                time.sleep(0.1)

    def mark_swept(self, rec):
        """A REMOVE record of an item the TTL sweeper deleted carries the service's identity,
        as DynamoDB's TTL deletions do."""
        if rec.get("eventName") != "REMOVE":
            return
        keys = rec["dynamodb"]["Keys"]
        key = (keys.get("pk", {}).get("S"), keys.get("sk", {}).get("S"))
        with self.swept_lock:
            if key in self.swept:
                self.swept.discard(key)
                rec["userIdentity"] = {"type": "Service", "principalId": "dynamodb.amazonaws.com"}

    def stream_batch(self, fn, props, shard, batch):
        """One batch until it is done: partial failures retried from the first failed record,
        a failing batch bisected, a record that has used its retries sent to the on-failure
        destination and skipped."""
        retries = int(props.get("MaximumRetryAttempts", -1))
        max_age = int(props.get("MaximumRecordAgeInSeconds", -1))
        bisect = bool(props.get("BisectBatchOnFunctionError"))
        partial = "ReportBatchItemFailures" in (props.get("FunctionResponseTypes") or [])
        work = [(batch, 0)]
        while work and not self.stopping.is_set():
            records, attempts = work.pop(0)
            try:
                out = fn.invoke(json.dumps({"Records": records}).encode(), f"{len(records)} stream records")
                failed = [f.get("itemIdentifier") for f in (json.loads(out or b"{}") or {}).get("batchItemFailures") or []] if partial else []
                if not failed:
                    continue
                seqs = [r["dynamodb"]["SequenceNumber"] for r in records]
                first = min((seqs.index(s) for s in failed if s in seqs), default=0)
                records = records[first:]
                error = "partial batch failure"
            except InvocationError as e:
                error = str(e)[:300]
                if bisect and len(records) > 1:
                    # A split is not a retry: each half still has the retries its records had.
                    half = len(records) // 2
                    work[:0] = [(records[:half], attempts), (records[half:], attempts)]
                    continue
            attempts += 1
            oldest = min(float(r["dynamodb"].get("ApproximateCreationDateTime", time.time())) for r in records)
            if (0 <= retries < attempts) or (0 <= max_age < time.time() - oldest):
                self.on_failure(props, fn, shard, records, attempts, error)
                continue
            time.sleep(min(0.2 * 2 ** min(attempts, 8), 10))
            work.insert(0, (records, attempts))

    def on_failure(self, props, fn, shard, records, attempts, error):
        dest = (props.get("DestinationConfig") or {}).get("OnFailure", {}).get("Destination")
        log(f"mapping {fn.short}: {len(records)} records failed after {attempts} attempts ({error}); to {dest}")
        if not dest:
            return
        when = lambda r: datetime.datetime.fromtimestamp(float(r["dynamodb"]["ApproximateCreationDateTime"]),  # noqa: E731
                                                         datetime.timezone.utc).isoformat()
        body = {
            "requestContext": {"requestId": str(uuid.uuid4()), "functionArn": fn.arn,
                               "condition": "RetryAttemptsExhausted", "approximateInvokeCount": attempts},
            "responseContext": {"statusCode": 200, "executedVersion": "$LATEST", "functionError": "Unhandled"},
            "version": "1.0",
            "timestamp": datetime.datetime.now(datetime.timezone.utc).isoformat(),
            "DDBStreamBatchInfo": {
                "shardId": shard, "startSequenceNumber": records[0]["dynamodb"]["SequenceNumber"],
                "endSequenceNumber": records[-1]["dynamodb"]["SequenceNumber"],
                "approximateArrivalOfFirstRecord": when(records[0]), "approximateArrivalOfLastRecord": when(records[-1]),
                "batchSize": len(records), "streamArn": props["EventSourceArn"],
            },
        }
        sqs = self.aws("sqs")
        url = sqs.get_queue_url(QueueName=dest.rsplit(":", 1)[-1])["QueueUrl"]
        sqs.send_message(QueueUrl=url, MessageBody=json.dumps(body))

    # ---- the delivery queue into the deliverer

    def queue_loop(self, props, fn, workers):
        """One poller (the emulator cannot long-poll without holding every other request up),
        handing each batch to one of at most `workers` concurrent invocations: the mapping's
        maximum concurrency."""
        arn = props["EventSourceArn"]
        batch_size = min(int(props.get("BatchSize", 10)), 10)
        sqs = self.aws("sqs")
        url = sqs.get_queue_url(QueueName=arn.rsplit(":", 1)[-1])["QueueUrl"]
        slots = threading.BoundedSemaphore(workers)
        while not self.stopping.is_set():
            if not slots.acquire(timeout=1):
                continue
            try:
                got = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=batch_size, WaitTimeSeconds=0,
                                          AttributeNames=["All"], MessageAttributeNames=["All"]).get("Messages", [])
            except Exception as e:  # noqa: BLE001 - the poller outlives a failed poll
                log(f"queue poll failed: {e}")
                got = []
                time.sleep(1)
            if not got:
                slots.release()
                time.sleep(0.1)
                continue
            threading.Thread(target=self.queue_batch, args=(props, fn, sqs, url, got, slots), daemon=True).start()

    def queue_batch(self, props, fn, sqs, url, got, slots):
        """One batch: the messages the function did not report failed are deleted; on a
        function error none is, and all come back after the queue's visibility timeout."""
        try:
            partial = "ReportBatchItemFailures" in (props.get("FunctionResponseTypes") or [])
            records = [sqs_record(m, props["EventSourceArn"]) for m in got]
            try:
                out = fn.invoke(json.dumps({"Records": records}).encode(), f"{len(records)} queue messages")
                doc = json.loads(out or b"{}") or {}
                failed = {f.get("itemIdentifier") for f in doc.get("batchItemFailures") or []} if partial else set()
            except (InvocationError, ValueError, AttributeError):
                return
            done = [m for m in got if m["MessageId"] not in failed]
            for chunk in range(0, len(done), 10):
                entries = [{"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]} for i, m in enumerate(done[chunk:chunk + 10])]
                sqs.delete_message_batch(QueueUrl=url, Entries=entries)
        except Exception as e:  # noqa: BLE001
            log(f"queue batch failed: {e}")
        finally:
            slots.release()

    # ---- TTL

    def sweep_loop(self):
        spec = next(r["Properties"] for r in self.body["Resources"].values() if r["Type"] == "AWS::DynamoDB::Table")
        ttl = spec.get("TimeToLiveSpecification", {})
        if not ttl.get("Enabled"):
            return
        attr = ttl["AttributeName"]
        table = self.physical(next(k for k, r in self.body["Resources"].items() if r["Type"] == "AWS::DynamoDB::Table"))
        ddb = self.aws("dynamodb")
        while not self.stopping.wait(TTL_SWEEP_EVERY):
            now = str(int(self.world.now()))
            try:
                pages = ddb.get_paginator("scan").paginate(
                    TableName=table, ProjectionExpression="pk, sk, #t", FilterExpression="#t < :now",
                    ExpressionAttributeNames={"#t": attr}, ExpressionAttributeValues={":now": {"N": now}})
                for page in pages:
                    for item in page.get("Items", []):
                        key = (item["pk"]["S"], item["sk"]["S"])
                        with self.swept_lock:
                            self.swept.add(key)
                        try:
                            # Only if it has not been given a later expiry meanwhile.
                            ddb.delete_item(TableName=table, Key={"pk": item["pk"], "sk": item["sk"]},
                                            ConditionExpression="#t = :t", ExpressionAttributeNames={"#t": attr},
                                            ExpressionAttributeValues={":t": item[attr]})
                        except ddb.exceptions.ConditionalCheckFailedException:
                            with self.swept_lock:
                                self.swept.discard(key)
            except Exception as e:  # noqa: BLE001
                log(f"ttl sweep failed: {e}")

    # ---- readiness, control, shutdown

    def probe(self):
        """Every function answers once: an HTTP function a request for no route of its own, a
        worker an empty batch, a function URL its document."""
        probes = {}
        for logical, fn in self.functions.items():
            if any(r.function == logical for r in self.routes):
                event = v2_event("GET", "/__stack/ready", "", [], b"", "127.0.0.1", str(uuid.uuid4()), "probe")
                probes[logical] = json.dumps(event).encode()
            elif logical in self.function_urls:
                event = v2_event("GET", "/.well-known/openid-configuration", "", [], b"", "127.0.0.1", str(uuid.uuid4()), "probe")
                probes[logical] = json.dumps(event).encode()
            else:
                probes[logical] = b'{"Records":[]}'
        errors = []

        def one(logical):
            try:
                self.functions[logical].invoke(probes[logical], "(readiness)")
            except InvocationError as e:
                errors.append(f"{logical}: {e.kind}: {e}")

        threads = [threading.Thread(target=one, args=(n,)) for n in probes]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        if errors:
            raise SystemExit("functions did not answer: " + "; ".join(errors) + f" (logs in {self.log_dir})")

    def control(self, method, path, query, headers, body, ip):
        answer = lambda status, doc: (status, {"content-type": "application/json"}, json.dumps(doc).encode())  # noqa: E731
        if method == "POST" and path == "/clock":
            try:
                offset = clock_offset(json.loads(body)["offset_seconds"])
            except (ValueError, KeyError, TypeError, SystemExit) as e:
                return answer(400, {"message": str(e)})
            self.world.offset = offset
            for fn in self.functions.values():
                fn.recycle()
            log(f"clock moved: SHOPPING_CLOCK_OFFSET_SECONDS={offset}; every function restarts")
            return answer(200, {"offset_seconds": offset})
        if method == "GET" and path == "/clock":
            return answer(200, {"offset_seconds": self.world.offset})
        if method == "POST" and path == "/redeploy":
            try:
                overrides = json.loads(body)["parameters"]
                if not overrides or not all(isinstance(v, str) for v in overrides.values()):
                    raise SystemExit("parameters: a non-empty object of names to string values")
                restarted = self.redeploy(overrides)
            except (Exception, SystemExit) as e:  # noqa: BLE001 - the refusal, whatever refused, goes to the caller
                log(f"redeploy refused: {e}")
                return answer(400, {"message": str(e) if isinstance(e, SystemExit) else f"{type(e).__name__}: {e}"})
            return answer(200, {"parameters": overrides, "restarted": restarted})
        if method == "GET" and path == "/stats":
            busy, calls = self.emulator_busy
            return answer(200, {"emulator_seconds": round(busy, 3), "emulator_requests": calls})
        return answer(404, {"message": "Not Found"})

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

    def up(self):
        global LOG_FILE
        started = time.perf_counter()
        LOG_FILE = open(os.path.join(self.data_dir, "stack.log"), "a")
        state = os.path.join(self.data_dir, "stack.json")
        if os.path.exists(state):
            os.remove(state)
        self.start_emulator()
        self.deploy(self.args.parameter_overrides)
        self.load_functions()
        self.load_api()
        self.serve_function_urls()
        try:
            api = serve_http(self.args.port, self.api)
        except OSError as e:
            raise SystemExit(f"cannot listen on 127.0.0.1:{self.args.port}: {e}")
        self.servers.append(api)
        ctl = serve_http(0, self.control)
        self.servers.append(ctl)
        self.api_url = f"http://127.0.0.1:{api.server_address[1]}"
        self.control_url = f"http://127.0.0.1:{ctl.server_address[1]}"
        self.probe()
        self.start_mappings()
        threading.Thread(target=self.sweep_loop, daemon=True, name="ttl").start()
        self.write_state()
        log(f"ready in {time.perf_counter() - started:.1f} s: {len(self.functions)} functions, {len(self.routes)} routes; "
            f"state in {os.path.join(self.data_dir, 'stack.json')}")
        print(f"stack listening on {self.api_url}", flush=True)

    def write_state(self):
        """DIR/stack.json: how clients and suites reach the stack, as deployed now."""
        import deploy_rehearsal

        # The emulator skips the HTTP API, so outputs naming its URL are given the local one.
        outputs = {k: v.replace("https://${HttpApi}.execute-api.us-east-1.amazonaws.com", self.api_url)
                   for k, v in self.outputs.items()}
        doc = {
            "api": self.api_url,
            "control": self.control_url,
            "endpoint": self.endpoint,
            "region": REGION,
            "account": ACCOUNT,
            "credentials": {"aws_access_key_id": "test", "aws_secret_access_key": "test"},
            "stack": STACK,
            "parameters": self.given,
            "outputs": outputs,
            # The shimmed schema registry's content (moto has none: deploy_rehearsal.py),
            # as `aws schemas describe-schema` would answer it.
            "schemas": {name: {"type": kind, "content": content}
                        for name, (kind, content) in deploy_rehearsal.REGISTRIES.get(
                            outputs.get("EventSchemaRegistryName"), {}).items()},
            "resources": self.physical_ids,
            "functions": {fn.short: {"name": fn.name, "log": os.path.join(self.log_dir, f"{fn.short}.log")}
                          for fn in self.functions.values()},
            "function_urls": {self.functions[k].short: v for k, v in self.function_urls.items()},
            "pid": os.getpid(),
        }
        state = os.path.join(self.data_dir, "stack.json")
        with open(state + ".tmp", "w") as f:
            json.dump(doc, f, indent=2)
        os.replace(state + ".tmp", state)

    def stop(self):
        self.stopping.set()
        for fn in self.functions.values():
            fn.stop()
        stoppers = [threading.Thread(target=s.shutdown) for s in self.servers]
        for t in stoppers:
            t.start()
        for t in stoppers:
            t.join()
        try:
            os.remove(os.path.join(self.data_dir, "stack.json"))
        except OSError:
            pass


def sqs_record(m, arn):
    attrs = m.get("Attributes", {})
    msg_attrs = {}
    for k, v in (m.get("MessageAttributes") or {}).items():
        a = {"dataType": v["DataType"], "stringListValues": [], "binaryListValues": []}
        if "StringValue" in v:
            a["stringValue"] = v["StringValue"]
        if "BinaryValue" in v:
            a["binaryValue"] = base64.b64encode(v["BinaryValue"]).decode()
        msg_attrs[k] = a
    return {
        "messageId": m["MessageId"],
        "receiptHandle": m["ReceiptHandle"],
        "body": m["Body"],
        "attributes": {k: attrs[k] for k in ("ApproximateReceiveCount", "SentTimestamp", "SenderId",
                                             "ApproximateFirstReceiveTimestamp") if k in attrs},
        "messageAttributes": msg_attrs,
        "md5OfBody": m.get("MD5OfBody", ""),
        "eventSource": "aws:sqs",
        "eventSourceARN": arn,
        "awsRegion": REGION,
    }


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def read_state(data_dir):
    path = os.path.join(data_dir, "stack.json")
    try:
        with open(path) as f:
            return json.load(f)
    except FileNotFoundError:
        raise SystemExit(f"no running stack in {data_dir} (no stack.json): start one with tests/stack up")


def parameter_override(text):
    """One `K=V` of `--parameter-overrides`, as `sam deploy` takes them."""
    key, sep, value = text.partition("=")
    if not sep or not key:
        raise argparse.ArgumentTypeError(f"{text!r} is not KEY=VALUE")
    return key, value


def control_call(data_dir, path, doc, timeout):
    """A POST to a running stack's control server; answers its document, or exits with its message."""
    req = urllib.request.Request(read_state(data_dir)["control"] + path, method="POST", data=json.dumps(doc).encode())
    try:
        with urllib.request.urlopen(req, timeout=timeout) as res:
            return json.loads(res.read())
    except urllib.error.HTTPError as e:
        raise SystemExit(json.loads(e.read()).get("message"))
    except OSError as e:
        raise SystemExit(f"the stack in {data_dir} does not answer: {e}")


def main() -> int:
    import logging
    import warnings

    parser = argparse.ArgumentParser(prog="tests/stack", description="The stack on your laptop, as AWS runs it.")
    sub = parser.add_subparsers(dest="command", required=True)
    up = sub.add_parser("up")
    up.add_argument("--port", type=int, required=True)
    up.add_argument("--data-dir", required=True)
    up.add_argument("--bin-dir", required=True)
    up.add_argument("--webhook-allow-loopback", action="store_true")
    up.add_argument("--parameter-overrides", nargs="+", type=parameter_override, default=[], metavar="K=V")
    client = sub.add_parser("client")
    client.add_argument("action", choices=["create"])
    client.add_argument("--data-dir", required=True)
    client.add_argument("--account", required=True)
    client.add_argument("--scopes")
    client.add_argument("--bin-dir", required=True)
    clock = sub.add_parser("clock")
    clock.add_argument("--data-dir", required=True)
    clock.add_argument("--offset-seconds", required=True)
    redeploy = sub.add_parser("redeploy")
    redeploy.add_argument("--data-dir", required=True)
    redeploy.add_argument("--parameter-overrides", nargs="+", type=parameter_override, required=True, metavar="K=V")
    args = parser.parse_args()

    if args.command == "client":
        state = read_state(args.data_dir)
        cmd = [os.path.join(args.bin_dir, "shopping-local"), "client", "create", "--account", args.account,
               "--table", state["resources"]["Table"]]
        if args.scopes is not None:
            cmd += ["--scopes", args.scopes]
        env = dict(os.environ, AWS_ENDPOINT_URL=state["endpoint"], AWS_REGION=state["region"],
                   AWS_ACCESS_KEY_ID="test", AWS_SECRET_ACCESS_KEY="test")
        env.pop("AWS_PROFILE", None)
        return subprocess.run(cmd, env=env).returncode

    if args.command == "clock":
        done = control_call(args.data_dir, "/clock", {"offset_seconds": args.offset_seconds}, 30)
        print(f"clock offset {done['offset_seconds']} s")
        return 0

    if args.command == "redeploy":
        overrides = dict(args.parameter_overrides)
        control_call(args.data_dir, "/redeploy", {"parameters": overrides}, 600)
        print("redeployed: " + " ".join(f"{k}={v}" for k, v in overrides.items()))
        return 0

    args.parameter_overrides = dict(args.parameter_overrides)
    # moto says, for each resource type it does not model, that it skipped it: expected here.
    warnings.filterwarnings("ignore")
    logging.disable(logging.WARNING)
    os.environ.update(AWS_ACCESS_KEY_ID="test", AWS_SECRET_ACCESS_KEY="test", AWS_DEFAULT_REGION=REGION)
    os.environ.pop("AWS_ENDPOINT_URL", None)
    harness = Harness(args)
    done = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: done.set())
    signal.signal(signal.SIGINT, lambda *_: done.set())
    try:
        harness.up()
        while not done.wait(1):
            pass
    finally:
        log("stopping")
        harness.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
