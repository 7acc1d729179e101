"""Cold start of Lambda bootstraps against a baseline: process start -> first poll of the
Runtime API.

Runs each bootstrap against a stand-in Runtime API on 127.0.0.1 and reports the median and
90th percentile of the time from spawn to its first `GET /2018-06-01/runtime/invocation/next`
(everything `main` does before serving: config, clients, router), its resident memory at that
moment, and both as a ratio to the first bootstrap given (the baseline: a bare `lambda_http`
hello world built with the same profile). Rounds interleave the bootstraps so that machine
noise hits all of them alike. `--strace` also counts the files each one opens during init.

Usage:
  python3 tests/bench/cold_start.py [--runs 20] [--rounds 3] [--strace] BASELINE BOOTSTRAP...

A BOOTSTRAP may end in `@NAME=VALUE` to run it with that environment variable set (e.g.
`.../drafts/bootstrap@LAMBDA_TOKIO_RUNTIME=multi_thread`), reported as a row of its own.
"""

import argparse
import http.server
import os
import queue
import shutil
import statistics
import subprocess
import tempfile
import threading
import time

polls: "queue.Queue[float]" = queue.Queue()


class RuntimeApi(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        if self.path.endswith("/runtime/invocation/next"):
            polls.put(time.perf_counter())
            # Never answer: the measurement ends at the first poll.
            time.sleep(30)
        self.send_response(404)
        self.end_headers()

    def log_message(self, *args):
        pass


def rss_kib(pid: int) -> int:
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


def split(spec: str):
    """A bootstrap spec: its path and the extra environment it runs with."""
    path, _, assignment = spec.partition("@")
    extra = dict([assignment.split("=", 1)]) if "=" in assignment else {}
    return path, extra


def name(spec: str) -> str:
    path, extra = split(spec)
    # `.../drafts/bootstrap` (cargo-lambda's layout) or `.../release/drafts`.
    base = os.path.basename(path)
    label = (os.path.basename(os.path.dirname(path)) if base == "bootstrap" else base) or path
    return label + "".join(f" ({k}={v})" for k, v in extra.items())


def start_once(cmd, env):
    start = time.perf_counter()
    p = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    polled = polls.get(timeout=20)
    rss = rss_kib(p.pid)
    p.kill()
    p.wait()
    return (polled - start) * 1000, rss


def opened_files(spec, env) -> int:
    """Files opened (openat) from exec to the first poll, by strace."""
    bootstrap, extra = split(spec)
    env = dict(env, **extra)
    with tempfile.NamedTemporaryFile(suffix=".strace") as out:
        p = subprocess.Popen(["strace", "-f", "-qq", "-e", "trace=openat,open", "-o", out.name, bootstrap],
                             env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        polls.get(timeout=20)
        p.kill()
        p.wait()
        with open(out.name) as f:
            return sum(1 for line in f if "open" in line)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--runs", type=int, default=20)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--strace", action="store_true")
    ap.add_argument("bootstraps", nargs="+")
    args = ap.parse_args()
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), RuntimeApi)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    env = dict(
        os.environ,
        AWS_LAMBDA_RUNTIME_API=f"127.0.0.1:{server.server_address[1]}",
        AWS_LAMBDA_FUNCTION_NAME="bench",
        AWS_LAMBDA_FUNCTION_MEMORY_SIZE="256",
        AWS_LAMBDA_FUNCTION_VERSION="$LATEST",
        AWS_LAMBDA_LOG_STREAM_NAME="bench",
        AWS_LAMBDA_LOG_GROUP_NAME="bench",
        AWS_REGION="eu-west-1",
        AWS_ACCESS_KEY_ID="bench",
        AWS_SECRET_ACCESS_KEY="bench",
        TABLE_NAME="bench",
        RUST_LOG="warn",
    )
    times = {b: [] for b in args.bootstraps}
    rounds = {b: [] for b in args.bootstraps}
    rss = {b: [] for b in args.bootstraps}
    for _ in range(args.rounds):
        for b in args.bootstraps:
            this = []
            for _ in range(args.runs):
                path, extra = split(b)
                t, r = start_once([path], dict(env, **extra))
                this.append(t)
                rss[b].append(r)
            times[b].extend(this)
            rounds[b].append(statistics.median(this))
    base = args.bootstraps[0]
    base_t, base_r = statistics.median(times[base]), statistics.median(rss[base])
    files = {}
    if args.strace and shutil.which("strace"):
        files = {b: opened_files(b, env) for b in args.bootstraps}
    print(f"| function | init median | round medians | p90 | × baseline | RSS at first poll | × baseline |"
          + (" files opened |" if files else ""))
    print("|---|---|---|---|---|---|---|" + ("---|" if files else ""))
    for b in args.bootstraps:
        ts = sorted(times[b])
        med, p90 = statistics.median(ts), ts[max(0, int(len(ts) * 0.9) - 1)]
        r = statistics.median(rss[b])
        label = f"{name(b)} (baseline)" if b == base else name(b)
        per_round = " / ".join(f"{x:.2f}" for x in rounds[b])
        print(f"| {label} | {med:.2f} ms | {per_round} | {p90:.2f} ms | {med / base_t:.2f} | "
              f"{r / 1024:.1f} MiB | {r / base_r:.2f} |" + (f" {files[b]} |" if files else ""))
    print(f"\n{args.rounds} interleaved rounds of {args.runs} starts each; budget (issue 6): init ≤ 1.5 × "
          f"and RSS ≤ 2 × the baseline")
    server.shutdown()


if __name__ == "__main__":
    main()
