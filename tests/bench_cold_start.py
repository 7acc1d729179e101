"""Cold start of a Lambda bootstrap: process start -> first poll of the Runtime API.

Runs the bootstrap N times against a stand-in Runtime API on 127.0.0.1 and reports, per
function, the median and 90th percentile of the time from spawn to its first
`GET /2018-06-01/runtime/invocation/next` (everything `main` does before serving: config,
clients, router), and its resident memory at that moment.

Usage: python3 tests/bench_cold_start.py target/lambda-host/drafts/bootstrap [runs]
"""

import http.server
import os
import queue
import statistics
import subprocess
import sys
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


def main() -> None:
    bootstrap = sys.argv[1]
    runs = int(sys.argv[2]) if len(sys.argv) > 2 else 30
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
    times, rss = [], []
    for _ in range(runs):
        start = time.perf_counter()
        p = subprocess.Popen([bootstrap], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        polled = polls.get(timeout=20)
        times.append((polled - start) * 1000)
        rss.append(rss_kib(p.pid))
        p.kill()
        p.wait()
    times.sort()
    p90 = times[int(len(times) * 0.9) - 1]
    print(f"{os.path.basename(os.path.dirname(bootstrap))}: median {statistics.median(times):.1f} ms, "
          f"p90 {p90:.1f} ms, RSS at first poll {statistics.median(rss) / 1024:.1f} MiB ({runs} runs)")
    server.shutdown()


if __name__ == "__main__":
    main()
