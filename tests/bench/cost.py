"""What a stack costs: the fixed monthly cost at idle and the variable cost per 1,000 order
lifecycles, from the capacity bench's measured DynamoDB units and the public on-demand prices
below (us-east-1, as published on PRICES_DATED; change them here when they change).

Usage: python3 tests/bench/cost.py            (runs the capacity bench for the units)
       python3 tests/bench/cost.py WCU RCU    (uses the given units of one lifecycle)

A lifecycle is the bench's "lifecycle" row: create a draft with 3 items, add 1, complete it,
GET the order with its events — 4 API requests. The figures around the units are counted from
the code: each of the 4 requests is one HTTP API request and one Lambda invocation; the writes
put 4 webhook events on the bus (draft add, draft update, draft complete, order update), each
one EventBridge event and, on the delivery queue, one send, one receive and one delete; the
publisher takes them in at most 2 invocations and reads the completed order once (the
completion's webhook carries it). Webhook deliveries are priced per subscription
on top: per event and subscription one job message (send, receive, delete), one deliverer
share of an invocation and one delivery record write.

The bus's archive (on by default, 30 days) costs its processing and storage per GB of events
(priced at EVENT_BYTES an event); a subscriber's rule in another account costs one more event
per event it delivers across accounts (priced for a rule on order updates, 1 of the 4).

The stack's own issuer (the default) adds its KMS key (fixed) and, per token a client fetches
(about one an hour per client that caches its token, 720 a month), one HTTP API request, one
token function invocation, one read of the client and one KMS Sign. Client secrets are
hashed unkeyed (SHA-256), so the secret-hashing key has no home to pay for. X-Ray is off by default
(TracingMode); with it on, every request and publisher invocation below one a second is traced.
"""

import subprocess
import sys

PRICES_DATED = "2026-12-03"
# DynamoDB on-demand, per unit.
WRITE_UNIT = 0.625 / 1e6
READ_UNIT = 0.125 / 1e6
# API Gateway HTTP API, per request (first 300 M a month).
HTTP_API_REQUEST = 1.00 / 1e6
# Lambda on arm64: per request and per GB-second.
LAMBDA_REQUEST = 0.20 / 1e6
LAMBDA_GB_SECOND = 0.0000133334
# EventBridge custom events, per event (each started 64 KB of an entry counts as one); SQS
# standard, per request.
EVENT = 1.00 / 1e6
# EventBridge archives: per GB of events archived, per GB-month kept. A replayed event and an
# event a rule delivers to a target in another account each cost one more custom event.
ARCHIVE_GB_PROCESSED = 0.10
ARCHIVE_GB_MONTH = 0.023
CROSS_ACCOUNT_EVENT = 1.00 / 1e6
# An event's size on the bus: ~2.5 KB measured for a one-item order's update (the detail in
# tests/suites/subscriber_test.py), more per line; 3 KB here.
EVENT_BYTES = 3000
# The archive's default retention (EventArchiveRetentionDays): it holds that many days of events.
ARCHIVE_DAYS = 30
SQS_REQUEST = 0.40 / 1e6
# Fixed: a standard CloudWatch alarm per metric it watches, a KMS key, log storage.
ALARM_METRIC_MONTH = 0.10
KMS_KEY_MONTH = 1.00
# KMS requests on an asymmetric key (Sign, GetPublicKey): the highest asymmetric rate, and no
# free tier counted.
KMS_ASYMMETRIC_REQUEST = 0.15 / 1e4
# A custom CloudWatch metric (the full profile's token refusals, from a log metric filter).
CUSTOM_METRIC_MONTH = 0.30
# X-Ray, per trace recorded past the free 100,000 a month.
XRAY_TRACE = 5.00 / 1e6
LOG_GB_MONTH = 0.03
LOG_GB_INGESTED = 0.50

# The stack's alarms and how many metrics each watches, per AlarmProfile (infra/template.yaml).
ESSENTIAL_ALARMS = {"Api5xxAlarm": 1, "PipelineFailuresAlarm": 1}
ALARM_METRICS = {
    "essential": ESSENTIAL_ALARMS,
    "full": {**ESSENTIAL_ALARMS, "DeadLettersAlarm": 1, "FunctionErrorsAlarm": 8, "FunctionThrottlesAlarm": 8,
             "Api4xxAlarm": 2, "PublisherIteratorAgeAlarm": 1, "DeliveryQueueAgeAlarm": 1, "TableThrottlesAlarm": 2,
             "TokenRefusalsAlarm": 1},
}
# Custom metrics per AlarmProfile: the full profile counts refused token requests.
CUSTOM_METRICS = {"essential": 0, "full": 1}
# Tokens a tenant's client fetches in a month (one an hour, cached in between).
TOKENS_PER_MONTH = 720
# The budgets (issues 26 and 34): idle with a non-exportable key, and a tenant at 10,000
# lifecycles, all-in.
IDLE_BUDGET, TENANT_BUDGET, TENANT_LIFECYCLES = 1.50, 2.00, 10_000
# Measured: a warm API invocation (one partition read or a conditional write) takes 17 ms at
# full CPU locally (BENCHMARKS.md, cold request); Lambda bills by the millisecond. 256 MB, the
# deliverer 128 MB (infra/template.yaml).
API_MS, MEMORY_GB, DELIVERER_GB = 20, 0.25, 0.125
REQUESTS, EVENTS, PUBLISHER_INVOCATIONS = 4, 4, 2
# The publisher reads what the events carry besides the written item: the completion's order
# (one strongly consistent query of its partition, under 4 KB: 1 RCU). Order events read the
# order's payment operations only when it has some (none in this lifecycle).
PUBLISHER_RCU = 1
# One access-log line and about three function log lines per request, ~250 bytes each.
LOG_BYTES_PER_REQUEST = 4 * 250


