#!/bin/bash
# Runtime protection (moat runtime): the live eBPF test runs real podman containers from the bookworm
# image. podman/runc come from the shared apt-tools.sh; the image from debian-image.sh (00-images.sh).
# Building moat needs no clang: the BPF object is committed (crates/moat-runtime/bpf/build.sh
# regenerates it and needs clang, llvm, bpftool, libbpf-dev, which are NOT installed here).
set -euo pipefail
SHARED=${MOAT_SHARED:-$(cd "$(dirname "$0")/../../.." && pwd)/shared}
if [ ! -d "$SHARED/scripts" ]; then
  echo "SKIPPED: $SHARED/scripts missing: the live runtime test will skip"; exit 0
fi
bash "$SHARED/scripts/apt-tools.sh"
# util-linux (setpriv) and procps are in the image; the host needs nothing else beyond podman/runc.
missing=()
for p in util-linux iproute2; do
  dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  apt-get update -q
  DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "${missing[@]}"
fi
