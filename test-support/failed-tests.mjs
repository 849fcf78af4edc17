// Names every failed test of vitest JSON reports, one line each with the first line of its
// message, so the last lines of a test run (all a CI log may keep) say what failed, not only how
// many. A file that failed outside any test (an import error, a hook) is named as the file.
//   node failed-tests.mjs TIER-NAME REPORT.json [TIER-NAME REPORT.json ...]
import { readFileSync } from 'node:fs';

const MAX_LINES = 40; // a run where everything broke needs the first few, not a thousand lines

/** One line per failed test (or per file that failed outside its tests) of a parsed vitest report. */
export function failedTestLines(tier, report) {
  const lines = [];
  for (const file of report.testResults ?? []) {
    const name = file.name.replace(`${process.cwd()}/`, '');
    const failed = (file.assertionResults ?? []).filter((a) => a.status === 'failed');
    for (const a of failed) lines.push(`${tier}: FAILED ${name} > ${a.fullName}: ${firstLine(a.failureMessages?.[0])}`);
    if (failed.length === 0 && file.status === 'failed') lines.push(`${tier}: FAILED ${name}: ${firstLine(file.message)}`);
  }
  return lines;
}

/** Prints the lines, at most MAX_LINES of them. */
export function printFailedTests(lines) {
  for (const line of lines.slice(0, MAX_LINES)) console.log(line);
  if (lines.length > MAX_LINES) console.log(`... and ${lines.length - MAX_LINES} more failures (see the reports above)`);
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const args = process.argv.slice(2);
  const lines = [];
  for (let i = 0; i + 1 < args.length; i += 2) {
    try {
      lines.push(...failedTestLines(args[i], JSON.parse(readFileSync(args[i + 1], 'utf8'))));
    } catch {
      // no report: the caller already counts that tier as failed
    }
  }
  printFailedTests(lines);
}

function firstLine(message) {
  const line = String(message ?? '').split('\n').find((l) => l.trim() !== '') ?? '(no message)';
  return line.length > 300 ? `${line.slice(0, 300)}...` : line;
}
