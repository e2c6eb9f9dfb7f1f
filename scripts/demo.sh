#!/usr/bin/env bash
# The main job on the bundled example: compile C to eBPF with clang, verify it, show it, run it,
# and check the answer against the same C compiled natively.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
mkdir -p build
femtojit() { node dist/femtojit.js "$@"; }

echo "== clang -O2 -target bpf -mcpu=v3 -c examples/fletcher32.c"
clang -O2 -target bpf -mcpu=v3 -c examples/fletcher32.c -o build/fletcher32.o

echo "== femtojit verify"
femtojit verify build/fletcher32.o

echo "== femtojit disasm (first lines)"
femtojit disasm build/fletcher32.o | head -n 12

echo "== femtojit run --engine interp --mem examples/fletcher32.input"
got=$(femtojit run build/fletcher32.o --engine interp --mem examples/fletcher32.input | tail -n 1)
echo "r0 = $got"

echo "== native gcc -O2, same source"
gcc -O2 -DFEMTOJIT_NATIVE_MAIN examples/fletcher32.c -o build/fletcher32-native
want=$(build/fletcher32-native < examples/fletcher32.input)
echo "r0 = $want"

if [ "$got" = "$want" ]; then echo "OK: femtojit and native C agree"; else echo "MISMATCH"; exit 1; fi
