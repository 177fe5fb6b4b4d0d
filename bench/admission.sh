#!/usr/bin/env bash
# Load test of `moat admission serve` over TLS on loopback with wrk (Debian) and a Lua body:
# restricted Pod Security profile + 20 Kyverno policies from ../shared/data/kyverno.
#   1. paced: 2 threads x 12 connections, each waiting 10 ms between requests (~1,100 req/s offered):
#      p50/p90/p99 latency as wrk measures it (service time; wrk does not correct coordinated omission)
#   2. saturated: 2 threads x 32 connections, no pause: the most requests/s the webhook gives on this machine
#   3. peak RSS of the webhook process (VmHWM) after both runs
# usage: [MOAT_BIN=path] bench/admission.sh [SECONDS]   (default 20 s per run). Prints a Markdown block for docs/benchmarks.md.
# No admission-webhook peer (Kyverno, Gatekeeper) is installable here (peers.sh has none), so the figures
# stand against the issue's goal (p99 < 5 ms at 1,000 req/s, < 64 MB RSS) rather than a peer.
set -euo pipefail
cd "$(dirname "$0")/.."
DUR="${1:-20}"
SHARED="${MOAT_SHARED:-../shared}"
if ! command -v wrk >/dev/null; then
  if ! dpkg -s wrk >/dev/null 2>&1; then
    apt-get update -q >/dev/null
    DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends wrk >/dev/null
  fi
fi
# MOAT_BIN: a moat release binary to measure (default: build one).
if [ -n "${MOAT_BIN:-}" ]; then
  MOAT="$MOAT_BIN"
else
  cargo build --release -q -p moat
  MOAT="$PWD/target/release/moat"
fi
TMP="$(mktemp -d)"
PID=""
cleanup() { [ -n "$PID" ] && kill "$PID" 2>/dev/null; wait "$PID" 2>/dev/null || true; rm -rf "$TMP"; }
trap cleanup EXIT

"$MOAT" admission certs --out "$TMP/certs" --name localhost --name 127.0.0.1 2>/dev/null
mkdir -p "$TMP/policies"
find "$SHARED/data/kyverno/pod-security" "$SHARED/data/kyverno/best-practices" -name '*.yaml' \
  -not -path '*/.chainsaw-test/*' -not -path '*/.kyverno-test/*' -not -path '*/subrule/*' | sort | head -20 \
  | while read -r f; do cp "$f" "$TMP/policies/"; done
NPOL=$(ls "$TMP/policies" | wc -l)

PORT=$((20000 + RANDOM % 20000))
"$MOAT" admission serve --listen "127.0.0.1:$PORT" --tls-cert "$TMP/certs/tls.crt" --tls-key "$TMP/certs/tls.key" \
  --profile pss-restricted --policies "$TMP/policies" 2>"$TMP/serve.log" &
PID=$!
for _ in $(seq 1 100); do
  curl -sf --cacert "$TMP/certs/ca.crt" "https://localhost:$PORT/healthz" >/dev/null 2>&1 && break
  sleep 0.1
done
curl -sf --cacert "$TMP/certs/ca.crt" "https://localhost:$PORT/healthz" >/dev/null

BODY="$SHARED/data/schemas/admissionreview/derived-admissionreview-v1/pod-privileged-policy/deployment_with_privileged_containers.json"
# The request the API server would send; check the answer once (a denial with messages).
curl -s --cacert "$TMP/certs/ca.crt" -H 'Content-Type: application/json' --data-binary "@$BODY" \
  "https://localhost:$PORT/validate" | head -c 300; echo
lua_body() {
  cat <<LUA
local f = io.open("$BODY", "rb"); local body = f:read("*all"); f:close()
wrk.method = "POST"; wrk.body = body; wrk.headers["Content-Type"] = "application/json"
$1
LUA
}
lua_body 'function delay() return 10 end' >"$TMP/paced.lua"
lua_body '' >"$TMP/max.lua"

LOAD_BEFORE=$(cut -d' ' -f1-3 /proc/loadavg)
wrk -t2 -c12 -d"${DUR}s" --latency -s "$TMP/paced.lua" "https://localhost:$PORT/validate" >"$TMP/paced.txt"
wrk -t2 -c32 -d"${DUR}s" --latency -s "$TMP/max.lua" "https://localhost:$PORT/validate" >"$TMP/max.txt"
RSS_KB=$(awk '/VmHWM/ {print $2}' "/proc/$PID/status")

pct() { awk -v p="$2" '$1 == p {print $2}' "$1"; }
rps() { awk '/Requests\/sec/ {print $2}' "$1"; }
errs() { awk '/Non-2xx|Socket errors/ {print}' "$1"; }
cat <<MD

## Admission webhook

\`bench/admission.sh $DUR\` — \`moat admission serve --profile pss-restricted --policies <$NPOL Kyverno policies>\`
over TLS (rustls, ring) on 127.0.0.1, release build; load from \`wrk 4.1\` (Debian) with a Lua body: the
captured AdmissionReview of a Deployment with a privileged container (denied, with every failed rule's message).
Machine: $(nproc) vCPUs, Linux $(uname -r); wrk and the webhook share the 2 cores; load average before the
runs: $LOAD_BEFORE (other builds on the machine count: latency tails grow with it).

| run | requests/s | p50 | p90 | p99 |
|---|---|---|---|---|
| paced (2×12 connections, 10 ms pause each, ~1,100 req/s offered) | $(rps "$TMP/paced.txt") | $(pct "$TMP/paced.txt" 50%) | $(pct "$TMP/paced.txt" 90%) | $(pct "$TMP/paced.txt" 99%) |
| saturated (2×32 connections, no pause) | $(rps "$TMP/max.txt") | $(pct "$TMP/max.txt" 50%) | $(pct "$TMP/max.txt" 90%) | $(pct "$TMP/max.txt" 99%) |

Peak RSS of the webhook (VmHWM) after both runs: $((RSS_KB / 1024)) MiB. Goal: p99 < 5 ms at 1,000 req/s, < 64 MB.
$(errs "$TMP/paced.txt") $(errs "$TMP/max.txt")
MD
