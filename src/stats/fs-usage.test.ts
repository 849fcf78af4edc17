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
    expect(cache.walksInFlight).toBe(0);
    const first = await cache.usage(dir);
    expect(first.inodes).toBe(1n);
    // maxAgeMs 0: walked again, and the next request (within the TTL) is served that walk.
    await cache.prefetch(dir, 0);
    const second = await cache.usage(dir);
    expect(second.inodes).toBe(2n);
    expect(BigInt(second.timestamp)).toBeGreaterThan(BigInt(first.timestamp));
    expect(cache.walksInFlight).toBe(0);
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
    expect(cache.walksInFlight).toBe(0);
    // Without it, the same request starts the walk behind the result it serves.
    expect(await cache.usage(dir)).toBe(first);
    expect(cache.walksInFlight).toBe(1);
  });

  it('counts a missing directory as empty', async () => {
    const cache = new FsUsageCache();
    expect(await cache.usage(join(root, 'nope'))).toMatchObject({ bytes: 0n, inodes: 0n });
  });

  it('serves the last result past the TTL while a new walk runs, and the new one once it is done', async () => {
    const dir = join(root, 'stale');
    await mkdir(dir);
    const cache = new FsUsageCache({ ttlMs: 1, maxStaleMs: 60_000 });
    const first = await cache.usage(dir);
    expect(first.inodes).toBe(1n);
    await writeFile(join(dir, 'a'), 'x');
    await new Promise((r) => setTimeout(r, 5));
    // Past the TTL: answered at once from the last walk, a new walk started behind it.
    const stale = await cache.usage(dir);
    expect(stale).toBe(first);
    expect(cache.walksInFlight).toBe(1);
    const deadline = Date.now() + 10_000;
    let next = stale;
    while (next === stale && Date.now() < deadline) {
      await new Promise((r) => setTimeout(r, 10));
      next = await cache.usage(dir);
    }
    expect(next.inodes).toBe(2n);
    expect(BigInt(next.timestamp)).toBeGreaterThan(BigInt(first.timestamp));
  });

  // sys/disk-usage.ts's gate runs every walk a caller waits for before any walk behind a result
  // served: a listing that serves 100 stale results must not make a layer never walked wait.
  it('asks for a walk behind a served result as one nobody waits for, and for every other as a waited one', async () => {
    const asked: { dir: string; behind?: boolean }[] = [];
    const cache = new FsUsageCache({
      ttlMs: 1,
      maxStaleMs: 60_000,
      walk: async (dir, opts) => {
        asked.push({ dir, behind: opts.behind });
        return { bytes: 4096, inodes: 1 };
      },
    });
    await cache.usage('never-walked');
    await cache.prefetch('read-ahead', 0);
    await new Promise((r) => setTimeout(r, 5));
    await cache.usage('never-walked'); // past the TTL: served, walked behind
    while (cache.walksInFlight > 0) await new Promise((r) => setImmediate(r));
    expect(asked).toEqual([
      { dir: 'never-walked', behind: false },
      { dir: 'read-ahead', behind: false },
      { dir: 'never-walked', behind: true },
    ]);
  });

  it('dates a result from when its walk started, not from when it was queued for its turn', async () => {
    let startedAt = 0n;
    const cache = new FsUsageCache({
      walk: async (_dir, opts) => {
        await new Promise((r) => setTimeout(r, 30)); // queued behind other walks
        startedAt = BigInt(Date.now()) * 1_000_000n;
        opts.onStart?.();
        return { bytes: 4096, inodes: 1 };
      },
    });
    const u = await cache.usage('queued');
    expect(BigInt(u.timestamp)).toBeGreaterThanOrEqual(startedAt - 1_000_000n);
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
