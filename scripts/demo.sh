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

echo "== femtojit verify --report (per memory access: proven or checked at run time)"
femtojit verify build/fletcher32.o --report --mem-size 360 | tail -n 4

echo "== femtojit disasm (first lines)"
femtojit disasm build/fletcher32.o | head -n 12

echo "== native gcc -O2, same source"
gcc -O2 -DFEMTOJIT_NATIVE_MAIN examples/fletcher32.c -o build/fletcher32-native
want=$(build/fletcher32-native < examples/fletcher32.input)
echo "r0 = $want"

status=0
for engine in interp wasm thumb; do
  echo "== femtojit run --engine $engine --mem examples/fletcher32.input"
  got=$(femtojit run build/fletcher32.o --engine "$engine" --mem examples/fletcher32.input | tail -n 1)
  if [ "$got" = "$want" ]; then echo "r0 = $got  (agrees with native C)"; else echo "r0 = $got  MISMATCH"; status=1; fi
done

echo "== femtojit compile --target wasm -O and --target thumb --emit asm (first lines)"
femtojit compile build/fletcher32.o --target wasm -O -o build/fletcher32.wasm
echo "build/fletcher32.wasm: $(wc -c < build/fletcher32.wasm) bytes"
femtojit compile build/fletcher32.o --target thumb --emit asm | head -n 8
exit $status
