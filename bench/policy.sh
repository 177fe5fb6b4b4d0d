#!/usr/bin/env bash
# Policy evaluation per AdmissionReview: 20 Kyverno ValidatingPolicies (CEL) vs the same 20 policies as
# classic ClusterPolicies (JMESPath), from ../shared/data/kyverno-policies, one thread, release build of
# crates/moat-policy/examples/vpol_vs_classic.rs (decode the review JSON + build the input + evaluate).
# usage: bench/policy.sh [ITERATIONS]   (default 50; run from anywhere; needs ../shared)
# Prints the rows of the table in docs/benchmarks.md ("Policy engine: CEL vs classic").
set -euo pipefail
cd "$(dirname "$0")/.."
SHARED="${MOAT_SHARED:-../shared}"
cargo build --release -q -p moat-policy --example vpol_vs_classic
echo "machine: $(nproc) cores, $(uname -r), load $(cut -d' ' -f1-3 /proc/loadavg)"
echo "| policies | requests/s (1 thread) | p50 | p99 | mean | outcomes per pass |"
./target/release/examples/vpol_vs_classic "$SHARED" "${1:-50}"
