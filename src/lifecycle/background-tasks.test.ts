import { setTimeout as sleep } from 'node:timers/promises';
import { describe, expect, it } from 'vitest';
import { BackgroundTasks } from './background-tasks.js';

/** A task that runs until released, recording when it begins and ends. */
function gate(events: string[], name: string): { task: () => Promise<void>; release: () => void } {
  let release!: () => void;
  const released = new Promise<void>((r) => (release = r));
  return {
    release,
    task: async () => {
      events.push(`${name}+`);
      await released;
      events.push(`${name}-`);
    },
  };
}

describe('BackgroundTasks', () => {
  it('runs at most `limit` tasks at once, the others in the order they came', async () => {
    const tasks = new BackgroundTasks(2, () => undefined);
    const events: string[] = [];
    const g = ['a', 'b', 'c', 'd'].map((k) => gate(events, k));
    ['a', 'b', 'c', 'd'].forEach((k, i) => tasks.add(k, g[i]!.task));
    await sleep(5);
    expect(events).toEqual(['a+', 'b+']);
    expect(tasks.size).toBe(4);
    g[1]!.release();
    await sleep(5);
    expect(events).toEqual(['a+', 'b+', 'b-', 'c+']);
    g[0]!.release();
    await sleep(5);
    expect(events).toEqual(['a+', 'b+', 'b-', 'c+', 'a-', 'd+']);
    g[2]!.release();
    g[3]!.release();
    await tasks.drain();
    expect(tasks.size).toBe(0);
  });

  it('keeps one task per key: a second add while one waits or runs is ignored', async () => {
    const tasks = new BackgroundTasks(1, () => undefined);
    let runs = 0;
    const g = gate([], 'x');
    tasks.add('k', async () => {
      runs++;
      await g.task();
    });
    tasks.add('k', async () => {
      runs += 10;
    });
    expect(tasks.has('k')).toBe(true);
    g.release();
    await tasks.settle('k');
    expect(runs).toBe(1);
    expect(tasks.has('k')).toBe(false);
  });

  it('settle withdraws a task that has not begun and waits for one that runs', async () => {
    const tasks = new BackgroundTasks(1, () => undefined);
    const events: string[] = [];
    const first = gate(events, 'first');
    const second = gate(events, 'second');
    tasks.add('first', first.task);
    tasks.add('second', second.task);
    await tasks.settle('second');
    expect(tasks.has('second')).toBe(false);

    let settled = false;
    const waiting = tasks.settle('first').then(() => (settled = true));
    await sleep(5);
    expect(settled).toBe(false);
    first.release();
    await waiting;
    expect(events).toEqual(['first+', 'first-']);
  });

  it('hands a task\'s failure to onError; settle and drain still resolve and the queue goes on', async () => {
    const failures: string[] = [];
    const tasks = new BackgroundTasks(1, (key, err) => failures.push(`${key}: ${(err as Error).message}`));
    let ranAfter = false;
    tasks.add('bad', async () => {
      throw new Error('boom');
    });
    tasks.add('good', async () => {
      ranAfter = true;
    });
    await tasks.settle('bad');
    await tasks.drain();
    expect(failures).toEqual(['bad: boom']);
    expect(ranAfter).toBe(true);
  });

  it('drain drops the waiting tasks', async () => {
    const tasks = new BackgroundTasks(1, () => undefined);
    const events: string[] = [];
    const a = gate(events, 'a');
    tasks.add('a', a.task);
    tasks.add('b', async () => {
      events.push('b');
    });
    const drained = tasks.drain();
    a.release();
    await drained;
    expect(events).toEqual(['a+', 'a-']);
    expect(tasks.size).toBe(0);
  });

  it('refuses a limit that is not a positive integer', () => {
    expect(() => new BackgroundTasks(0, () => undefined)).toThrow(/limit must be a positive integer, not 0/);
  });
});
