#!/usr/bin/env bash
# The whole test suite, on a fresh machine with only Rust, Python 3 and gcc:
#   - installs the local AWS emulator (moto) and cfn-lint into target/pyenv (once),
#   - starts the emulator (tests/emulator.py: moto, one request at a time) on a free loopback
#     port and waits until it answers,
#   - checks formatting and lints, lints the SAM template,
#   - runs every test (embedded engine and DynamoDB on the emulator),
#   - stops the emulator.
# If the emulator cannot start, this fails loudly; nothing is ever skipped.
set -euo pipefail
cd "$(dirname "$0")/.."

VENV=target/pyenv
PY_PACKAGES=("moto[server]>=5.1,<6" "cfn-lint>=1.20,<2")
if ! { [ -x "$VENV/bin/moto_server" ] && [ -x "$VENV/bin/cfn-lint" ]; }; then
  echo "==> installing the local AWS emulator and cfn-lint into $VENV"
  python3 -m venv "$VENV"
  "$VENV/bin/pip" install --quiet --disable-pip-version-check "${PY_PACKAGES[@]}"
fi

port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
log=target/moto.log
"$VENV/bin/python" tests/emulator.py "$port" >"$log" 2>&1 &
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

echo "==> cargo fmt --check"
cargo fmt --all -- --check
echo "==> cargo clippy"
cargo clippy --workspace --all-targets --locked -- -D warnings
echo "==> cfn-lint infra/template.yaml"
"$VENV/bin/cfn-lint" infra/template.yaml
echo "==> cargo test (embedded engine + DynamoDB on the emulator)"
cargo test --workspace --locked
echo "==> all tests passed"
