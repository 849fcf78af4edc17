#!/usr/bin/env bash
# The one command that runs every test on a fresh Debian 12 machine (as root): installs what the
# tests need, builds crib, runs the two tiers — the host tier (unit, native and end-to-end suites
# on this machine) and the cgroup v2 tier (deploy/test-cgroup2.sh: suites inside a QEMU guest
# with a pure cgroup v2 hierarchy) — and ends with one "N passed, N failed, N skipped" line that
# adds up both tiers. A tier that failed outside any test (no report: the guest did not boot; or
# an error outside the tests) counts one failed test, so the line never looks clean when a tier
# was not.
#   deploy/test.sh                 both tiers
#   deploy/test.sh VITEST-ARGS...  the host tier only, with those arguments (e.g. file paths);
#                                  the guest tier alone is `npm run test:cgroup2`
set -euo pipefail
cd "$(dirname "$0")/.."
bash deploy/install-deps.sh --test
npm run build
host_report=$(mktemp /tmp/crib-vitest-XXXXXX.json)
guest_counts=$(mktemp /tmp/crib-vitest-guest-XXXXXX.json)
trap 'rm -f "$host_report" "$guest_counts"' EXIT
host_status=0
npx vitest run --reporter=default --reporter=json --outputFile.json="$host_report" "$@" || host_status=$?

guest_status=0
guest_tier=
if [ $# -eq 0 ]; then
  guest_tier=1
  bash deploy/test-cgroup2.sh --no-setup --counts "$guest_counts" || guest_status=$?
fi

node -e '
  const fs = require("fs");
  const read = (path) => { try { return JSON.parse(fs.readFileSync(path, "utf8")); } catch { return undefined; } };
  const [hostReport, hostStatus, guestCounts] = process.argv.slice(1);
  const tiers = [];
  const r = read(hostReport);
  const host = r ? { passed: r.numPassedTests, failed: r.numFailedTests, skipped: r.numPendingTests + r.numTodoTests }
                 : { passed: 0, failed: 0, skipped: 0 };
  if (Number(hostStatus) !== 0 && host.failed === 0) host.failed = 1;
  tiers.push(["host tier", host]);
  if (guestCounts) tiers.push(["cgroup2 guest tier", read(guestCounts) ?? { passed: 0, failed: 1, skipped: 0 }]);
  for (const [name, c] of tiers) console.log(`${name}: ${c.passed} passed, ${c.failed} failed, ${c.skipped} skipped`);
  const sum = (k) => tiers.reduce((n, [, c]) => n + c[k], 0);
  console.log(`${sum("passed")} passed, ${sum("failed")} failed, ${sum("skipped")} skipped`);
' "$host_report" "$host_status" "${guest_tier:+$guest_counts}" || true
[ "$host_status" -eq 0 ] || exit "$host_status"
exit "$guest_status"
