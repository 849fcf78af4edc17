import { describe, expect, it } from 'vitest';
import { eachBounded, mapInTurns } from './each-bounded.js';

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

describe('mapInTurns', () => {
  it('maps every item in order, at most limit at once', async () => {
    let inFlight = 0;
    let most = 0;
    const out = await mapInTurns([...Array(40).keys()], 4, 1, async (i) => {
      most = Math.max(most, ++inFlight);
      await new Promise((r) => setTimeout(r, i % 3));
      inFlight--;
      return i * 2;
    });
    expect(out).toEqual([...Array(40).keys()].map((i) => i * 2));
    expect(most).toBe(4);
  });

  it('gives the event loop a turn once a slice of work has run, however fast each call resolves', async () => {
    // Calls that resolve in microtasks (cached readings), each 0.2 ms of work: 100 of them
    // would be one 20 ms task without turns.
    const busy = (ms: number) => {
      const until = performance.now() + ms;
      while (performance.now() < until) { /* work */ }
    };
    // Which turn of another immediate's each call started in.
    let turn = 0;
    let done = false;
    const tick = () => {
      turn++;
      if (!done) setImmediate(tick);
    };
    setImmediate(tick);
    const startedIn: number[] = [];
    const out = await mapInTurns([...Array(100).keys()], 8, 2, async (i) => {
      startedIn.push(turn);
      busy(0.2);
      await Promise.resolve();
      return i;
    });
    done = true;
    expect(out).toEqual([...Array(100).keys()]);
    const perTurn = new Map<number, number>();
    for (const t of startedIn) perTurn.set(t, (perTurn.get(t) ?? 0) + 1);
    // The work was spread over many turns, none doing more than a slice's worth (2 ms / 0.2)
    // plus the calls in flight when it ended: one turn for all workers, not one each.
    expect(perTurn.size).toBeGreaterThanOrEqual(5);
    expect(Math.max(...perTurn.values())).toBeLessThanOrEqual(10 + 8);
  });

  it('starts on the next turn, and hands a result that ends past its slice over in a turn of its own', async () => {
    const seen: string[] = [];
    setImmediate(() => seen.push('immediate queued before'));
    const listing = mapInTurns([1, 2], 2, 1, async (i) => {
      seen.push(`call ${i}`);
      const until = performance.now() + 2; // past the slice
      while (performance.now() < until) { /* work */ }
      return i;
    });
    expect(seen).toEqual([]);
    const out = listing.then((r) => { seen.push('result'); return r; });
    setImmediate(() => setImmediate(() => seen.push('immediate two turns later')));
    expect(await out).toEqual([1, 2]);
    expect(seen).toEqual(['immediate queued before', 'call 1', 'call 2', 'immediate two turns later', 'result']);
  });

  it('resolves to [] for no items and rejects with the first failure', async () => {
    expect(await mapInTurns([], 4, 1, () => Promise.reject(new Error('not called')))).toEqual([]);
    await expect(mapInTurns([1, 2, 3], 2, 1, async (i) => {
      if (i === 2) throw new Error('two failed');
      return i;
    })).rejects.toThrow('two failed');
  });
});
