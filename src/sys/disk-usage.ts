// Disk usage of a tree the way `du` counts it: allocated blocks, each inode once (hardlinks
// share an inode), symlinks never followed. The CRI reports these figures in ImageFsInfo and in
// each container's writable layer.
//
// A walk keeps at most WALK_PARALLEL lstat/readdir calls in flight, whatever the tree's shape:
// they run on libuv's threadpool (4 threads), which every other file operation of the daemon
// shares, and a walk that queued a whole directory's entries at once (thousands in a layer)
// would make a record write or a container's bundle wait behind all of them.
import { lstat, readdir } from 'node:fs/promises';
import { normalize } from 'node:path';
import { errnoCode } from '../errors.js';

export interface DiskUsage {
  bytes: number;
  inodes: number;
}

const WALK_PARALLEL = 4;

/** Walk `roots` (missing ones count as empty) and sum st_blocks*512 over distinct inodes. */
export async function diskUsage(...roots: string[]): Promise<DiskUsage> {
  const seen = new Set<string>();
  const total: DiskUsage = { bytes: 0, inodes: 0 };
  // Normalised once: an entry's path is then its dir's and its name (what join would give,
  // without normalising the whole path again for each of a tree's entries).
  const pending = roots.map((r) => normalize(r)).reverse();

  const visit = async (path: string): Promise<void> => {
    let st;
    try {
      // Numbers, not bigints (a BigIntStats costs a walk of small trees about a third of its
      // CPU): blocks and link counts are far below 2^53; an inode or device number that is not
      // is read again exactly, below.
      st = await lstat(path);
    } catch (err) {
      // Trees change under us (a container exits, GC runs): a vanished entry counts as nothing.
      if (errnoCode(err) === 'ENOENT') return;
      throw err;
    }
    if (st.nlink > 1) {
      let key = `${st.dev}:${st.ino}`;
      if (st.ino > Number.MAX_SAFE_INTEGER || st.dev > Number.MAX_SAFE_INTEGER) {
        try {
          const exact = await lstat(path, { bigint: true });
          key = `${exact.dev}:${exact.ino}`;
        } catch (err) {
          if (errnoCode(err) === 'ENOENT') return;
          throw err;
        }
      }
      if (seen.has(key)) return;
      seen.add(key);
    }
    total.inodes += 1;
    total.bytes += st.blocks * 512;
    if (!st.isDirectory()) return;
    let names: string[];
    try {
      names = await readdir(path);
    } catch (err) {
      if (errnoCode(err) === 'ENOENT' || errnoCode(err) === 'ENOTDIR') return;
      throw err;
    }
    const dir = path.endsWith('/') ? path : `${path}/`;
    for (const n of names) pending.push(dir + n);
  };

  // At most WALK_PARALLEL visits at once; done when none runs and none is left (a visit of a
  // directory adds its entries).
  await new Promise<void>((resolve, reject) => {
    let active = 0;
    let failed = false;
    const pump = (): void => {
      while (!failed && active < WALK_PARALLEL && pending.length > 0) {
        active++;
        visit(pending.pop()!).then(() => {
          active--;
          pump();
        }, (err: unknown) => {
          failed = true;
          reject(err);
        });
      }
      if (!failed && active === 0 && pending.length === 0) resolve();
    };
    pump();
  });
  return total;
}
