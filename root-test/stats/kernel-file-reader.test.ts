// KernelFileReader on real cgroupfs files: a kept descriptor gives fresh values on every read,
// and the removal of the cgroup behind it is told from a file that does not exist.
import { mkdir, rmdir, writeFile } from 'node:fs/promises';
import { afterAll, describe, expect, it } from 'vitest';
import { DirectoryGoneError, KernelFileReader } from '../../src/stats/kernel-file-reader.js';

const dir = `/sys/fs/cgroup/memory/crib-kfr-test-${process.pid}-${Math.random().toString(36).slice(2, 8)}`;

const group = `${dir}-group`;

afterAll(async () => {
  await rmdir(dir).catch(() => undefined);
  await rmdir(group).catch(() => undefined);
});

describe('KernelFileReader on cgroupfs', () => {
  it('re-reads a kept descriptor afresh, and notices the cgroup going and coming back', async () => {
    await mkdir(dir);
    const reader = new KernelFileReader();
    try {
      await writeFile(`${dir}/memory.limit_in_bytes`, `${64 << 20}`);
      expect(await reader.read(dir, 'memory.limit_in_bytes')).toBe(`${64 << 20}\n`);
      expect(reader.openDescriptors).toBe(1);
      // The value changes; the descriptor is the same one and shows the new value.
      await writeFile(`${dir}/memory.limit_in_bytes`, `${32 << 20}`);
      expect(await reader.read(dir, 'memory.limit_in_bytes')).toBe(`${32 << 20}\n`);
      expect(reader.openDescriptors).toBe(1);

      // A file this kernel does not have: undefined, and no descriptor.
      expect(await reader.read(dir, 'memory.no-such-file')).toBeUndefined();
      expect(reader.openDescriptors).toBe(1);

      // Removed while its descriptor is kept: the kernel answers ENODEV, the reader says gone.
      await rmdir(dir);
      await expect(reader.read(dir, 'memory.limit_in_bytes')).rejects.toThrow(DirectoryGoneError);
      expect(reader.openDescriptors).toBe(0);

      // Made again under the same name: a new cgroup, read through a new descriptor.
      await mkdir(dir);
      await writeFile(`${dir}/memory.limit_in_bytes`, `${16 << 20}`);
      expect(await reader.read(dir, 'memory.limit_in_bytes')).toBe(`${16 << 20}\n`);
      expect(reader.openDescriptors).toBe(1);
    } finally {
      reader.close();
    }
    expect(reader.openDescriptors).toBe(0);
  });

  it('reads a cgroup\'s files in one group, and gives no texts for it once it is removed', async () => {
    await mkdir(group);
    const reader = new KernelFileReader();
    const names = ['memory.limit_in_bytes', 'memory.no-such-file', 'memory.usage_in_bytes'];
    try {
      await writeFile(`${group}/memory.limit_in_bytes`, `${64 << 20}`);
      const [first] = await reader.readDirs([{ dir: group, names }]);
      expect(first?.[0]).toBe(`${64 << 20}\n`);
      expect(first?.[1]).toBeUndefined();
      expect(first?.[2]).toMatch(/^\d+\n$/);
      expect(reader.openDescriptors).toBe(2);
      // Removed with its descriptors kept: ENODEV, told apart from a missing file.
      await rmdir(group);
      expect(await reader.readDirs([{ dir: group, names }, { dir: '/sys/fs/cgroup/memory', names: ['memory.usage_in_bytes'] }]))
        .toEqual([undefined, [expect.stringMatching(/^\d+\n$/)]]);
      expect(reader.openDescriptors).toBe(1);
    } finally {
      reader.close();
    }
  });
});
