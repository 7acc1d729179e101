#!/usr/bin/env bash
# Builds every Lambda the way a deploy does — `sam build` from infra/template.yaml, which runs
# cargo-lambda for each function (arm64, release) — and reports each bootstrap's size against
# the budget. SAM CLI and cargo-lambda are installed into target/samenv (their own virtualenv:
# SAM's pins conflict with other tools').
set -euo pipefail
cd "$(dirname "$0")/.."

VENV=target/samenv
if ! { [ -x "$VENV/bin/sam" ] && [ -x "$VENV/bin/cargo-lambda" ]; }; then
  echo "==> installing the SAM CLI and cargo-lambda into $VENV"
  python3 -m venv "$VENV"
  "$VENV/bin/pip" install --quiet --disable-pip-version-check "aws-sam-cli>=1.130,<2" "cargo-lambda>=1.8,<2"
fi
export PATH="$PWD/$VENV/bin:$PATH"
# No telemetry and no version check against the internet.
export SAM_CLI_TELEMETRY=0 SAM_CLI_DISABLE_UPDATE_CHECK=1

echo "==> sam build (every function in infra/template.yaml, with cargo-lambda)"
sam build --config-env default

FUNCTIONS=(Drafts Orders Payments Views Hooks Publisher Deliverer Token Keys)
# Budget (BENCHMARKS.md): each stripped arm64 bootstrap at most 6 MB.
BUDGET=6000000
printf '%-10s %14s %14s  %s\n' function bootstrap zip "vs budget (${BUDGET} B)"
for f in "${FUNCTIONS[@]}"; do
  file=".aws-sam/build/${f}Function/bootstrap"
  test -s "$file" || { echo "ERROR: sam build made no $file" >&2; exit 1; }
  if command -v file >/dev/null && ! file "$file" | grep -q aarch64; then
    echo "ERROR: $file is not an arm64 executable" >&2
    exit 1
  fi
  zip_size=$(python3 - "$file" <<'PY'
import io, sys, zipfile
buf = io.BytesIO()
with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as z:
    z.write(sys.argv[1], "bootstrap")
print(len(buf.getvalue()))
PY
)
  size=$(stat -c %s "$file")
  printf '%-10s %14s %14s  %s\n' "$(echo "$f" | tr 'A-Z' 'a-z')" "$size" "$zip_size" \
    "$(awk -v s="$size" -v b="$BUDGET" 'BEGIN { printf "%.2f x budget", s / b }')"
done
