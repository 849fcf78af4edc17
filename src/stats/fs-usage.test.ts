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

  it('serves a fresh result within the TTL and walks again after it', async () => {
    const dir = join(root, 'ttl');
    await mkdir(dir);
    const cache = new FsUsageCache(300);
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

  it('counts a missing directory as empty and limits concurrent walks', async () => {
    const cache = new FsUsageCache(2000, 2);
    expect(await cache.usage(join(root, 'nope'))).toMatchObject({ bytes: 0n, inodes: 0n });
    const dirs = await Promise.all(Array.from({ length: 20 }, async (_, i) => {
      const d = join(root, `many-${i}`);
      await mkdir(d);
      await writeFile(join(d, 'f'), 'data');
      return d;
    }));
    const pending = Promise.all(dirs.map((d) => cache.usage(d)));
    let done = false;
    void pending.then(() => (done = true));
    let peak = 0;
    while (!done) {
      peak = Math.max(peak, cache.activeWalks);
      await new Promise((r) => setImmediate(r));
    }
    expect(peak).toBe(2);
    expect(cache.activeWalks).toBe(0);
    expect((await pending).every((r) => r.inodes === 2n)).toBe(true);
  });
});
