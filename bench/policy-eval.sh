#!/usr/bin/env bash
# Policy engine latency: 20 Kyverno policies judging the resources of their own tests.
# usage: bench/policy-eval.sh [ITERATIONS]   (run from the repository root; needs ../shared)
# No peer runs here: Kyverno's CLI is not installable offline (peers.sh has none for policies).
set -euo pipefail
cd "$(dirname "$0")/.."
SHARED="${MOAT_SHARED:-../shared}"
cargo build --release -q -p moat-policy --example eval_bench
echo "machine: $(nproc) cores, $(uname -r)"
./target/release/examples/eval_bench "$SHARED" "${1:-20}"
# The CLI end to end (process start, YAML parse, every kyverno-test.yaml of the pod-security set):
cargo build --release -q -p moat
/usr/bin/time -f "moat policy test pod-security: %e s, %M kB max RSS" \
  ./target/release/moat policy test "$SHARED/data/kyverno/pod-security" --format json >/dev/null || true
