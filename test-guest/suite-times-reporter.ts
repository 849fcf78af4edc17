// A vitest reporter for the guest tier: each suite's time — importing it (collect) plus its
// tests and hooks — written as JSON to the file named by CRIB_GUEST_SUITE_TIMES, for
// tier-report.mjs to print on the host. vitest's JSON report carries only the span of the tests.
import { writeFileSync } from 'node:fs';
import { relative } from 'node:path';
import type { Reporter, TestModule } from 'vitest/node';

export interface SuiteTime {
  file: string;
  state: string;
  /** Seconds: importing the module, then its tests and hooks. */
  collect: number;
  run: number;
}

export default class SuiteTimesReporter implements Reporter {
  private readonly times: SuiteTime[] = [];

  onTestModuleEnd(m: TestModule): void {
    const d = m.diagnostic();
    this.times.push({
      file: relative(process.cwd(), m.moduleId),
      state: m.state(),
      collect: d.collectDuration / 1000,
      run: d.duration / 1000,
    });
  }

  onTestRunEnd(): void {
    const out = process.env.CRIB_GUEST_SUITE_TIMES;
    if (out) writeFileSync(out, JSON.stringify(this.times, null, 1));
  }
}
