import { setTimeout as sleep } from 'node:timers/promises';
import { describe, expect, it } from 'vitest';
import { BoundedWorkQueue } from './bounded-work-queue.js';

/** A task that runs until released (or fails when told to), recording when it begins and ends. */
function gate(events: string[], name: string): { task: () => Promise<void>; release: () => void; fail: () => void } {
  let release!: () => void;
  let fail!: () => void;
  let released = new Promise<void>((ok, no) => {
    release = ok;
    fail = () => no(new Error(`${name} failed`));
  });
  const g = {
    release: () => release(),
    fail: () => fail(),
    task: async () => {
      events.push(`${name}+`);
      try {
        await released;
      } catch (err) {
        // The next attempt waits for a fresh release or failure.
        released = new Promise<void>((ok, no) => {
          release = ok;
          fail = () => no(new Error(`${name} failed`));
        });
        events.push(`${name}!`);
        throw err;
      }
      events.push(`${name}-`);
    },
  };
  return g;
}

const settledWithin = async (p: Promise<unknown>, ms: number): Promise<boolean> =>
  Promise.race([p.then(() => true), sleep(ms).then(() => false)]);

describe('BoundedWorkQueue', () => {
  it('runs at most `width` tasks at once and makes add() wait while `capacity` are held', async () => {
    const q = new BoundedWorkQueue({ width: 2, capacity: 3, retryDelayMs: () => 10, onError: () => undefined });
    const events: string[] = [];
    const g = ['a', 'b', 'c', 'd', 'e'].map((k) => gate(events, k));
    await q.add('a', g[0]!.task);
    await q.add('b', g[1]!.task);
    await q.add('c', g[2]!.task);
    await sleep(5);
    expect(events).toEqual(['a+', 'b+']);
    expect(q.size).toBe(3);
    // Full: d and then e wait for room, in that order.
    const addD = q.add('d', g[3]!.task);
    const addE = q.add('e', g[4]!.task);
    expect(await settledWithin(addD, 20)).toBe(false);
    g[1]!.release();
    expect(await settledWithin(addD, 50)).toBe(true);
    expect(await settledWithin(addE, 20)).toBe(false);
    expect(q.size).toBe(3);
    expect(events).toEqual(['a+', 'b+', 'b-', 'c+']);
    g[0]!.release();
    expect(await settledWithin(addE, 50)).toBe(true);
    await sleep(5);
    expect(events).toEqual(['a+', 'b+', 'b-', 'c+', 'a-', 'd+']);
    for (const x of g) x.release();
    await q.settled();
    expect(q.size).toBe(0);
    expect(events.filter((e) => e.endsWith('-')).sort()).toEqual(['a-', 'b-', 'c-', 'd-', 'e-']);
  });

  it('keeps one task per key: a second add while one is held is ignored', async () => {
    const q = new BoundedWorkQueue({ width: 1, capacity: 1, retryDelayMs: () => 10, onError: () => undefined });
    const events: string[] = [];
    const a = gate(events, 'a');
    await q.add('a', a.task);
    // Held already: resolves at once though the queue is full.
    expect(await settledWithin(q.add('a', gate(events, 'a2').task), 20)).toBe(true);
    a.release();
    await q.settled();
    expect(events).toEqual(['a+', 'a-']);
  });

  it('tries a failed task again after a delay, holding its place meanwhile', async () => {
    const errors: [string, boolean][] = [];
    const q = new BoundedWorkQueue({ width: 1, capacity: 1, retryDelayMs: (n) => 30 * n, onError: (key, _err, retried) => errors.push([key, retried]) });
    const events: string[] = [];
    const a = gate(events, 'a');
    await q.add('a', a.task);
    await sleep(5);
    a.fail();
    await q.settled();
    expect(events).toEqual(['a+', 'a!']);
    expect(errors).toEqual([['a', true]]);
    // Still held while it waits to be tried again: another task waits for room.
    expect(q.has('a')).toBe(true);
    const b = gate(events, 'b');
    const addB = q.add('b', b.task);
    expect(await settledWithin(addB, 10)).toBe(false);
    await sleep(40);
    expect(events).toEqual(['a+', 'a!', 'a+']);
    a.release();
    expect(await settledWithin(addB, 50)).toBe(true);
    b.release();
    await q.settled();
    expect(events).toEqual(['a+', 'a!', 'a+', 'a-', 'b+', 'b-']);
    expect(q.size).toBe(0);
  });

  it('retryNow() tries a task waiting out its delay at once, and does nothing for one running or unknown', async () => {
    const q = new BoundedWorkQueue({ width: 1, capacity: 2, retryDelayMs: () => 60_000, onError: () => undefined });
    const events: string[] = [];
    const a = gate(events, 'a');
    await q.add('a', a.task);
    await sleep(5);
    // Running, not waiting to be tried again.
    expect(q.retryNow('a')).toBe(false);
    a.fail();
    await q.settled();
    expect(events).toEqual(['a+', 'a!']);
    expect(q.retryNow('a')).toBe(true);
    await sleep(5);
    expect(events).toEqual(['a+', 'a!', 'a+']);
    expect(q.retryNow('b')).toBe(false);
    a.release();
    await q.settled();
    expect(events).toEqual(['a+', 'a!', 'a+', 'a-']);
    expect(q.size).toBe(0);
  });

  it('close() runs what is held once more, even a task waiting to be tried again, and then gives up on failures', async () => {
    const errors: [string, boolean][] = [];
    const q = new BoundedWorkQueue({ width: 1, capacity: 3, retryDelayMs: () => 60_000, onError: (key, _err, retried) => errors.push([key, retried]) });
    const events: string[] = [];
    const a = gate(events, 'a');
    const b = gate(events, 'b');
    await q.add('a', a.task);
    await sleep(5);
    a.fail();
    await q.settled();
    await q.add('b', b.task);
    const closed = q.close();
    await sleep(5);
    // b was waiting its turn; a's retry is brought forward behind it.
    expect(events).toEqual(['a+', 'a!', 'b+']);
    expect(await settledWithin(closed, 10)).toBe(false);
    b.release();
    await sleep(5);
    expect(events).toEqual(['a+', 'a!', 'b+', 'b-', 'a+']);
    a.fail();
    expect(await settledWithin(closed, 50)).toBe(true);
    expect(errors).toEqual([['a', true], ['a', false]]);
    expect(q.size).toBe(0);
  });

  it('refuses a width or capacity that is not a positive integer, or a capacity below the width', () => {
    const base = { retryDelayMs: () => 1, onError: () => undefined };
    expect(() => new BoundedWorkQueue({ ...base, width: 0, capacity: 1 })).toThrow(/width/);
    expect(() => new BoundedWorkQueue({ ...base, width: 1, capacity: 1.5 })).toThrow(/capacity/);
    expect(() => new BoundedWorkQueue({ ...base, width: 2, capacity: 1 })).toThrow(/less than width/);
  });
});
