// One leg of the guest tier (one boot: apparmor or selinux): each suite with its time (from
// test-guest/suite-times-reporter.ts), then "cgroup2 (LEG): N passed, N failed, N skipped" from
// vitest's JSON report, also written as JSON to COUNTS for deploy/test-cgroup2.sh to add up.
//   node tier-report.mjs LEG REPORT.json SUITE-TIMES.json LEG_SECONDS VITEST_EXIT_STATUS COUNTS.json
// A run that failed outside any test (global setup, an unhandled error: vitest exits non-zero
// with no failed test) counts as one failure, so the line never looks clean when it was not.
// Exits 1 when a test was skipped: in the guest every suite's preconditions hold by
// construction, so a skip means a test silently did not run.
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { failedTestLines, printFailedTests } from '../failed-tests.mjs';

const [leg, reportPath, timesPath, seconds, vitestStatus, countsPath] = process.argv.slice(2);
const r = JSON.parse(readFileSync(reportPath, 'utf8'));
const counts = { passed: r.numPassedTests, failed: r.numFailedTests, skipped: r.numPendingTests + r.numTodoTests };
console.log(`cgroup2 guest tier (${leg}): ${seconds} s in all (boot, registry, daemon, suites, power-off)`);
if (existsSync(timesPath)) {
  for (const t of JSON.parse(readFileSync(timesPath, 'utf8'))) {
    const total = (t.collect + t.run).toFixed(1).padStart(6);
    console.log(`  ${total} s  ${t.state.padEnd(7)} ${t.file}  (import ${t.collect.toFixed(1)} s, tests and hooks ${t.run.toFixed(1)} s)`);
  }
}
if (Number(vitestStatus) !== 0 && counts.failed === 0) {
  console.log(`cgroup2 guest tier (${leg}): vitest exited ${vitestStatus} with no failed test (see its errors above): counted as 1 failure`);
  counts.failed = 1;
}
printFailedTests(failedTestLines(`cgroup2 (${leg})`, r));
if (counts.skipped > 0) console.log(`cgroup2 guest tier (${leg}): ${counts.skipped} test(s) skipped inside the guest, where none may be`);
writeFileSync(countsPath, JSON.stringify(counts));
console.log(`cgroup2 (${leg}): ${counts.passed} passed, ${counts.failed} failed, ${counts.skipped} skipped`);
process.exitCode = counts.skipped > 0 ? 1 : 0;
