import { describe, expect, it } from 'vitest';
import { MemoryTrim, type MemoryTrimOptions } from './memory-trim.js';
import { getHeapStatistics } from 'node:v8';
import { mallocTrim, releaseHeap, shrinkHeap } from '../sys/libc.js';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const keepHeap = () => undefined;
/** A heap that never grows: only the first quiet trim shrinks it. */
const STEADY_HEAP = { heapBytes: () => 8 << 20, heapGrowthBytes: 4 << 20 };
const trimOptions = (o: Omit<MemoryTrimOptions, keyof typeof STEADY_HEAP> & Partial<MemoryTrimOptions>): MemoryTrimOptions => ({ ...STEADY_HEAP, ...o });

/**
 * Old-space pages full of objects that then all become garbage, as a burst of pods leaves; the
 * array it returns is emptied, so nothing of them is reachable.
 */
function oldSpaceGarbage(): unknown[] {
  let held: { id: number; name: string; tags: number[] }[][] = [];
  for (let i = 0; i < 40; i++) held.push(Array.from({ length: 5000 }, (_, j) => ({ id: j, name: `pod-${i}-${j}`, tags: [i, j] })));
  for (let i = 0; i < 4; i++) Array.from({ length: 200_000 }, (_, j) => ({ j })); // promote them to the old space
  held = [];
  return held;
}

