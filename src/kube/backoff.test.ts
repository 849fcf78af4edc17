import { describe, expect, it } from 'vitest';
import { afterRestart, restartAt, type BackoffEntry } from './backoff.js';

const p = { baseMs: 10_000, maxMs: 300_000 };

describe('crash-loop back-off', () => {
  it('restarts at once the first time, then waits 10 s, 20 s, 40 s, ... up to 5 min after each exit', () => {
    let entry: BackoffEntry | undefined;
    let t = 1_000_000;
    const waits: number[] = [];
    for (let i = 0; i < 8; i++) {
      const at = restartAt(entry, t, p);
      waits.push(at - t);
      entry = afterRestart(entry, t, at, p);
      t = at + 1000; // the container runs a second, then exits again
    }
    expect(waits).toEqual([0, 10_000, 20_000, 40_000, 80_000, 160_000, 300_000, 300_000]);
  });

  it('starts over after a container ran longer than twice the maximum', () => {
    const entry = { delayMs: 160_000, updatedAt: 0 };
    expect(restartAt(entry, 600_001, p)).toBe(600_001);
    expect(afterRestart(entry, 600_001, 600_001, p).delayMs).toBe(10_000);
    expect(restartAt(entry, 500_000, p)).toBe(660_000);
  });
});
