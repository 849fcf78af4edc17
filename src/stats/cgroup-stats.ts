// One reading of a cgroup's CPU, memory, swap, process and pressure figures, from cgroup v1 or
// v2 files, in the units the CRI wants (nanoseconds, bytes). Counters are bigints: the kernel's
// are 64-bit and CPU nanoseconds pass 2^53 after ~104 core-days.
import { NotFoundError } from '../errors.js';
import { nowNs } from '../time.js';
import type { PsiReading } from './cgroup-files.js';
import type { CgroupLayout } from './cgroup-path.js';
import { readCgroupStatsV1 } from './cgroup-stats-v1.js';
import { readCgroupStatsV2 } from './cgroup-stats-v2.js';
import { KernelFileReader } from './kernel-file-reader.js';

export interface CpuReading {
  /** Cumulative CPU time over all cores, nanoseconds. */
  usageNs: bigint;
  userNs?: bigint;
  systemNs?: bigint;
  /** CFS bandwidth throttling (present when the cpu controller reports it). */
  periods?: bigint;
  throttledPeriods?: bigint;
  throttledNs?: bigint;
  psi?: PsiReading;
}

export interface MemoryReading {
  usageBytes: bigint;
  /** usage − inactive file pages, floored at 0: what kubelet evicts on (as cAdvisor computes). */
  workingSetBytes: bigint;
  /** Anonymous memory (v1 total_rss, v2 anon). */
  rssBytes: bigint;
  /** Page cache (v1 total_cache, v2 file). */
  cacheBytes: bigint;
  pageFaults: bigint;
  majorPageFaults: bigint;
  /** Undefined when unlimited. */
  limitBytes?: bigint;
  /** limit − workingSet (floored at 0), only when limited. */
  availableBytes?: bigint;
  /** Times usage hit the limit (v1 memory.failcnt, v2 memory.events "max"). */
  failcnt?: bigint;
  /** OOM kills inside this cgroup (v1 memory.oom_control, v2 memory.events "oom_kill"). */
  oomKills?: bigint;
  psi?: PsiReading;
}

export interface SwapReading {
  usageBytes: bigint;
  limitBytes?: bigint;
  availableBytes?: bigint;
}

export interface PidsReading {
  /** Tasks in the cgroup and below (pids.current); without a pids controller, the number of
   * processes listed directly in cgroup.procs. */
  current: bigint;
  limit?: bigint;
}

export interface CgroupStats {
  /** When the reading started, CRI nanoseconds since the epoch (decimal string). */
  timestamp: string;
  /** Sections are absent when their controller is not there for this cgroup. */
  cpu?: CpuReading;
  memory?: MemoryReading;
  swap?: SwapReading;
  pids?: PidsReading;
  io?: { psi?: PsiReading };
}

/**
 * Which figures a reading needs. CRI stats need the totals; the user/system split, throttling,
 * failcnt, OOM kills and the pids limit only appear in metrics, and a container's process count
 * only in metrics and in a pod without a cgroup of its own (summed): files nobody will look at
 * are not read.
 */
export interface CgroupReadScope {
  metrics: boolean;
  pids: boolean;
}

export const FULL_SCOPE: CgroupReadScope = { metrics: true, pids: true };

// For callers without a reader of their own (one-off readings): nothing remembered between calls.
const oneShotReader = new KernelFileReader({ rememberAbsent: false });

export interface ReadCgroupOptions {
  /** Reader to go through (the stats collector's remembers which files each cgroup lacks);
   * default: one that remembers nothing. */
  reader?: KernelFileReader;
  scope?: CgroupReadScope;
}

/**
 * Read the cgroup at `relPath` (as resolveCgroupPath returns it). Throws NotFoundError naming the
 * cgroup when it does not exist in any hierarchy.
 */
export async function readCgroupStats(layout: CgroupLayout, relPath: string, opts: ReadCgroupOptions = {}): Promise<CgroupStats> {
  const timestamp = nowNs();
  const reader = opts.reader ?? oneShotReader;
  const scope = opts.scope ?? FULL_SCOPE;
  const stats = layout.mode === 2
    ? await readCgroupStatsV2(reader, layout.root, relPath, timestamp, scope)
    : await readCgroupStatsV1(reader, layout.root, relPath, timestamp, scope, layout.mountinfo);
  if (stats === undefined) {
    throw new NotFoundError(`cgroup ${relPath} does not exist under ${layout.root} (cgroup v${layout.mode})`);
  }
  return stats;
}
