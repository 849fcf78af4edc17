#!/usr/bin/env bash
# The one command that runs every test on a fresh Debian 12 machine (as root): installs what the
# tests need, builds crib, runs the unit, native and end-to-end suites, and ends with one
# "N passed, N failed, N skipped" line.
set -euo pipefail
cd "$(dirname "$0")/.."
bash deploy/install-deps.sh --test
npm run build
report=$(mktemp /tmp/crib-vitest-XXXXXX.json)
trap 'rm -f "$report"' EXIT
status=0
npx vitest run --reporter=default --reporter=json --outputFile.json="$report" "$@" || status=$?
node -e '
  const r = JSON.parse(require("fs").readFileSync(process.argv[1], "utf8"));
  console.log(`${r.numPassedTests} passed, ${r.numFailedTests} failed, ${r.numPendingTests + r.numTodoTests} skipped`);
' "$report" || true
exit "$status"
