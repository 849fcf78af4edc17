// When a pull's flush of the snapshots flushes: when a layer no finished flush covers exists, or
// one its pull committed and has not vouched for (only its own descriptor can); ahead, in the
// background, one flush at a time; a failure ahead fails the pull. Layers a failed flush may
// have lost are not reused, and a pull reusing another's layer waits for that pull's flush.
// The flushes are real (syncfs); the test only counts them and the descriptors they went through.
// What the kernel tells each descriptor of a real failing disk: root-test/snapshot/snapshot-flush.test.ts.
import { writeFileSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { syncFilesystem } from '../sys/libc.js';
import type { Syncfs } from './snapshot-flush.js';
import { Snapshotter } from './snapshotter.js';

const chain = (c: string): string => `sha256:${c.repeat(64)}`;
const layer = async (dir: string): Promise<void> => writeFileSync(join(dir, 'f'), 'layer');

describe("a pull's flush of the snapshots", () => {
  let root: string;
  /** The descriptor of each syncfs, in order. */
  let flushedFds: number[];
  /** While set, a flush waits for it (after syncfs has run). */
  let gate: Promise<void> | undefined;
  /** While set, the next flush to start waits for it before its syncfs (and takes it). */
  let holdNext: Promise<void> | undefined;
  const syncfs: Syncfs = async (fd, dir) => {
    const held = holdNext;
    holdNext = undefined;
    if (held) await held;
    flushedFds.push(fd);
    await syncFilesystem(fd, dir);
    await gate;
  };
  const snapshotter = async (opts = { syncfs }): Promise<Snapshotter> => {
    const snaps = new Snapshotter(root, opts);
    await snaps.load();
    return snaps;
  };
  /** One pull: open its flush, run `body`, flush, close. */
  const pull = async (snaps: Snapshotter, body: () => Promise<void> = async () => {}): Promise<void> => {
    const flush = await snaps.openFlush();
    try {
      await body();
      await flush.flush();
    } finally {
      await flush.close();
    }
  };
  beforeEach(async () => {
    root = await mkdtemp(join(tmpdir(), 'crib-snap-flush-'));
    flushedFds = [];
    gate = undefined;
    holdNext = undefined;
  });
  afterEach(() => rm(root, { recursive: true, force: true }));

  it('flushes only what was committed since the last flush, and once after start', async () => {
    const snaps = await snapshotter();
    // A restarted daemon cannot tell what its predecessor left unflushed.
    await pull(snaps);
    expect(flushedFds).toHaveLength(1);
    // Nothing committed since: a re-pull of a present image flushes nothing.
    await pull(snaps);
    expect(flushedFds).toHaveLength(1);
    await pull(snaps, async () => {
      await snaps.ensureLayer(chain('a'), undefined, layer);
      await snaps.ensureLayer(chain('b'), chain('a'), layer);
      expect(flushedFds).toHaveLength(1);
    });
    expect(flushedFds).toHaveLength(2);
    await pull(snaps);
    expect(flushedFds).toHaveLength(2);
  });

  it('flushes a layer through the descriptor of the pull that committed it, though another pull flushed it first', async () => {
    const snaps = await snapshotter();
    await pull(snaps);
    const first = await snaps.openFlush();
    const second = await snaps.openFlush();
    try {
      let release!: () => void;
      holdNext = new Promise<void>((resolve) => (release = resolve));
      // The commit starts `first`'s flush, held here until `second` has flushed the layer.
      await snaps.ensureLayer(chain('a'), undefined, layer, first);
      await second.flush();
      expect(flushedFds).toHaveLength(2);
      release();
      // On disk now; but only `first`'s descriptor can tell whether a write of its pull failed.
      await first.flush();
      expect(flushedFds).toHaveLength(3);
      expect(flushedFds[2]).not.toBe(flushedFds[1]);
      // Each checked it: no more flushes.
      await first.flush();
      await second.flush();
      expect(flushedFds).toHaveLength(3);
    } finally {
      await first.close();
      await second.close();
    }
    // A pull that began after both flushes has nothing to check.
    await pull(snaps);
    expect(flushedFds).toHaveLength(3);
  });

  it('flushes again for a layer committed while a flush was under way', async () => {
    const snaps = await snapshotter();
    await pull(snaps);
    await pull(snaps, async () => {
      await snaps.ensureLayer(chain('a'), undefined, layer);
      let release!: () => void;
      gate = new Promise<void>((resolve) => (release = resolve));
      // Another pull's flush, begun before the next commit: it may not cover that layer's files.
      const other = pull(snaps);
      await snaps.ensureLayer(chain('b'), chain('a'), layer);
      release();
      await other;
      gate = undefined;
      expect(flushedFds).toHaveLength(2);
    });
    expect(flushedFds).toHaveLength(3);
    await pull(snaps);
    expect(flushedFds).toHaveLength(3);
  });

  it('flushes ahead in the background, one flush at a time, and the last flush has nothing left to do', async () => {
    const snaps = await snapshotter();
    await pull(snaps);
    const flush = await snaps.openFlush();
    try {
      // Nothing committed: nothing to flush ahead.
      flush.flushAhead();
      expect(flushedFds).toHaveLength(1);
      await snaps.ensureLayer(chain('a'), undefined, layer);
      let release!: () => void;
      gate = new Promise<void>((resolve) => (release = resolve));
      flush.flushAhead();
      expect(flushedFds).toHaveLength(2);
      // One at a time: a commit meanwhile waits for the next.
      await snaps.ensureLayer(chain('b'), chain('a'), layer);
      flush.flushAhead();
      expect(flushedFds).toHaveLength(2);
      release();
      gate = undefined;
      // The pull's own flush covers the layer committed after the one ahead began, and no more.
      await flush.flush();
      expect(flushedFds).toHaveLength(3);
      await flush.flush();
      expect(flushedFds).toHaveLength(3);
    } finally {
      await flush.close();
    }
  });

  it("fails the pull's flush with the error of a flush ahead, waiting for it first, and flushes again after", async () => {
    let hold: Promise<void> | undefined;
    let failNext = false;
    const snaps = await snapshotter({
      syncfs: async (fd, dir) => {
        flushedFds.push(fd);
        await hold;
        if (failNext) {
          failNext = false;
          throw new Error('syncfs: input/output error');
        }
        await syncFilesystem(fd, dir);
      },
    });
    await pull(snaps);
    const flush = await snaps.openFlush();
    try {
      await snaps.ensureLayer(chain('a'), undefined, layer);
      let release!: () => void;
      hold = new Promise<void>((resolve) => (release = resolve));
      failNext = true;
      flush.flushAhead();
      // Its descriptor took the error: a syncfs through it now would pass.
      const finished = flush.flush();
      release();
      await expect(finished).rejects.toThrow('syncfs: input/output error');
      expect(flushedFds).toHaveLength(2);
      // Reported once; the layer is still unflushed, so the next flush runs.
      await flush.flush();
      expect(flushedFds).toHaveLength(3);
    } finally {
      await flush.close();
    }
  });

  it('closes its descriptor only once a flush ahead is done with it', async () => {
    let syncedOn: number | undefined;
    let release!: () => void;
    const hold = new Promise<void>((resolve) => (release = resolve));
    const snaps = await snapshotter({
      syncfs: async (fd, dir) => {
        await hold;
        await syncFilesystem(fd, dir);
        syncedOn = fd;
      },
    });
    const flush = await snaps.openFlush();
    await snaps.ensureLayer(chain('a'), undefined, layer);
    flush.flushAhead();
    const closed = flush.close();
    release();
    await closed;
    // The syncfs ran on the open descriptor (a closed one fails with EBADF).
    expect(syncedOn).toBeGreaterThan(2);
  });
});

/** A real syncfs whose next call, once armed, fails as an I/O error would. */
function failOnce(armed: boolean): { syncfs: Syncfs; arm(): void } {
  return {
    syncfs: async (fd, dir) => {
      if (armed) {
        armed = false;
        throw new Error('syncfs: input/output error');
      }
      await syncFilesystem(fd, dir);
    },
    arm: () => (armed = true),
  };
}

describe('layers a failed flush may have lost', () => {
  let root: string;
  beforeEach(async () => {
    root = await mkdtemp(join(tmpdir(), 'crib-snap-lost-'));
  });
  afterEach(() => rm(root, { recursive: true, force: true }));

  it('are not reused: the next pull unpacks them again, and only that copy is left', async () => {
    const failing = failOnce(false);
    const snaps = new Snapshotter(root, { syncfs: failing.syncfs });
    await snaps.load();
    let unpacks = 0;
    const unpack = async (dir: string): Promise<void> => {
      unpacks++;
      writeFileSync(join(dir, 'f'), 'layer');
    };
    // Flushed: safe, whatever fails later.
    const flushed = await snaps.openFlush();
    await snaps.ensureLayer(chain('a'), undefined, unpack, flushed);
    await flushed.flush();
    await flushed.close();

    failing.arm();
    const failingPull = await snaps.openFlush();
    // Its commit starts a flush, which fails.
    await snaps.ensureLayer(chain('b'), chain('a'), unpack, failingPull);
    await expect(failingPull.flush()).rejects.toThrow('input/output error');
    await failingPull.close();
    expect(snaps.has(chain('a'))).toBe(true);
    expect(snaps.has(chain('b'))).toBe(false);
    expect(snaps.get(chain('b'))).toBeUndefined();
    // A pull opened after the error was reported would hear nothing of it: it must not reuse it.
    const lostId = snaps.list().find((s) => s.chainId === chain('b'))!.id;
    await expect(snaps.ensureLayer(chain('c'), chain('b'), unpack)).rejects.toThrow(/may have lost part of its parent .*; pull the image again$/);
    const again = await snaps.openFlush();
    const b = await snaps.ensureLayer(chain('b'), chain('a'), unpack, again);
    await snaps.ensureLayer(chain('c'), chain('b'), unpack, again);
    await again.flush([chain('a'), chain('b'), chain('c')]);
    await again.close();
    expect(unpacks).toBe(4);
    expect(b.id).not.toBe(lostId);
    await snaps.settled();
    // One record per chain on disk, the lost copy gone.
    const reloaded = new Snapshotter(root);
    await reloaded.load();
    expect(reloaded.list().map((s) => s.chainId).sort()).toEqual([chain('a'), chain('b'), chain('c')]);
    expect(reloaded.get(chain('b'))!.id).toBe(b.id);
  });

  it('that no pull needs again are removed by gc, and a later copy is whole', async () => {
    let fail = true;
    const snaps = new Snapshotter(root, {
      syncfs: async (fd, dir) => (fail ? Promise.reject(new Error('syncfs: input/output error')) : syncFilesystem(fd, dir)),
    });
    await snaps.load();
    const failing = await snaps.openFlush();
    await snaps.ensureLayer(chain('a'), undefined, layer, failing);
    await expect(failing.flush()).rejects.toThrow('input/output error');
    await failing.close();
    expect(await snaps.gc([])).toEqual([chain('a')]);
    expect(snaps.list()).toEqual([]);
    fail = false;
    const flush = await snaps.openFlush();
    await snaps.ensureLayer(chain('a'), undefined, layer, flush);
    await flush.flush([chain('a')]);
    await flush.close();
    expect(snaps.has(chain('a'))).toBe(true);
  });

  it("are the failed pull's own: a layer another pull committed and vouched for stays", async () => {
    const snaps = new Snapshotter(root, { syncfs: failOnce(true).syncfs });
    await snaps.load();
    const failing = await snaps.openFlush();
    const fine = await snaps.openFlush();
    await snaps.ensureLayer(chain('a'), undefined, layer, failing);
    await snaps.ensureLayer(chain('b'), undefined, layer, fine);
    await expect(failing.flush([chain('a')])).rejects.toThrow('input/output error');
    // Its own descriptor saw no error for the layer its pull wrote: the image it records is whole.
    await fine.flush([chain('b')]);
    expect(snaps.has(chain('a'))).toBe(false);
    expect(snaps.has(chain('b'))).toBe(true);
    await failing.close();
    await fine.close();
  });

  it("are waited for by a pull that reused them until their own pull's flush vouches for them, or fails", async () => {
    let failNext = false;
    let hold: Promise<void> | undefined;
    const snaps = new Snapshotter(root, {
      syncfs: async (fd, dir) => {
        const fail = failNext;
        failNext = false;
        await hold;
        if (fail) throw new Error('syncfs: input/output error');
        await syncFilesystem(fd, dir);
      },
    });
    await snaps.load();
    for (const outcome of ['vouched', 'lost', 'owner closed'] as const) {
      const c = chain(outcome === 'vouched' ? 'a' : outcome === 'lost' ? 'b' : 'c');
      let release!: () => void;
      hold = new Promise<void>((resolve) => (release = resolve));
      failNext = outcome === 'lost';
      const owner = await snaps.openFlush();
      // The commit starts the owner's flush (held here).
      await snaps.ensureLayer(c, undefined, layer, owner);
      // Another pull, begun after the commit (its descriptor may never hear of the layer's
      // errors), reuses the layer: its flush waits for the owner's.
      const reuser = await snaps.openFlush();
      let settled = false;
      const reused = reuser.flush([c]).finally(() => (settled = true));
      reused.catch(() => undefined);
      await new Promise((resolve) => setTimeout(resolve, 20));
      expect(settled).toBe(false);
      // A pull that fails before its flush still ends the flushes it started as it closes.
      const ownerDone = outcome === 'owner closed' ? owner.close() : owner.flush([c]).catch((e: unknown) => e);
      release();
      hold = undefined;
      await ownerDone;
      if (outcome === 'lost') await expect(reused).rejects.toThrow(/may have lost data.*pull the image again$/);
      else await reused;
      await owner.close();
      await reuser.close();
    }
  });

  it('include any layer a pull commits after its descriptor took an error: it cannot vouch for it', async () => {
    const snaps = new Snapshotter(root, { syncfs: failOnce(true).syncfs });
    await snaps.load();
    const flush = await snaps.openFlush();
    await snaps.ensureLayer(chain('a'), undefined, layer, flush);
    // The commit's flush ahead failed; a commit already under way then ends.
    await new Promise((resolve) => setTimeout(resolve, 10));
    expect(() => flush.throwIfFailed()).toThrow('input/output error');
    await snaps.ensureLayer(chain('b'), undefined, layer, flush);
    await flush.close();
    expect(snaps.has(chain('a'))).toBe(false);
    expect(snaps.has(chain('b'))).toBe(false);
  });
});
