import { describe, expect, it } from 'vitest';
import { ResourceExhaustedError } from '../errors.js';
import { CATEGORIES, McsLevels, hashedCandidates, podLevel } from './mcs-levels.js';

/** Every pod id hashes to the same pairs, in the same order: a forced collision. */
const colliding = (levels: string[]) => () => levels;

describe('McsLevels', () => {
  it('gives a pod its hash level when no live pod holds it', () => {
    const levels = new McsLevels();
    expect(levels.allocate('pod-a')).toBe(podLevel('pod-a'));
    expect(levels.levelOf('pod-a')).toBe(podLevel('pod-a'));
  });

  it('gives two pods whose hashes collide different levels, the second its next candidate', () => {
    const levels = new McsLevels(colliding(['s0:c1,c2', 's0:c3,c4']));
    expect(levels.allocate('pod-a')).toBe('s0:c1,c2');
    expect(levels.allocate('pod-b')).toBe('s0:c3,c4');
  });

  it('frees a removed pod\'s level for the next pod', () => {
    const levels = new McsLevels(colliding(['s0:c1,c2', 's0:c3,c4']));
    levels.allocate('pod-a');
    levels.allocate('pod-b');
    levels.release('pod-a');
    expect(levels.levelOf('pod-a')).toBeUndefined();
    expect(levels.allocate('pod-c')).toBe('s0:c1,c2');
  });

  it('avoids reserved levels (pods found at start-up, levels named by selinuxOptions)', () => {
    const levels = new McsLevels(colliding(['s0:c1,c2', 's0:c3,c4', 's0:c5,c6']));
    levels.reserve('recorded', 's0:c1,c2');
    levels.reserve('named', 's0:c3,c4');
    expect(levels.allocate('new')).toBe('s0:c5,c6');
  });

  it('keeps a level two recorded pods share held until both are gone', () => {
    // Pods a crib before this one made may share their hash level: both keep it.
    const levels = new McsLevels(colliding(['s0:c1,c2', 's0:c3,c4']));
    levels.reserve('old-1', 's0:c1,c2');
    levels.reserve('old-2', 's0:c1,c2');
    levels.release('old-1');
    expect(levels.allocate('new-1')).toBe('s0:c3,c4');
    levels.release('old-2');
    expect(levels.allocate('new-2')).toBe('s0:c1,c2');
  });

  it('refuses a pod with RESOURCE_EXHAUSTED when every candidate is held', () => {
    const levels = new McsLevels(colliding(['s0:c1,c2', 's0:c3,c4']));
    levels.allocate('pod-a');
    levels.allocate('pod-b');
    const err = (() => {
      try {
        levels.allocate('pod-c');
      } catch (e) {
        return e as ResourceExhaustedError;
      }
      return undefined;
    })();
    expect(err).toBeInstanceOf(ResourceExhaustedError);
    expect(err!.message).toMatch(/no SELinux MCS level is free for pod pod-c: all 2 category pairs are held by live pods/);
    expect(levels.levelOf('pod-c')).toBeUndefined();
  });
});

describe('hashedCandidates', () => {
  it('offers the pod id\'s hash first, then rehashes that differ per pod, deterministically', () => {
    const first = (id: string, n: number) => [...take(hashedCandidates(id), n)];
    expect(first('pod-a', 1)).toEqual([podLevel('pod-a')]);
    expect(first('pod-a', 8)).toEqual(first('pod-a', 8));
    expect(new Set(first('pod-a', 8)).size).toBe(8);
    expect(first('pod-b', 8)).not.toEqual(first('pod-a', 8));
  });

  it('ends with every category pair, so a pod gets a level while any pair is free', () => {
    const all = new Set(hashedCandidates('pod-a'));
    expect(all.size).toBe((CATEGORIES * (CATEGORIES - 1)) / 2);
    const malformed = [...all].filter((l) => {
      const m = /^s0:c(\d+),c(\d+)$/.exec(l);
      return !m || !(Number(m[1]) < Number(m[2]) && Number(m[2]) < CATEGORIES);
    });
    expect(malformed).toEqual([]);
  });
});

function* take<T>(it: Iterable<T>, n: number): Iterable<T> {
  if (n <= 0) return;
  for (const v of it) {
    yield v;
    if (--n === 0) return;
  }
}

describe('podLevel', () => {
  it('is one stable pair of distinct categories per pod, low first', () => {
    const l = podLevel('pod-1');
    expect(l).toBe(podLevel('pod-1'));
    const m = /^s0:c(\d+),c(\d+)$/.exec(l);
    expect(m).not.toBeNull();
    expect(Number(m![1])).toBeLessThan(Number(m![2]));
    expect(Number(m![2])).toBeLessThan(1024);
    expect(new Set(['a', 'b', 'c', 'd', 'e', 'f'].map(podLevel)).size).toBe(6);
  });
});
