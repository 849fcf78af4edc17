import { describe, expect, it } from 'vitest';
import { MemoryTrim } from './memory-trim.js';
import { mallocTrim } from '../sys/libc.js';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe('MemoryTrim', () => {
  it('trims once the activity has been quiet, and once more later; not before', async () => {
    let trims = 0;
    const t = new MemoryTrim({ quietMs: 80, maxDelayMs: 10_000, lateMs: 150, trim: () => trims++ });
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
    const t = new MemoryTrim({ quietMs: 60, maxDelayMs: 150, lateMs: 10_000, trim: () => trims++ });
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
    const t = new MemoryTrim({ quietMs: 20, maxDelayMs: 100, lateMs: 20, trim: () => trims++ });
    t.activity();
    t.close();
    t.activity();
    await sleep(80);
    expect(trims).toBe(0);
  });

  it("calls glibc's malloc_trim", () => {
    expect(typeof mallocTrim()).toBe('boolean');
  });
});
