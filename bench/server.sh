#!/usr/bin/env bash
# moat server store: seeds a real store (SQLite by default; `postgres://…` as the second argument) with
# N image SBOMs built from real package lists — `moat sbom` of the shared Debian bullseye and bookworm
# images and of the language test image, each image with ~15% of its packages moved to other real
# versions that the advisories of that package name — and measures, in one process on the store
# (crates/moat-server/examples/bench_server.rs):
#   - the first evaluation of every stored SBOM against the snapshot WITHOUT 1,000 held-out advisories
#     (findings, verdicts and outbox written: what a full re-match from nothing costs);
#   - re-evaluation after the DB change of those 1,000 advisories (delta: changed keys only, through the
#     package -> image index), goal < 10 s on 2 cores;
#   - a full re-match of every stored package against the new snapshot, goal < 60 s;
#   - "which images have CVE-X" (store::query::advisory, what GET /api/v1/advisories/{id} runs) for
#     every CVE with open findings, p50/p95/p99, goal p99 < 50 ms.
# Peers (../shared/docs/security-center-research.md): Harbor re-scans ("Scan All" of ~55k images took
# 4-30 h, goharbor/harbor#17538, anecdotal); Dependency-Track v5 schedules portfolio analysis (tens of
# thousands of runs scheduled in under a minute, ADR-038) and answers its finding list in "tens of ms"
# in default order on 100 M findings (ADR-037); Clair is delta-driven but publishes no figures.
# usage: bench/server.sh [IMAGES] [STORE_URL]     (from the repository root; needs ../shared and the
#        fixtures of scripts/deps.d: bookworm, bullseye, lang-image)
set -euo pipefail
cd "$(dirname "$0")/.."
SHARED="${MOAT_SHARED:-$(cd .. && pwd)/shared}"
IMAGES=${1:-10000}
WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT
STORE=${2:-sqlite:$WORK/server.db}
FIX="$HOME/.cache/moat-fixtures"
# MOAT_BIN / BENCH_BIN skip the builds (e.g. when another build holds the cargo lock).
if [ -z "${MOAT_BIN:-}" ]; then cargo build --release -q -p moat; fi
if [ -z "${BENCH_BIN:-}" ]; then cargo build --release -q -p moat-server --example bench_server; fi
MOAT=${MOAT_BIN:-$PWD/target/release/moat}
BENCH=${BENCH_BIN:-$PWD/target/release/examples/bench_server}
echo "machine: $(nproc) cores, $(free -g | awk '/Mem:/ {print $2}') GB RAM, $(uname -r), $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs)"
mkdir -p "$WORK/inv"
for img in "bullseye/oci" "bookworm/oci" "lang-image/oci:lang"; do
  dir=${img%%:*}
  [ -f "$FIX/$dir/index.json" ] || { echo "missing $FIX/$dir (scripts/deps.d builds it)"; exit 2; }
  "$MOAT" sbom "oci:$FIX/$img" -f json > "$WORK/inv/$(echo "$dir" | cut -d/ -f1).json"
done
for f in "$WORK"/inv/*.json; do
  echo "package list $(basename "$f" .json): $(python3 -c 'import json,sys; print(len(json.load(open(sys.argv[1]))["packages"]))' "$f") packages"
done
echo "command: $BENCH --store ${STORE%%\?*} --images $IMAGES --holdout 1000 --queries 2000"
/usr/bin/time -v "$BENCH" --store "$STORE" --work "$WORK" --osv "$SHARED/data/osv" --images "$IMAGES" \
  --holdout 1000 --queries 2000 "$WORK"/inv/*.json > "$WORK/out.json" 2> "$WORK/time.txt" || { cat "$WORK/time.txt"; exit 1; }
python3 - "$WORK/out.json" <<'EOF'
import json, sys
d = json.load(open(sys.argv[1]))
o = lambda k: d[k]["outcome"]
print(f"store: {d['store']}; {d['images']} images, {d['image_package_rows']} image-package rows, "
      f"{d['distinct_packages']} distinct packages; {d['osv_records']} OSV records")
print(f"seed (SBOM + package index): {d['seed_s']:.1f} s")
f = o("first_evaluation")
print(f"first evaluation (every stored package, no baseline): {d['first_evaluation']['s']:.1f} s; "
      f"{f['images']} images judged, {f['packages']} packages matched, {f['new_findings']} findings, "
      f"{f['uncovered_keys']} keys of ecosystems the DB does not cover (Debian 12) skipped")
x = o("delta")
print(f"delta after {d['holdout']} advisories ({d['holdout_naming_seeded_packages']} name seeded packages): "
      f"{d['delta']['s']:.2f} s; {x['changed_keys']} changed stored keys, {x['images']} images, "
      f"{x['packages']} packages re-matched, {x['new_findings']} new findings, {x['verdicts_changed']} verdicts changed")
y = o("full")
print(f"full re-match against the new snapshot: {d['full']['s']:.1f} s; {y['images']} images, {y['packages']} packages")
q = d["cve_query"]
print(f"which images have CVE-X: {q['queries']} queries over {q['cves']} CVEs: p50 {q['p50_ms']:.2f} ms, "
      f"p95 {q['p95_ms']:.2f} ms, p99 {q['p99_ms']:.2f} ms, max {q['max_ms']:.2f} ms "
      f"(images per answer: median {q['images_per_answer_p50']}, max {q['images_per_answer_max']})")
print(f"outbox: {d['outbox']}")
EOF
awk '/Maximum resident set size/ {printf "bench process peak RSS: %.0f MB\n", $6/1024} /Elapsed \(wall/ {print "wall: " $NF}' "$WORK/time.txt"
