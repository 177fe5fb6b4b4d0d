#!/bin/bash
# Dashboard tests (crates/moat-server/tests/dashboard*.rs) drive a real headless Chromium over the
# DevTools protocol: Debian's `chromium` package. Idempotent.
set -euo pipefail
if ! command -v chromium >/dev/null 2>&1; then
  apt-get update -q
  DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends chromium fonts-dejavu-core
fi
chromium --version
