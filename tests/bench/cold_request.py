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
  target/pyenv/bin/python tests/bench/cold_request.py [--runs 7] [--warm 3]
      [--sizes full,128,256,1024] [--functions drafts,orders,...]
      [--variant NAME[,dir=BIN_DIR|,rev=COMMIT][,VAR=VALUE...]]... [--compare BASE,CHOSEN]
A variant runs every function from BIN_DIR (default target/release; `rev=COMMIT` builds that
commit's release bootstraps once, in a worktree under target/cold-variants) with the extra environment
(`{run_root}` in a value is the run's root certificate alone: `SSL_CERT_FILE={run_root}` is a
trust store of one certificate, the cost of compiled-in roots at most); without --variant, one
variant "release". The hello baseline always runs from --hello. Results also go to
target/cold-request.json.

The stand-in Runtime API, the CPU quotas and the timed conversation are in
cold_request_runtime.py; the CA, the emulator, the receiver and the seeded invocations in
cold_request_aws.py.
"""

import argparse
import datetime
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading

from cold_request_aws import RECEIVER_IP, ROOT, make_pki, seed, start_aws, start_receiver
from cold_request_runtime import Quiet, RuntimeApi, check, converse

FUNCTIONS = ["drafts", "orders", "payments", "views", "hooks", "publisher", "deliverer", "token"]


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
