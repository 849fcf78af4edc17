// KernelFileReader on ordinary files (the unit tier has no cgroupfs; the cgroup behaviour, ENODEV
// on removal included, is in root-test/stats/kernel-file-reader.test.ts).
import { execFileSync } from 'node:child_process';
import { closeSync, constants, open, openSync } from 'node:fs';
import { mkdir, mkdtemp, rename, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DirectoryGoneError, KernelFileReader } from './kernel-file-reader.js';
import { readProcessNetworkStats } from './network-stats.js';

/**
 * Runs `during` while every thread of libuv's pool is held: each is in an open() of a FIFO for
 * reading, which waits until a writer opens it. The FIFO is opened for writing afterwards (so
 * the held threads are released whatever `during` did).
 */
async function withThreadpoolHeld<T>(during: () => Promise<T>): Promise<T> {
  const fifo = join(dir, `fifo-${Math.random().toString(36).slice(2)}`);
  execFileSync('mkfifo', [fifo]);
  const threads = Number(process.env.UV_THREADPOOL_SIZE ?? 4);
  const held = Array.from({ length: threads }, () => new Promise<number>((resolve, reject) => {
    open(fifo, constants.O_RDONLY, (err, fd) => (err ? reject(err) : resolve(fd)));
  }));
  // Let the pool's threads pick the opens up.
  await new Promise((r) => setTimeout(r, 50));
  try {
    return await during();
  } finally {
    // A reader waiting in open() counts as a reader: a non-blocking open for writing succeeds.
    closeSync(openSync(fifo, constants.O_WRONLY | constants.O_NONBLOCK));
    for (const fd of await Promise.all(held)) closeSync(fd);
  }
}

/** `p`, or a rejection once `ms` have passed. */
const within = <T>(p: Promise<T>, ms: number, what: string): Promise<T> => Promise.race([
  p, new Promise<never>((_, reject) => setTimeout(() => reject(new Error(`${what}: not done after ${ms} ms`)), ms)),
]);

let dir: string;
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'crib-kfr-'));
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

