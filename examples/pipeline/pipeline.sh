#!/bin/bash
# The workshop's container-security pipeline (exercise 3), with moat for every gate:
#   build → lint the Dockerfile → scan the image with the gate → SARIF for code scanning →
#   validate the deployment manifest against policy → push only if every gate passed → sign → verify.
# The same steps as examples/pipeline/github-workflow.yml, runnable on a laptop or any CI with buildah
# (or podman/docker: BUILDER=podman), skopeo and a registry.
#
#   REGISTRY=127.0.0.1:5000 IMAGE=secure-app TAG=dev DOCKERFILE=Dockerfile CONTEXT=. \
#   MANIFEST=k8s/deployment.yaml KEY=cosign.key bash examples/pipeline/pipeline.sh
#
# Exit 0: pushed and signed. Exit 1: a gate blocked the image (nothing was pushed). Exit 2: a gate could not
# judge (no vulnerability database, unreadable input): blocked as well — a gate never passes by accident.
set -euo pipefail

: "${REGISTRY:?REGISTRY (host:port) is required}"
: "${IMAGE:?IMAGE (repository name) is required}"
TAG=${TAG:-latest}
DOCKERFILE=${DOCKERFILE:-Dockerfile}
CONTEXT=${CONTEXT:-.}
MANIFEST=${MANIFEST:-}
POLICY=${POLICY:-}
KEY=${KEY:?KEY (cosign.key written by moat key generate) is required}
FAIL_ON=${FAIL_ON:-high}
OUT=${OUT:-moat-pipeline}
MOAT=${MOAT:-moat}
BUILDER=${BUILDER:-buildah}
BUILD_ARGS=${BUILD_ARGS:-}
# Plain HTTP only for a loopback test registry.
INSECURE=()
TLS=()
if [ "${INSECURE_REGISTRY:-false}" = true ]; then
  INSECURE=(--insecure-registry)
  TLS=(--dest-tls-verify=false)
fi

mkdir -p "$OUT"
ref="$REGISTRY/$IMAGE:$TAG"
step() { echo "== $*" >&2; }
blocked() { local code=$1; shift; echo "BLOCKED: $* — $ref was not pushed" >&2; exit "$code"; }

step "build $DOCKERFILE"
# shellcheck disable=SC2086 # BUILD_ARGS is a list of --build-arg words by design
"$BUILDER" build -q -f "$DOCKERFILE" -t "localhost/$IMAGE:$TAG" $BUILD_ARGS "$CONTEXT" >/dev/null
rm -f "$OUT/image.tar"
"$BUILDER" push -q "localhost/$IMAGE:$TAG" "oci-archive:$OUT/image.tar:$IMAGE:$TAG" >/dev/null 2>&1 ||
  "$BUILDER" push "localhost/$IMAGE:$TAG" "oci-archive:$OUT/image.tar:$IMAGE:$TAG" >/dev/null

step "lint $DOCKERFILE (fail on $FAIL_ON)"
set +e
"$MOAT" lint "$DOCKERFILE" --fail-on "$FAIL_ON" --format sarif -o "$OUT/lint.sarif"
lint=$?
step "scan the image (fail on $FAIL_ON)"
"$MOAT" scan "oci-archive:$OUT/image.tar" --fail-on "$FAIL_ON" --format sarif -o "$OUT/scan.sarif"
scan=$?
"$MOAT" scan "oci-archive:$OUT/image.tar" --format table -o "$OUT/scan.txt" >/dev/null 2>&1
policy=0
if [ -n "$MANIFEST" ]; then
  step "validate $MANIFEST against policy"
  pol=(--profile pss-restricted)
  [ -n "$POLICY" ] && pol+=(--policy "$POLICY")
  "$MOAT" lint "$MANIFEST" "${pol[@]}" --fail-on "$FAIL_ON" --format sarif -o "$OUT/policy.sarif"
  policy=$?
fi
set -e
# The SARIF files are what a CI uploads to code scanning (github/codeql-action/upload-sarif), whatever the gate said.
echo "SARIF: $OUT/lint.sarif $OUT/scan.sarif${MANIFEST:+ $OUT/policy.sarif}" >&2

# Every gate's result, then the verdict: blocked when any gate found issues (1) or could not judge (2).
verdict=0
for gate in "lint:$lint" "scan:$scan" "policy:$policy"; do
  code=${gate#*:}
  case $code in
    0) echo "gate ${gate%%:*}: passed" >&2 ;;
    1) echo "gate ${gate%%:*}: findings at or above $FAIL_ON" >&2; [ $verdict -eq 0 ] && verdict=1 ;;
    *) echo "gate ${gate%%:*}: could not judge (exit $code)" >&2; verdict=2 ;;
  esac
done
[ $verdict -ne 0 ] && blocked $verdict "a gate did not pass"

step "push $ref (every gate passed)"
skopeo copy -q "${TLS[@]}" "oci-archive:$OUT/image.tar:$IMAGE:$TAG" "docker://$ref"
step "sign $ref"
"$MOAT" sign --key "$KEY" "${INSECURE[@]}" "registry:$ref" >/dev/null
"$MOAT" verify "registry:$ref" --key "${KEY%.key}.pub" "${INSECURE[@]}" >/dev/null
echo "PUSHED and signed: $ref" >&2
