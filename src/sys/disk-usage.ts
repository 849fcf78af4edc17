// Disk usage of a tree the way `du` counts it: allocated blocks, each inode once (hardlinks
// share an inode), symlinks never followed. The CRI reports these figures in ImageFsInfo and in
// each container's writable layer.
//
// A walk visits at most WALK_PARALLEL entries at once, whatever the tree's shape: their lstat and
// readdir calls run on libuv's threadpool (4 threads), which every other file operation of the
// daemon shares, and a walk that queued a whole directory's entries at once (thousands in a
// layer) would make a record write or a container's bundle wait behind all of them.
//
// A directory's lstat and readdir are issued together (a root, whose type is not known yet, too;
// a non-directory's readdir result is dropped): a walk then costs one threadpool round trip per
// level of the tree, not two. Round trips are what a walk waits for when the daemon is busy: under
// kubelet's exec probes one took 300-600 ms, and a writable layer (mostly an empty directory)
// was two of them.
import type { Dirent } from 'node:fs';
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
  // Each entry with whether its parent's listing says it is a directory (roots: not known).
  const pending: { path: string; dir?: boolean }[] = roots.map((r) => ({ path: normalize(r) })).reverse();

  /** The directory's entries; undefined when it is gone or not a directory. */
  const list = async (path: string): Promise<Dirent[] | undefined> => {
    try {
      return await readdir(path, { withFileTypes: true });
    } catch (err) {
      if (errnoCode(err) === 'ENOENT' || errnoCode(err) === 'ENOTDIR') return undefined;
      throw err;
    }
  };

  const visit = async ({ path, dir: listedAsDir }: { path: string; dir?: boolean }): Promise<void> => {
    const listing = listedAsDir === false ? undefined : list(path);
    // Settled even when lstat throws first, so a failed listing is never left unhandled.
    listing?.catch(() => undefined);
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
    // lstat decides (readdir follows a symlink, and the entry may have been replaced since its
    // parent was listed): a directory listed as something else is listed now.
    if (!st.isDirectory()) return;
    const entries = await (listing ?? list(path));
    if (entries === undefined) return;
    const prefix = path.endsWith('/') ? path : `${path}/`;
    for (const e of entries) pending.push({ path: prefix + e.name, dir: e.isDirectory() });
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
