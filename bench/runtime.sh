#!/bin/bash
# moat runtime benchmarks (release build, run as root):
#  1. sensor overhead: an exec-heavy workload (a bash loop of N `/bin/true` execs) timed by hyperfine
#     without and with `moat runtime watch` attached (moat's default rules + Falco's stable rules, JSON
#     alerts to a file, no --record: what a deployment runs), in ROUNDS alternating rounds of RUNS runs
#     each, so a change of the machine's load hits both sides. Reported: median and spread of all runs.
#  2. the sensor's own CPU time (utime+stime of its process, /proc/PID/stat) per 10,000 workload execs,
#     which a loaded machine does not inflate the way it inflates wall-clock time; minus the CPU it
#     spends over an equally long idle window (other processes' events: the machine is shared);
#  3. events/s the sensor delivers during the runs, and its ring-buffer losses;
#  4. replay throughput of a recording made in a separate run (`--record`).
# No peer runs here: Falco and Tetragon are not installable on these machines (no registry ships them);
# Debian's sysdig 0.29.3 (Falco's libscap) installs but cannot capture: it needs the scap kernel module
# (dkms, no headers for this kernel) or a prebuilt legacy BPF probe, and predates the modern eBPF probe.
# Usage: bash bench/runtime.sh   (prints a Markdown block for docs/benchmarks.md)
#   N=2000 RUNS=3 ROUNDS=5 MOAT_BIN=target/release/moat (defaults)
set -euo pipefail
cd "$(dirname "$0")/.."
SHARED=${MOAT_SHARED:-$(cd .. && pwd)/shared}
FALCO=$SHARED/data/falco/rules/rules/falco_rules.yaml
[ "$(id -u)" = 0 ] || { echo "SKIPPED: needs root (eBPF)"; exit 0; }
command -v hyperfine >/dev/null || { echo "SKIPPED: needs hyperfine"; exit 0; }
# MOAT_BIN=path uses an already built binary (a busy shared machine rebuilds slowly).
if [ -n "${MOAT_BIN:-}" ]; then M=$MOAT_BIN; elif [ -n "${SENSOR:-}" ] && [ -n "${NO_REPLAY:-}" ]; then M=false; else
  cargo build --release -q -p moat
  M=$PWD/target/release/moat
fi
T=$(mktemp -d)
WPID=
trap '[ -n "$WPID" ] && kill -INT $WPID 2>/dev/null; rm -rf "$T"' EXIT
N=${N:-2000}
RUNS=${RUNS:-3}
ROUNDS=${ROUNDS:-5}
TICK=$(getconf CLK_TCK)
WORK="bash -c 'for ((i = 0; i < $N; i++)); do /bin/true; done'"

cpu_ticks() { awk '{ print $14 + $15 }' "/proc/$1/stat"; }

# SENSOR=cmd runs another build of the sensor loop with the same flags (crates/moat-runtime's
# examples/sensor_bench: two versions compared without building the CLI twice).
SENSOR=${SENSOR:-$M runtime watch}

start_sensor() { # $1: extra args
  rm -f "$T/ready"
  # shellcheck disable=SC2086
  $SENSOR --rules "$FALCO" --with-default-rules --format json --ready-file "$T/ready" $1 \
    >>"$T/alerts.jsonl" 2>"$T/watch.err" &
  WPID=$!
  for _ in $(seq 1 200); do [ -s "$T/ready" ] && break; sleep 0.1; done
  [ -s "$T/ready" ] || { cat "$T/watch.err"; exit 1; }
}

stop_sensor() {
  kill -INT "$WPID"
  wait "$WPID" || true
  WPID=
  grep 'moat: sensor' "$T/watch.err" | tail -1
}

bash -c "for ((i = 0; i < $N; i++)); do /bin/true; done" # warm the page cache
: >"$T/summaries"
: >"$T/cpu"
for r in $(seq 1 "$ROUNDS"); do
  hyperfine -N --style none --runs "$RUNS" --export-json "$T/base-$r.json" "$WORK" >/dev/null
  start_sensor ""
  # Idle window as long as the timed runs will take: the CPU the sensor spends on the rest of the host.
  c0=$(cpu_ticks "$WPID")
  t0=$(date +%s%N)
  hyperfine -N --style none --runs "$RUNS" --export-json "$T/with-$r.json" "$WORK" >/dev/null
  t1=$(date +%s%N)
  c1=$(cpu_ticks "$WPID")
  sleep "$(echo "scale=3; ($t1 - $t0) / 1000000000" | bc)"
  c2=$(cpu_ticks "$WPID")
  echo "$((c1 - c0)) $((c2 - c1)) $(((t1 - t0) / 1000000))" >>"$T/cpu"
  stop_sensor >>"$T/summaries"
done
load=$(cut -d' ' -f1-3 /proc/loadavg)

# Peak rate: two loops at once, sensor attached, its summary gives events and losses.
start_sensor ""
p0=$(date +%s%N)
bash -c "for ((i = 0; i < 5 * $N; i++)); do /bin/true; done" &
LOOP=$!
bash -c "for ((i = 0; i < 5 * $N; i++)); do /bin/true; done"
wait "$LOOP"
p1=$(date +%s%N)
peak=$(stop_sensor)

