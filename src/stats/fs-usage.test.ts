import { link, mkdir, mkdtemp, rm, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { FsUsageCache } from './fs-usage.js';

let root: string;
beforeAll(async () => {
  root = await mkdtemp(join(tmpdir(), 'crib-stats-fs-'));
});
afterAll(async () => {
  await rm(root, { recursive: true, force: true });
});

/** Asks for every dir's usage at once; the most walks seen running at one time, and the results. */
async function peakWalks(cache: FsUsageCache, dirs: string[]) {
  const pending = Promise.all(dirs.map((d) => cache.usage(d)));
  let done = false;
  void pending.then(() => (done = true));
  let peak = 0;
  while (!done) {
    peak = Math.max(peak, cache.activeWalks);
    await new Promise((r) => setImmediate(r));
  }
  return { peak, results: await pending };
}

describe('FsUsageCache', () => {
  it('counts allocated bytes and inodes, hardlinks once, symlinks not followed', async () => {
    const upper = join(root, 'upper');
    await mkdir(join(upper, 'etc'), { recursive: true });
    // Written out in full (no holes): 1 MiB allocated.
    await writeFile(join(upper, 'etc/big'), Buffer.alloc(1 << 20, 7));
    await link(join(upper, 'etc/big'), join(upper, 'big-link'));
    await symlink('/usr', join(upper, 'usr'));
    const cache = new FsUsageCache();
    const u = await cache.usage(upper);
    // upper, etc, big (twice linked = once), the symlink.
    expect(u.inodes).toBe(4n);
    expect(u.bytes).toBeGreaterThanOrEqual(1n << 20n);
    // Far less than twice the file: the hardlink is not counted again, /usr is not walked.
    expect(u.bytes).toBeLessThan((1n << 20n) + (256n << 10n));
    expect(BigInt(u.timestamp)).toBeGreaterThan(0n);
  });

  it('prefetch walks a dir unless its last walk is younger than maxAgeMs; a request then finds the result', async () => {
    const dir = join(root, 'prefetch');
    await mkdir(dir);
    const cache = new FsUsageCache({ ttlMs: 5000 });
    await cache.prefetch(dir, 1000);
    await writeFile(join(dir, 'a'), 'x');
    // Walked just now: not again.
    await cache.prefetch(dir, 1000);
    expect(cache.activeWalks).toBe(0);
    const first = await cache.usage(dir);
    expect(first.inodes).toBe(1n);
    // maxAgeMs 0: walked again, and the next request (within the TTL) is served that walk.
    await cache.prefetch(dir, 0);
    const second = await cache.usage(dir);
    expect(second.inodes).toBe(2n);
    expect(BigInt(second.timestamp)).toBeGreaterThan(BigInt(first.timestamp));
    expect(cache.activeWalks).toBe(0);
  });

  it('serves a fresh result within the TTL and walks again after it', async () => {
    const dir = join(root, 'ttl');
    await mkdir(dir);
    const cache = new FsUsageCache({ ttlMs: 300 });
    const a = await cache.usage(dir);
    const concurrent = [cache.usage(dir), cache.usage(dir)];
    await writeFile(join(dir, 'new'), 'x');
    expect((await Promise.all(concurrent)).every((r) => r === a)).toBe(true);
    expect((await cache.usage(dir)).inodes).toBe(1n); // cached
    const deadline = Date.now() + 10_000;
    let fresh = await cache.usage(dir);
    while (fresh.inodes === 1n && Date.now() < deadline) {
      await new Promise((r) => setTimeout(r, 50));
      fresh = await cache.usage(dir);
    }
    expect(fresh.inodes).toBe(2n);
    cache.forget(dir);
    await writeFile(join(dir, 'newer'), 'y');
    expect((await cache.usage(dir)).inodes).toBe(3n);
  });

  it('walkBehind false: a result past the TTL is served without starting a walk (one is coming)', async () => {
    const dir = join(root, 'no-walk-behind');
    await mkdir(dir);
    const cache = new FsUsageCache({ ttlMs: 50 });
    const first = await cache.usage(dir);
    await new Promise((r) => setTimeout(r, 80));
    await writeFile(join(dir, 'a'), 'x');
    expect(await cache.usage(dir, { walkBehind: false })).toBe(first);
    expect(cache.activeWalks).toBe(0);
    // Without it, the same request starts the walk behind the result it serves.
    expect(await cache.usage(dir)).toBe(first);
    expect(cache.activeWalks).toBe(1);
  });

  it('counts a missing directory as empty and limits concurrent walks', async () => {
    const cache = new FsUsageCache({ maxWalks: 2 });
    expect(await cache.usage(join(root, 'nope'))).toMatchObject({ bytes: 0n, inodes: 0n });
    const dirs = await Promise.all(Array.from({ length: 20 }, async (_, i) => {
      const d = join(root, `many-${i}`);
      await mkdir(d);
      await writeFile(join(d, 'f'), 'data');
      return d;
    }));
    const { peak, results } = await peakWalks(cache, dirs);
    expect(peak).toBe(2);
    expect(cache.activeWalks).toBe(0);
    expect(results.every((r) => r.inodes === 2n)).toBe(true);
  });

  it('walks 16 layers at once for waiting callers by default (a first listing waits for all)', async () => {
    const cache = new FsUsageCache();
    const dirs = await Promise.all(Array.from({ length: 40 }, async (_, i) => {
      const d = join(root, `first-${i}`);
      await mkdir(d);
      return d;
    }));
    const { peak, results } = await peakWalks(cache, dirs);
    expect(peak).toBe(16);
    expect(results.every((r) => r.inodes === 1n)).toBe(true);
  });

  it('serves the last result past the TTL while a new walk runs, and the new one once it is done', async () => {
    const dir = join(root, 'stale');
    await mkdir(dir);
    const cache = new FsUsageCache({ ttlMs: 1, maxStaleMs: 60_000, maxWalks: 1 });
    const first = await cache.usage(dir);
    expect(first.inodes).toBe(1n);
    await writeFile(join(dir, 'a'), 'x');
    await new Promise((r) => setTimeout(r, 5));
    // Past the TTL: answered at once from the last walk, a new walk started behind it.
    const stale = await cache.usage(dir);
    expect(stale).toBe(first);
    expect(cache.activeWalks).toBe(1);
    const deadline = Date.now() + 10_000;
    let next = stale;
    while (next === stale && Date.now() < deadline) {
      await new Promise((r) => setTimeout(r, 10));
      next = await cache.usage(dir);
    }
    expect(next.inodes).toBe(2n);
    expect(BigInt(next.timestamp)).toBeGreaterThan(BigInt(first.timestamp));
  });

  it('walks behind served results two at a time, and hands a waiting caller\'s walk the next slot before them', async () => {
    const cache = new FsUsageCache({ ttlMs: 1, maxStaleMs: 60_000, maxWalks: 4 });
    const dirs = await Promise.all(Array.from({ length: 20 }, async (_, i) => {
      const d = join(root, `behind-${i}`);
      await mkdir(d);
      return d;
    }));
    expect((await peakWalks(cache, dirs)).peak).toBe(4); // callers waited: maxWalks at once
    await new Promise((r) => setTimeout(r, 5));
    // Past the TTL: every result is served at once, 20 walks queued behind them.
    const served = await Promise.all(dirs.map((d) => cache.usage(d)));
    expect(served.every((u) => u.inodes === 1n)).toBe(true);
    expect(cache.activeWalks).toBe(2);
    // A directory never walked: its caller waits, and its walk starts now, beside the two.
    const fresh = join(root, 'behind-new');
    await mkdir(fresh);
    const waited = cache.usage(fresh);
    expect(cache.activeWalks).toBe(3);
    expect((await waited).inodes).toBe(1n);
    let peak = 0;
    while (cache.activeWalks > 0) {
      peak = Math.max(peak, cache.activeWalks);
      await new Promise((r) => setImmediate(r));
    }
    expect(peak).toBeLessThanOrEqual(2);
  });

  it('makes its caller wait for a new walk when the last result is older than maxStaleMs', async () => {
    const dir = join(root, 'too-old');
    await mkdir(dir);
    const cache = new FsUsageCache({ ttlMs: 1, maxStaleMs: 20 });
    expect((await cache.usage(dir)).inodes).toBe(1n);
    await writeFile(join(dir, 'a'), 'x');
    await new Promise((r) => setTimeout(r, 40));
    expect((await cache.usage(dir)).inodes).toBe(2n);
  });

  // sys/disk-usage.ts keeps a thread for quick walks: a layer of millions of files is walked as a
  // long one once its size is known, so it never holds both threads.
  it('walks a layer as a quick one until a walk of it finds 20,000 inodes or more', async () => {
    const asked: { dir: string; quick?: boolean }[] = [];
    const sizes: Record<string, number> = { small: 5, large: 20_000 };
    const cache = new FsUsageCache({
      ttlMs: 0,
      walk: async (dir, opts) => {
        asked.push({ dir, quick: opts.quick });
        return { bytes: 4096, inodes: sizes[dir]! };
      },
    });
    for (let i = 0; i < 2; i++) {
      await cache.usage('small');
      await cache.usage('large');
      await new Promise((r) => setTimeout(r, 5)); // past the TTL: a new walk each time
    }
    expect(asked).toEqual([
      { dir: 'small', quick: true }, { dir: 'large', quick: true },
      { dir: 'small', quick: true }, { dir: 'large', quick: false },
    ]);
  });
});
