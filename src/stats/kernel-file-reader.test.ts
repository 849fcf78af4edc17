// KernelFileReader on ordinary files and procfs (the unit tier has no cgroupfs; the cgroup
// behaviour, a removed cgroup told from a missing file, is in root-test/stats/kernel-file-reader.test.ts).
import { execFileSync } from 'node:child_process';
import { closeSync, constants, open, openSync, readFileSync } from 'node:fs';
import { mkdir, mkdtemp, realpath, rename, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DirectoryGoneError, KernelFileReader } from './kernel-file-reader.js';
import { readProcessNetworkStats } from './network-stats.js';
import { openUnder } from '../../test-support/open-files.js';

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
  // Real path: /proc/self/fd shows where a descriptor leads without symbolic links.
  dir = await realpath(await mkdtemp(join(tmpdir(), 'crib-kfr-')));
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

describe('KernelFileReader', () => {
  it('reads several directories\' files in one job, their current content, keeping none open', async () => {
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
    expect(openUnder(dir)).toEqual([]);
    await writeFile(join(dir, 'g1', 'a'), '1a, changed and longer\n');
    expect((await reader.readDirs(groups))[0]).toEqual(['1a, changed and longer\n', '1b\n', undefined]);
    expect(openUnder(dir)).toEqual([]);
  });

  it('closes a file whose read fails, and rethrows an error that is not a missing file', async () => {
    const reader = new KernelFileReader();
    await mkdir(join(dir, 'a-dir'), { recursive: true });
    // Opening a directory succeeds; reading it fails.
    await expect(reader.read(dir, 'a-dir')).rejects.toMatchObject({ code: 'EISDIR' });
    await expect(reader.readDirs([{ dir, names: ['a-dir'] }])).rejects.toMatchObject({ code: 'EISDIR' });
    expect(openUnder(dir)).toEqual([]);
  });

  it('reads a file only while an anchor is the file it was, checked before and after', async () => {
    // A reader that remembers absences: readIfSame neither records nor believes them (the pid in
    // its path may name another process by the next read).
    const reader = new KernelFileReader();
    const anchor = join(dir, 'anchor');
    await writeFile(anchor, '');
    await writeFile(join(dir, 'anchored'), 'table\n');
    const was = await stat(anchor);
    const identity = { dev: was.dev, ino: was.ino };
    expect(await reader.readIfSame(dir, 'anchored', anchor, identity)).toBe('table\n');
    expect(await reader.readIfSame(dir, 'not-there', anchor, identity)).toBeUndefined();
    await writeFile(join(dir, 'not-there'), 'now it is\n');
    expect(await reader.readIfSame(dir, 'not-there', anchor, identity)).toBe('now it is\n');
    await rm(join(dir, 'not-there'));
    expect(await reader.readIfSame(join(dir, 'no-dir'), 'anchored', anchor, identity)).toBeUndefined();
    expect(await reader.readIfSame(dir, 'anchored', anchor, { dev: was.dev, ino: was.ino + 1 })).toBeUndefined();
    // Replaced by another file under the same name (made while the first still existed, so it
    // cannot have the same inode): not the same any more.
    await writeFile(join(dir, 'anchor-2'), '');
    await rename(join(dir, 'anchor-2'), anchor);
    expect(await reader.readIfSame(dir, 'anchored', anchor, identity)).toBeUndefined();
    await rm(anchor);
    expect(await reader.readIfSame(dir, 'anchored', anchor, identity)).toBeUndefined();
    expect(openUnder(dir)).toEqual([]);
  });

  it('remembers a missing file for absentTtlMs, then looks again', async () => {
    // A clock the test moves: on a loaded machine the write alone can take longer than a real TTL.
    let now = 1000;
    const reader = new KernelFileReader({ absentTtlMs: 50, clock: () => now });
    const d = join(dir, 'ttl');
    const both = [{ dir: d, names: ['a', 'b'] }];
    await mkdir(d, { recursive: true });
    await writeFile(join(d, 'a'), 'one\n');
    expect(await reader.readDirs(both)).toEqual([['one\n', undefined]]);
    await writeFile(join(d, 'a'), 'two, longer\n');
    await writeFile(join(d, 'b'), 'here\n');
    now += 49;
    // b is still believed missing: not looked for again before absentTtlMs.
    expect(await reader.readDirs(both)).toEqual([['two, longer\n', undefined]]);
    expect(await reader.read(d, 'b')).toBeUndefined();
    // Looked for again, still missing: believed missing for absentTtlMs from now.
    await rm(join(d, 'b'));
    now += 1;
    expect(await reader.readDirs(both)).toEqual([['two, longer\n', undefined]]);
    await writeFile(join(d, 'b'), 'back\n');
    now += 49;
    expect(await reader.readDirs(both)).toEqual([['two, longer\n', undefined]]);
    now += 1;
    expect(await reader.readDirs(both)).toEqual([['two, longer\n', 'back\n']]);
    expect(openUnder(dir)).toEqual([]);
  });

  it('without rememberAbsent, looks for a missing file at every read', async () => {
    const reader = new KernelFileReader({ rememberAbsent: false, clock: () => 1000 });
    const d = join(dir, 'no-memory');
    await mkdir(d, { recursive: true });
    expect(await reader.read(d, 'later')).toBeUndefined();
    await writeFile(join(d, 'later'), 'here\n');
    expect(await reader.read(d, 'later')).toBe('here\n');
  });

  it('tells a removed directory from a missing file, and forgets what it lacked', async () => {
    const reader = new KernelFileReader({ absentTtlMs: 60_000, clock: () => 1000 });
    const d = join(dir, 'removed');
    await mkdir(d, { recursive: true });
    await writeFile(join(d, 'a'), 'first\n');
    expect(await reader.readDirs([{ dir: d, names: ['a', 'x'] }])).toEqual([['first\n', undefined]]);
    await rm(d, { recursive: true });
    await expect(reader.read(d, 'a')).rejects.toThrow(DirectoryGoneError);
    expect(await reader.readDirs([{ dir: d, names: ['a', 'x'] }])).toEqual([undefined]);
    // Made again (a new cgroup under the same name): what the old one lacked is not believed.
    await mkdir(d, { recursive: true });
    await writeFile(join(d, 'a'), 'second\n');
    await writeFile(join(d, 'x'), 'x here\n');
    expect(await reader.readDirs([{ dir: d, names: ['a', 'x'] }])).toEqual([['second\n', 'x here\n']]);
  });

  it('remembers absences for at most maxDirs directories, forgetting the least recently read first', async () => {
    const reader = new KernelFileReader({ maxDirs: 2, absentTtlMs: 60_000, clock: () => 1000 });
    const d = [0, 1, 2].map((i) => join(dir, `lru${i}`));
    for (const x of d) await mkdir(x, { recursive: true });
    expect(await reader.read(d[0]!, 'f')).toBeUndefined();
    expect(await reader.read(d[1]!, 'f')).toBeUndefined();
    // Read again: d[0] is now more recently read than d[1].
    expect(await reader.read(d[0]!, 'f')).toBeUndefined();
    expect(await reader.read(d[2]!, 'f')).toBeUndefined();
    for (const x of d) await writeFile(join(x, 'f'), 'here\n');
    const read = await reader.readDirs(d.map((x) => ({ dir: x, names: ['f'] })));
    expect(read).toEqual([[undefined], ['here\n'], [undefined]]);
  });

  it('forgets the absences of a directory not read for idleMs', async () => {
    let now = 1000;
    const reader = new KernelFileReader({ idleMs: 100, absentTtlMs: 60_000, clock: () => now });
    const idle = join(dir, 'idle');
    const busy = join(dir, 'busy');
    for (const x of [idle, busy]) await mkdir(x, { recursive: true });
    expect(await reader.readDirs([{ dir: idle, names: ['f'] }, { dir: busy, names: ['f'] }])).toEqual([[undefined], [undefined]]);
    for (const x of [idle, busy]) await writeFile(join(x, 'f'), 'here\n');
    for (let i = 0; i < 4; i++) {
      now += 30;
      expect(await reader.read(busy, 'f')).toBeUndefined();
    }
    expect(await reader.readDirs([{ dir: idle, names: ['f'] }, { dir: busy, names: ['f'] }])).toEqual([['here\n'], [undefined]]);
  });

  it('reads files larger than its buffer whole', async () => {
    const big = 'x'.repeat(200_000);
    await writeFile(join(dir, 'big'), big);
    const reader = new KernelFileReader();
    expect(await reader.read(dir, 'big')).toBe(big);
  });

  it('reads a list to its end, past the short reads the kernel hands it over in', async () => {
    // /proc/crypto: one seq_file record per algorithm, more than a page of them, and none
    // registered while the test runs.
    const whole = readFileSync('/proc/crypto', 'latin1');
    const reader = new KernelFileReader();
    const first = await reader.read('/proc', 'crypto');
    expect(first!.length).toBeLessThan(whole.length);
    expect(whole.startsWith(first!)).toBe(true);
    expect(await reader.read('/proc', 'crypto', { list: true })).toBe(whole);
  });

  it('reads a list no further than maxBytes, across reads too', async () => {
    const lines = Array.from({ length: 20_000 }, (_, i) => `line ${i}\n`).join('');
    await writeFile(join(dir, 'list'), lines);
    const reader = new KernelFileReader();
    expect(await reader.read(dir, 'list', { list: true, maxBytes: 1000 })).toBe(lines.slice(0, 1000));
    expect(await reader.read(dir, 'list', { list: true, maxBytes: 100_000 })).toBe(lines.slice(0, 100_000));
    expect(await reader.read(dir, 'list', { list: true })).toBe(lines);
  });

  it('yields to the event loop between slices of queued reads', async () => {
    await writeFile(join(dir, 'small'), 's\n');
    const reader = new KernelFileReader({ sliceMs: 1 });
    const n = 2000;
    let done = 0;
    const reads = Array.from({ length: n }, () => reader.read(dir, 'small').then(() => {
      done++;
    }));
    // Queued after the reader's first slice: it runs only once the reader yields.
    const doneThen = await new Promise<number>((resolve) => setImmediate(() => resolve(done)));
    await Promise.all(reads);
    expect(doneThen).toBeGreaterThan(0);
    expect(doneThen).toBeLessThan(n);
    expect(done).toBe(n);
  });

  // The threadpool is where ExecSync's files and the writable-layer walks wait: under kubelet's
  // exec probes a round trip there took hundreds of milliseconds, and a first listing's opens,
  // queued behind them, took 35 s at 100 pods. Opens, reads, closes and the namespace checks of a
  // pod's network reading are done in place, in slices, and need no thread of the pool.
  it('opens, reads and looks up identities without the threadpool', async () => {
    await writeFile(join(dir, 'fresh'), 'new file\n');
    const reader = new KernelFileReader();
    const once = new KernelFileReader({ rememberAbsent: false });
    const ns = await stat('/proc/self/ns/net');
    const [first, missing, gone, group, network] = await withThreadpoolHeld(() => within(Promise.all([
      reader.read(dir, 'fresh'),
      reader.read(dir, 'not-there'),
      reader.read(join(dir, 'no-dir'), 'a').catch((err: unknown) => err),
      reader.readDirs([{ dir, names: ['fresh', 'not-there'] }]),
      readProcessNetworkStats(once, process.pid, ns),
    ]), 5000, 'reads while the threadpool is held'));
    expect(first).toBe('new file\n');
    expect(missing).toBeUndefined();
    expect(gone).toBeInstanceOf(DirectoryGoneError);
    expect(group).toEqual([['new file\n', undefined]]);
    expect(network?.interfaces.some((i) => i.name === 'lo')).toBe(true);
  });
});
