#!/bin/bash
# moat server tests run against SQLite and against a real PostgreSQL 15 they start themselves
# (moat-testkit's postgres harness: initdb in a temp dir as the postgres user, loopback port).
set -euo pipefail
if [ -x /usr/lib/postgresql/15/bin/initdb ] && id postgres >/dev/null 2>&1; then exit 0; fi
apt-get update -q
DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends postgresql util-linux
