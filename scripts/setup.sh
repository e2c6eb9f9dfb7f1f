#!/usr/bin/env bash
# Idempotent set-up for a fresh Debian/Ubuntu machine with Node 20+: npm dependencies, the Debian
# tool chain femtojit tests against (installed with apt-get when run as root), and the build.
set -euo pipefail
cd "$(dirname "$0")/.."

say() { printf 'setup: %s\n' "$*" >&2; }

node_major=$(node -p 'process.versions.node.split(".")[0]' 2>/dev/null || echo 0)
if [ "$node_major" -lt 20 ]; then
  say "Node.js 20 or newer is needed (found: $(node --version 2>/dev/null || echo none))."
  exit 1
fi

# npm dependencies, reinstalled only when the lock file changed since the last install.
if [ ! -f node_modules/.package-lock.json ] || [ package-lock.json -nt node_modules/.package-lock.json ]; then
  say "installing npm dependencies"
  npm ci --no-audit --no-fund --loglevel=error
fi

# Debian packages: command -> package.
declare -A need=(
  [clang]=clang                       # clang 14: -target bpf -mcpu=v3
  [clang-19]=clang-19                 # clang 19: -mcpu=v4
  [llvm-objdump-19]=llvm-19           # v4-aware disassembler for tests
  [qemu-system-arm]=qemu-system-arm   # emulated Cortex-M4 (mps2-an386)
  [arm-none-eabi-gcc]=gcc-arm-none-eabi
  [chromium]=chromium                 # headless browser test of the Wasm engine bundle
  [wasm-ld-19]=lld-19                 # links clang-19 -target wasm32 output (the benchmark ceiling)
)
missing=()
for cmd in "${!need[@]}"; do
  command -v "$cmd" >/dev/null 2>&1 || missing+=("${need[$cmd]}")
done
if [ ${#missing[@]} -gt 0 ]; then
  if [ "$(id -u)" -eq 0 ] && command -v apt-get >/dev/null 2>&1; then
    say "installing Debian packages: ${missing[*]}"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq >/dev/null
    apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
  else
    say "missing Debian packages: ${missing[*]}"
    say "run as root:  apt-get update && apt-get install -y ${missing[*]}"
    exit 1
  fi
fi

node scripts/build.mjs
