"""Generated clients: what a merchant gets by feeding our OpenAPI document to the usual client
generators, driven against the local server.

Usage: generated_client.py (--local BINARY | --stack DIR) --generator OPENAPI_PYTHON_CLIENT [--npx NPX]

Against either host (hosts.py: shopping-local started on a fresh data directory, or a running
`tests/stack up --webhook-allow-loopback`), fetches the document it serves, and:
  - refuses tuple schemas (`prefixItems`), which most generators cannot map;
  - generates a Python client with openapi-python-client (the most used generator on PyPI) and
    imports every module it wrote;
  - generates pydantic models of the same document with datamodel-code-generator, for a client
    as strict as a typed language's: each answer is also validated by them in strict mode
    (an `integer` refuses `2.0`, a required array its absence, a `boolean` a missing value);
  - drives a whole lifecycle through that client only, every answer parsed by its generated
    models and the strict ones: a client's token, a subscription to every event, draft ->
    item -> complete, authorize -> capture -> refund, a session, the order list and both views,
    the deliveries and one delivery;
  - verifies what the subscription's receiver got: `event-signature` (HMAC-SHA1) by hand and
    the Standard Webhooks signature with the `standardwebhooks` library, and every webhook's
    resources (`draft`, `order`, the completion's `orders`, `order_event`) strictly;
  - when `npx` is given, generates TypeScript types with openapi-typescript (npm), which must
    succeed.
Exits non-zero on the first thing that fails.
"""

import importlib
import json
import os
import pkgutil
import subprocess
import sys
import time
import urllib.request

import hosts

AID = "T12345678"
OPENAPI_TYPESCRIPT = "openapi-typescript@7"


def fail(msg: str) -> None:
    raise SystemExit(f"generated client: {msg}")


def tuple_schemas(node, path="$"):
    if isinstance(node, dict):
        if "prefixItems" in node:
            yield path
        for k, v in node.items():
            yield from tuple_schemas(v, f"{path}.{k}")
    elif isinstance(node, list):
        for i, v in enumerate(node):
            yield from tuple_schemas(v, f"{path}[{i}]")


def generate_python(generator: str, doc_path: str, work: str) -> str:
    config = os.path.join(work, "generator.json")
    with open(config, "w") as f:
        # No formatter run afterwards (ruff is not needed to use the client).
        json.dump({"post_hooks": []}, f)
    out = os.path.join(work, "shopping_client")
    run = subprocess.run(
        [generator, "generate", "--path", doc_path, "--meta", "none", "--output-path", out, "--config", config],
        capture_output=True,
        text=True,
    )
    print(run.stdout.strip())
    if run.returncode != 0 or not os.path.isdir(out):
        fail(f"openapi-python-client failed ({run.returncode}):\n{run.stdout}\n{run.stderr}")
    if "Warning" in run.stdout:
        fail(f"openapi-python-client warned:\n{run.stdout}\n{run.stderr}")
    return work


def import_all(work: str):
    sys.path.insert(0, work)
    pkg = importlib.import_module("shopping_client")
    names = [m.name for m in pkgutil.walk_packages(pkg.__path__, "shopping_client.")]
    broken = []
    for name in names:
        try:
            importlib.import_module(name)
        except Exception as e:  # noqa: BLE001 - every failure is reported
            broken.append(f"{name}: {type(e).__name__}: {e}")
    if broken:
        fail("generated modules that do not import:\n" + "\n".join(broken))
    print(f"imported all {len(names)} generated modules")
    return pkg


def generate_strict(doc_path: str, work: str) -> None:
    """pydantic models of every component, imported as `strict_models`."""
    codegen = os.path.join(os.path.dirname(sys.executable), "datamodel-codegen")
    out = os.path.join(work, "strict_models.py")
    run = subprocess.run(
        [codegen, "--input", doc_path, "--input-file-type", "openapi", "--output", out,
         "--output-model-type", "pydantic_v2.BaseModel", "--target-python-version", "3.11"],
        capture_output=True,
        text=True,
    )
    if run.returncode != 0:
        fail(f"datamodel-codegen failed ({run.returncode}):\n{run.stdout}\n{run.stderr}")
    sys.path.insert(0, work)
    importlib.import_module("strict_models")


