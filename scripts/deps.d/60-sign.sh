#!/bin/bash
# Signing tests (moat-sign, tests/sign_cli.rs): openssl as the independent ECDSA verifier, curl to read
# blobs from the loopback registry. The registry and skopeo come from 00-images.sh.
set -euo pipefail
missing=()
for p in openssl curl; do
  dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  apt-get update -q
  DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "${missing[@]}"
fi
