import { describe, expect, it } from 'vitest';
import { eachBounded } from './each-bounded.js';

describe('eachBounded', () => {
  it('calls fn for every item, in order, never more than limit at once', async () => {
    let inFlight = 0;
    let most = 0;
    const started: number[] = [];
    await eachBounded([...Array(50).keys()], 4, async (i) => {
      started.push(i);
      most = Math.max(most, ++inFlight);
      await new Promise((r) => setTimeout(r, i % 3));
      inFlight--;
    });
    expect(started).toEqual([...Array(50).keys()]);
    expect(most).toBe(4);
    expect(inFlight).toBe(0);
  });

  it('resolves at once for no items, and runs one at a time for a limit below 1', async () => {
    await eachBounded([], 4, () => Promise.reject(new Error('not called')));
    let inFlight = 0;
    let most = 0;
    await eachBounded([1, 2, 3], 0, async () => {
      most = Math.max(most, ++inFlight);
      await new Promise((r) => setImmediate(r));
      inFlight--;
    });
    expect(most).toBe(1);
  });
});
