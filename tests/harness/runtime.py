"""Lambda: a Runtime API per process, a pool of processes per function. Each function's
bootstrap runs behind a Runtime API served here, one process per concurrent invocation up to
the function's concurrency, with the deployed environment (plus the emulator's endpoint),
memory size and timeout.
"""

import datetime
import http.server
import json
import os
import queue
import socket
import subprocess
import sys
import threading
import time
import uuid

from .account import INIT_TIMEOUT, LAMBDA_PAYLOAD_MAX, REGION, UNRESERVED_CAP, log, session_credentials


class QuietServer(http.server.ThreadingHTTPServer):
    """Every server the harness runs (the API, the function URLs, the control server, each
    Runtime API). A peer that goes away mid-answer (a process killed, a client gone) is not an error.
    Answers go out at once (TCP_NODELAY): the stdlib writes a response's head and body
    separately, and on a kept-alive connection Nagle's algorithm would hold the body until
    the client's delayed acknowledgement, ~40 ms a request."""

    daemon_threads = True
    # socketserver listens with a backlog of 5: twenty clients connecting at once found it full
    # and were reset. API Gateway takes what comes; the harness's queue is the listen backlog.
    request_queue_size = 1024

    def get_request(self):
        conn, addr = super().get_request()
        conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        return conn, addr

    def handle_error(self, request, client_address):
        if not isinstance(sys.exc_info()[1], (BrokenPipeError, ConnectionResetError)):
            super().handle_error(request, client_address)


