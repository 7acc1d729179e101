"""The Harness: the whole stack on one machine (see this package's docstring) — the emulator
with the template deployed into it (deploy.py), every function run as deployed (runtime.py), the
HTTP API and function URLs (gateway.py), the event source mappings and TTL (mappings.py) — and
its readiness, control server (the clock, redeploys, the emulator's statistics), DIR/stack.json
and shutdown. `SHOPPING_STACK_RAW_PATH` (decoded, the default, or as-sent) picks how the HTTP
API hands `rawPath` to the functions (gateway.py).
"""

import gc
import json
import os
import threading
import time
import uuid

from .account import ACCOUNT, REGION, STACK, World, clock_offset, log, log_to
from .deploy import Deployment
from .emulator import serve
from .gateway import RAW_PATH_MODES, HttpApi, serve_http
from .hostile import Hostile, settings as hostile_settings
from .iam import Iam, enforce_queue_policies
from .mappings import EventSources
from .payload import v2_event
from .runtime import InvocationError
from .shims import REGISTRIES, SERVED_API, conditional_updates, described_stacks, install_shims


def keep_the_heap_still():
    """Python's collector of reference cycles stops every thread while it walks its oldest
    generation, and moto (botocore's service models, the deployed stack, every item, stream
    record, message and archived event the emulator keeps for the stack's life) makes that
    generation hundreds of thousands of objects: 150-300 ms a walk, growing, every request of the
    API stalled behind it (a quiet client's p99 on its own). What is alive once the stack is up is
    moved out of the collector's walks (gc.freeze), and so is what survives each walk of the
    oldest generation after that: each walk covers what came since the last, a few ms. Cycles
    among objects already kept (after they outlived a walk) are no longer freed; the emulator keeps
    its state for the stack's life anyway."""
    gc.freeze()

    def after(phase, info):
        if phase == "stop" and info["generation"] == 2:
            gc.freeze()

    gc.callbacks.append(after)


class Harness(Deployment, HttpApi, EventSources):
    """The stack on one machine: the emulator and the deployed stack (Deployment), the HTTP API and
    function URLs (HttpApi), the event source mappings and TTL (EventSources), and what ties them:
    readiness, the control server, DIR/stack.json."""

    def __init__(self, args):
        self.args = args
        self.data_dir = os.path.abspath(args.data_dir)
        self.log_dir = os.path.join(self.data_dir, "logs")
        os.makedirs(self.log_dir, exist_ok=True)
        self.world = World(clock_offset(os.environ.get("SHOPPING_CLOCK_OFFSET_SECONDS", "0")))
        self.webhook_loopback = args.webhook_allow_loopback
        self.raw_path_mode = os.environ.get("SHOPPING_STACK_RAW_PATH") or RAW_PATH_MODES[0]
        if self.raw_path_mode not in RAW_PATH_MODES:
            raise SystemExit(f"SHOPPING_STACK_RAW_PATH must be one of {', '.join(RAW_PATH_MODES)}, not {self.raw_path_mode!r}")
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
        # What sees every request to the emulator before moto does, in order, after IAM (the
        # hostile mode's faults): each answers None to pass it on, or AWS's answer instead.
        self.gates = []
        # `up --hostile`: the faults AWS may cause, injected (hostile.py); None without.
        hostile = hostile_settings(args)
        self.hostile = None if hostile is None else Hostile(hostile)

    # ---- the emulator and the deploy

    def start_emulator(self):
        install_shims()
        conditional_updates()
        described_stacks()
        # IAM first: a call the role may not make is refused before anything else sees it, and
        # outside the emulator's lock (its evaluation was a sixth of each call's hold of it).
        self.iam = Iam(self)
        enforce_queue_policies(lambda: self.iam)

        def busy(seconds):
            self.emulator_busy[0] += seconds
            self.emulator_busy[1] += 1

        def gate(environ, body):
            for g in self.gates:
                answer = g(environ, body)
                if answer is not None:
                    return answer
            return None

        server, self.endpoint = serve(busy, gate, before=self.iam.gate)
        self.emulator_lock = server.emulator_lock
        self.servers.append(server)

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
            except Exception as e:  # noqa: BLE001 - the harness failing is a failed readiness, not a silent one
                errors.append(f"{logical}: the harness failed: {type(e).__name__}: {e}")

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
        if method == "GET" and path == "/iam":
            return answer(200, self.iam.report())
        if method == "GET" and path == "/stats":
            busy, calls = self.emulator_busy
            return answer(200, {"emulator_seconds": round(busy, 3), "emulator_requests": calls,
                                "instances": {fn.short: fn.instances_started for fn in self.functions.values()},
                                "hostile": None if self.hostile is None else self.hostile.stats()})
        return answer(404, {"message": "Not Found"})

    def up(self):
        started = time.perf_counter()
        log_to(os.path.join(self.data_dir, "stack.log"))
        state = os.path.join(self.data_dir, "stack.json")
        if os.path.exists(state):
            os.remove(state)
        self.start_emulator()
        self.deploy(self.args.parameter_overrides)
        if self.hostile is not None:
            self.hostile.install(self)
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
        SERVED_API["url"] = self.api_url
        self.control_url = f"http://127.0.0.1:{ctl.server_address[1]}"
        self.probe()
        self.start_mappings()
        threading.Thread(target=self.sweep_loop, daemon=True, name="ttl").start()
        self.write_state()
        keep_the_heap_still()
        log(f"ready in {time.perf_counter() - started:.1f} s: {len(self.functions)} functions, {len(self.routes)} routes, rawPath {self.raw_path_mode}"
            f"{'; hostile' if self.hostile is not None else ''}; "
            f"state in {os.path.join(self.data_dir, 'stack.json')}")
        print(f"stack listening on {self.api_url}", flush=True)

    def write_state(self):
        """DIR/stack.json: how clients and suites reach the stack, as deployed now."""
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
            # The shimmed schema registry's content (moto has none: shims.py),
            # as `aws schemas describe-schema` would answer it.
            "schemas": {name: {"type": kind, "content": content}
                        for name, (kind, content) in REGISTRIES.get(
                            outputs.get("EventSchemaRegistryName"), {}).items()},
            "resources": self.physical_ids,
            "functions": {fn.short: {"name": fn.name, "role": fn.role, "log": os.path.join(self.log_dir, f"{fn.short}.log")}
                          for fn in self.functions.values()},
            "function_urls": {self.functions[k].short: v for k, v in self.function_urls.items()},
            "raw_path": self.raw_path_mode,
            "hostile": None if self.hostile is None else self.hostile.state(),
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
