// KernelFileReader on ordinary files (the unit tier has no cgroupfs; the cgroup behaviour, ENODEV
// on removal included, is in root-test/stats/kernel-file-reader.test.ts).
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DirectoryGoneError, KernelFileReader } from './kernel-file-reader.js';

let dir: string;
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'crib-kfr-'));
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

describe('KernelFileReader', () => {
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
});
