"""The cold-request bench's Lambda (cold_request.py): a stand-in Runtime API, the CPU quotas of a
Lambda's memory sizes (cgroup v1), and a bootstrap's conversation with the Runtime API, timed.
"""

import http.server
import json
import os
import queue
import statistics
import subprocess
import sys
import time
import uuid

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


class Quiet(http.server.ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request, client_address):
        pass  # a killed process's connection