def strict(step: str, raw, name: str) -> None:
    """Validates JSON text (or an already parsed value) as the component `name`, in strict mode."""
    import pydantic
    import strict_models

    text = raw if isinstance(raw, (bytes, str)) else json.dumps(raw)
    model = getattr(strict_models, name)
    try:
        if isinstance(json.loads(text), list):
            pydantic.TypeAdapter(list[model]).validate_json(text, strict=True)
        else:
            model.model_validate_json(text, strict=True)
    except pydantic.ValidationError as e:
        fail(f"{step}: a strict {name} refuses the answer:\n{e}\n{text[:1500]!r}")
    STRICT.append(step)


STRICT = []


def lifecycle(host, receiver_url: str) -> None:
    from shopping_client import AuthenticatedClient, Client
    from shopping_client.api.auth import get_token
    from shopping_client.api.drafts import add_draft_item, complete_draft_order, create_draft_order
    from shopping_client.api.hooks import create_subscription, delete_subscription, get_delivery, list_deliveries
    from shopping_client.api.lists import get_store_order, list_customer_orders, list_orders
    from shopping_client.api.orders import create_order_session, get_order, update_order
    from shopping_client.api.payments import create_authorization, create_capture, create_refund
    from shopping_client import models

    def parsed(step: str, res, model):
        if res.status_code.value >= 300 or not isinstance(res.parsed, model):
            fail(f"{step}: {res.status_code.value} parsed as {type(res.parsed).__name__}: {res.content[:800]!r}")
        strict(step, res.content, model.__name__)
        return res.parsed

    base = host.base
    client_id, client_secret = host.credentials(AID, "admin:shopping admin:hooks")
    anonymous = Client(base_url=base)
    body = models.TokenRequest.from_dict(
        {"grant_type": "client_credentials", "client_id": client_id, "client_secret": client_secret}
    )
    # The token endpoint needs no bearer token; the generated function asks for a client type
    # that carries one, which any value satisfies at run time.
    token = parsed("token", get_token.sync_detailed(AID, client=anonymous, body=body), models.TokenResponse)
    c = AuthenticatedClient(base_url=base, token=token.access_token)

    # Subscribed first, to every event: each webhook of the lifecycle is parsed strictly.
    sub_body = {
        "events": list(EVENTS),
        "config": {
            "url": receiver_url,
            "content_type": "application/json",
            "insecure_ssl": 0,
            "secret": {"type": "HMAC-SHA1", "value": SECRET},
        },
    }
    sub = parsed(
        "subscribe",
        create_subscription.sync_detailed(AID, client=c, body=models.SubscriptionBody.from_dict(sub_body)),
        models.Subscription,
    )
    item = {
        "id": "sku-1",
        "line_id": 1,
        "description": "Coffee",
        "quantity": 2,
        "gross_amount": 5000,
        "store": {"id": "store-1"},
        "tax_lines": [{"percentage": 25, "amount": 1000}],
    }
    order = {
        "currency": "NOK",
        "customer": {"id": "cust-1", "email": "buyer@example.com"},
        "store": {"id": "store-1", "name": "Main street"},
        "items": [item],
    }
    draft = parsed(
        "create draft",
        create_draft_order.sync_detailed(AID, client=c, body=models.DraftBody.from_dict({"order": order})),
        models.Draft,
    )
    second = dict(item, id="sku-2", line_id=2, gross_amount=2500, quantity=1, tax_lines=[{"percentage": 25, "amount": 500}])
    parsed(
        "add item",
        add_draft_item.sync_detailed(AID, draft.id, client=c, body=models.OrderItem.from_dict(second)),
        models.Draft,
    )
    done = parsed("complete", complete_draft_order.sync_detailed(AID, draft.id, client=c), models.Draft)
    order_ids = done.to_dict().get("order_ids") or [o["id"] for o in done.to_dict().get("orders", [])]
    if not order_ids:
        fail(f"complete answered no order: {done.to_dict()}")
    oid = order_ids[0]
    parsed("get order", get_order.sync_detailed(AID, oid, client=c), models.Order)
    op = lambda amount: models.OperationRequest.from_dict({"amount": amount, "items": [{"line_id": 1, "amount": amount}]})  # noqa: E731
    parsed("authorize", create_authorization.sync_detailed(AID, oid, client=c, body=op(5000)), models.PaymentOperation)
    parsed("capture", create_capture.sync_detailed(AID, oid, client=c, body=op(5000)), models.PaymentOperation)
    parsed("refund", create_refund.sync_detailed(AID, oid, client=c, body=op(1000)), models.PaymentOperation)
    session = {"items": [{"line_id": 2}], "profile_id": "P12345678.profile", "url": {"return_url": "https://shop.example.com/done"}}
    parsed(
        "session",
        create_order_session.sync_detailed(AID, oid, client=c, body=models.SessionBody.from_dict(session)),
        models.OrderSession,
    )
    listed = parsed("list orders", list_orders.sync_detailed(AID, client=c, limit=10), models.OrderList)
    if oid not in [o.id for o in listed.orders]:
        fail(f"the order list lacks {oid}")
    parsed("customer view", list_customer_orders.sync_detailed(AID, "cust-1", client=c), models.OrderList)
    parsed("store view", get_store_order.sync_detailed(AID, "store-1", oid, client=c), models.Order)

    update = models.OrderUpdate.from_dict({"courier_id": "courier-7"})
    parsed("update order", update_order.sync_detailed(AID, oid, client=c, body=update), models.Order)
    # The ping sent on creation and the update show up in the deliveries.
    waiting = time.perf_counter()
    deliveries = []
    for _ in range(300):
        res = list_deliveries.sync_detailed(AID, sub.id, client=c)
        if res.status_code.value != 200 or not isinstance(res.parsed, list):
            fail(f"deliveries: {res.status_code.value} {res.content[:800]!r}")
        deliveries = res.parsed
        strict("deliveries", res.content, "DeliverySummary")
        got = {h.get("event", "") for h, _ in RECEIVED}
        if EXPECTED <= got and any(courier(body) == "courier-7" for _, body in RECEIVED):
            break
        time.sleep(0.1)
    WEBHOOK_WAIT.append(time.perf_counter() - waiting)
    if not deliveries or not all(isinstance(d, models.DeliverySummary) for d in deliveries):
        fail(f"no parsed delivery: {deliveries}")
    parsed("delivery", get_delivery.sync_detailed(AID, sub.id, deliveries[0].id, client=c), models.DeliveryDetail)
    # The receiver goes away with this run: so does its subscription (a later run on the same
    # host must not pay for deliveries to a receiver that is gone).
    gone = delete_subscription.sync_detailed(AID, sub.id, client=c)
    if gone.status_code.value >= 300:
        fail(f"delete subscription: {gone.status_code.value} {gone.content[:300]!r}")
    print("lifecycle through the generated Python client: every answer parsed by its models")
    verify_signatures()