if [ -z "${NO_REPLAY:-}" ]; then
# A recording for the replay figures (its own run: --record is not what the overhead measures).
SENSOR="$M runtime watch"
start_sensor "--record $T/events.jsonl"
bash -c "for ((i = 0; i < $N; i++)); do /bin/true; done"
sleep 1
stop_sensor >/dev/null
events=$(wc -l <"$T/events.jsonl")
replay=$("$M" runtime replay "$T/events.jsonl" --rules "$FALCO" --bench 20 2>&1 >/dev/null | tail -1)
e2e_s=$(date +%s%N)
"$M" runtime replay "$T/events.jsonl" --rules "$FALCO" >/dev/null 2>&1
e2e_e=$(date +%s%N)
e2e=$(echo "scale=0; $events * 1000000000 / ($e2e_e - $e2e_s)" | bc)

fi

python3 - "$T" "$ROUNDS" "$N" "$RUNS" "$TICK" "$p0" "$p1" "$peak" "$load" <<'PY'
import json, statistics as st, sys, re
t, rounds, n, runs, tick = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4]), int(sys.argv[5])
p0, p1, peak, load = int(sys.argv[6]), int(sys.argv[7]), sys.argv[8], sys.argv[9]
def times(kind):
    return [x for r in range(1, rounds + 1) for x in json.load(open(f"{t}/{kind}-{r}.json"))["results"][0]["times"]]
base, wth = times("base"), times("with")
def q(v, p):
    v = sorted(v); k = (len(v) - 1) * p; i = int(k)
    return v[i] + (v[min(i + 1, len(v) - 1)] - v[i]) * (k - i)
mb, mw = st.median(base), st.median(wth)
# Per-round overhead (median of that round's runs), so a load change between rounds shows as spread.
per_round = []
for r in range(1, rounds + 1):
    b = st.median(json.load(open(f"{t}/base-{r}.json"))["results"][0]["times"])
    w = st.median(json.load(open(f"{t}/with-{r}.json"))["results"][0]["times"])
    per_round.append((w - b) * 100 / b)
cpu = [tuple(int(x) for x in l.split()) for l in open(f"{t}/cpu")]
execs = n * runs
busy = [c[0] * 1000 / tick * 10000 / execs for c in cpu]           # ms per 10,000 execs
idle = [c[1] * 1000 / tick * 10000 / execs for c in cpu]
net = [b - i for b, i in zip(busy, idle)]
summ = [l.strip() for l in open(f"{t}/summaries")]
ev = [int(re.search(r"(\d+) events", s).group(1)) for s in summ]
lost = [int(re.search(r"(\d+) lost", s).group(1)) for s in summ]
m = re.search(r"(\d+) events.* (\d+) lost", peak)
pe, pl = (int(m.group(1)), int(m.group(2))) if m else (0, -1)
print(f"| {n} execs of /bin/true (bash loop), no sensor: median [p25–p75] (min–max), {len(base)} runs | "
      f"{mb:.3f} s [{q(base,.25):.3f}–{q(base,.75):.3f}] ({min(base):.3f}–{max(base):.3f}) |")
print(f"| the same under `moat runtime watch`, {len(wth)} runs | "
      f"{mw:.3f} s [{q(wth,.25):.3f}–{q(wth,.75):.3f}] ({min(wth):.3f}–{max(wth):.3f}) |")
print(f"| overhead, medians of all runs | **{(mw - mb) * 100 / mb:+.1f} %** |")
print(f"| overhead per round (median of its {runs} runs each side) | " + ", ".join(f"{x:+.1f} %" for x in per_round)
      + f" (median {st.median(per_round):+.1f} %) |")
print(f"| sensor CPU (utime+stime) per 10,000 workload execs, during the runs | median {st.median(busy):.0f} ms "
      f"({min(busy):.0f}–{max(busy):.0f}) |")
print(f"| sensor CPU over an equally long idle window (rest of the shared host) | median {st.median(idle):.0f} ms "
      f"({min(idle):.0f}–{max(idle):.0f}) |")
print(f"| sensor CPU attributable to the workload, per 10,000 execs | **median {st.median(net):.0f} ms** "
      f"({min(net):.0f}–{max(net):.0f}) |")
print(f"| events delivered per sensor run (whole host), ring-buffer losses | {min(ev)}–{max(ev)}, lost {sum(lost)} |")
print(f"| peak: two loops of {5*n} execs at once, events/s delivered, losses | "
      f"{pe * 1e9 / (p1 - p0):.0f} events/s ({2 * 5 * n * 1e9 / (p1 - p0):.0f} execs/s), lost **{pl}** |")
print(f"| load average at the end of the timed rounds | {load} |")
PY
if [ -z "${NO_REPLAY:-}" ]; then
cat <<MD
| replay, evaluation only, whole recording per round (Falco stable rules, one core) | $(echo "$replay" | sed -E 's/.*; evaluate ([0-9]+) events\/s.*/\1/') events/s |
| replay, JSON parsing + preparing | $(echo "$replay" | sed -E 's/.*parse\+prepare ([0-9]+) events\/s.*/\1/') events/s |
| replay end to end (\`moat runtime replay FILE --rules falco_rules.yaml\`, $events events) | $e2e events/s |

Machine: $(nproc) cores, kernel $(uname -r), $(date -u +%Y-%m-%d). Command: \`bash bench/runtime.sh\` (N=$N, RUNS=$RUNS, ROUNDS=$ROUNDS).
Peak-rate sensor summary: \`$peak\`
MD
fi
