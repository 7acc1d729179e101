"""The harness's command line, as `tests/stack` runs it: `python -m harness up|client|clock|redeploy`
with tests/ on the path (the usage is in this package's docstring, harness/__init__.py).
`clock` and `redeploy` talk to a running stack's control server; `client` runs
`shopping-local client create` on the running stack's table; `up` runs the Harness (stack.py).
"""

import argparse
import json
import logging
import os
import signal
import subprocess
import sys
import threading
import urllib.error
import urllib.request
import warnings

from .account import REGION, log
from .hostile import add_arguments as hostile_arguments


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
    parser = argparse.ArgumentParser(prog="tests/stack", description="The stack on your laptop, as AWS runs it.")
    sub = parser.add_subparsers(dest="command", required=True)
    up = sub.add_parser("up")
    up.add_argument("--port", type=int, required=True)
    up.add_argument("--data-dir", required=True)
    up.add_argument("--bin-dir", required=True)
    up.add_argument("--webhook-allow-loopback", action="store_true")
    up.add_argument("--template", help="the SAM template to deploy (default: infra/template.yaml)")
    up.add_argument("--parameter-overrides", nargs="+", type=parameter_override, default=[], metavar="K=V")
    hostile_arguments(up)
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
    # Imported here, not at the top: only `up` runs the stack, and moto, boto3, cfn-lint and the
    # SAM translator take seconds to import, which `client`, `clock` and `redeploy` (quick
    # calls to a running stack) would pay for nothing. (And so, as before, after the filters.)
    from .stack import Harness

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
