#!/usr/bin/env bash
# The whole test suite, on a fresh machine with only Rust, Python 3 and gcc:
#   - installs the local AWS emulator (moto), cfn-lint, schemathesis, openapi-spec-validator,
#     openapi-python-client, standardwebhooks, aws-sam-translator and PyJWT (which checks the stack's
#     own tokens in functions/tests/issuer.rs) into target/pyenv (once), and Debian's
#     chromium for the docs-page test when it can,
#   - starts the emulator (tests/harness/emulator.py: moto, one request at a time) on a free
#     loopback port and waits until it answers,
#   - checks formatting and lints, lints the SAM template, rehearses its deploy
#     (tests/suites/deploy_rehearsal.py: transformed offline, deployed into moto's CloudFormation),
#   - validates the checked-in OpenAPI document (functions/openapi.json),
#   - runs every test (embedded engine and DynamoDB on the emulator),
#   - runs schemathesis against shopping-local (tests/suites/contract.py),
#   - generates clients from the served document and drives one (tests/suites/generated_client.py),
#   - runs the client-facing suites (tests/suites/client_facing.py) against shopping-local,
#   - starts the stack as AWS runs it (tests/stack up) and runs the walk-through, the route
#     table, the generated client (their account's lists on four shards: `--shards 4`), an
#     EventBridge subscriber (tests/suites/subscriber_test.py)
#     and a long run against it (tests/suites/long_run_test.py), `shopping-local smoke` against it
#     (tests/suites/smoke_test.py; and against a stack whose issuer does not publish the
#     signing key and one in a key-compromise window, failing and naming why), per-account limits
#     across every function instance (tests/suites/limits_test.py), then the retention case, the
#     signing key's rotation (tests/suites/rotation_test.py) and the HTTP API edge and Lambda
#     as AWS documents them (tests/suites/edge_fidelity_test.py); then the product under the
#     other reading of rawPath on a second stack; IAM, enforced on every stack: no call refused and
#     every granted action called (tests/suites/iam_test.py usage), LeadingKeys, key and queue
#     policies holding, and a stack from a copy of the template with one permission taken out
#     refusing that call,
#   - starts a hostile stack (tests/stack up --hostile: stream records reordered across items and
#     delivered again, queue and EventBridge duplicates, DynamoDB throttles and transaction
#     conflicts, recycled instances) and runs the client-facing suites and
#     tests/suites/hostile_test.py on it (a thousand writes: no event lost, none POSTed twice),
#   - stops the emulator.
# If the emulator cannot start, this fails loudly; nothing is ever skipped.
set -euo pipefail
cd "$(dirname "$0")/.."

source tests/pyenv.sh

# The docs-page test drives a headless Chromium. Install Debian's when there is none and we
# may (root or passwordless sudo); otherwise that one test says it is skipped.
if ! command -v chromium >/dev/null 2>&1 && ! command -v chromium-browser >/dev/null 2>&1 \
   && [ -z "${SHOPPING_TEST_CHROMIUM:-}" ] && command -v apt-get >/dev/null 2>&1; then
  as_root=()
  if [ "$(id -u)" != 0 ]; then as_root=(sudo -n); fi
  if [ "$(id -u)" = 0 ] || sudo -n true 2>/dev/null; then
    echo "==> installing chromium (for the docs-page test)"
    if ! { "${as_root[@]}" apt-get update -qq >/dev/null \
           && DEBIAN_FRONTEND=noninteractive "${as_root[@]}" apt-get install -y -qq --no-install-recommends chromium >/dev/null; }; then
      echo "WARNING: chromium could not be installed; the docs-page test will be skipped" >&2
    fi
  else
    echo "WARNING: no chromium and no way to install it; the docs-page test will be skipped" >&2
  fi
fi

port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
log=target/moto.log
PYTHONPATH=tests "$VENV/bin/python" -m harness.emulator "$port" >"$log" 2>&1 &
moto_pid=$!
trap 'kill "$moto_pid" 2>/dev/null || true; wait "$moto_pid" 2>/dev/null || true' EXIT

echo "==> waiting for the emulator on 127.0.0.1:$port"
for _ in $(seq 1 150); do
  if curl -fsS -o /dev/null "http://127.0.0.1:$port/moto-api/" 2>/dev/null \
     || python3 -c "import urllib.request,sys; urllib.request.urlopen('http://127.0.0.1:$port/moto-api/', timeout=1)" 2>/dev/null; then
    ready=1
    break
  fi
  if ! kill -0 "$moto_pid" 2>/dev/null; then break; fi
  sleep 0.2