def verify_signatures() -> None:
    """What a receiver checks: the upstream's `event-signature` (hex HMAC-SHA1 of the body) by
    hand, and the Standard Webhooks headers with that project's own verifier (PyPI
    `standardwebhooks`), keyed by the secret's UTF-8 bytes."""
    import hashlib
    import hmac

    from standardwebhooks.webhooks import Webhook

    # Changes made just before subscribing may still reach it (events fan out when the outbox
    # consumer publishes them), so the update may not be the only one.
    events = {h.get("event", "") for h, _ in RECEIVED}
    if not EXPECTED <= events:
        fail(f"the receiver got {sorted(events)}, not the ping, the draft's events and order updates")
    if not any(courier(body) == "courier-7" for _, body in RECEIVED):
        fail("no delivery carries the updated order at the top level")
    for headers, body in RECEIVED:
        expected = hmac.new(SECRET.encode(), body, hashlib.sha1).hexdigest()
        if not hmac.compare_digest(headers.get("event-signature", ""), expected):
            fail(f"event-signature does not match: {headers}")
        payload = Webhook(SECRET.encode()).verify(body, headers)
        if payload.get("account_id") != AID or "event" not in payload or "event_delivery" not in payload:
            fail(f"the verified envelope lacks the upstream keys: {payload}")
        if payload["event"] == "shopping_order_update" and payload.get("order", {}).get("id") is None:
            fail(f"an order update does not carry the order at the top level: {payload}")
        step = f"webhook {payload['event']}"
        for key, name in [("draft", "Draft"), ("order", "Order"), ("order_event", "Event")]:
            if key in payload:
                strict(step, payload[key], name)
        if payload["event"] == "shopping_draft_complete":
            if len(payload.get("orders", [])) != len(payload.get("order_ids", [])) or not payload["orders"]:
                fail(f"the completion does not carry its orders: {payload}")
            strict(step, payload["orders"], "Order")
    print(f"{len(RECEIVED)} deliveries verified: HMAC-SHA1 event-signature and standardwebhooks")
    print(f"{len(STRICT)} answers and webhook resources parsed by strict pydantic models")


