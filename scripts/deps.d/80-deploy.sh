#!/bin/bash
# kubectl renders deploy/'s kustomize overlays in tests (Debian's kubernetes-client, unless a kubectl exists).
set -euo pipefail
command -v kubectl >/dev/null && exit 0
apt-get update -q
DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends kubernetes-client
