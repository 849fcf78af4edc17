import { describe, expect, it } from 'vitest';
import { addRecent, setRecent } from './recent-entries.js';

describe('recent entries', () => {
  it('keeps a map to its most recently set entries', () => {
    const m = new Map<string, number>();
    for (const k of ['a', 'b', 'c']) setRecent(m, k, 1, 3);
    // Setting "a" again makes it the most recent: "b" is the one dropped by "d".
    setRecent(m, 'a', 2, 3);
    setRecent(m, 'd', 1, 3);
    expect([...m]).toEqual([['c', 1], ['a', 2], ['d', 1]]);
    // A smaller bound drops as many as it takes.
    setRecent(m, 'e', 1, 1);
    expect([...m.keys()]).toEqual(['e']);
  });

  it('keeps a set to its most recently added members', () => {
    const s = new Set<string>();
    for (const k of ['a', 'b', 'c', 'a', 'd']) addRecent(s, k, 3);
    expect([...s]).toEqual(['c', 'a', 'd']);
  });
});
