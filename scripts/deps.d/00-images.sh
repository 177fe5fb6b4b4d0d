#!/bin/bash
# Real Debian images (cached under ~/.cache/moat-fixtures) and the image tools (skopeo, umoci, registry).
set -euo pipefail
SHARED=${MOAT_SHARED:-$(cd "$(dirname "$0")/../../.." && pwd)/shared}
if [ ! -d "$SHARED/scripts" ]; then
  echo "SKIPPED: $SHARED/scripts missing: image tests will skip"; exit 0
fi
bash "$SHARED/scripts/apt-tools.sh"
bash "$SHARED/scripts/debian-image.sh" bookworm >/dev/null
bash "$SHARED/scripts/debian-image.sh" bullseye >/dev/null
