// Disk usage of a tree the way `du` counts it: allocated blocks, each inode once (hardlinks
// share an inode), symlinks never followed. The CRI reports these figures in ImageFsInfo.
import { lstat, readdir } from 'node:fs/promises';
import { join } from 'node:path';
import { errnoCode } from '../errors.js';

export interface DiskUsage {
  bytes: number;
  inodes: number;
}

/** Walk `roots` (missing ones count as empty) and sum st_blocks*512 over distinct inodes. */
export async function diskUsage(...roots: string[]): Promise<DiskUsage> {
  const seen = new Set<string>();
  const total: DiskUsage = { bytes: 0, inodes: 0 };

  const visit = async (path: string): Promise<void> => {
    let st;
    try {
      st = await lstat(path, { bigint: true });
    } catch (err) {
      // Trees change under us (a container exits, GC runs): a vanished entry counts as nothing.
      if (errnoCode(err) === 'ENOENT') return;
      throw err;
    }
    const key = `${st.dev}:${st.ino}`;
    if (st.nlink > 1n) {
      if (seen.has(key)) return;
      seen.add(key);
    }
    total.inodes += 1;
    total.bytes += Number(st.blocks) * 512;
    if (!st.isDirectory()) return;
    let names: string[];
    try {
      names = await readdir(path);
    } catch (err) {
      if (errnoCode(err) === 'ENOENT' || errnoCode(err) === 'ENOTDIR') return;
      throw err;
    }
    // Bounded fan-out: a layer dir can hold thousands of entries and the threadpool has 4 slots.
    for (let i = 0; i < names.length; i += 64) {
      await Promise.all(names.slice(i, i + 64).map((n) => visit(join(path, n))));
    }
  };

  for (const root of roots) await visit(root);
  return total;
}
