import { describe, expect, it } from 'vitest';
import { MemoryTrim } from './memory-trim.js';
import { mallocTrim } from '../sys/libc.js';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe('MemoryTrim', () => {
  it('trims once the activity has been quiet, and once more later; not before', async () => {
    let trims = 0;
    const t = new MemoryTrim({ quietMs: 80, maxDelayMs: 10_000, lateMs: 150, trim: async () => trims++ });
    try {
      for (let i = 0; i < 5; i++) {
        t.activity();
        await sleep(30);
      }
      expect(trims).toBe(0);
      await sleep(120);
      expect(trims).toBe(1);
      await sleep(200);
      expect(trims).toBe(2);
      await sleep(200);
      expect(trims).toBe(2);
    } finally {
      t.close();
    }
  });

  it('trims within maxDelayMs even when the activity never stops (kubelet polling)', async () => {
    let trims = 0;
    const t = new MemoryTrim({ quietMs: 60, maxDelayMs: 150, lateMs: 10_000, trim: async () => trims++ });
    try {
      const until = Date.now() + 260;
      while (Date.now() < until) {
        t.activity();
        await sleep(20);
      }
      expect(trims).toBe(1);
    } finally {
      t.close();
    }
  });

  it('does nothing once closed', async () => {
    let trims = 0;
    const t = new MemoryTrim({ quietMs: 20, maxDelayMs: 100, lateMs: 20, trim: async () => trims++ });
    t.activity();
    t.close();
    t.activity();
    await sleep(80);
    expect(trims).toBe(0);
  });

  it('waits while a unary call is in flight, then for quietMs after it ends', async () => {
    let trims = 0;
    const t = new MemoryTrim({ quietMs: 50, maxDelayMs: 10_000, lateMs: 10_000, trim: async () => trims++ });
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
    const t = new MemoryTrim({ quietMs: 20, maxDelayMs: 10_000, lateMs: 40, trim: () => new Promise<void>((r) => started.push(r)) });
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
});
