#!/usr/bin/env bash
# Runtime alert ingest into a real `moat server` (release build) on loopback: N Falco-shaped alerts
# (distinct, the shape of Falco's http_output / Falcosidekick) POSTed as JSON arrays of B alerts over C
# concurrent connections to POST /api/v1/runtime/alerts, with an alert rule matching every one (so each
# also becomes an outbox event the delivery loop routes). Reports alerts/s from the first request to the
# last acknowledged one, checks that every acknowledged alert is in the store (0 lost: the response
# counts, /metrics and, on SQLite, the runtime_alert and outbox rows), and the server's RSS at rest and
# its peak (VmHWM) under the load.
# Goal (issue 11): >= 5,000 alerts/s with 0 lost; RSS < 128 MB. Peers: falcosidekick has no durable
# buffer (falcosidekick#297, #988), falcosidekick-ui keeps events in Redis (19 GiB reported,
# falcosecurity/charts#499, anecdotal); neither publishes an ingest rate.
# usage: bench/server-alert-ingest.sh [N=50000] [B=1000] [C=4] [STORE_URL]   (from the repository root)
set -euo pipefail
cd "$(dirname "$0")/.."
N=${1:-50000}
B=${2:-1000}
C=${3:-4}
WORK=$(mktemp -d)
PID=
trap '[ -n "$PID" ] && kill "$PID" 2>/dev/null; rm -rf "$WORK"' EXIT
STORE=${4:-sqlite:$WORK/server.db}
if [ -z "${MOAT_BIN:-}" ]; then cargo build --release -q -p moat; fi
MOAT=${MOAT_BIN:-$PWD/target/release/moat}
echo "machine: $(nproc) cores, $(free -g | awk '/Mem:/ {print $2}') GB RAM, $(uname -r), $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs)"
PORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
TOKEN="bench-token-0123456789abcdef"
cat > "$WORK/rules.yaml" <<EOF
targets:
  - {name: sink, type: webhook, url: "http://127.0.0.1:9/unreachable", timeout_seconds: 1}
rules:
  - {id: every-shell, event: runtime.alert, when: {rule: "Terminal shell*"}, targets: [sink]}
EOF
printf 'alerts:\n  rules: [rules.yaml]\nlimits:\n  requests_per_second: 0\n' > "$WORK/server.yaml"
MOAT_SERVER_TOKEN=$TOKEN "$MOAT" server --listen "127.0.0.1:$PORT" --store "$STORE" \
  --config "$WORK/server.yaml" --max-body-bytes $((256 << 20)) 2> "$WORK/server.log" &
PID=$!
for _ in $(seq 100); do curl -sf "http://127.0.0.1:$PORT/healthz" > /dev/null && break; sleep 0.1; done
rss() { awk -v k="$1" '$1 == k":" {print int($2/1024)}' "/proc/$PID/status"; }
echo "store: ${STORE%%:*}; $N alerts in batches of $B over $C connections"
echo "RSS at rest: $(rss VmRSS) MB"
python3 - "$PORT" "$TOKEN" "$N" "$B" "$C" <<'EOF'
import json, sys, threading, time, http.client
port, token, n, b, c = int(sys.argv[1]), sys.argv[2], int(sys.argv[3]), int(sys.argv[4]), int(sys.argv[5])
def alert(i):
    return {"uuid": "bench-%012d" % i, "output": "Warning Shell spawned in a container (container=c%d shell=sh)" % i,
            "priority": "Warning", "rule": "Terminal shell in container", "time": "2026-08-22T12:%02d:%02d.%09dZ" % ((i // 60) % 60, i % 60, i),
            "source": "syscall", "tags": ["container", "shell"], "hostname": "node-%d" % (i % 7),
            "output_fields": {"container.id": "%012x" % i, "container.image.repository": "harbor.example/team-a/payments",
                              "k8s.ns.name": "prod", "k8s.pod.name": "payments-%d" % (i % 500), "proc.cmdline": "sh", "user.name": "root"}}
bodies = [json.dumps([alert(i) for i in range(s, min(s + b, n))]).encode() for s in range(0, n, b)]
lock = threading.Lock(); acked = [0]; errors = []; nxt = [0]
def worker():
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=120)
    while True:
        with lock:
            if nxt[0] >= len(bodies): return
            body = bodies[nxt[0]]; nxt[0] += 1
        conn.request("POST", "/api/v1/runtime/alerts", body, {"Authorization": "Bearer " + token, "Content-Type": "application/json"})
        r = conn.getresponse(); data = r.read()
        if r.status != 202:
            errors.append((r.status, data[:200])); return
        with lock: acked[0] += json.loads(data)["accepted"]
t = time.time()
ts = [threading.Thread(target=worker) for _ in range(c)]
[x.start() for x in ts]; [x.join() for x in ts]
dt = time.time() - t
print("acknowledged %d of %d alerts in %.2f s: %.0f alerts/s%s" % (acked[0], n, dt, acked[0] / dt, "; errors %s" % errors[:3] if errors else ""))
conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
conn.request("GET", "/metrics", headers={"Authorization": "Bearer " + token})
m = conn.getresponse().read().decode()
stored = [l for l in m.splitlines() if l.startswith("moat_runtime_alerts_total ")]
print("server counter:", stored[0] if stored else "missing")
if acked[0] != n or errors: sys.exit(1)
EOF
echo "RSS peak under load (VmHWM): $(rss VmHWM) MB; now $(rss VmRSS) MB"
kill "$PID"; wait "$PID" 2>/dev/null || true; PID=
if [ "${STORE%%:*}" = sqlite ]; then
  python3 - "${STORE#sqlite:}" "$N" <<'EOF'
import sqlite3, sys
db = sqlite3.connect(sys.argv[1]); n = int(sys.argv[2])
a = db.execute("SELECT COUNT(*) FROM runtime_alert").fetchone()[0]
o = db.execute("SELECT COUNT(*) FROM outbox WHERE event_type = 'runtime.alert'").fetchone()[0]
print("store after shutdown: %d runtime_alert rows, %d runtime.alert outbox events (%s)" % (a, o, "0 lost" if a == n and o == n else "LOST %d" % (n - a)))
sys.exit(0 if a == n and o == n else 1)
EOF
fi
