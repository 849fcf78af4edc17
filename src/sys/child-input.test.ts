import { execFile } from 'node:child_process';
import { describe, expect, it } from 'vitest';
import { endChildInput } from './child-input.js';

describe('endChildInput', () => {
  it('survives a helper that exits without reading its input (EPIPE is not an unhandled error)', async () => {
    // More than a pipe buffer, so the write is still pending when /bin/true exits.
    const input = Buffer.alloc(4 << 20, 'x');
    for (let i = 0; i < 5; i++) {
      const code = await new Promise<number | null>((resolve) => {
        const child = execFile('/bin/true', [], (err) => resolve(err ? -1 : 0));
        endChildInput(child, input);
      });
      expect(code).toBe(0);
    }
    // Let any late 'error' event fire: without a listener it would fail the test run.
    await new Promise((r) => setTimeout(r, 50));
  });
});
