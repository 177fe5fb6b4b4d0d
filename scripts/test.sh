#!/bin/bash
# Runs every moat test. Installs what the tests need first (idempotent), so it works on a fresh
# Debian 12 machine with Rust. `.ci/run` calls exactly this.
set -euo pipefail
cd "$(dirname "$0")/.."
SHARED=${MOAT_SHARED:-$(cd .. && pwd)/shared}
export MOAT_SHARED=$SHARED

# Debian packages and fixtures the tests use; each capability keeps its own list in scripts/deps.d.
for f in scripts/deps.d/*.sh; do
  [ -e "$f" ] || continue
  echo "== deps: $f"
  bash "$f"
done

# CI starts from a fresh clone on a machine that keeps ~/.cache: reuse compiled dependencies from there.
if [ "${CI:-}" = true ] && [ -z "${CARGO_TARGET_DIR:-}" ]; then
  export CARGO_TARGET_DIR=$HOME/.cache/moat-ci-target
fi

echo "== cargo test (workspace)"
rm -f /tmp/moat-test-skips.log
status=0
cargo test --workspace --no-fail-fast 2>&1 || status=$?
# Tests skipped for a missing requirement (moat-testkit records each; in CI a missing ../shared fails instead).
if [ -s /tmp/moat-test-skips.log ]; then
  echo "== skipped tests: $(wc -l < /tmp/moat-test-skips.log)"
  cat /tmp/moat-test-skips.log
fi
# The habits CI enforces besides the tests: cargo fmt --check, clippy -D warnings, cargo deny (scripts/checks.sh).
bash scripts/checks.sh || status=1
exit $status
