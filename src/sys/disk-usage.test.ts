// diskUsage over real trees (unprivileged): every inode counted once, and the walk keeps a
// bounded number of file operations in flight however wide the tree is.
import { link, mkdir, mkdtemp, rm, symlink, writeFile } from 'node:fs/promises';
import fsPromises from 'node:fs/promises';
import { syncBuiltinESMExports } from 'node:module';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { diskUsage } from './disk-usage.js';

let root: string;
beforeAll(async () => {
  root = await mkdtemp(join(tmpdir(), 'crib-du-'));
});
afterAll(async () => {
  await rm(root, { recursive: true, force: true });
});

describe('diskUsage', () => {
  it('counts a wide and deep tree: every entry once, hardlinks once, symlinks not followed', async () => {
    const top = join(root, 'tree');
    for (let d = 0; d < 5; d++) {
      const dir = join(top, `d${d}`, 'sub');
      await mkdir(dir, { recursive: true });
      await Promise.all(Array.from({ length: 200 }, (_, f) => writeFile(join(dir, `f${f}`), 'x')));
    }
    await link(join(top, 'd0', 'sub', 'f0'), join(top, 'hard'));
    await symlink('/usr', join(top, 'usr'));
    const u = await diskUsage(top, join(root, 'missing'));
    // top, 5 × (dN, sub, 200 files), the symlink; the hardlink is f0 again.
    expect(u.inodes).toBe(1 + 5 * 202 + 1);
    expect(u.bytes).toBeGreaterThan(0);
  });

  it('keeps at most 4 file operations in flight', async () => {
    const top = join(root, 'wide');
    await mkdir(top);
    await Promise.all(Array.from({ length: 300 }, (_, f) => writeFile(join(top, `f${f}`), 'x')));
    let inFlight = 0;
    let peak = 0;
    const count = <A extends unknown[], R>(f: (...a: A) => Promise<R>) => async (...a: A): Promise<R> => {
      inFlight++;
      peak = Math.max(peak, inFlight);
      try {
        return await f(...a);
      } finally {
        inFlight--;
      }
    };
    // Counted, not replaced: the real lstat runs. syncBuiltinESMExports makes disk-usage.ts's
    // named import see the wrapper.
    const real = fsPromises.lstat;
    const spy = vi.spyOn(fsPromises, 'lstat').mockImplementation(count(real) as typeof real);
    syncBuiltinESMExports();
    try {
      expect((await diskUsage(top)).inodes).toBe(301);
    } finally {
      spy.mockRestore();
      syncBuiltinESMExports();
    }
    expect(peak).toBeGreaterThan(1);
    expect(peak).toBeLessThanOrEqual(4);
  });

  // Under kubelet's exec probes a threadpool round trip took 300-600 ms: a walk waits for one per
  // level of the tree, not two (a directory's lstat and readdir go together).
  it("lists a directory while its lstat is still in flight", async () => {
    const top = join(root, 'levels');
    await mkdir(join(top, 'a', 'b'), { recursive: true });
    await writeFile(join(top, 'a', 'f'), 'x');
    const lstatDone = new Set<string>();
    const listedEarly: string[] = [];
    const listedLate: string[] = [];
    const realLstat = fsPromises.lstat;
    const realReaddir = fsPromises.readdir;
    const lstatSpy = vi.spyOn(fsPromises, 'lstat').mockImplementation((async (...a: Parameters<typeof realLstat>) => {
      // Answered a turn later than it could be: a readdir issued with it is seen first.
      const st = await realLstat(...a);
      await new Promise((r) => setImmediate(r));
      lstatDone.add(String(a[0]));
      return st;
    }) as typeof realLstat);
    const readdirSpy = vi.spyOn(fsPromises, 'readdir').mockImplementation(((...a: Parameters<typeof realReaddir>) => {
      (lstatDone.has(String(a[0])) ? listedLate : listedEarly).push(String(a[0]));
      return realReaddir(...a);
    }) as typeof realReaddir);
    syncBuiltinESMExports();
    let u;
    try {
      u = await diskUsage(top);
    } finally {
      lstatSpy.mockRestore();
      readdirSpy.mockRestore();
      syncBuiltinESMExports();
    }
    expect(u.inodes).toBe(4); // top, a, a/b, a/f
    expect(listedLate).toEqual([]);
    expect(listedEarly.sort()).toEqual([top, join(top, 'a'), join(top, 'a', 'b')]);
  });
});
