// When the snapshotter flushes its filesystem: once per layer committed with syncOnCommit, for
// syncAll (a pull's one flush before its image record) only when a layer was committed since the
// last flush finished, and ahead of it in the background while a pull's last layers unpack. The flushes are real (syncfs); the test only counts them.
import { writeFileSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { flushFilesystem } from '../sys/libc.js';
import { Snapshotter } from './snapshotter.js';

const chain = (c: string): string => `sha256:${c.repeat(64)}`;
const layer = async (dir: string): Promise<void> => writeFileSync(join(dir, 'f'), 'layer');

describe('Snapshotter flushes', () => {
  let root: string;
  let flushed: string[];
  /** While set, a flush waits for it (after syncfs has run). */
  let gate: Promise<void> | undefined;
  const flush = async (dir: string): Promise<void> => {
    flushed.push(dir);
    await flushFilesystem(dir);
    await gate;
  };
  beforeEach(async () => {
    root = await mkdtemp(join(tmpdir(), 'crib-snap-flush-'));
    flushed = [];
    gate = undefined;
  });
  afterEach(() => rm(root, { recursive: true, force: true }));

  it('flushes for syncAll only what was committed since the last flush, and once after start', async () => {
    const snaps = new Snapshotter(root, { syncOnCommit: false, flush });
    await snaps.load();
    // A restarted daemon cannot tell what its predecessor left unflushed.
    await snaps.syncAll();
    expect(flushed).toEqual([snaps.dir]);
    // Nothing committed since: a re-pull of a present image flushes nothing.
    await snaps.syncAll();
    expect(flushed).toHaveLength(1);
    await snaps.ensureLayer(chain('a'), undefined, layer);
    await snaps.ensureLayer(chain('b'), chain('a'), layer);
    expect(flushed).toHaveLength(1);
    await snaps.syncAll();
    await snaps.syncAll();
    expect(flushed).toEqual([snaps.dir, snaps.dir]);
  });

  it('flushes again for a layer committed while a flush was under way', async () => {
    const snaps = new Snapshotter(root, { syncOnCommit: false, flush });
    await snaps.load();
    await snaps.syncAll();
    await snaps.ensureLayer(chain('a'), undefined, layer);
    let release!: () => void;
    gate = new Promise<void>((resolve) => (release = resolve));
    const first = snaps.syncAll();
    // Committed after that flush began: it may not have covered this layer's files.
    await snaps.ensureLayer(chain('b'), chain('a'), layer);
    release();
    await first;
    gate = undefined;
    expect(flushed).toHaveLength(2);
    await snaps.syncAll();
    expect(flushed).toHaveLength(3);
    await snaps.syncAll();
    expect(flushed).toHaveLength(3);
  });

  it('flushes ahead in the background, one flush at a time, and syncAll then has nothing left to do', async () => {
    const snaps = new Snapshotter(root, { syncOnCommit: false, flush });
    await snaps.load();
    await snaps.syncAll();
    // Nothing committed: nothing to flush ahead.
    snaps.flushAhead();
    expect(flushed).toHaveLength(1);
    await snaps.ensureLayer(chain('a'), undefined, layer);
    let release!: () => void;
    gate = new Promise<void>((resolve) => (release = resolve));
    snaps.flushAhead();
    expect(flushed).toHaveLength(2);
    // One at a time: a commit meanwhile waits for the next.
    await snaps.ensureLayer(chain('b'), chain('a'), layer);
    snaps.flushAhead();
    expect(flushed).toHaveLength(2);
    release();
    gate = undefined;
    // The pull's own flush covers the layer committed after the one ahead began, and no more.
    await snaps.syncAll();
    expect(flushed).toHaveLength(3);
    await snaps.syncAll();
    expect(flushed).toHaveLength(3);
  });

  it("fails the next syncAll with a background flush's error, waiting for that flush first", async () => {
    let hold: Promise<void> | undefined;
    let failNext = false;
    const snaps = new Snapshotter(root, {
      syncOnCommit: false,
      flush: async (dir) => {
        flushed.push(dir);
        await hold;
        if (failNext) {
          failNext = false;
          throw new Error('syncfs: input/output error');
        }
        await flushFilesystem(dir);
      },
    });
    await snaps.load();
    await snaps.syncAll();
    await snaps.ensureLayer(chain('a'), undefined, layer);
    let release!: () => void;
    hold = new Promise<void>((resolve) => (release = resolve));
    failNext = true;
    snaps.flushAhead();
    // The kernel tells a write error to one syncfs only: the pull's flush must not pass meanwhile.
    const pulled = snaps.syncAll();
    release();
    await expect(pulled).rejects.toThrow('syncfs: input/output error');
    expect(flushed).toHaveLength(2);
    // Reported once: the next syncAll flushes the layer again.
    await snaps.syncAll();
    expect(flushed).toHaveLength(3);
  });

  it('flushes each layer before its commit with syncOnCommit, and syncAll has nothing left to do', async () => {
    const snaps = new Snapshotter(root, { flush });
    await snaps.load();
    await snaps.syncAll();
    await snaps.ensureLayer(chain('a'), undefined, layer);
    expect(flushed).toHaveLength(2);
    expect(flushed[1]).toMatch(new RegExp(`^${snaps.dir}/tmp-[0-9a-f]+/fs$`));
    await snaps.syncAll();
    expect(flushed).toHaveLength(2);
  });
});
