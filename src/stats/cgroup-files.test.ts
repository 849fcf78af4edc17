import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  CgroupFileTexts, countedProcs, countProcs, floorSub, limited, parseFlatKeyed, parsePressure, parseSingle,
} from './cgroup-files.js';
import { DirectoryGoneError, KernelFileReader } from './kernel-file-reader.js';

let dir: string;
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'crib-stats-files-'));
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

describe('cgroup file parsers', () => {
  it('parses flat keyed files into bigints, skipping lines that are not "key number"', () => {
    expect(parseFlatKeyed('usage_usec 18446744073709551615\nuser_usec 2\n\nbad line here\nneg -1\nx\n'))
      .toEqual(new Map([['usage_usec', 18446744073709551615n], ['user_usec', 2n]]));
  });

  it('parses only the keys asked for, and the same lines as without them', () => {
    const text = 'total_rss 10\nrss 3\n  total_cache\t7 \ntotal_pgfault 1 2\ntotal_pgmajfault x\ntotal_inactive_file\r\n';
    expect(parseFlatKeyed(text, new Set(['total_rss', 'total_cache', 'total_pgfault', 'total_pgmajfault', 'total_inactive_file'])))
      .toEqual(new Map([['total_rss', 10n], ['total_cache', 7n]]));
    expect(parseFlatKeyed(text)).toEqual(new Map([['total_rss', 10n], ['rss', 3n], ['total_cache', 7n]]));
    expect(parseFlatKeyed('a 1')).toEqual(new Map([['a', 1n]]));
  });

  it('parses single values, "max" as no value, and names a file holding garbage', () => {
    expect(parseSingle('4096\n')).toBe(4096n);
    expect(parseSingle('max\n')).toBeUndefined();
    expect(() => parseSingle('12k')).toThrow('expected a number, read "12k"');
    const f = new CgroupFileTexts('/cg', ['memory.max', 'pids.current'], ['12k\n', undefined]);
    expect(() => f.single('memory.max')).toThrow('cgroup file /cg/memory.max: expected a number, read "12k"');
    expect(f.single('pids.current')).toBeUndefined();
    // A file the caller did not read is a bug, not an absent file.
    expect(() => f.single('memory.current')).toThrow('memory.current was not read');
  });

  it('parses PSI lines with totals in nanoseconds', () => {
    expect(parsePressure('some avg10=0.12 avg60=3.40 avg300=5.00 total=10\nfull avg10=0.00 avg60=0.00 avg300=0.00 total=0\n'))
      .toEqual({
        some: { avg10: 0.12, avg60: 3.4, avg300: 5, totalNs: 10_000n },
        full: { avg10: 0, avg60: 0, avg300: 0, totalNs: 0n },
      });
    expect(parsePressure('some avg10=0.00 avg60=0.00 avg300=0.00 total=7\n')).toEqual({
      some: { avg10: 0, avg60: 0, avg300: 0, totalNs: 7000n },
    });
  });

  it('treats limits above 2^62 as unlimited and floors subtraction at zero', () => {
    expect(limited(9223372036854771712n)).toBeUndefined();
    expect(limited(undefined)).toBeUndefined();
    expect(limited(1n << 62n)).toBe(1n << 62n);
    expect(floorSub(5n, 7n)).toBe(0n);
    expect(floorSub(7n, 5n)).toBe(2n);
  });
});

describe('cgroup file reads', () => {
  it('reads several directories\' files in one go: undefined for a missing file or directory, other errors rethrown', async () => {
    await writeFile(join(dir, 'pids.current'), '3\n');
    await writeFile(join(dir, 'memory.max'), 'max\n');
    const reader = new KernelFileReader();
    const names = ['pids.current', 'nope', 'memory.max'];
    const [here, gone] = await reader.readDirs([{ dir, names }, { dir: join(dir, 'missing'), names }]);
    expect(here).toEqual(['3\n', undefined, 'max\n']);
    expect(gone).toBeUndefined();
    const f = new CgroupFileTexts(dir, names, here!);
    expect(f.single('pids.current')).toBe(3n);
    expect(f.single('nope')).toBeUndefined();
    expect(f.single('memory.max')).toBeUndefined();
    // A directory where a file should be is not "absent": it is an error worth seeing.
    await mkdir(join(dir, 'sub'), { recursive: true });
    await expect(reader.readDirs([{ dir, names: ['sub'] }])).rejects.toMatchObject({ code: 'EISDIR' });
  });

  it('counts the processes a cgroup lists, and leaves them out once it is gone', async () => {
    await writeFile(join(dir, 'cgroup.procs'), '1\n22\n');
    const reader = new KernelFileReader();
    expect(await countedProcs(reader, dir)).toEqual({ current: 2n });
    expect(await countedProcs(reader, join(dir, 'gone'))).toBeUndefined();
  });

  it('tells a missing directory from a missing file', async () => {
    const reader = new KernelFileReader();
    await expect(reader.read(join(dir, 'missing'), 'pids.current')).rejects.toThrow(DirectoryGoneError);
    await expect(reader.read(join(dir, 'pids.current'), 'below')).rejects.toThrow(DirectoryGoneError);
    expect(await reader.read(dir, 'missing')).toBeUndefined();
  });

  it('counts the lines of cgroup.procs', () => {
    expect(countProcs('1\n22\n\n')).toBe(2n);
    expect(countProcs('')).toBe(0n);
  });
});
