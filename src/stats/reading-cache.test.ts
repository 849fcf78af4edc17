import { describe, expect, it } from 'vitest';
import { ReadingCache } from './reading-cache.js';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** A read whose result the test hands over when it wants. */
function deferred<T>() {
  let resolve!: (v: T) => void;
  let reject!: (e: unknown) => void;
  const promise = new Promise<T>((res, rej) => {
    resolve = res;
    reject = rej;
  });
  return { promise, resolve, reject };
}

describe('ReadingCache', () => {
  it('serves the last reading while it is younger than maxAgeMs, and reads again after', async () => {
    const c = new ReadingCache<number>();
    let reads = 0;
    const read = async () => ++reads;
    expect(await c.get('k', 100, read)).toBe(1);
    expect(await c.get('k', 100, read)).toBe(1);
    await sleep(120);
    expect(await c.get('k', 100, read)).toBe(2);
  });

  it('serves a reading to each kind of caller once: the same kind gets a newer one, another kind shares it', async () => {
    const c = new ReadingCache<number>();
    let reads = 0;
    const read = async () => ++reads;
    expect(await c.get('k', 10_000, read, undefined, 1)).toBe(1);
    expect(await c.get('k', 10_000, read, undefined, 2)).toBe(1); // another kind: shared
    expect(await c.get('k', 10_000, read, undefined, 1)).toBe(2); // the same kind: a new reading
    expect(await c.get('k', 10_000, read, undefined, 2)).toBe(2);
    // With staleMs (a refresher's read on its way), the last reading is served even if it was before.
    expect(await c.get('k', 10_000, read, 60_000, 1)).toBe(2);
    expect(await c.get('k', 10_000, read, undefined, 1)).toBe(3);
    expect(await c.get('k', 10_000, read, undefined, 2)).toBe(3);
    // A read in flight is shared with a kind it was not served to, not with one it was.
    const d = deferred<number>();
    await new Promise((r) => setTimeout(r, 5));
    const inFlight = c.get('k', 1, () => d.promise, undefined, 1);
    expect(c.get('k', 10_000, async () => 99, undefined, 2)).toBe(inFlight);
    const another = c.get('k', 10_000, read, undefined, 1);
    d.resolve(50);
    expect(await inFlight).toBe(50);
    expect(await another).toBe(4);
  });

  it('keeps serving the last reading while a refresh is in flight, then serves the refresh', async () => {
    const c = new ReadingCache<string>();
    await c.get('k', 1000, async () => 'old');
    const d = deferred<string>();
    const refreshed = c.refresh('k', () => d.promise);
    expect(c.refresh('k', async () => 'second')).toBe(refreshed); // one read in flight, shared
    expect(await c.get('k', 1000, async () => 'never')).toBe('old');
    d.resolve('new');
    expect(await refreshed).toBe('new');
    expect(await c.get('k', 1000, async () => 'never')).toBe('new');
  });

  it('makes a stale entry wait for the read in flight rather than start another', async () => {
    const c = new ReadingCache<string>();
    await c.get('k', 1000, async () => 'old');
    await sleep(60);
    const d = deferred<string>();
    void c.refresh('k', () => d.promise);
    const got = c.get('k', 50, async () => 'second read');
    d.resolve('in flight');
    expect(await got).toBe('in flight');
  });

  it('keeps no failed reading', async () => {
    const c = new ReadingCache<string>();
    await c.get('k', 1000, async () => 'ok');
    await expect(c.refresh('k', async () => {
      throw new Error('gone');
    })).rejects.toThrow('gone');
    expect(c.peek('k')?.value).toBe('ok');
    await expect(c.get('f', 1000, async () => {
      throw new Error('no');
    })).rejects.toThrow('no');
    expect(await c.get('f', 1000, async () => 'read again')).toBe('read again');
  });

  it('drops entries not kept, and entries older than asked', async () => {
    const c = new ReadingCache<number>();
    await c.get('a', 1000, async () => 1);
    await c.get('b', 1000, async () => 2);
    c.retainOnly(new Set(['a']));
    expect(c.size).toBe(1);
    await sleep(30);
    c.dropOlderThan(20);
    expect(c.size).toBe(0);
  });

  it('with staleMs, serves a last reading past maxAgeMs as it is, without waiting for the read in flight', async () => {
    const c = new ReadingCache<string>();
    await c.get('k', 1000, async () => 'old');
    await sleep(60);
    const d = deferred<string>();
    void c.refresh('k', () => d.promise);
    let reads = 0;
    // maxAgeMs 40: 'old' is too old for a plain get, which waits for the refresh in flight.
    const waiting = c.get('k', 40, async () => `read ${++reads}`);
    expect(await c.get('k', 40, async () => `read ${++reads}`, 5000)).toBe('old');
    expect(reads).toBe(0);
    // Past staleMs too: it waits for the refresh like a plain get.
    const pastStale = c.get('k', 40, async () => `read ${++reads}`, 50);
    d.resolve('new');
    expect(await waiting).toBe('new');
    expect(await pastStale).toBe('new');
    expect(reads).toBe(0);
  });
});
