"""Contract testing: schemathesis against shopping-local, with the server's own /openapi.json.

Usage: contract.py <shopping-local binary> <schemathesis binary>

Starts the server (hosts.py's LocalHost: a fresh data directory, a free loopback port), makes a
token for the account every path uses, seeds one resource of each kind (a completed draft's order
with a payment, an open draft, a session, a comment, a subscription) so the operations on one
resource are exercised past 404, then runs every operation through every schemathesis phase
(schemathesis.toml, beside this file, says which checks: no 5xx, every status, content type,
header and body as documented). Exits with schemathesis's status.
"""

import json
import os
import subprocess
import sys
import time
import urllib.error
import urllib.request

import hosts

AID = "T12345678"


def main() -> int:
    binary, schemathesis = (os.path.abspath(p) for p in sys.argv[1:3])
    local = hosts.LocalHost(binary, "shopping-contract-")
    server, base, data = local.server, local.base, local.data
    try:
        token = subprocess.run(
            [binary, "token", "--account", AID, "--scopes", "admin:shopping admin:hooks", "--data-dir", data],
            check=True,
            capture_output=True,
            text=True,
        ).stdout.strip()
        env = dict(os.environ, SHOPPING_CONTRACT_TOKEN=token, **seed(base, token))
        started = time.monotonic()
        result = subprocess.run(
            [
                schemathesis,
                "--config-file",
                os.path.join(os.path.dirname(os.path.abspath(__file__)), "schemathesis.toml"),
                "run",
                f"{base}/openapi.json",
                "--max-examples",
                os.environ.get("SHOPPING_CONTRACT_EXAMPLES", "10"),
                "--seed",
                os.environ.get("SHOPPING_CONTRACT_SEED", "20261201"),
            ],
            env=env,
            cwd=data,
        )
        print(f"contract testing took {time.monotonic() - started:.0f} s")
        if server.poll() is not None:
            print("shopping-local exited during contract testing", file=sys.stderr)
            return 1
        return result.returncode
    finally:
        local.stop()


def seed(base: str, token: str) -> dict:
    """One resource of each kind; their ids, as the environment schemathesis.toml reads."""

    def call(method: str, path: str, body=None) -> dict:
        req = urllib.request.Request(
            f"{base}/v1/accounts/{AID}{path}",
            method=method,
            data=None if body is None else json.dumps(body).encode(),
            headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json"},
        )
        try:
            with urllib.request.urlopen(req, timeout=10) as res:
                return json.load(res)
        except urllib.error.HTTPError as e:
            raise SystemExit(f"seeding {method} {path}: {e.code} {e.read().decode(errors='replace')}")

    order = {
        "currency": "NOK",
        "customer": {"id": "cust-1", "email": "buyer@example.com"},
        "store": {"id": "store-1", "name": "Main street"},
        "items": [
            {
                "id": "sku-1",
                "line_id": 1,
                "description": "Coffee",
                "quantity": 2,
                "gross_amount": 5000,
                "store": {"id": "store-1"},
                "tax_lines": [{"percentage": 25, "amount": 1000}],
            }
        ],
    }
    completed = call("POST", "/shopping/draft_orders", {"order": order})
    done = call("PUT", f"/shopping/draft_orders/{completed['id']}/complete")
    order_id = done["orders"][0]["id"]
    capture = call("POST", f"/shopping/orders/{order_id}/authorizations", {"amount": 5000, "items": [{"line_id": 1, "amount": 5000}]})
    call("POST", f"/shopping/orders/{order_id}/comments", {"id": "comment-1", "body": "Called the customer"})
    session = call(
        "POST",
        f"/shopping/orders/{order_id}/sessions",
        {"items": [{"line_id": 1}], "profile_id": "P12345678.profile", "url": {"return_url": "https://shop.example.com/done"}},
    )
    draft = call("POST", "/shopping/draft_orders", {"order": order})
    hook = call(
        "POST",
        "/hooks/subscriptions",
        {"events": ["shopping_draft_complete"], "config": {"url": "http://127.0.0.1:9/hook", "secret": "contract-secret"}},
    )
    return {
        "SHOPPING_CONTRACT_ORDER": order_id,
        "SHOPPING_CONTRACT_DRAFT": draft["id"],
        "SHOPPING_CONTRACT_PAYMENT": capture["id"],
        "SHOPPING_CONTRACT_SESSION": session.get("id", ""),
        "SHOPPING_CONTRACT_HOOK": hook["id"],
    }


if __name__ == "__main__":
    sys.exit(main())
