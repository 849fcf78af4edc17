// Bytes and inodes used by a container's writable layer (its overlay upper dir), for
// ContainerStats.writable_layer. Walking a tree costs time proportional to its size, and
// ListContainerStats asks for every container at once, repeatedly (kubelet every 10 s, crictl,
// scrapes): a listing must not wait for 200 walks. So each directory keeps its last result:
// within `ttlMs` it is served as is; past it, it is still served (with the timestamp of its walk,
// which is what the CRI's FilesystemUsage.timestamp is for) while a new walk runs in the
// background, and the next request gets that. Only a directory never walked, or whose last walk
// is older than `maxStaleMs`, makes its caller wait. Concurrent requests share one walk. How many
// walks run at once, and in what order, is sys/disk-usage.ts's: every walk of the daemon passes its
// one gate, where a walk behind a served result (nobody waits for it) goes after every walk a
// caller waits for.
import { diskUsage, type DiskUsage, type WalkOptions } from '../sys/disk-usage.js';
import { log } from '../log.js';
import { nowNs } from '../time.js';

export interface FsUsage {
  /** Allocated bytes (st_blocks × 512), each inode counted once, symlinks not followed. */
  bytes: bigint;
  inodes: bigint;
  /** When the walk started, CRI nanoseconds. */
  timestamp: string;
}

interface Entry {
  /** The last walk's result and when it started (performance.now()). */
  value?: FsUsage;
  at: number;
  /** The walk running now, if any. */
  walking?: Promise<FsUsage>;
  /** When it was last asked for: directories nobody asks about are dropped. */
  asked: number;
}

// A layer whose last walk found fewer inodes than this is walked as a quick one
// (sys/disk-usage.ts: it may take the thread a long walk may not), as is one never walked. A
// container's layer of a few files takes well under a millisecond; 20,000 inodes about 30 ms.
const QUICK_WALK_INODES = 20_000n;

export interface FsUsageCacheOptions {
  /** A result younger than this is served without walking again (default 2 s). */
  ttlMs?: number;
  /** A result older than this is never served: its caller waits for a new walk (default 60 s). */
  maxStaleMs?: number;
  /** The walk (default sys/disk-usage.ts diskUsage; tests pass their own). */
  walk?: (dir: string, opts: WalkOptions) => Promise<DiskUsage>;
}

export class FsUsageCache {
  private readonly entries = new Map<string, Entry>();
  /** Walks started and not ended (waiting for their turn included). */
  private inFlight = 0;
  private readonly ttlMs: number;
  private readonly maxStaleMs: number;
  private readonly walkTree: (dir: string, opts: WalkOptions) => Promise<DiskUsage>;

  constructor(opts: FsUsageCacheOptions = {}) {
    this.walkTree = opts.walk ?? diskUsage;
    this.ttlMs = opts.ttlMs ?? 2000;
    this.maxStaleMs = Math.max(this.ttlMs, opts.maxStaleMs ?? 60_000);
  }

  /**
   * Usage of the tree at `dir` (a missing dir counts as empty), walked at most maxStaleMs ago.
   * `walkBehind: false`: a result past ttlMs starts no walk behind it (the caller knows one is
   * coming: the stats read-ahead's), so no walk competes with the caller for the event loop.
   */
  usage(dir: string, opts: { walkBehind?: boolean } = {}): Promise<FsUsage> {
    const now = performance.now();
    let e = this.entries.get(dir);
    if (e === undefined) {
      e = { at: now, asked: now };
      this.entries.set(dir, e);
      this.prune(now);
    }
    e.asked = now;
    const age = now - e.at;
    const value = e.value;
    if (value !== undefined && age < this.ttlMs) return Promise.resolve(value);
    // A result under maxStaleMs is served; a walk starts behind it unless the caller says not to.
    const served = value !== undefined && age < this.maxStaleMs;
    if (served && opts.walkBehind === false) return Promise.resolve(value);
    const walking = e.walking ?? this.startWalk(dir, e, now, served);
    return served ? Promise.resolve(value) : walking;
  }

  /**
   * Walks `dir` again now, unless a walk of it is running or its last one started less than
   * `maxAgeMs` ago: the stats collector's read-ahead, so that a periodic listing due shortly
   * finds a result under ttlMs old and starts no walk while its caller waits. Resolves when
   * the walk is done (never rejects: a failed walk is retried by the next request).
   */
  prefetch(dir: string, maxAgeMs: number): Promise<void> {
    const now = performance.now();
    let e = this.entries.get(dir);
    if (e === undefined) {
      e = { at: now, asked: now };
      this.entries.set(dir, e);
    } else if (e.walking === undefined && e.value !== undefined && now - e.at < maxAgeMs) {
      return Promise.resolve();
    }
    return (e.walking ?? this.startWalk(dir, e, now)).then(() => undefined, () => undefined);
  }

  /** The last walk's result of `dir`, as it is (no walk started, nothing recorded). */
  peek(dir: string): FsUsage | undefined {
    return this.entries.get(dir)?.value;
  }

  /** Walks this cache started that have not ended (waiting for their turn included). */
  get walksInFlight(): number {
    return this.inFlight;
  }

  /** Directories with a result or a walk (those asked about within maxStaleMs, about). */
  get size(): number {
    return this.entries.size;
  }

  forget(dir: string): void {
    this.entries.delete(dir);
  }

  /** `behind`: nobody waits for this walk (a result was served). */
  private startWalk(dir: string, e: Entry, now: number, behind = false): Promise<FsUsage> {
    const walking = this.walk(dir, { quick: e.value === undefined || e.value.inodes < QUICK_WALK_INODES, behind });
    e.walking = walking;
    walking.then((value) => {
      // A forgotten (or forgotten and asked again) directory keeps what its own walk finds.
      if (this.entries.get(dir) !== e) return;
      e.value = value;
      e.at = now;
    }, (err: unknown) => {
      // The last result stays served until it is too old; the next request walks again.
      log.debug({ dir, err }, 'stats: walking a writable layer failed');
    }).finally(() => {
      if (e.walking === walking) e.walking = undefined;
    });
    return walking;
  }

  private prune(now: number): void {
    for (const [dir, e] of this.entries) if (now - e.asked >= this.maxStaleMs && !e.walking) this.entries.delete(dir);
  }

  private async walk(dir: string, opts: WalkOptions): Promise<FsUsage> {
    this.inFlight++;
    try {
      // When the walk itself starts, not when it was queued for its turn.
      let timestamp = nowNs();
      const u = await this.walkTree(dir, { ...opts, onStart: () => (timestamp = nowNs()) });
      if (u.tooDeep) log.warn({ dir }, 'a writable layer holds directories nested deeper than its walk enters: what is below them is not counted in its usage');
      return { bytes: BigInt(u.bytes), inodes: BigInt(u.inodes), timestamp };
    } finally {
      this.inFlight--;
    }
  }
}
