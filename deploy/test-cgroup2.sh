#!/usr/bin/env bash
# The cgroup v2 tier (npm run test:cgroup2): boots the QEMU guest of test-support/guest/ and runs
# the test-guest/ suites inside it — a pure cgroup v2 node, which this host cannot be. Twice: with
# AppArmor (test-guest/cgroup2/) and with SELinux (test-guest/selinux/).
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
status=0
# The C test helpers are compiled here, not in the emulated guest (a minute there).
npx tsx test-guest/prebuild-helpers.ts "$out/bin"
export CRIB_CGROUP_DRIVER=$out/bin/cgroup-driver CRIB_TEST_HELPERS_DIR=$out/bin

# One boot per security module: the kernel runs one major LSM at a time. The AppArmor boot (the
# Debian default) runs test-guest/cgroup2/, the SELinux boot test-guest/selinux/ (guest.sh --lsm).
# Given test files (test-guest/...), a leg with none of them in its folder is not booted.
leg() { # NAME LSM FOLDER VITEST-CONFIG [VITEST ARGS...]
  local name=$1 lsm=$2 folder=$3 config=$4 dir=$out/$1 start=$SECONDS leg_status=0 paths= mine=
  shift 4
  mkdir -p "$dir"
  for a in "$@"; do
    case $a in test-guest/*) paths=1; case $a in "$folder"|"$folder"/*) mine=1 ;; esac ;; esac
  done
  if [ -n "$paths" ] && [ -z "$mine" ]; then
    echo '{"passed":0,"failed":0,"skipped":0}' > "$dir/counts.json"
    return
  fi
  # node_modules/vitest/vitest.mjs, not npx: npx alone costs ~10 s in the emulated guest. The
  # guest writes into the whole tier dir (--out): the prebuilt helpers in $out/bin live there too.
  CRIB_GUEST_TIMEOUT=${CRIB_GUEST_TIMEOUT:-1500} CRIB_GUEST_OUT=$dir CRIB_GUEST_SUITE_TIMES=$dir/suite-times.json \
    bash test-support/guest/guest.sh run --out "$out" --lsm "$lsm" --env CRIB_GUEST_OUT --env CRIB_GUEST_SUITE_TIMES \
    --env CRIB_CGROUP_DRIVER --env CRIB_TEST_HELPERS_DIR -- \
    node node_modules/vitest/vitest.mjs run --config "$config" --passWithNoTests \
    --reporter=default --reporter=json --outputFile.json="$dir/report.json" \
    --reporter=./test-guest/suite-times-reporter.ts "$@" || leg_status=$?

  if [ "$leg_status" -ne 0 ] && [ -s "$dir/daemon.log" ]; then
    # Its warnings and errors first: the one behind a failed test is often older than the tail.
    { echo "--- the guest daemon's warnings and errors (last 40)"; grep -E '"level":(40|50|60),' "$dir/daemon.log" | tail -40 || true
      echo "--- the guest daemon's log (tail)"; tail -50 "$dir/daemon.log"; } >&2
  fi
  if [ ! -s "$dir/report.json" ]; then
    echo "cgroup2 guest tier ($name): no test report (guest exit $leg_status): the leg did not run"
    echo '{"passed":0,"failed":1,"skipped":0}' > "$dir/counts.json"
    status=$((leg_status == 0 ? 1 : leg_status))
    return
  fi
  node test-support/guest/tier-report.mjs "$name" "$dir/report.json" "$dir/suite-times.json" "$((SECONDS - start))" \
    "$leg_status" "$dir/counts.json" || leg_status=$((leg_status == 0 ? 1 : leg_status))
  [ "$leg_status" -eq 0 ] || status=$leg_status
}

leg apparmor apparmor test-guest/cgroup2 test-guest/vitest.config.ts "$@"
leg selinux selinux test-guest/selinux test-guest/vitest.selinux.config.ts "$@"

node -e '
  const fs = require("fs");
  const legs = process.argv.slice(2).map((p) => JSON.parse(fs.readFileSync(p, "utf8")));
  const c = { passed: 0, failed: 0, skipped: 0 };
  for (const l of legs) for (const k of Object.keys(c)) c[k] += l[k];
  fs.writeFileSync(process.argv[1], JSON.stringify(c));
  console.log(`cgroup2: ${c.passed} passed, ${c.failed} failed, ${c.skipped} skipped`);
' "$counts" "$out/apparmor/counts.json" "$out/selinux/counts.json"
exit "$status"
