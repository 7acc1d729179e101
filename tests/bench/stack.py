"""The stack as AWS runs it, timed: how long `tests/stack up` takes to be ready with the
bootstraps built, and a whole generated-client lifecycle (tests/suites/generated_client.py: token,
draft → item → complete, authorize → capture → refund, session, lists, views, a subscription
and its deliveries) against the stack and against `shopping-local`, with the time the emulator
itself was busy during the stack's runs.

Budget (issue 27): ready ≤ 60 s; lifecycle on the stack ≤ 3 × on shopping-local + the
emulator's own time.

Usage (after `tests/run.sh` once: target/pyenv and the debug bootstraps):
  target/pyenv/bin/python tests/bench/stack.py [--runs 5] [--bin-dir target/debug]
"""

import argparse
import os
import re
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
PY = sys.executable


def lifecycle(host_args, generator):
    out = subprocess.run([PY, os.path.join(ROOT, "tests", "suites", "generated_client.py"), *host_args,
                          "--generator", generator], capture_output=True, text=True, check=True).stdout
    m = re.search(r"lifecycle against \S+: ([\d.]+) s(?:; the emulator was busy ([\d.]+) s)?", out)
    return float(m.group(1)), float(m.group(2) or 0)


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--bin-dir", default=os.path.join(ROOT, "target", "debug"))
    args = parser.parse_args()
    bin_dir = os.path.abspath(args.bin_dir)
    generator = os.path.join(os.path.dirname(PY), "openapi-python-client")
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    data = tempfile.mkdtemp(prefix="shopping-bench-stack-")
    started = time.perf_counter()
    stack = subprocess.Popen([os.path.join(ROOT, "tests", "stack"), "up", "--port", str(port), "--data-dir", data,
                              "--webhook-allow-loopback"], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                             env=dict(os.environ, SHOPPING_STACK_BIN_DIR=bin_dir))
    try:
        for line in stack.stdout:
            if line.startswith("stack listening on "):
                break
        else:
            raise SystemExit("tests/stack up did not start")
        ready = time.perf_counter() - started
        threading_drain(stack)
        stack_runs = [lifecycle(["--stack", data], generator) for _ in range(args.runs)]
    finally:
        stack.terminate()
        stack.wait()
    local_runs = [lifecycle(["--local", os.path.join(bin_dir, "shopping-local")], generator)[0] for _ in range(args.runs)]
    on_stack = statistics.median(t for t, _ in stack_runs)
    emulator = statistics.median(e for _, e in stack_runs)
    local = statistics.median(local_runs)
    print(f"ready: {ready:.1f} s (budget 60 s)")
    print(f"lifecycle, median of {args.runs}: stack {on_stack:.2f} s (emulator busy {emulator:.2f} s of it), "
          f"shopping-local {local:.2f} s")
    print(f"stack / (3 x local + emulator) = {on_stack / (3 * local + emulator):.2f} (budget <= 1)")
    return 0


def threading_drain(proc):
    """Keeps reading the stack's log so that it never blocks on a full pipe."""
    threading.Thread(target=lambda: [None for _ in proc.stdout], daemon=True).start()


if __name__ == "__main__":
    sys.exit(main())
