#!/bin/bash
# moat runtime benchmarks (release build, run as root):
#  1. sensor overhead: 10,000 `/bin/true` execs from a shell loop, without and with `moat runtime watch`
#     (moat's default rules + Falco's stable rules loaded), and the ring-buffer losses at that rate;
#  2. replay throughput: the events recorded during (1) evaluated against Falco's stable rules on one core.
# No peer runs here: Falco and Tetragon are not installable on these machines (no registry ships them);
# Debian's sysdig 0.29.3 (Falco's libscap) installs but cannot capture: it needs the scap kernel module
# (dkms, no headers for this kernel) or a prebuilt legacy BPF probe, and predates the modern eBPF probe.
# Usage: bash bench/runtime.sh   (prints a Markdown block for docs/benchmarks.md)
set -euo pipefail
cd "$(dirname "$0")/.."
SHARED=${MOAT_SHARED:-$(cd .. && pwd)/shared}
FALCO=$SHARED/data/falco/rules/rules/falco_rules.yaml
[ "$(id -u)" = 0 ] || { echo "SKIPPED: needs root (eBPF)"; exit 0; }
# MOAT_BIN=path uses an already built binary (a busy shared machine rebuilds slowly).
if [ -n "${MOAT_BIN:-}" ]; then M=$MOAT_BIN; else
  cargo build --release -q -p moat
  M=$PWD/target/release/moat
fi
T=$(mktemp -d)
trap 'kill -INT $WPID 2>/dev/null || true; rm -rf "$T"' EXIT
N=${N:-10000}

execs() { local i; for ((i = 0; i < N; i++)); do /bin/true; done; }
secs() { local s e; s=$(date +%s%N); "$@"; e=$(date +%s%N); echo "scale=3; ($e - $s) / 1000000000" | bc; }

execs # warm the page cache
base=$(secs execs)

"$M" runtime watch --rules "$FALCO" --with-default-rules --format json --record "$T/events.jsonl" \
  --ready-file "$T/ready" >"$T/alerts.jsonl" 2>"$T/watch.err" &
WPID=$!
for _ in $(seq 1 100); do [ -s "$T/ready" ] && break; sleep 0.1; done
[ -s "$T/ready" ] || { cat "$T/watch.err"; exit 1; }
with=$(secs execs)
sleep 2
kill -INT $WPID
wait $WPID || true
summary=$(grep 'moat: sensor' "$T/watch.err" | tail -1)
lost=$(echo "$summary" | sed -E 's/.* ([0-9]+) lost.*/\1/')
events=$(wc -l <"$T/events.jsonl")

replay=$("$M" runtime replay "$T/events.jsonl" --rules "$FALCO" --bench 20 2>&1 >/dev/null | tail -1)
e2e_s=$(date +%s%N)
"$M" runtime replay "$T/events.jsonl" --rules "$FALCO" >/dev/null 2>&1
e2e_e=$(date +%s%N)
e2e=$(echo "scale=0; $events * 1000000000 / ($e2e_e - $e2e_s)" | bc)

cat <<MD
Machine: $(nproc) cores, kernel $(uname -r), $(date -u +%Y-%m-%d). Command: \`bash bench/runtime.sh\` (N=$N).

| measure | figure |
|---|---|
| $N execs of /bin/true, no sensor | ${base} s |
| $N execs of /bin/true, \`moat runtime watch\` (default + Falco stable rules) | ${with} s (overhead $(echo "scale=1; ($with - $base) * 100 / $base" | bc) %) |
| events the sensor delivered during the run | $events ($(echo "scale=0; $events / $with" | bc) events/s) |
| ring-buffer losses | $lost |
| replay, evaluation only, whole recording per round (Falco stable rules, one core) | $(echo "$replay" | sed -E 's/.*; evaluate ([0-9]+) events\/s.*/\1/') events/s |
| replay, evaluation only, each event while in cache as in the sensor (one core) | $(echo "$replay" | sed -E 's/.*evaluate-in-cache ([0-9]+) events\/s.*/\1/') events/s |
| replay, JSON parsing + preparing | $(echo "$replay" | sed -E 's/.*parse\+prepare ([0-9]+) events\/s.*/\1/') events/s |
| replay end to end (\`moat runtime replay FILE --rules falco_rules.yaml\`) | $e2e events/s |

Sensor summary: \`$summary\`
Replay detail: \`$replay\`
MD