done
if [ "${ready:-0}" != 1 ]; then
  echo "ERROR: the local AWS emulator did not start; its log follows" >&2
  cat "$log" >&2 || true
  exit 1
fi
export SHOPPING_TEST_DYNAMODB_ENDPOINT="http://127.0.0.1:$port"
export SHOPPING_TEST_PYTHON="$PWD/$VENV/bin/python"

echo "==> cargo fmt --check"
cargo fmt --all -- --check
echo "==> cargo clippy"
cargo clippy --workspace --all-targets --locked -- -D warnings
echo "==> cfn-lint infra/template.yaml"
"$VENV/bin/cfn-lint" infra/template.yaml
echo "==> the template's event schema registry is events/schemas/ (tests/suites/event_registry.py)"
"$VENV/bin/python" tests/suites/event_registry.py --check
echo "==> deploy rehearsal: the SAM template transformed offline and deployed into the emulator's CloudFormation"
"$VENV/bin/python" tests/suites/deploy_rehearsal.py
echo "==> openapi-spec-validator functions/openapi.json"
"$VENV/bin/openapi-spec-validator" functions/openapi.json
echo "==> cargo test (embedded engine + DynamoDB on the emulator)"
cargo test --workspace --locked
# The suites below drive one account of shopping-local far faster than an account's default
# limit (100 requests a second): they test the API, not the limiter (tests/tests/rate_limits.rs
# does), so the shopping-local servers they start take no limit worth the name. The stacks keep
# the template's default.
export TENANT_RATE_LIMIT=1000000 TENANT_BURST_LIMIT=1000000
echo "==> contract testing: schemathesis against shopping-local"
python3 tests/suites/contract.py target/debug/shopping-local "$VENV/bin/schemathesis"
echo "==> generated clients: openapi-python-client (driven through a lifecycle) and openapi-typescript"
"$VENV/bin/python" tests/suites/generated_client.py --local target/debug/shopping-local \
  --generator "$VENV/bin/openapi-python-client" --npx npx
echo "==> client-facing suites against shopping-local: the README walk-through, the route table, retention"
"$VENV/bin/python" tests/suites/client_facing.py --local target/debug/shopping-local

