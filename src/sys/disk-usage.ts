// Disk usage of a tree the way `du -x` counts it: allocated blocks, each inode once (hardlinks
// share an inode), symlinks never followed, no other filesystem entered. The CRI reports these
// figures in ImageFsInfo and in each container's writable layer.
//
// The walk is the addon's (native/addon/tree-usage.c, which says why): on a thread of libuv's
// pool, each entry reached from its directory's descriptor, so a tree of any depth is walked and
// the event loop sees one callback per walk. A walk holds its thread for as long as its tree
// takes (a large writable layer: seconds), and every other file operation of the daemon shares
// that pool's 4 threads: at most WALKS_AT_ONCE walks hold one at a time.
import { treeUsage, type TreeUsage } from './libc.js';

export interface DiskUsage {
  bytes: number;
  inodes: number;
  /** A directory deeper than the walk enters was counted, not entered (tree-usage.h). */
  tooDeep?: boolean;
}

const WALKS_AT_ONCE = 2;
// Levels a walk enters below a root: what it remembers of each (a name) is bounded by it. A
// deeper directory is counted, not entered, and the result says so. 65,536 nested directories
// already hold 256 MiB of a disk's blocks.
const MAX_DEPTH = 65_536;

export type TreeWalk = (roots: readonly string[]) => Promise<TreeUsage>;

/** `walk`, never more than `atOnce` of its calls at once: the others wait, in order. */
export function boundedWalks(walk: TreeWalk, atOnce: number): (...roots: string[]) => Promise<DiskUsage> {
  let running = 0;
  const waiting: (() => void)[] = [];
  return async (...roots) => {
    if (running < atOnce) running++;
    else await new Promise<void>((turn) => waiting.push(turn));
    try {
      const u = await walk(roots);
      return u.tooDeep ? { bytes: u.bytes, inodes: u.inodes, tooDeep: true } : { bytes: u.bytes, inodes: u.inodes };
    } finally {
      // The slot goes to the next walk waiting, if any, as it is.
      const next = waiting.shift();
      if (next) next();
      else running--;
    }
  };
}

/** The usage of `roots` (missing ones count as empty), each inode counted once over all of them. */
export const diskUsage = boundedWalks((roots) => treeUsage(roots, MAX_DEPTH), WALKS_AT_ONCE);
