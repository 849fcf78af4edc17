// KernelFileReader on real cgroupfs files: every read gives the current values, and the removal
// of a cgroup is told from a file that does not exist.
import { mkdir, rmdir, writeFile } from 'node:fs/promises';
import { afterAll, describe, expect, it } from 'vitest';
import { DirectoryGoneError, KernelFileReader } from '../../src/stats/kernel-file-reader.js';
import { openUnder } from '../../test-support/open-files.js';

const dir = `/sys/fs/cgroup/memory/crib-kfr-test-${process.pid}-${Math.random().toString(36).slice(2, 8)}`;

const group = `${dir}-group`;

afterAll(async () => {
  await rmdir(dir).catch(() => undefined);
  await rmdir(group).catch(() => undefined);
});

describe('KernelFileReader on cgroupfs', () => {
  it('reads the current value each time, and notices the cgroup going and coming back', async () => {
    await mkdir(dir);
    const reader = new KernelFileReader();
    await writeFile(`${dir}/memory.limit_in_bytes`, `${64 << 20}`);
    expect(await reader.read(dir, 'memory.limit_in_bytes')).toBe(`${64 << 20}\n`);
    await writeFile(`${dir}/memory.limit_in_bytes`, `${32 << 20}`);
    expect(await reader.read(dir, 'memory.limit_in_bytes')).toBe(`${32 << 20}\n`);

    // A file this kernel does not have: undefined.
    expect(await reader.read(dir, 'memory.no-such-file')).toBeUndefined();
    expect(openUnder(dir)).toEqual([]);

    // Removed: told apart from a missing file.
    await rmdir(dir);
    await expect(reader.read(dir, 'memory.limit_in_bytes')).rejects.toThrow(DirectoryGoneError);

    // Made again under the same name: a new cgroup, read as such.
    await mkdir(dir);
    await writeFile(`${dir}/memory.limit_in_bytes`, `${16 << 20}`);
    expect(await reader.read(dir, 'memory.limit_in_bytes')).toBe(`${16 << 20}\n`);
    expect(openUnder(dir)).toEqual([]);
  });

  it('reads a cgroup\'s files in one group, and gives no texts for it once it is removed', async () => {
    await mkdir(group);
    const reader = new KernelFileReader();
    const names = ['memory.limit_in_bytes', 'memory.no-such-file', 'memory.usage_in_bytes'];
    await writeFile(`${group}/memory.limit_in_bytes`, `${64 << 20}`);
    const [first] = await reader.readDirs([{ dir: group, names }]);
    expect(first?.[0]).toBe(`${64 << 20}\n`);
    expect(first?.[1]).toBeUndefined();
    expect(first?.[2]).toMatch(/^\d+\n$/);
    expect(openUnder(group)).toEqual([]);
    await rmdir(group);
    expect(await reader.readDirs([{ dir: group, names }, { dir: '/sys/fs/cgroup/memory', names: ['memory.usage_in_bytes'] }]))
      .toEqual([undefined, [expect.stringMatching(/^\d+\n$/)]]);
  });
});
