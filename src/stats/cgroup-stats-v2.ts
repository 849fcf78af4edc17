// cgroup v2: every figure lives in the cgroup's one directory. Files of controllers that are not
// enabled for it (memory.*, pids.*) are simply absent; cpu.stat and cgroup.procs always exist.
// All files of a reading are asked for at once; the reader bounds how many are in flight.
import { cgroupDirFiles, countProcs, floorSub, limited, type CgroupDirFiles } from './cgroup-files.js';
import type { CgroupReadScope, CgroupStats, CpuReading, MemoryReading, PidsReading, SwapReading } from './cgroup-stats.js';
import { DirectoryGoneError, type KernelFileReader } from './kernel-file-reader.js';

const US = 1000n;

// The keys each reading uses (cgroup-files.ts parses only these): memory.stat has ~50 lines.
const CPU_STAT_KEYS = new Set(['usage_usec', 'user_usec', 'system_usec', 'nr_periods', 'nr_throttled', 'throttled_usec']);
const MEMORY_STAT_KEYS = new Set(['inactive_file', 'anon', 'file', 'pgfault', 'pgmajfault']);
const MEMORY_EVENTS_KEYS = new Set(['max', 'oom_kill']);

async function cpu(f: CgroupDirFiles): Promise<CpuReading | undefined> {
  const [s, psi] = await Promise.all([f.flatKeyed('cpu.stat', CPU_STAT_KEYS), f.pressure('cpu')]);
  const usage = s?.get('usage_usec');
  if (s === undefined || usage === undefined) return undefined;
  const out: CpuReading = { usageNs: usage * US };
  const user = s.get('user_usec');
  const system = s.get('system_usec');
  if (user !== undefined) out.userNs = user * US;
  if (system !== undefined) out.systemNs = system * US;
  if (s.has('nr_periods')) {
    out.periods = s.get('nr_periods');
    out.throttledPeriods = s.get('nr_throttled') ?? 0n;
    out.throttledNs = (s.get('throttled_usec') ?? 0n) * US;
  }
  if (psi) out.psi = psi;
  return out;
}

async function memory(f: CgroupDirFiles, scope: CgroupReadScope): Promise<MemoryReading | undefined> {
  const [usage, s, rawLimit, events, psi] = await Promise.all([
    f.single('memory.current'),
    f.flatKeyed('memory.stat', MEMORY_STAT_KEYS),
    f.single('memory.max'),
    // failcnt and OOM kills are reported only in metrics.
    scope.metrics ? f.flatKeyed('memory.events', MEMORY_EVENTS_KEYS) : undefined,
    f.pressure('memory'),
  ]);
  if (usage === undefined || s === undefined) return undefined;
  const workingSet = floorSub(usage, s.get('inactive_file') ?? 0n);
  const out: MemoryReading = {
    usageBytes: usage,
    workingSetBytes: workingSet,
    rssBytes: s.get('anon') ?? 0n,
    cacheBytes: s.get('file') ?? 0n,
    pageFaults: s.get('pgfault') ?? 0n,
    majorPageFaults: s.get('pgmajfault') ?? 0n,
  };
  const limit = limited(rawLimit);
  if (limit !== undefined) {
    out.limitBytes = limit;
    out.availableBytes = floorSub(limit, workingSet);
  }
  if (events) {
    out.failcnt = events.get('max') ?? 0n;
    out.oomKills = events.get('oom_kill') ?? 0n;
  }
  if (psi) out.psi = psi;
  return out;
}

async function swap(f: CgroupDirFiles): Promise<SwapReading | undefined> {
  const [usage, rawLimit] = await Promise.all([f.single('memory.swap.current'), f.single('memory.swap.max')]);
  if (usage === undefined) return undefined;
  const out: SwapReading = { usageBytes: usage };
  const limit = limited(rawLimit);
  if (limit !== undefined) {
    out.limitBytes = limit;
    out.availableBytes = floorSub(limit, usage);
  }
  return out;
}

async function pids(f: CgroupDirFiles, scope: CgroupReadScope): Promise<PidsReading | undefined> {
  const [current, limit] = await Promise.all([f.single('pids.current'), scope.metrics ? f.single('pids.max') : undefined]);
  if (current !== undefined) {
    const out: PidsReading = { current };
    if (limit !== undefined) out.limit = limit;
    return out;
  }
  const procs = await f.list('cgroup.procs');
  return procs === undefined ? undefined : { current: countProcs(procs) };
}

export async function readCgroupStatsV2(
  reader: KernelFileReader, root: string, relPath: string, timestamp: string, scope: CgroupReadScope,
): Promise<CgroupStats | undefined> {
  const f = cgroupDirFiles(reader, `${root}${relPath}`);
  try {
    const [c, m, sw, p, ioPsi] = await Promise.all(
      [cpu(f), memory(f, scope), swap(f), scope.pids ? pids(f, scope) : undefined, f.pressure('io')]);
    const out: CgroupStats = { timestamp };
    if (c) out.cpu = c;
    if (m) out.memory = m;
    if (sw) out.swap = sw;
    if (p) out.pids = p;
    if (ioPsi) out.io = { psi: ioPsi };
    return out;
  } catch (err) {
    if (err instanceof DirectoryGoneError && err.dir === f.dir) return undefined;
    throw err;
  }
}
