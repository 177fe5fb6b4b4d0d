#!/bin/sh
# Regenerates moat.bpf.o, the committed CO-RE object that `cargo build` embeds (cargo never needs clang).
# Needs: clang, bpftool, libbpf-dev (headers), and a kernel with BTF (/sys/kernel/btf/vmlinux).
#   apt-get install clang llvm bpftool libbpf-dev
#   sh crates/moat-runtime/bpf/build.sh
set -eu
cd "$(dirname "$0")"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
bpftool btf dump file /sys/kernel/btf/vmlinux format c > "$tmp/vmlinux.h"
clang -O2 -g -target bpf -D__TARGET_ARCH_x86 -I"$tmp" -I/usr/include/x86_64-linux-gnu \
  -c moat.bpf.c -o "$tmp/moat.bpf.o"
# Drop DWARF but keep BTF (CO-RE relocations need it).
llvm-strip -g "$tmp/moat.bpf.o" 2>/dev/null || true
mv "$tmp/moat.bpf.o" moat.bpf.o
echo "wrote $(pwd)/moat.bpf.o ($(wc -c < moat.bpf.o) bytes)"
