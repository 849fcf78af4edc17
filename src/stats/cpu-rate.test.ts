import { describe, expect, it } from 'vitest';
import { CpuRateTracker } from './cpu-rate.js';

const S = 1_000_000_000n;

describe('CpuRateTracker', () => {
  it('reports no rate on the first sample, then usage delta over time delta', () => {
    const t = new CpuRateTracker();
    expect(t.rate('a', 10n * S, 100n * S)).toBeUndefined();
    // 1.5 s of CPU in 2 s of wall time: 0.75 cores.
    expect(t.rate('a', 11n * S + 500_000_000n, 102n * S)).toBe(750_000_000n);
    expect(t.rate('a', 13n * S + 500_000_000n, '103000000000')).toBe(2n * S);
  });

  it('keeps the older base and the last rate for windows shorter than the minimum', () => {
    const t = new CpuRateTracker(S);
    t.rate('a', 0n, 10n * S);
    expect(t.rate('a', S, 12n * S)).toBe(500_000_000n);
    // 100 ms later: too short a window; the last rate stands and the base is kept.
    expect(t.rate('a', S + 100_000_000n, 12n * S + 100_000_000n)).toBe(500_000_000n);
    // Measured from the kept base at 12 s: 1 s of CPU in 1 s.
    expect(t.rate('a', 2n * S, 13n * S)).toBe(S);
  });

  it('starts over when the counter goes backwards (a recreated cgroup) or time does', () => {
    const t = new CpuRateTracker();
    t.rate('a', 5n * S, 10n * S);
    expect(t.rate('a', S, 12n * S)).toBeUndefined();
    expect(t.rate('a', 2n * S, 13n * S)).toBe(S);
    expect(t.rate('a', 3n * S, 13n * S)).toBeUndefined();
  });

  it('tracks ids separately and forgets removed ones', () => {
    const t = new CpuRateTracker();
    t.rate('a', 0n, 0n + S);
    t.rate('b', 0n, 0n + S);
    t.rate('c', 0n, 0n + S);
    expect(t.size).toBe(3);
    t.forget('a');
    t.retainOnly(['b']);
    expect(t.size).toBe(1);
    expect(t.rate('b', S, 2n * S)).toBe(S);
    expect(t.rate('a', S, 2n * S)).toBeUndefined();
  });

  it('gives the same rate for the same reading seen again (a reused cgroup reading)', () => {
    const t = new CpuRateTracker(S);
    t.rate('a', 0n, 10n * S);
    expect(t.rate('a', S, 12n * S)).toBe(500_000_000n);
    expect(t.rate('a', S, 12n * S)).toBe(500_000_000n);
    expect(t.rate('a', 2n * S, 13n * S)).toBe(S);
  });

  it('peek tells what rate would return for a reading, recording nothing', () => {
    const t = new CpuRateTracker(S);
    expect(t.peek('a', 0n, 10n * S)).toBeUndefined();
    t.rate('a', 0n, 10n * S);
    expect(t.peek('a', S, 12n * S)).toBe(500_000_000n);
    // Nothing recorded: a later reading is measured from the 10 s base still.
    expect(t.peek('a', 3n * S, 13n * S)).toBe(S);
    expect(t.rate('a', S, 12n * S)).toBe(500_000_000n);
    expect(t.peek('a', S, 12n * S)).toBe(500_000_000n); // the same reading again
  });
});