describe('MemoryTrim', () => {
  it('trims once the activity has been quiet, and once more later; not before', async () => {
    let trims = 0;
    let shrinks = 0;
    let releases = 0;
    const t = new MemoryTrim(trimOptions({
      quietMs: 80, maxDelayMs: 10_000, lateMs: 150, trim: async () => trims++, shrinkHeap: () => shrinks++, releaseHeap: () => releases++,
    }));
    try {
      for (let i = 0; i < 5; i++) {
        t.activity();
        await sleep(30);
      }
      expect(trims).toBe(0);
      await sleep(120);
      expect(trims).toBe(1);
      // The quiet trim begins V8's incremental shrink; the late one, for ended threads' memory,
      // finds the daemon quiet all along and releases V8's heap in one pause.
      expect(shrinks).toBe(1);
      expect(releases).toBe(0);
      await sleep(200);
      expect(trims).toBe(2);
      expect(shrinks).toBe(1);
      expect(releases).toBe(1);
      await sleep(200);
      expect(trims).toBe(2);
      expect(releases).toBe(1);
    } finally {
      t.close();
    }
  });

  it('trims within maxDelayMs even when the activity never stops (kubelet polling)', async () => {
    let trims = 0;
    let shrinks = 0;
    let releases = 0;
    const t = new MemoryTrim(trimOptions({
      quietMs: 60, maxDelayMs: 150, lateMs: 60, trim: async () => trims++, shrinkHeap: () => shrinks++, releaseHeap: () => releases++,
    }));
    try {
      const until = Date.now() + 260;
      while (Date.now() < until) {
        t.activity();
        await sleep(20);
      }
      // The forced trim's late one came due while the calls went on: it did not run (their own
      // trim will, once over).
      expect(trims).toBe(1);
      // Not quiet: a collection's pause would fall on the calls that keep coming.
      expect(shrinks).toBe(0);
      expect(releases).toBe(0);
    } finally {
      t.close();
    }
  });

  it('shrinks the heap at a quiet spell after work, and after reads alone only when it grew since the quiet spell before', async () => {
    let heap = 8 << 20;
    let trims = 0;
    let shrinks = 0;
    const t = new MemoryTrim({
      quietMs: 40, maxDelayMs: 10_000, lateMs: 10_000, heapGrowthBytes: 4 << 20, heapBytes: () => heap,
      trim: async () => trims++, shrinkHeap: () => shrinks++, releaseHeap: keepHeap,
    });
    /** A call (`reads`: a listing, a status, a probe), then a quiet spell and its trim. */
    const spell = async (reads = true) => {
      t.callStarted(reads);
      t.callEnded();
      const before = trims;
      for (const end = Date.now() + 2000; trims === before && Date.now() < end;) await sleep(10);
      expect(trims).toBe(before + 1);
    };
    try {
      // The first quiet spell shrinks the heap, after reads too.
      await spell();
      expect(shrinks).toBe(1);
      // A listing every period, the heap as large at each spell (or a little larger): malloc's
      // trim only.
      await spell();
      heap += 1 << 20;
      await spell();
      expect(shrinks).toBe(1);
      // A burst of pods: the heap grew by heapGrowthBytes since the spell before.
      heap += 4 << 20;
      await spell();
      expect(shrinks).toBe(2);
      // Compared with the spell before, not with the last shrink: a heap that shrank and came
      // back to where the periodic work keeps it is not shrunk again.
      for (const mib of [10, 12, 13, 12]) {
        heap = mib << 20;
        await spell();
      }
      expect(shrinks).toBe(2);
      heap = 17 << 20;
      await spell();
      expect(shrinks).toBe(3);
      // Work (pods started or removed, a pull): shrunk, grown or not; the reads after it, not.
      await spell(false);
      expect(shrinks).toBe(4);
      await spell();
      expect(shrinks).toBe(4);
      // Work without a call (a stream that ended): as work.
      t.activity();
      for (const end = Date.now() + 2000; shrinks === 4 && Date.now() < end;) await sleep(10);
      expect(shrinks).toBe(5);
    } finally {
      t.close();
    }
  });

  it('does nothing once closed', async () => {
    let trims = 0;
    const t = new MemoryTrim(trimOptions({ quietMs: 20, maxDelayMs: 100, lateMs: 20, trim: async () => trims++, shrinkHeap: keepHeap, releaseHeap: keepHeap }));
    t.activity();
    t.close();
    t.activity();
    await sleep(80);
    expect(trims).toBe(0);
  });

  it('waits while a unary call is in flight, then for quietMs after it ends', async () => {
    let trims = 0;
    const t = new MemoryTrim(trimOptions({ quietMs: 50, maxDelayMs: 10_000, lateMs: 10_000, trim: async () => trims++, shrinkHeap: keepHeap, releaseHeap: keepHeap }));
    try {
      t.callStarted();
      await sleep(150);
      expect(trims).toBe(0);
      t.callEnded();
      await sleep(20);
      expect(trims).toBe(0);
      await sleep(80);
      expect(trims).toBe(1);
    } finally {
      t.close();
    }
  });

  it('runs one trim at a time, and leaves the late one to the trim that work in flight brings', async () => {
    const started: (() => void)[] = [];
    const t = new MemoryTrim(trimOptions({ quietMs: 20, maxDelayMs: 10_000, lateMs: 40, trim: () => new Promise<void>((r) => started.push(r)), shrinkHeap: keepHeap, releaseHeap: keepHeap }));
    try {
      t.activity();
      await sleep(100);
      // The first trim is still running when the late one comes due.
      expect(started).toHaveLength(1);
      expect(t.runs).toBe(1);
      started[0]!();
      t.activity();
      await sleep(40);
      t.callStarted();
      // The late trim of the second round comes due while a call is in flight: it waits for the
      // trim that the call's end brings.
      await sleep(100);
      expect(started).toHaveLength(2);
      started[1]!();
      t.callEnded();
      await sleep(60);
      expect(started).toHaveLength(3);
    } finally {
      t.close();
    }
  });

  it("calls glibc's malloc_trim off the event loop", async () => {
    const trimmed = mallocTrim();
    expect(trimmed).toBeInstanceOf(Promise);
    expect(typeof (await trimmed)).toBe('boolean');
  });

  it("shrinkHeap has V8 collect, compact and hand back the heap's emptied pages", async () => {
    const held = oldSpaceGarbage();
    const before = getHeapStatistics().total_heap_size;
    shrinkHeap();
    const deadline = Date.now() + 3000;
    while (getHeapStatistics().total_heap_size > before - (8 << 20) && Date.now() < deadline) await sleep(50);
    expect(getHeapStatistics().total_heap_size).toBeLessThanOrEqual(before - (8 << 20));
    expect(held).toHaveLength(0);
  });

  it('releaseHeap has V8 collect and hand back its free pages before it returns', () => {
    const held = oldSpaceGarbage();
    const before = getHeapStatistics().total_heap_size;
    releaseHeap();
    // Synchronous: no wait, no other task ran in between.
    expect(getHeapStatistics().total_heap_size).toBeLessThanOrEqual(before - (8 << 20));
    expect(held).toHaveLength(0);
  });
});
