"""Lambda: a Runtime API per process, a pool of processes per function. Each function's
bootstrap runs behind a Runtime API served here, one process per concurrent invocation up to
the function's concurrency, with the deployed environment (plus the emulator's endpoint),
memory size and timeout.
"""

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

from .account import INIT_TIMEOUT, INTEGRATION_TIMEOUT, LAMBDA_PAYLOAD_MAX, REGION, log


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
