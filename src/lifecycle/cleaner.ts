// Undo steps registered as a multi-step create acquires each resource, run in reverse when the
// create fails (CRI-O's resource cleaner). Every step runs even if an earlier one fails; each
// failure is logged by its description.
import type { Logger } from '../log.js';

export class Cleaner {
  private readonly steps: { what: string; undo: () => Promise<unknown> | unknown }[] = [];

  constructor(private readonly log: Logger) {}

  add(what: string, undo: () => Promise<unknown> | unknown): void {
    this.steps.push({ what, undo });
  }

  async run(): Promise<void> {
    for (const step of this.steps.reverse()) {
      try {
        await step.undo();
      } catch (err) {
        this.log.error({ err, step: step.what }, 'cleanup step failed');
      }
    }
    this.steps.length = 0;
  }
}
