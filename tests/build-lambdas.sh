#!/usr/bin/env bash
# Builds every Lambda as a `bootstrap` with cargo-lambda: arm64 (what the template deploys)
# when this machine can cross-compile, else the host architecture. Prints the binary sizes.
set -euo pipefail
cd "$(dirname "$0")/.."

VENV=target/pyenv
if [ ! -x "$VENV/bin/cargo-lambda" ]; then
  python3 -m venv "$VENV"
  "$VENV/bin/pip" install --quiet --disable-pip-version-check "cargo-lambda>=1.8,<2"
fi
export PATH="$PWD/$VENV/bin:$PATH"

FUNCTIONS=(drafts orders payments views hooks publisher deliverer)
bins=()
for f in "${FUNCTIONS[@]}"; do bins+=(--bin "$f"); done

if cargo lambda build --release --arm64 "${bins[@]}" --lambda-dir target/lambda-arm64; then
  dir=target/lambda-arm64
else
  echo "WARNING: arm64 cross-compilation is unavailable here; building for the host" >&2
  cargo lambda build --release "${bins[@]}" --lambda-dir target/lambda-host
  dir=target/lambda-host
fi
# Budget (issue 6, BENCHMARKS.md): each stripped arm64 bootstrap at most 6 MB.
BUDGET=6000000
printf '%-10s %14s %14s  %s\n' function bootstrap zip "vs budget (${BUDGET} B)"
for f in "${FUNCTIONS[@]}"; do
  test -s "$dir/$f/bootstrap" || { echo "ERROR: $dir/$f/bootstrap was not built" >&2; exit 1; }
  zip_size=$(python3 - "$dir/$f/bootstrap" <<'PY'
import io, sys, zipfile
buf = io.BytesIO()
with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as z:
    z.write(sys.argv[1], "bootstrap")
print(len(buf.getvalue()))
PY
)
  size=$(stat -c %s "$dir/$f/bootstrap")
  printf '%-10s %14s %14s  %s\n' "$f" "$size" "$zip_size" \
    "$(awk -v s="$size" -v b="$BUDGET" 'BEGIN { printf "%.2f x budget", s / b }')"
done
