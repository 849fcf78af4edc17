#!/usr/bin/env bash
# The cgroup v2 tier (npm run test:cgroup2): boots the QEMU guest of test-support/guest/ once and
# runs the test-guest/ suites inside it — a pure cgroup v2 node, which this host cannot be.
#
#   deploy/test-cgroup2.sh [VITEST ARGS...]     install, build, run; ends with the tier's
#                                                "cgroup2: N passed, N failed, N skipped" line
#   deploy/test-cgroup2.sh --no-setup --counts FILE [VITEST ARGS...]
#                                                as called by deploy/test.sh: no install/build,
#                                                the tier's counts written to FILE as JSON
#
# The tier fails — and counts one failed test — when the guest does not boot or its run reports
# nothing; it also fails when any test is skipped in the guest (nothing there may pass by not
# running).
set -euo pipefail
cd "$(dirname "$0")/.."

setup=1
counts=
while [ $# -gt 0 ]; do
  case $1 in
    --no-setup) setup=; shift ;;
    --counts) counts=$2; shift 2 ;;
    *) break ;;
  esac
done
if [ -n "$setup" ]; then
  bash deploy/install-deps.sh --test
  npm run build
fi

out=$(mktemp -d /tmp/crib-guest-tier-XXXXXX)
trap 'rm -rf "$out"' EXIT
counts=${counts:-$out/counts.json}
start=$SECONDS
status=0
# The C test helpers are compiled here, not in the emulated guest (a minute there).
npx tsx test-guest/prebuild-helpers.ts "$out/bin"
export CRIB_CGROUP_DRIVER=$out/bin/cgroup-driver CRIB_TEST_HELPERS_DIR=$out/bin
# node_modules/vitest/vitest.mjs, not npx: npx alone costs ~10 s in the emulated guest.
CRIB_GUEST_TIMEOUT=${CRIB_GUEST_TIMEOUT:-1500} CRIB_GUEST_OUT=$out CRIB_GUEST_SUITE_TIMES=$out/suite-times.json \
  bash test-support/guest/guest.sh run --out "$out" --env CRIB_GUEST_OUT --env CRIB_GUEST_SUITE_TIMES \
  --env CRIB_CGROUP_DRIVER --env CRIB_TEST_HELPERS_DIR -- \
  node node_modules/vitest/vitest.mjs run --config test-guest/vitest.config.ts \
  --reporter=default --reporter=json --outputFile.json="$out/report.json" \
  --reporter=./test-guest/suite-times-reporter.ts "$@" || status=$?

if [ "$status" -ne 0 ] && [ -s "$out/daemon.log" ]; then
  { echo "--- the guest daemon's log (tail)"; tail -50 "$out/daemon.log"; } >&2
fi
if [ ! -s "$out/report.json" ]; then
  echo "cgroup2 guest tier: no test report (guest exit $status): the tier did not run"
  echo '{"passed":0,"failed":1,"skipped":0}' > "$counts"
  echo "cgroup2: 0 passed, 1 failed, 0 skipped"
  exit $((status == 0 ? 1 : status))
fi
node test-support/guest/tier-report.mjs "$out/report.json" "$out/suite-times.json" "$((SECONDS - start))" "$status" "$counts" ||
  status=$((status == 0 ? 1 : status))
exit "$status"
