#!/bin/bash
# The habits CI enforces besides the tests: formatting, clippy with warnings as errors, and cargo-deny's
# bans/licenses/sources checks (deny.toml). cargo-deny is installed from crates.io once and cached under
# ~/.cache/moat-tools. The advisories check needs the RustSec database, which this CI cannot reach.
set -uo pipefail
cd "$(dirname "$0")/.."
status=0

echo "== cargo fmt --check"
cargo fmt --all --check || { echo "FAILED: cargo fmt --check (run: cargo fmt --all)"; status=1; }

echo "== cargo clippy -D warnings"
cargo clippy --workspace --all-targets --quiet -- -D warnings ||
  { echo "FAILED: cargo clippy --workspace --all-targets -- -D warnings"; status=1; }

echo "== cargo deny check bans licenses sources"
TOOLS=$HOME/.cache/moat-tools
if [ ! -x "$TOOLS/bin/cargo-deny" ]; then
  cargo install --locked --quiet cargo-deny --version 0.20.2 --root "$TOOLS" ||
    { echo "FAILED: could not install cargo-deny"; status=1; }
fi
if [ -x "$TOOLS/bin/cargo-deny" ]; then
  "$TOOLS/bin/cargo-deny" deny --log-level error check bans licenses sources ||
    { echo "FAILED: cargo deny check bans licenses sources"; status=1; }
fi
exit $status