SECRET = "generated-client-secret"
# What the lifecycle's receiver must get (deliveries run concurrently: in any order).
EXPECTED = {"ping", "shopping_draft_add", "shopping_draft_complete", "shopping_order_update"}
EVENTS = ("shopping_draft_add", "shopping_draft_update", "shopping_draft_complete", "shopping_order_update",
          "shopping_order_event_add", "shopping_order_delete")
# How long the lifecycle waited for its webhooks to arrive (the event pipeline's latency).
WEBHOOK_WAIT = []


def courier(body: bytes):
    return json.loads(body).get("order", {}).get("courier_id")

RECEIVED = []


def typescript(npx: str, doc_path: str, work: str) -> None:
    out = os.path.join(work, "shopping.d.ts")
    run = subprocess.run([npx, "--yes", OPENAPI_TYPESCRIPT, doc_path, "-o", out], capture_output=True, text=True)
    if run.returncode != 0 or not os.path.getsize(out):
        fail(f"openapi-typescript failed ({run.returncode}):\n{run.stdout}\n{run.stderr}")
    print(f"openapi-typescript wrote {os.path.getsize(out)} bytes of types")


def main() -> int:
    import argparse
    import tempfile

    parser = argparse.ArgumentParser()
    hosts.add_arguments(parser)
    parser.add_argument("--generator", required=True, help="the openapi-python-client binary")
    parser.add_argument("--npx", help="npx, to generate TypeScript types too")
    args = parser.parse_args()
    generator = os.path.abspath(args.generator)
    with hosts.host_from(args, "shopping-generated-") as host:
        with urllib.request.urlopen(f"{host.base}/openapi.json", timeout=10) as res:
            raw = res.read()
        work = tempfile.mkdtemp(prefix="shopping-generated-client-")
        doc_path = os.path.join(work, "openapi.json")
        with open(doc_path, "wb") as f:
            f.write(raw)
        tuples = list(tuple_schemas(json.loads(raw)))
        if tuples:
            fail("tuple schemas (prefixItems) in the document: " + ", ".join(tuples))
        generate_python(generator, doc_path, work)
        import_all(work)
        generate_strict(doc_path, work)
        emulator = getattr(host, "emulator_seconds", lambda: 0.0)
        busy_before, started = emulator(), time.perf_counter()
        lifecycle(host, hosts.webhook_receiver(RECEIVED))
        elapsed, busy = time.perf_counter() - started, emulator() - busy_before
        busy = f"; the emulator was busy {busy:.2f} s of it" if args.stack else ""
        print(f"lifecycle against {host.name}: {elapsed:.2f} s{busy}; {WEBHOOK_WAIT[-1]:.2f} s of it waiting for webhooks")
        if args.npx:
            typescript(args.npx, doc_path, work)
        return 0


if __name__ == "__main__":
    sys.exit(main())
