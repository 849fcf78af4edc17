// Disk usage of a tree the way `du -x` counts it: allocated blocks, each inode once (hardlinks
// share an inode), symlinks never followed, no other filesystem entered. The CRI reports these
// figures in ImageFsInfo and in each container's writable layer.
//
// The walk is the addon's (native/addon/tree-usage.c, which says why): on a thread of libuv's
// pool, each entry reached from its directory's descriptor, so a tree of any depth is walked and
// the event loop sees one callback per walk. A walk holds its thread for as long as its tree
// takes, and every other file operation of the daemon shares that pool's 4 threads: every walk
// of the daemon passes one gate (`diskUsage`), which lets at most WALKS_AT_ONCE hold a thread at
// a time. Of those, at most one is a walk not known to be quick (a whole store, or a layer whose
// last walk was long): a container with millions of files in its writable layer makes each walk
// of it take seconds, and kubelet's ImageFsInfo walks every layer at once; two such walks side by
// side held both threads, and every other container's walk waited behind them. And a walk
// someone waits for goes before a walk nobody waits for (the stats' walk behind a result they
// served): a listing that serves 100 stale results starts 100 walks behind itself, and a layer
// never walked, whose container's stats wait for it, must not queue behind them.
import { treeUsage, type TreeUsage } from './libc.js';

export interface DiskUsage {
  bytes: number;
  inodes: number;
  /** A directory deeper than the walk enters was counted, not entered (tree-usage.h). */
  tooDeep?: boolean;
}

export interface WalkOptions {
  /** The walk is expected to be short (a layer whose last walk was): it may take the thread a
   * walk that is not may not. Default false. */
  quick?: boolean;
  /** Nobody waits for the result (an older one was served): every walk someone waits for goes
   * first, whenever it was asked for. Default false. */
  behind?: boolean;
  /** Called when the walk leaves the queue and starts (what a walk found dates from then). */
  onStart?: () => void;
}

const WALKS_AT_ONCE = 2;
const LONG_WALKS_AT_ONCE = 1;
// Levels a walk enters below a root: what it remembers of each (a name) is bounded by it. A
// deeper directory is counted, not entered, and the result says so. 65,536 nested directories
// already hold 256 MiB of a disk's blocks.
const MAX_DEPTH = 65_536;

export type TreeWalk = (roots: readonly string[]) => Promise<TreeUsage>;

/**
 * `walk`, never more than `atOnce` of its calls at once, nor more than `longAtOnce` of those not
 * marked quick. The others wait: those someone waits for in the order they came, then those
 * behind; a walk that may run passes one waiting for the long walks' lane.
 */
export function boundedWalks(walk: TreeWalk, atOnce: number, longAtOnce: number):
  (roots: string | readonly string[], opts?: WalkOptions) => Promise<DiskUsage> {
  let running = 0;
  let runningLong = 0;
  interface Waiting { long: boolean; go: () => void }
  const waited: Waiting[] = [];
  const behind: Waiting[] = [];
  const admitFrom = (queue: Waiting[]): void => {
    for (let i = 0; i < queue.length && running < atOnce;) {
      const w = queue[i]!;
      if (w.long && runningLong >= longAtOnce) {
        i++;
        continue;
      }
      queue.splice(i, 1);
      running++;
      if (w.long) runningLong++;
      w.go();
    }
  };
  const admit = (): void => {
    admitFrom(waited);
    admitFrom(behind);
  };
  return async (roots, opts = {}) => {
    const long = !opts.quick;
    await new Promise<void>((go) => {
      (opts.behind ? behind : waited).push({ long, go });
      admit();
    });
    try {
      opts.onStart?.();
      const u = await walk(typeof roots === 'string' ? [roots] : roots);
      return u.tooDeep ? { bytes: u.bytes, inodes: u.inodes, tooDeep: true } : { bytes: u.bytes, inodes: u.inodes };
    } finally {
      running--;
      if (long) runningLong--;
      admit();
    }
  };
}

/** The usage of `roots` (missing ones count as empty), each inode counted once over all of them:
 * the daemon's one way to walk a tree, and its one gate for walks. */
export const diskUsage = boundedWalks((roots) => treeUsage(roots, MAX_DEPTH), WALKS_AT_ONCE, LONG_WALKS_AT_ONCE);
