#!/bin/bash
# Scale-out benchmark (issue 13): scans per minute of 200 pushed images (the shared Debian images, each
# variant one extra layer) with 1, 2 and 3 `moat server --role worker` processes on one real PostgreSQL,
# behind one `--role api` process that takes the registry's push notifications. Runs the scenario of
# crates/moat-server/tests/scale_out.rs (which also checks exactly-once) and prints its SCALE lines, with the
# machine's load so a busy machine is visible in the figures.
#
#   bash bench/scale.sh                 # PROFILE=release by default; PROFILE=dev for the test build
#   IMAGES=200 WORKERS="1 2 3" bash bench/scale.sh
set -euo pipefail
cd "$(dirname "$0")/.."
IMAGES=${IMAGES:-200}
WORKERS=${WORKERS:-1 2 3}
PROFILE=${PROFILE:-release}
flags=()
[ "$PROFILE" = release ] && flags=(--release)
echo "machine: $(nproc) cores, $(awk '/MemTotal/ {printf "%.0f GiB", $2/1048576}' /proc/meminfo), $(uname -r); profile $PROFILE"
cargo test -q "${flags[@]}" -p moat-server --test scale_out --no-run
for w in $WORKERS; do
  echo "load before: $(cut -d' ' -f1-3 /proc/loadavg)"
  MOAT_SCALE_IMAGES=$IMAGES MOAT_SCALE_WORKERS=$w cargo test -q "${flags[@]}" -p moat-server --test scale_out \
    workers_scan_every -- --nocapture 2>&1 | grep -E '^SCALE|panicked|FAILED' || true
done
echo "load after: $(cut -d' ' -f1-3 /proc/loadavg)"
