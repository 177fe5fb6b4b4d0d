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

# Queue claim latency on its own (crates/moat-server/examples/bench_queue.rs): a temporary PostgreSQL 15
# cluster, 10,000 queued push jobs, 1-3 claimers each claiming and completing as a worker does.
PGBIN=$(ls -d /usr/lib/postgresql/*/bin | sort | tail -1)
PGDIR=$(mktemp -d /tmp/moat-bench-pg.XXXXXX)
chown postgres:postgres "$PGDIR"
PGPORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
runuser -u postgres -- "$PGBIN/initdb" -D "$PGDIR/data" -U postgres -A trust --no-sync -E UTF8 >/dev/null
runuser -u postgres -- "$PGBIN/pg_ctl" -D "$PGDIR/data" -o "-k $PGDIR -p $PGPORT -h 127.0.0.1" -l "$PGDIR/log" -w start >/dev/null
trap 'runuser -u postgres -- "$PGBIN/pg_ctl" -D "$PGDIR/data" -m immediate stop >/dev/null 2>&1; rm -rf "$PGDIR"' EXIT
cargo build -q "${flags[@]}" -p moat-server --example bench_queue
BQ=target/$([ "$PROFILE" = release ] && echo release || echo debug)/examples/bench_queue
for c in 1 2 3; do
  runuser -u postgres -- "$PGBIN/psql" -h 127.0.0.1 -p "$PGPORT" -U postgres -qc "DROP DATABASE IF EXISTS q$c" -c "CREATE DATABASE q$c" >/dev/null
  "$BQ" --store "postgres://postgres@127.0.0.1:$PGPORT/q$c" --jobs 10000 --claimers "$c"
done
