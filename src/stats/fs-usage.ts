// Bytes and inodes used by a container's writable layer (its overlay upper dir), for
// ContainerStats.writable_layer. Walking a tree costs time proportional to its size, and
// ListContainerStats asks for every container at once, repeatedly (kubelet, crictl, scrapes):
// results are cached per directory for a short TTL, concurrent requests for the same directory
// share one walk, and at most `maxWalks` walks run at a time so the libuv threadpool stays free
// for the rest of the daemon.
import { diskUsage } from '../sys/disk-usage.js';
import { nowNs } from '../time.js';

export interface FsUsage {
  /** Allocated bytes (st_blocks × 512), each inode counted once, symlinks not followed. */
  bytes: bigint;
  inodes: bigint;
  /** When the walk started, CRI nanoseconds. */
  timestamp: string;
}

interface Entry {
  at: number;
  value: Promise<FsUsage>;
}

export class FsUsageCache {
  private readonly entries = new Map<string, Entry>();
  private running = 0;
  private readonly waiting: (() => void)[] = [];

  constructor(private readonly ttlMs = 2000, private readonly maxWalks = 4) {}

  /** Usage of the tree at `dir` (a missing dir counts as empty), at most `ttlMs` old. */
  usage(dir: string): Promise<FsUsage> {
    const now = performance.now();
    const hit = this.entries.get(dir);
    if (hit !== undefined && now - hit.at < this.ttlMs) return hit.value;
    const value = this.walk(dir);
    this.entries.set(dir, { at: now, value });
    // A failed walk must not be served from the cache.
    value.catch(() => {
      if (this.entries.get(dir)?.value === value) this.entries.delete(dir);
    });
    this.prune(now);
    return value;
  }

  /** Walks running now (at most maxWalks). */
  get activeWalks(): number {
    return this.running;
  }

  forget(dir: string): void {
    this.entries.delete(dir);
  }

  private prune(now: number): void {
    for (const [dir, e] of this.entries) if (now - e.at >= this.ttlMs * 4) this.entries.delete(dir);
  }

  private async walk(dir: string): Promise<FsUsage> {
    // A finishing walk hands its slot straight to the next waiter, so the limit holds.
    if (this.running < this.maxWalks) this.running++;
    else await new Promise<void>((r) => this.waiting.push(r));
    try {
      const timestamp = nowNs();
      const u = await diskUsage(dir);
      return { bytes: BigInt(u.bytes), inodes: BigInt(u.inodes), timestamp };
    } finally {
      const next = this.waiting.shift();
      if (next) next();
      else this.running--;
    }
  }
}