class InvocationError(Exception):
    """An invocation that answered no response. `kind` says who ended it:
      rejected by the Lambda API before any function ran (API Gateway's 500):
        "throttle"           TooManyRequestsException: the function is at its reserved concurrency
        "request-too-large"  RequestTooLargeException: the event is over 6 MB
      ended while (or after) the function ran (API Gateway's 502):
        "error"              the function reported an error
        "timeout"            the function ran past its timeout
        "crash"              the runtime exited mid-invocation
        "init"               the runtime failed its init, or did not finish it within the timeout
        "response-too-large" the function's response is over 6 MB
      the harness's own (no AWS counterpart):
        "queued"             waited for one of the laptop's UNRESERVED_CAP processes until its
                             caller gave up (or the stack stopped)"""

    REJECTED = ("throttle", "request-too-large")

    def __init__(self, kind: str, detail: str):
        super().__init__(detail)
        self.kind = kind


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
        env = dict(fn.env)
        env.update(
            AWS_LAMBDA_RUNTIME_API=f"127.0.0.1:{self.server.server_address[1]}",
            AWS_LAMBDA_LOG_STREAM_NAME=f"{time.strftime('%Y/%m/%d')}/[$LATEST]{uuid.uuid4().hex}",
        )
        if fn.harness.world.offset:
            env["SHOPPING_CLOCK_OFFSET_SECONDS"] = str(fn.harness.world.offset)
        out = open(os.path.join(fn.harness.log_dir, f"{fn.short}.log"), "ab")
        out.write(f"--- {fn.short} process {fn.instances_started} starting\n".encode())
        out.flush()
        self.proc = subprocess.Popen([fn.bootstrap], env=env, stdout=out, stderr=subprocess.STDOUT,
                                     stdin=subprocess.DEVNULL, cwd=fn.harness.data_dir)
        out.close()

    def init(self, until: float) -> str:
        """Waits for the runtime's first poll (its Init done) until `until`: answers "ok",
        "timeout", or why it failed (an init error it reported, or its exit)."""
        while not self.initialised.wait(max(0.0, min(0.1, until - time.time()))):
            if self.proc.poll() is not None:
                return f"Runtime exited with error: exit status {self.proc.returncode}"
            if time.time() >= until:
                return "timeout"
        if self.init_error is not None:
            return f"Runtime.InitError: {self.init_error}"
        return "ok"

    def invoke(self, rid: str, payload: bytes, deadline: float) -> bytes:
        self.pending.put((rid, payload, int(deadline * 1000)))
        while True:
            try:
                got, kind, body = self.results.get(timeout=min(0.5, max(0.01, deadline - time.time())))
            except queue.Empty:
                if self.proc.poll() is not None:
                    self.fn.platform_log(f"{rid} Error: Runtime exited with error: exit status {self.proc.returncode}")
                    raise InvocationError("crash", f"the process exited ({self.proc.returncode})")
                if time.time() >= deadline:
                    self.kill()
                    self.fn.platform_log(f"{rid} Task timed out after {self.fn.timeout:.2f} seconds")
                    raise InvocationError("timeout", f"Task timed out after {self.fn.timeout:.2f} seconds")
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
    """A deployed function: its configuration as the emulator holds it, its warm instances.

    Its concurrency: with reserved concurrency, that many instances at once, and an invocation
    beyond them is throttled at once, as Lambda throttles it ("Lambda returns
    TooManyRequestsException if executing the function would cause you to exceed a concurrency
    limit at either the account level (ConcurrentInvocationLimitExceeded) or function level
    (ReservedFunctionConcurrentInvocationLimitExceeded).", API_Invoke.html). Without, the
    function would scale to the account's unreserved concurrency; here it runs at most
    UNRESERVED_CAP processes, and an invocation beyond them waits for one (the laptop's limit,
    not AWS's: its caller's deadline still runs)."""

    def __init__(self, harness, logical, config, bootstrap, reserved):
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
        self.configure(config, reserved)

    def configure(self, config, reserved) -> bool:
        """Takes the function's deployed configuration and reserved concurrency (None: none);
        answers whether they changed (then the instances running the previous one are to be
        recycled)."""
        deployed = (config["FunctionName"], config["FunctionArn"], config["Role"], float(config.get("Timeout", 3)),
                    int(config.get("MemorySize", 128)), config.get("Handler", "bootstrap"),
                    {k: str(v) for k, v in config.get("Environment", {}).get("Variables", {}).items()}, reserved)
        # (An environment variable is a string on Lambda; moto keeps a Number parameter's
        # value, `!Ref TenantRateLimit`, as the integer it parsed.)
        if deployed == getattr(self, "deployed", None):
            return False
        self.deployed = deployed
        self.name, self.arn, role, self.timeout, self.memory, handler, env, self.reserved = deployed
        # "When Lambda runs your function, it passes the credentials of the execution role
        # (AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY, AWS_SESSION_TOKEN) as environment
        # variables" (configuration-envvars.html, "Reserved environment variables"): each
        # function calls AWS as its own role, which the emulator's IAM gate holds it to.
        self.role = role
        self.credentials = session_credentials(self.role)
        self.concurrency = UNRESERVED_CAP if reserved is None else int(reserved)
        env = dict(env)
        env.update(
            AWS_ACCESS_KEY_ID=self.credentials[0], AWS_SECRET_ACCESS_KEY=self.credentials[1],
            AWS_SESSION_TOKEN=self.credentials[2],
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

    def platform_log(self, line: str):
        """A line Lambda itself writes to the function's log (a timeout, a runtime that exited),
        which the function cannot write."""
        stamp = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"
        with open(os.path.join(self.harness.log_dir, f"{self.short}.log"), "a") as f:
            f.write(f"{stamp} {line}\n")

    def slot(self, give_up_at):
        """Takes an idle instance or room for a new one (answers the idle instance or None), or
        raises: throttled at once at reserved concurrency; past `give_up_at` while queued for
        the laptop's cap."""
        with self.cv:
            while not self.idle and self.busy >= self.concurrency:
                if self.reserved is not None:
                    raise InvocationError("throttle", "Rate Exceeded. (ReservedFunctionConcurrentInvocationLimitExceeded)")
                left = 1.0 if give_up_at is None else min(1.0, give_up_at - time.time())
                if self.stopping or left <= 0:
                    raise InvocationError("queued", f"no instance free of the laptop's {self.concurrency}")
                self.cv.wait(timeout=left)
            inst = self.idle.pop() if self.idle else None
            self.busy += 1
            return inst

    def invoke(self, payload: bytes, what: str = "", give_up_at: float = None) -> bytes:
        """Runs one invocation; answers the function's response or raises InvocationError.
        `give_up_at` (a time.time()) bounds only the wait for one of UNRESERVED_CAP processes.
        Logs it: function, request id, duration, status."""
        started = time.perf_counter()
        rid, cold, inst, status = str(uuid.uuid4()), False, None, "error"
        try:
            if len(payload) > LAMBDA_PAYLOAD_MAX:
                raise InvocationError("request-too-large", "Request must be smaller than 6291456 bytes for the InvokeFunction operation")
            inst = self.slot(give_up_at)
            cold = inst is None
            try:
                retried_until = None
                if inst is None:
                    inst, retried_until = self.cold_start(rid)
                # A retried init is within the invocation's time; one within its 10 s is not.
                deadline = retried_until or time.time() + self.timeout
                out = inst.invoke(rid, payload, deadline)
            finally:
                self.release(inst)
            status = describe(out)
            if len(out) > LAMBDA_PAYLOAD_MAX:
                self.platform_log(f"{rid} Response payload size exceeded maximum allowed payload size (6291456 bytes).")
                raise InvocationError("response-too-large", "Response payload size exceeded maximum allowed payload size (6291456 bytes).")
            return out
        except InvocationError as e:
            status = f"{e.kind}: {str(e)[:200]}"
            raise
        finally:
            elapsed = (time.perf_counter() - started) * 1000
            log(f"invoke {self.short} {rid} {elapsed:.1f}ms {'cold ' if cold else ''}{status}{' ' + what if what else ''}")

    def cold_start(self, rid: str):
        """A new execution environment, its Init done; and, when its init was retried, the
        invocation's deadline. "The Init phase is limited to 10 seconds. If all three tasks do
        not complete within 10 seconds, Lambda retries the Init phase at the time of the first
        function invocation with the configured function timeout." (lambda-runtime-environment.html)
        So an init still running at 10 s is started again in a new environment, given the
        function's timeout for it and the invocation. An init that reports an error or exits
        fails the invocation, as does a retried init past that timeout."""
        inst, deadline = Instance(self), None
        outcome = inst.init(time.time() + INIT_TIMEOUT)
        if outcome == "timeout":
            self.platform_log(f"INIT_REPORT Init Duration: {INIT_TIMEOUT * 1000:.2f} ms Phase: init Status: timeout")
            inst.kill()
            inst, deadline = Instance(self), time.time() + self.timeout
            outcome = inst.init(deadline)
            if outcome == "timeout":
                outcome = f"Task timed out after {self.timeout:.2f} seconds (its init retried)"
        if outcome != "ok":
            inst.kill()
            self.platform_log(f"{rid} {outcome}")
            raise InvocationError("init", outcome)
        return inst, deadline

    def release(self, inst):
        with self.cv:
            self.busy -= 1
            # An instance started before the last restart (a moved clock) ends with its
            # invocation, as the idle ones did at the restart.
            hostile = getattr(self.harness, "hostile", None)
            if inst is not None and inst.alive() and not self.stopping and inst.generation == self.generation \
                    and not (hostile is not None and hostile.recycle(self)):  # hostile mode recycles some (hostile.py)
                self.idle.append(inst)
            elif inst is not None:
                inst.kill()
            self.cv.notify()

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
