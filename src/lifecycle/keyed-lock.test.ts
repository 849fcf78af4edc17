import { setTimeout as sleep } from 'node:timers/promises';
import { describe, expect, it } from 'vitest';
import { KeyedLock, SerialQueue } from './keyed-lock.js';

describe('KeyedLock', () => {
  it('runs one job at a time per key, in call order, and different keys side by side', async () => {
    const lock = new KeyedLock();
    const events: string[] = [];
    const job = (name: string, ms: number) => async () => {
      events.push(`${name}+`);
      await sleep(ms);
      events.push(`${name}-`);
      return name;
    };
    const results = await Promise.all([
      lock.run('a', job('a1', 30)),
      lock.run('a', job('a2', 1)),
      lock.run('b', job('b1', 10)),
    ]);
    expect(results).toEqual(['a1', 'a2', 'b1']);
    // b1 ran while a1 did; a2 only after a1 ended.
    expect(events).toEqual(['a1+', 'b1+', 'b1-', 'a1-', 'a2+', 'a2-']);
  });

  it('does not let a failed job block or fail the next one, nor see its result', async () => {
    const lock = new KeyedLock();
    const failed = lock.run('k', async () => {
      throw new Error('boom');
    });
    const seen: unknown[] = [];
    const next = lock.run('k', async (...args: unknown[]) => {
      seen.push(...args);
      return 'ran';
    });
    await expect(failed).rejects.toThrow('boom');
    await expect(next).resolves.toBe('ran');
    expect(seen).toEqual([]);
    // A job that throws before its first await is queued and reported the same way.
    await expect(lock.run('k', () => {
      throw new Error('sync');
    })).rejects.toThrow('sync');
    await expect(lock.run('k', async () => 'after')).resolves.toBe('after');
  });

  it('drops a key once its queue ran empty', async () => {
    const lock = new KeyedLock();
    let release!: () => void;
    const held = lock.run('pod-1', () => new Promise<void>((r) => (release = r)));
    const queued = lock.run('pod-1', async () => undefined);
    void lock.run('pod-2', async () => {
      throw new Error('x');
    }).catch(() => undefined);
    expect(lock.activeKeys).toBe(2);
    await sleep(5);
    expect(lock.activeKeys).toBe(1);
    release();
    await held;
    await queued;
    await sleep(0);
    expect(lock.activeKeys).toBe(0);
  });
});

describe('SerialQueue', () => {
  it('runs every job in call order', async () => {
    const q = new SerialQueue();
    const order: number[] = [];
    await Promise.all([30, 1, 10].map((ms, i) => q.run(async () => {
      await sleep(ms);
      order.push(i);
    })));
    expect(order).toEqual([0, 1, 2]);
  });
});
