"""The emulated account, and what every part of the harness shares: the region, the account id
and the stack's name, AWS's limits the harness holds functions and requests to, the account's
clock, and the harness's log.
"""

import hashlib
import threading
import time

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


def log_to(path: str) -> None:
    """From now on, `log` also appends to `path` (DIR/stack.log)."""
    global LOG_FILE
    LOG_FILE = open(path, "a")


# The execution role of each session's access key id (the credentials `session_credentials`
# gave out): how the emulator's IAM gate (iam.py) knows whose a request is.
SESSIONS = {}


def session_credentials(role_arn: str):
    """The temporary credentials Lambda gives a function of its execution role (access key id,
    secret, session token), one fixed set per role: a request signed with them is the role's
    session's. (The emulator checks no signature; the gate reads the key id.)"""
    key = "ASIA" + hashlib.sha1(role_arn.encode()).hexdigest()[:16].upper()
    SESSIONS[key] = role_arn
    return key, f"secret/{key}", f"session/{key}"