def measured_units() -> tuple[float, float]:
    out = subprocess.run(
        ["cargo", "test", "-q", "-p", "shopping-tests", "--bench", "capacity_units", "--", "--nocapture"],
        check=True, capture_output=True, text=True,
    ).stdout
    for line in out.splitlines():
        if line.startswith("| lifecycle"):
            cells = [c.strip() for c in line.strip("|").split("|")]
            return float(cells[4]), float(cells[-1])
    raise SystemExit("the capacity bench printed no lifecycle row")


def main() -> None:
    wcu, rcu = (float(sys.argv[1]), float(sys.argv[2])) if len(sys.argv) == 3 else measured_units()
    n = 1000
    dynamodb = n * (wcu * WRITE_UNIT + (rcu + PUBLISHER_RCU) * READ_UNIT)
    api = n * REQUESTS * HTTP_API_REQUEST
    invocations = REQUESTS + PUBLISHER_INVOCATIONS
    lam = n * (invocations * LAMBDA_REQUEST + invocations * API_MS / 1000 * MEMORY_GB * LAMBDA_GB_SECOND)
    bus = n * EVENTS * EVENT
    sqs = n * EVENTS * 3 * SQS_REQUEST
    logs = n * REQUESTS * LOG_BYTES_PER_REQUEST / 1e9 * LOG_GB_INGESTED
    archived_gb = n * EVENTS * EVENT_BYTES / 1e9
    # Processing once, and (in a steady month) ARCHIVE_DAYS / 30 of a month's events kept.
    archive = archived_gb * (ARCHIVE_GB_PROCESSED + ARCHIVE_GB_MONTH * ARCHIVE_DAYS / 30)
    total = dynamodb + api + lam + bus + sqs + logs + archive
    per_sub = n * EVENTS * (3 * SQS_REQUEST + LAMBDA_REQUEST / 10 + API_MS / 1000 * DELIVERER_GB * LAMBDA_GB_SECOND
                            + 2 * WRITE_UNIT)
    xray = n * (REQUESTS + PUBLISHER_INVOCATIONS) * XRAY_TRACE
    # A subscriber in another account with a rule for order updates (1 of the 4 events).
    cross_account = n * 1 * CROSS_ACCOUNT_EVENT
    tokens = TOKENS_PER_MONTH * (HTTP_API_REQUEST + LAMBDA_REQUEST + API_MS / 1000 * MEMORY_GB * LAMBDA_GB_SECOND
                                 + READ_UNIT + KMS_ASYMMETRIC_REQUEST)
    print(f"prices of {PRICES_DATED} (us-east-1, on demand); one lifecycle = {wcu:g} WCU, {rcu:g} RCU")
    print("| per 1,000 order lifecycles | USD |")
    print("|---|---|")
    for name, v in [("DynamoDB (measured units + the publisher's read)", dynamodb), ("HTTP API requests", api),
                    ("Lambda requests and GB-seconds", lam), ("EventBridge events", bus),
                    ("SQS requests", sqs), ("CloudWatch Logs ingestion", logs),
                    (f"the bus's archive ({ARCHIVE_DAYS} days, the default; EventArchiveRetentionDays=0: none)", archive),
                    ("total", total),
                    ("each webhook subscription adds", per_sub),
                    ("each cross-account subscriber rule on order updates adds", cross_account),
                    ("X-Ray, if TracingMode=Active (past the free tier)", xray)]:
        print(f"| {name} | {v:.4f} |")
    print(f"tokens: {TOKENS_PER_MONTH} a month (one client, hourly) cost {tokens:.4f} USD "
          f"(request, invocation, client read, KMS Sign at {KMS_ASYMMETRIC_REQUEST * 1e4:.2f} USD per 10,000)")
    print("| fixed per month at idle | alarm metrics | USD |")
    print("|---|---|---|")
    idle = {}
    for profile, alarms in ALARM_METRICS.items():
        metrics = sum(alarms.values())
        custom = CUSTOM_METRICS[profile] * CUSTOM_METRIC_MONTH
        idle[profile] = metrics * ALARM_METRIC_MONTH + custom + KMS_KEY_MONTH
        extra = f", {CUSTOM_METRICS[profile]} custom metric {custom:.2f}" if custom else ""
        print(f"| AlarmProfile={profile}, own issuer (KMS key {KMS_KEY_MONTH:.2f}{extra}) | {metrics} | {idle[profile]:.2f} |")
    tenant = idle["essential"] + TENANT_LIFECYCLES / n * total + tokens
    print(f"idle (defaults): {idle['essential']:.2f} USD a month (budget {IDLE_BUDGET:.2f}); "
          f"a tenant at {TENANT_LIFECYCLES:,} order lifecycles: {tenant:.2f} USD a month all-in "
          f"(budget {TENANT_BUDGET:.2f}; {idle['essential'] / tenant:.0%} fixed)")
    print(f"log storage {LOG_GB_MONTH} USD per GB-month kept; DynamoDB storage 0.25 USD per GB-month; "
          "nothing else runs while idle (the keys function answers API Gateway a few times an hour); "
          f"a key rotation's second key costs {KMS_KEY_MONTH:.2f} a month, prorated by the hour, while both exist")
    if idle["essential"] > IDLE_BUDGET or tenant > TENANT_BUDGET:
        raise SystemExit("over budget")

if __name__ == "__main__":
    main()
