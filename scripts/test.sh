#!/usr/bin/env bash
# The whole test suite: set-up, type check, every vitest suite; ends with 'N passed, M failed'.
set -uo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh || exit 1

echo "== type check"
npx tsc --noEmit || { echo "0 passed, 1 failed"; exit 1; }

echo "== tests"
mkdir -p build
npx vitest run --reporter=default --reporter=json --outputFile.json=build/vitest.json
status=$?
node -e '
  const r = JSON.parse(require("fs").readFileSync("build/vitest.json", "utf8"));
  const skipped = r.numPendingTests + r.numTodoTests;
  console.log(`${r.numPassedTests} passed, ${r.numFailedTests} failed` + (skipped ? `, ${skipped} skipped` : ""));
' || echo "0 passed, 1 failed"
exit $status
