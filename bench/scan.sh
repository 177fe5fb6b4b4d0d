#!/usr/bin/env bash
# Vulnerability scanning: `moat scan` (SBOM + matching) of the real Debian bookworm image with a warm
# database, median of N runs; plus the time and size of importing all of ../shared/data/osv.
# Goal: median < 1 s; import < 30 s and smaller than the JSON.
# Peers: trivy's and grype's vulnerability databases cannot be downloaded on these machines (no network
# but crates.io/PyPI/Debian/npm), so no peer runs the same scan here; `moat sbom` vs trivy/syft is in
# bench/sbom.sh.
# usage: bench/scan.sh [RUNS]    (from the repository root; needs ../shared)
set -euo pipefail
cd "$(dirname "$0")/.."
SHARED="${MOAT_SHARED:-$(cd .. && pwd)/shared}"
RUNS=${1:-15}
IMG=$(bash "$SHARED/scripts/debian-image.sh" bookworm)/docker.tar
# MOAT_BIN=path skips the build (e.g. when another build holds the cargo lock).
if [ -z "${MOAT_BIN:-}" ]; then cargo build --release -q -p moat; fi
MOAT=${MOAT_BIN:-$PWD/target/release/moat}
DB=$(mktemp -d)
trap 'rm -rf "$DB"' EXIT
echo "machine: $(nproc) cores, $(uname -r), $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs)"
json_bytes=$(find "$SHARED/data/osv" -name '*.json' ! -name HARVESTED_PROVENANCE.json -print0 | xargs -0 cat | wc -c)
start=$(date +%s%N)
"$MOAT" db import --db "$DB" "$SHARED/data/osv" >/dev/null
end=$(date +%s%N)
db_bytes=$(stat -c %s "$DB/vulns.moatdb")
printf 'import of data/osv: %.2f s; snapshot %.1f MB vs %.1f MB of JSON\n' \
  "$(echo "($end - $start) / 1000000000" | bc -l)" "$(echo "$db_bytes / 1000000" | bc -l)" "$(echo "$json_bytes / 1000000" | bc -l)"
CMD=("$MOAT" scan "docker-archive:$IMG" --db "$DB" --format json)
n=$("${CMD[@]}" | grep -c '"kind": "vulnerability"' || true)
echo "image: $IMG ($(du -h "$IMG" | cut -f1)); $n vulnerability findings"
"${CMD[@]}" >/dev/null  # warm the page cache
times=()
for _ in $(seq "$RUNS"); do
  s=$(date +%s%N); "${CMD[@]}" >/dev/null; e=$(date +%s%N)
  times+=("$(( (e - s) / 1000000 ))")
done
sorted=$(printf '%s\n' "${times[@]}" | sort -n)
median=$(echo "$sorted" | sed -n "$(( (RUNS + 1) / 2 ))p")
echo "moat scan docker-archive (warm DB): median ${median} ms over $RUNS runs (min $(echo "$sorted" | head -1) ms, max $(echo "$sorted" | tail -1) ms)"
/usr/bin/time -v "${CMD[@]}" 2>&1 >/dev/null | awk '/Maximum resident set size/ {printf "moat scan: peak RSS %.1f MB\n", $6/1024}'