describe('KernelFileReader', () => {
  it('reads several directories\' files in one job, through the descriptors it keeps', async () => {
    await mkdir(join(dir, 'g1'), { recursive: true });
    await mkdir(join(dir, 'g2'), { recursive: true });
    await writeFile(join(dir, 'g1', 'a'), '1a\n');
    await writeFile(join(dir, 'g1', 'b'), '1b\n');
    await writeFile(join(dir, 'g2', 'a'), '2a\n');
    const reader = new KernelFileReader();
    const groups = [
      { dir: join(dir, 'g1'), names: ['a', 'b', 'c'] },
      { dir: join(dir, 'gone'), names: ['a'] },
      { dir: join(dir, 'g2'), names: ['a'] },
    ];
    // One job: nothing else queued on the reader runs between the groups' reads.
    let between = false;
    const all = reader.readDirs(groups);
    const other = reader.read(join(dir, 'g2'), 'a').then(() => {
      between = true;
    });
    expect(await all).toEqual([['1a\n', '1b\n', undefined], undefined, ['2a\n']]);
    expect(between).toBe(false);
    await other;
    expect(reader.openDescriptors).toBe(3);
    await writeFile(join(dir, 'g1', 'a'), '1a, changed\n');
    expect((await reader.readDirs(groups))[0]).toEqual(['1a, changed\n', '1b\n', undefined]);
    expect(reader.openDescriptors).toBe(3);
    reader.close();
    expect(reader.openDescriptors).toBe(0);
  });

  it('reads a file only while an anchor is the file it was, checked before and after', async () => {
    const reader = new KernelFileReader({ keepOpen: false });
    const anchor = join(dir, 'anchor');
    await writeFile(anchor, '');
    await writeFile(join(dir, 'anchored'), 'table\n');
    const was = await stat(anchor);
    const identity = { dev: was.dev, ino: was.ino };
    expect(await reader.readIfSame(dir, 'anchored', anchor, identity)).toBe('table\n');
    expect(await reader.readIfSame(dir, 'not-there', anchor, identity)).toBeUndefined();
    expect(await reader.readIfSame(join(dir, 'no-dir'), 'anchored', anchor, identity)).toBeUndefined();
    expect(await reader.readIfSame(dir, 'anchored', anchor, { dev: was.dev, ino: was.ino + 1 })).toBeUndefined();
    // Replaced by another file under the same name (made while the first still existed, so it
    // cannot have the same inode): not the same any more.
    await writeFile(join(dir, 'anchor-2'), '');
    await rename(join(dir, 'anchor-2'), anchor);
    expect(await reader.readIfSame(dir, 'anchored', anchor, identity)).toBeUndefined();
    await rm(anchor);
    expect(await reader.readIfSame(dir, 'anchored', anchor, identity)).toBeUndefined();
    expect(reader.openDescriptors).toBe(0);
  });

  it('keeps one descriptor per file and reads the current content through it', async () => {
    const reader = new KernelFileReader();
    await writeFile(join(dir, 'a'), 'one\n');
    expect(await reader.read(dir, 'a')).toBe('one\n');
    await writeFile(join(dir, 'a'), 'two, longer\n');
    expect(await reader.read(dir, 'a')).toBe('two, longer\n');
    expect(reader.openDescriptors).toBe(1);
    reader.forgetDir(dir);
    expect(reader.openDescriptors).toBe(0);
    expect(await reader.read(dir, 'a')).toBe('two, longer\n');
    reader.close();
    expect(reader.openDescriptors).toBe(0);
  });

  it('remembers a missing file for absentTtlMs, then looks again', async () => {
    // A clock the test moves: on a loaded machine the write alone can take longer than a real TTL.
    let now = 1000;
    const reader = new KernelFileReader({ absentTtlMs: 50, clock: () => now });
    expect(await reader.read(dir, 'later')).toBeUndefined();
    await writeFile(join(dir, 'later'), 'here\n');
    now += 49;
    expect(await reader.read(dir, 'later')).toBeUndefined();
    now += 1;
    expect(await reader.read(dir, 'later')).toBe('here\n');
    // Found after all: kept open like any other file.
    expect(reader.openDescriptors).toBe(1);
    reader.close();
  });

  it('without keepDescriptors: opens, reads and closes each file, remembering only which are missing', async () => {
    let now = 1000;
    const reader = new KernelFileReader({ keepDescriptors: false, absentTtlMs: 50, clock: () => now });
    await mkdir(join(dir, 'nk'), { recursive: true });
    await writeFile(join(dir, 'nk', 'a'), 'one\n');
    expect(await reader.readDirs([{ dir: join(dir, 'nk'), names: ['a', 'b'] }])).toEqual([['one\n', undefined]]);
    expect(reader.openDescriptors).toBe(0);
    await writeFile(join(dir, 'nk', 'a'), 'two, longer\n');
    await writeFile(join(dir, 'nk', 'b'), 'here\n');
    // b is still remembered missing: not looked for again before absentTtlMs.
    expect(await reader.readDirs([{ dir: join(dir, 'nk'), names: ['a', 'b'] }])).toEqual([['two, longer\n', undefined]]);
    now += 50;
    expect(await reader.readDirs([{ dir: join(dir, 'nk'), names: ['a', 'b'] }])).toEqual([['two, longer\n', 'here\n']]);
    expect(reader.openDescriptors).toBe(0);
    await expect(reader.read(join(dir, 'nk-gone'), 'a')).rejects.toThrow(DirectoryGoneError);
  });

  it('reads files larger than its buffer whole', async () => {
    const big = 'x'.repeat(200_000);
    await writeFile(join(dir, 'big'), big);
    const reader = new KernelFileReader();
    expect(await reader.read(dir, 'big')).toBe(big);
    reader.close();
  });

  it('throws DirectoryGoneError for a missing directory, and keeps nothing open without keepOpen', async () => {
    const reader = new KernelFileReader({ keepOpen: false });
    await expect(reader.read(join(dir, 'nope'), 'a')).rejects.toThrow(DirectoryGoneError);
    expect(await reader.read(dir, 'a')).toBe('two, longer\n');
    expect(reader.openDescriptors).toBe(0);
  });

  it('closes the least recently read directories beyond maxOpen, never one being read', async () => {
    const reader = new KernelFileReader({ maxOpen: 3 });
    for (let i = 0; i < 6; i++) {
      await mkdir(join(dir, `d${i}`), { recursive: true });
      await writeFile(join(dir, `d${i}`, 'f'), `${i}\n`);
    }
    const all = await Promise.all(Array.from({ length: 6 }, (_, i) => reader.read(join(dir, `d${i}`), 'f')));
    expect(all).toEqual(['0\n', '1\n', '2\n', '3\n', '4\n', '5\n']);
    expect(reader.openDescriptors).toBeLessThanOrEqual(3);
    reader.close();
    expect(reader.openDescriptors).toBe(0);
  });

  // The threadpool is where ExecSync's files and the writable-layer walks wait: under kubelet's
  // exec probes a round trip there took hundreds of milliseconds, and a first listing's opens,
  // queued behind them, took 35 s at 100 pods. Opens, reads, closes and the namespace checks of a
  // pod's network reading are done in place, in slices, and need no thread of the pool.
  it('opens, reads and looks up identities without the threadpool', async () => {
    await writeFile(join(dir, 'fresh'), 'new file\n');
    const kept = new KernelFileReader();
    const once = new KernelFileReader({ keepOpen: false });
    const ns = await stat('/proc/self/ns/net');
    try {
      const [first, missing, gone, group, network] = await withThreadpoolHeld(() => within(Promise.all([
        kept.read(dir, 'fresh'),
        kept.read(dir, 'not-there'),
        kept.read(join(dir, 'no-dir'), 'a').catch((err: unknown) => err),
        kept.readDirs([{ dir, names: ['fresh', 'not-there'] }]),
        readProcessNetworkStats(once, process.pid, ns),
      ]), 5000, 'reads while the threadpool is held'));
      expect(first).toBe('new file\n');
      expect(missing).toBeUndefined();
      expect(gone).toBeInstanceOf(DirectoryGoneError);
      expect(group).toEqual([['new file\n', undefined]]);
      expect(network?.interfaces.some((i) => i.name === 'lo')).toBe(true);
      expect(kept.openDescriptors).toBe(1);
      expect(once.openDescriptors).toBe(0);
    } finally {
      kept.close();
    }
  });
});
