#!/usr/bin/env bash
# The one command that runs every test on a fresh Debian 12 machine (as root): installs what the
# tests need, builds crib, runs three tiers and ends with one "N passed, N failed, N skipped" line
# that adds them up:
#   - the unit tier: src/**, run as nobody (it must need no root, no network, and of the native
#     build only the libc addon that src/sys/libc.ts loads);
#   - the root tier: root-test/**, native/test/**, critest/** on this machine's kernel;
#   - the cgroup v2 tier: deploy/test-cgroup2.sh, suites inside a QEMU guest with a pure cgroup v2
#     hierarchy.
# A tier that failed outside any test (no report: the guest did not boot; or an error outside the
# tests) counts one failed test, so the line never looks clean when a tier was not.
#   deploy/test.sh                 every tier
#   deploy/test.sh VITEST-ARGS...  the host's tests only (as root), with those arguments (e.g. file
#                                  paths); the guest tier alone is `npm run test:cgroup2`
set -euo pipefail
cd "$(dirname "$0")/.."
bash deploy/install-deps.sh --test
npm run build
host_report=$(mktemp /tmp/crib-vitest-XXXXXX.json)
guest_counts=$(mktemp /tmp/crib-vitest-guest-XXXXXX.json)
unit_dir=$(mktemp -d /tmp/crib-vitest-unit-XXXXXX)
unit_pid=
# An interrupted run does not leave the unit tier running behind it.
trap '[ -z "$unit_pid" ] || kill "$unit_pid" 2>/dev/null || true; rm -rf "$host_report" "$guest_counts" "$unit_dir"' EXIT
host_status=0
unit_status=0
unit_tier=
if [ $# -eq 0 ]; then
  # The unit tier (src/**) promises to need no root: run it as nobody, so a test that quietly
  # needs root fails here rather than on a developer's laptop. A checkout nobody cannot read
  # (under /root, say) runs it as root instead, and says so.
  unit_tier=1
  chown 65534:65534 "$unit_dir"
  as_nobody=(setpriv --reuid=65534 --regid=65534 --clear-groups env HOME="$unit_dir" TMPDIR="$unit_dir")
  if ! "${as_nobody[@]}" test -r package.json -a -x node_modules/.bin; then
    echo "note: nobody cannot read $(pwd); the unit tier runs as root"
    as_nobody=()
  fi
  # The unit tier runs beside the root tier: it is one process of CPU work, the root tier mostly
  # waits on kernels, daemons and helpers, and a 2-core machine finishes both about as soon as
  # the root tier alone. Its report is printed when both are done, not interleaved.
  "${as_nobody[@]}" npx vitest run --project unit --configLoader runner --reporter=default --reporter=json \
    --outputFile.json="$unit_dir/report.json" > "$unit_dir/output.txt" 2>&1 &
  unit_pid=$!
  npx vitest run --project root --reporter=default --reporter=json --outputFile.json="$host_report" || host_status=$?
  wait "$unit_pid" || unit_status=$?
  unit_pid=
  echo "--- the unit tier (run beside the root tier)"
  cat "$unit_dir/output.txt"
else
  npx vitest run --reporter=default --reporter=json --outputFile.json="$host_report" "$@" || host_status=$?
fi

guest_status=0
guest_tier=
if [ $# -eq 0 ]; then
  guest_tier=1
  bash deploy/test-cgroup2.sh --no-setup --counts "$guest_counts" || guest_status=$?
fi

node test-support/failed-tests.mjs ${unit_tier:+unit "$unit_dir/report.json"} "${unit_tier:+root}${unit_tier:-host}" "$host_report" || true
node -e '
  const fs = require("fs");
  const read = (path) => { try { return JSON.parse(fs.readFileSync(path, "utf8")); } catch { return undefined; } };
  const [hostReport, hostStatus, unitReport, unitStatus, guestCounts] = process.argv.slice(1);
  const tiers = [];
  const counts = (report, status) => {
    const r = read(report);
    const c = r ? { passed: r.numPassedTests, failed: r.numFailedTests, skipped: r.numPendingTests + r.numTodoTests }
                : { passed: 0, failed: 0, skipped: 0 };
    if (Number(status) !== 0 && c.failed === 0) c.failed = 1;
    return c;
  };
  if (unitReport) tiers.push(["unit tier (unprivileged)", counts(unitReport, unitStatus)]);
  tiers.push([unitReport ? "root tier" : "host tier", counts(hostReport, hostStatus)]);
  if (guestCounts) tiers.push(["cgroup2 guest tier", read(guestCounts) ?? { passed: 0, failed: 1, skipped: 0 }]);
  for (const [name, c] of tiers) console.log(`${name}: ${c.passed} passed, ${c.failed} failed, ${c.skipped} skipped`);
  const sum = (k) => tiers.reduce((n, [, c]) => n + c[k], 0);
  console.log(`${sum("passed")} passed, ${sum("failed")} failed, ${sum("skipped")} skipped`);
' "$host_report" "$host_status" "${unit_tier:+$unit_dir/report.json}" "$unit_status" "${guest_tier:+$guest_counts}" || true
[ "$unit_status" -eq 0 ] || exit "$unit_status"
[ "$host_status" -eq 0 ] || exit "$host_status"
exit "$guest_status"
