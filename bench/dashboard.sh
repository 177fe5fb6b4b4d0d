#!/usr/bin/env bash
# Dashboard render benchmark (issue 12): server time to render the overview, the image list (first page, a
# deep page, sorted by findings, a search) and one image page, with N stored images (default 10,000), as a
# signed-in browser asks for them. The store is seeded by crates/moat-server/examples/bench_server.rs (the
# same real package lists and matching as bench/server.sh: SBOMs, findings, verdicts); then a real
# `moat server` serves it, this script signs in through the sign-in form (CSRF cookie + token) and times
# each page R times with curl (time to last byte, loopback). Goal: p99 < 100 ms. Page weight (every asset
# included, as Chromium loads it) is measured by crates/moat-server/tests/dashboard.rs.
#   usage: bench/dashboard.sh [IMAGES] [ROUNDS]
set -euo pipefail
cd "$(dirname "$0")/.."
SHARED="${MOAT_SHARED:-$(cd .. && pwd)/shared}"
IMAGES=${1:-10000}
ROUNDS=${2:-200}
WORK=$(mktemp -d)
SERVER_PID=
cleanup() { [ -n "$SERVER_PID" ] && kill "$SERVER_PID" 2>/dev/null; rm -rf "$WORK"; }
trap cleanup EXIT
FIX="$HOME/.cache/moat-fixtures"
if [ -z "${MOAT_BIN:-}" ]; then cargo build --release -q -p moat; fi
if [ -z "${BENCH_BIN:-}" ]; then cargo build --release -q -p moat-server --example bench_server; fi
MOAT=${MOAT_BIN:-$PWD/target/release/moat}
BENCH=${BENCH_BIN:-$PWD/target/release/examples/bench_server}
echo "machine: $(nproc) cores, $(free -g | awk '/Mem:/ {print $2}') GB RAM, $(uname -r); load $(cut -d' ' -f1-3 /proc/loadavg)"
mkdir -p "$WORK/inv"
for img in "bullseye/oci" "bookworm/oci" "lang-image/oci:lang"; do
  dir=${img%%:*}
  [ -f "$FIX/$dir/index.json" ] || { echo "missing $FIX/$dir (scripts/deps.d builds it)"; exit 2; }
  "$MOAT" sbom "oci:$FIX/$img" -f json > "$WORK/inv/$(echo "$dir" | cut -d/ -f1).json"
done
STORE="sqlite:$WORK/server.db"
"$BENCH" --store "$STORE" --work "$WORK" --osv "$SHARED/data/osv" --images "$IMAGES" --holdout 100 \
  --queries 10 "$WORK"/inv/*.json > "$WORK/seed.json"
python3 - "$WORK/seed.json" <<'PY'
import json, sys
d = json.load(open(sys.argv[1]))
print(f"seeded {d['images']} images, {d['image_package_rows']} image-package rows in {d['seed_s']:.0f} s")
PY

PORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
ADMIN=bench-admin-$(head -c 12 /dev/urandom | od -An -tx1 | tr -d ' \n')
MOAT_SERVER_TOKEN=$ADMIN "$MOAT" server --listen "127.0.0.1:$PORT" --store "$STORE" --db "$WORK/db" --role api \
  2> "$WORK/server.log" &
SERVER_PID=$!
for _ in $(seq 100); do curl -sf "http://127.0.0.1:$PORT/healthz" >/dev/null && break; sleep 0.1; done
READ=$("$MOAT" server token create --scope read --name bench --store "$STORE" 2>"$WORK/token.err") ||
  { cat "$WORK/token.err"; exit 1; }
BASE="http://127.0.0.1:$PORT"
JAR="$WORK/cookies"
csrf=$(curl -s -c "$JAR" "$BASE/login" | grep -o 'name="csrf" value="[^"]*"' | head -1 | sed 's/.*value="//; s/"$//')
curl -s -b "$JAR" -c "$JAR" -o /dev/null -w '' --data-urlencode "token=$READ" --data-urlencode "csrf=$csrf" \
  --data-urlencode "next=/" "$BASE/login"
grep -q moat_session "$JAR" || { echo "sign-in failed"; cat "$WORK/server.log"; exit 1; }
DIGEST=$(curl -s -H "Authorization: Bearer $READ" "$BASE/api/v1/images?limit=1" |
  python3 -c 'import json,sys; print(json.load(sys.stdin)["images"][0]["digest"])')
pages=("/" "/images" "/images?page=200" "/images?sort=packages&dir=desc" "/images?q=team-7" "/images/$DIGEST")
printf '%-36s %8s %8s %8s %8s %10s\n' page p50_ms p95_ms p99_ms max_ms bytes
for p in "${pages[@]}"; do
  # The first request after start (the overview computes its portfolio figures here, uncached).
  first=$(curl -s -b "$JAR" -o /dev/null -w '%{time_total}' "$BASE$p")
  echo "first request $p: $(python3 -c "print(f'{float(\"$first\")*1000:.0f} ms')")"
  for _ in $(seq "$ROUNDS"); do
    curl -s -b "$JAR" -o /dev/null -w '%{http_code} %{time_total} %{size_download}\n' "$BASE$p"
  done > "$WORK/t.txt"
  python3 - "$p" "$WORK/t.txt" <<'PY'
import sys
rows = [l.split() for l in open(sys.argv[2])]
bad = [r for r in rows if r[0] != "200"]
t = sorted(float(r[1]) * 1000 for r in rows)
q = lambda f: t[min(len(t) - 1, int(f * len(t)))]
print(f"{sys.argv[1][:36]:<36} {q(.5):8.1f} {q(.95):8.1f} {q(.99):8.1f} {t[-1]:8.1f} {rows[-1][2]:>10}" + (f"  ({len(bad)} not 200)" if bad else ""))
PY
done
RSS=$(awk '/VmRSS/ {print $2}' "/proc/$SERVER_PID/status")
echo "server RSS after the run: $((RSS / 1024)) MB"