echo "==> the stack harness's event source mappings (filters, bisection, retries, partial failures)"
"$VENV/bin/python" tests/suites/stack_mappings_test.py
echo "==> the stack harness's IAM policy evaluation, rule by rule (tests/suites/iam_eval_test.py)"
"$VENV/bin/python" tests/suites/iam_eval_test.py
# Starts `tests/stack up` on a free port with DIR and LOG (extra environment before it, e.g.
# SHOPPING_STACK_RAW_PATH=as-sent; then, after `--`, extra flags of `up`, e.g. --hostile) and
# waits until it listens; sets stack_pid.
start_stack() {
  local dir=$1 log=$2 port envs=()
  shift 2
  while [ $# -gt 0 ] && [ "$1" != -- ]; do envs+=("$1"); shift; done
  if [ $# -gt 0 ]; then shift; fi
  port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
  env ${envs[@]+"${envs[@]}"} SHOPPING_STACK_BIN_DIR="$PWD/target/debug" tests/stack up --port "$port" --data-dir "$dir" \
    --webhook-allow-loopback "$@" >"$log" 2>&1 &
  stack_pid=$!
  local up=0
  for _ in $(seq 1 120); do
    if grep -aq "^stack listening on http://127.0.0.1:$port$" "$log"; then up=1; break; fi
    if ! kill -0 "$stack_pid" 2>/dev/null; then break; fi
    sleep 1
  done
  if [ "$up" != 1 ]; then
    echo "ERROR: tests/stack up did not start; its log follows" >&2
    cat "$log" >&2
    exit 1
  fi
  grep -a "^ready in" "$log"
}
stop_stack() {
  kill -TERM "$stack_pid"
  wait "$stack_pid" || { echo "ERROR: tests/stack did not stop cleanly" >&2; exit 1; }
}

echo "==> the stack as AWS runs it (tests/stack up), with the bootstraps cargo test built"
stack_dir=$(mktemp -d)
start_stack "$stack_dir" target/stack.log
trap 'kill "$stack_pid" "$moto_pid" 2>/dev/null || true; wait "$stack_pid" "$moto_pid" 2>/dev/null || true' EXIT
echo "==> client-facing suites against the stack: walk-through, route table, generated client, retention"
# Their account gets a big merchant's limit override first (--shards 4: lists on four shards,
# issue 39), and each suite checks the shards were written; shopping-local's runs above keep one.
"$VENV/bin/python" tests/suites/client_facing.py --stack "$stack_dir" --shards 4 walkthrough routes
"$VENV/bin/python" tests/suites/generated_client.py --stack "$stack_dir" --shards 4 --generator "$VENV/bin/openapi-python-client"
echo "==> an EventBridge subscriber on the stack, from README's commands: its rule, the registered schema, a replay"
"$VENV/bin/python" tests/suites/subscriber_test.py --stack "$stack_dir"
echo "==> a long run on the stack: many accounts and writes, a subscription midway, concurrent writers; every answer and webhook"
"$VENV/bin/python" tests/suites/long_run_test.py --stack "$stack_dir"
echo "==> shopping-local smoke against the stack: every check ok, nothing left, interrupted, another bus, a registry (tests/suites/smoke_test.py)"
"$VENV/bin/python" tests/suites/smoke_test.py --stack "$stack_dir"
echo "==> per-account limits on the stack: held across every instance, 429 with the headers, another account unaffected, an override without a restart (tests/suites/limits_test.py)"
"$VENV/bin/python" tests/suites/limits_test.py --stack "$stack_dir"
# Last, these: retention moves the stack's clock two days on; the key rotation moves it about
# six hours further and leaves the stack on other key slots; the edge checks throttle, time out
# and crash functions.
"$VENV/bin/python" tests/suites/client_facing.py --stack "$stack_dir" retention
echo "==> rotating the signing key on the stack, its authorizer caching keys two hours (tests/suites/rotation_test.py)"
"$VENV/bin/python" tests/suites/rotation_test.py --stack "$stack_dir"
echo "==> the HTTP API edge and Lambda as AWS documents them (tests/suites/edge_fidelity_test.py; rawPath decoded)"
"$VENV/bin/python" tests/suites/edge_fidelity_test.py --stack "$stack_dir"
echo "==> IAM on the stack: no call refused, every action granted called; LeadingKeys, key and queue policies hold"
"$VENV/bin/python" tests/suites/iam_test.py usage --stack "$stack_dir"
"$VENV/bin/python" tests/suites/iam_test.py leading-keys --stack "$stack_dir"
stop_stack
echo "==> IAM enforced: dynamodb:PutItem taken out of the drafts function's policy in a copy of the template"
SHOPPING_STACK_BIN_DIR="$PWD/target/debug" "$VENV/bin/python" tests/suites/iam_test.py trimmed
echo "==> shopping-local smoke against a stack whose issuer does not publish the signing key, and in a key-compromise window: it fails and names the cause"
SHOPPING_STACK_BIN_DIR="$PWD/target/debug" "$VENV/bin/python" tests/suites/smoke_test.py broken
echo "==> the product under the other reading of rawPath (as sent)"
raw_dir=$(mktemp -d)
start_stack "$raw_dir" target/stack-as-sent.log SHOPPING_STACK_RAW_PATH=as-sent
"$VENV/bin/python" tests/suites/edge_fidelity_test.py --stack "$raw_dir" raw-path encoded-ids
stop_stack
echo "==> the stack as hostile as AWS may be (tests/stack up --hostile; its seed is in target/stack-hostile.log)"
hostile_dir=$(mktemp -d)
start_stack "$hostile_dir" target/stack-hostile.log -- --hostile
echo "==> client-facing suites against the hostile stack: walk-through, route table, generated client, retention"
"$VENV/bin/python" tests/suites/client_facing.py --stack "$hostile_dir" --shards 4 walkthrough routes
"$VENV/bin/python" tests/suites/generated_client.py --stack "$hostile_dir" --shards 4 --generator "$VENV/bin/openapi-python-client"
echo "==> shopping-local smoke against the hostile stack: no false alarm from duplicates, throttles or recycled instances"
"$VENV/bin/python" tests/suites/smoke_test.py --stack "$hostile_dir"
"$VENV/bin/python" tests/suites/client_facing.py --stack "$hostile_dir" retention
echo "==> a thousand writes on the hostile stack: every event delivered, none twice (tests/suites/hostile_test.py)"
"$VENV/bin/python" tests/suites/hostile_test.py --stack "$hostile_dir"
stop_stack
echo "==> all tests passed"
