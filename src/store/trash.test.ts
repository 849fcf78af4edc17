// The trash: removed dirs leave their path in one rename, are deleted in the background (bounded),
// never through what `release` must undo first, and start-up deletes whatever a crash left.
import { existsSync } from 'node:fs';
import { mkdir, mkdtemp, readdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { makeDeepTree } from '../../test-support/deep-tree.js';
import { removeTree } from '../sys/remove-tree.js';
import { Trash } from './trash.js';

describe('Trash', () => {
  let base: string;
  beforeEach(async () => {
    base = await mkdtemp(join(tmpdir(), 'crib-trash-'));
  });
  afterEach(async () => {
    // Not fs.rm: a failed test may leave a tree deeper than PATH_MAX.
    await removeTree(base);
  });

  const makeDir = async (name: string): Promise<string> => {
    const dir = join(base, name);
    await mkdir(join(dir, 'sub'), { recursive: true });
    await writeFile(join(dir, 'sub', 'f'), 'x');
    return dir;
  };

  it('moves a dir out of its path at once and deletes it after; the same name can be made again meanwhile', async () => {
    let releaseGate!: () => void;
    const gate = new Promise<void>((r) => (releaseGate = r));
    const released: string[] = [];
    const trash = new Trash(join(base, 'trash'), { release: async (entry) => { released.push(entry); await gate; } });
    const dir = await makeDir('pod');
    await trash.discard(dir);
    expect(existsSync(dir)).toBe(false);
    expect(trash.inProgress).toBe(1);
    // A second removal of the same name (a new dir at the old path) never collides with the first.
    await makeDir('pod');
    await trash.discard(dir);
    const entries = await readdir(join(base, 'trash'));
    expect(entries).toHaveLength(2);
    expect(entries.every((e) => e.startsWith('pod-'))).toBe(true);
    releaseGate();
    await trash.settled();
    expect(released.sort()).toEqual(entries.map((e) => join(base, 'trash', e)).sort());
    expect(await readdir(join(base, 'trash'))).toEqual([]);
    expect(trash.inProgress).toBe(0);
  });

  it('begins a background deletion only after the caller has carried on: a release\'s synchronous calls never delay its answer', async () => {
    const seen: string[] = [];
    const trash = new Trash(join(base, 'trash'), { release: async () => { seen.push('release'); } });
    await trash.discard(await makeDir('pod'));
    // What the caller does after the discard resolved, its answer among it (all microtasks).
    seen.push('answered');
    await Promise.resolve();
    seen.push('still answering');
    await trash.settled();
    expect(seen).toEqual(['answered', 'still answering', 'release']);
    expect(await readdir(join(base, 'trash'))).toEqual([]);
  });

  it('deletes before answering once maxPending deletions run in the background', async () => {
    let releaseGate!: () => void;
    const gate = new Promise<void>((r) => (releaseGate = r));
    let calls = 0;
    const trash = new Trash(join(base, 'trash'), {
      maxPending: 2,
      release: async () => {
        calls += 1;
        if (calls <= 2) await gate;
      },
    });
    for (const name of ['a', 'b']) await trash.discard(await makeDir(name));
    expect(trash.inProgress).toBe(2);
    // The third is over the bound: deleted inline, so it is gone when discard resolves.
    await trash.discard(await makeDir('c'));
    expect(trash.inProgress).toBe(2);
    expect((await readdir(join(base, 'trash'))).filter((e) => e.startsWith('c-'))).toEqual([]);
    releaseGate();
    await trash.settled();
    expect(await readdir(join(base, 'trash'))).toEqual([]);
  });

  it('keeps an entry whose release fails (never deleting through it) for the sweep, which deletes it', async () => {
    let fail = true;
    const trash = new Trash(join(base, 'trash'), {
      release: async () => {
        if (fail) throw new Error('EBUSY: still mounted');
      },
    });
    await trash.discard(await makeDir('pod'));
    await trash.settled();
    const [entry] = await readdir(join(base, 'trash'));
    expect(existsSync(join(base, 'trash', entry!, 'sub', 'f'))).toBe(true);
    fail = false;
    // Start-up: a new Trash over the same dir deletes what is there.
    expect(await new Trash(join(base, 'trash'), { release: async () => undefined }).sweep()).toBe(1);
    expect(await readdir(join(base, 'trash'))).toEqual([]);
  });

  it('deletes a dir deeper than PATH_MAX, as a container can make its writable layer, when its entries are unbounded trees', async () => {
    const trash = new Trash(join(base, 'trash'), { unboundedTrees: true });
    const dir = join(base, 'layer');
    makeDeepTree(dir);
    await trash.discard(dir);
    await trash.settled();
    expect(await readdir(join(base, 'trash'))).toEqual([]);
  });

  it('is fine with a path that is already gone, and with a trash dir a sweep of its parent deleted', async () => {
    const trash = new Trash(join(base, 'trash'));
    await trash.discard(join(base, 'missing'));
    expect(await trash.sweep()).toBe(0);
    await trash.discard(await makeDir('one'));
    await trash.settled();
    await rm(join(base, 'trash'), { recursive: true });
    const dir = await makeDir('two');
    await trash.discard(dir);
    expect(existsSync(dir)).toBe(false);
    await trash.settled();
    expect(await readdir(join(base, 'trash'))).toEqual([]);
  });
});
