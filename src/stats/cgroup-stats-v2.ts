// cgroup v2: every figure lives in the cgroup's one directory. Files of controllers that are not
// enabled for it (memory.*, pids.*) are simply absent; cpu.stat and cgroup.procs always exist.
// All files of a reading are read in one job of the reader (readDirs).
import { CgroupFileTexts, countedProcs, floorSub, limited, pidsCount } from './cgroup-files.js';
import type { CgroupReadScope, CgroupStats, CpuReading, MemoryReading, SwapReading } from './cgroup-stats.js';
import type { KernelFileReader } from './kernel-file-reader.js';

const US = 1000n;

// The keys each reading uses (cgroup-files.ts parses only these): memory.stat has ~50 lines.
const CPU_STAT_KEYS = new Set(['usage_usec', 'user_usec', 'system_usec', 'nr_periods', 'nr_throttled', 'throttled_usec']);
const MEMORY_STAT_KEYS = new Set(['inactive_file', 'anon', 'file', 'pgfault', 'pgmajfault']);
const MEMORY_EVENTS_KEYS = new Set(['max', 'oom_kill']);

/** The files a reading of `scope` needs, made once per scope (read for every cgroup of a listing). */
const FILES_BY_SCOPE: (readonly string[] | undefined)[] = [];
function filesFor(scope: CgroupReadScope): readonly string[] {
  const key = (scope.metrics ? 2 : 0) + (scope.pids ? 1 : 0);
  let files = FILES_BY_SCOPE[key];
  if (files === undefined) {
    files = [
      'cpu.stat', 'cpu.pressure', 'io.pressure',
      'memory.current', 'memory.stat', 'memory.max', 'memory.pressure', 'memory.swap.current', 'memory.swap.max',
      // failcnt and OOM kills, and the pids limit, are reported only in metrics.
      ...(scope.metrics ? ['memory.events'] : []),
      ...(scope.pids ? ['pids.current'] : []),
      ...(scope.pids && scope.metrics ? ['pids.max'] : []),
    ];
    FILES_BY_SCOPE[key] = files;
  }
  return files;
}

function cpu(f: CgroupFileTexts): CpuReading | undefined {
  const s = f.flatKeyed('cpu.stat', CPU_STAT_KEYS);
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
  const psi = f.pressure('cpu.pressure');
  if (psi) out.psi = psi;
  return out;
}

function memory(f: CgroupFileTexts, scope: CgroupReadScope): MemoryReading | undefined {
  const usage = f.single('memory.current');
  const s = f.flatKeyed('memory.stat', MEMORY_STAT_KEYS);
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
  const limit = limited(f.single('memory.max'));
  if (limit !== undefined) {
    out.limitBytes = limit;
    out.availableBytes = floorSub(limit, workingSet);
  }
  const events = scope.metrics ? f.flatKeyed('memory.events', MEMORY_EVENTS_KEYS) : undefined;
  if (events) {
    out.failcnt = events.get('max') ?? 0n;
    out.oomKills = events.get('oom_kill') ?? 0n;
  }
  const psi = f.pressure('memory.pressure');
  if (psi) out.psi = psi;
  return out;
}

function swap(f: CgroupFileTexts): SwapReading | undefined {
  const usage = f.single('memory.swap.current');
  if (usage === undefined) return undefined;
  const out: SwapReading = { usageBytes: usage };
  const limit = limited(f.single('memory.swap.max'));
  if (limit !== undefined) {
    out.limitBytes = limit;
    out.availableBytes = floorSub(limit, usage);
  }
  return out;
}

export async function readCgroupStatsV2(
  reader: KernelFileReader, root: string, relPath: string, timestamp: string, scope: CgroupReadScope,
): Promise<CgroupStats | undefined> {
  const dir = `${root}${relPath}`;
  const names = filesFor(scope);
  const [texts] = await reader.readDirs([{ dir, names }]);
  if (texts === undefined) return undefined;
  const f = new CgroupFileTexts(dir, names, texts);
  const out: CgroupStats = { timestamp };
  const c = cpu(f);
  const m = memory(f, scope);
  const sw = swap(f);
  const ioPsi = f.pressure('io.pressure');
  if (c) out.cpu = c;
  if (m) out.memory = m;
  if (sw) out.swap = sw;
  if (ioPsi) out.io = { psi: ioPsi };
  if (scope.pids) {
    const p = pidsCount(f, scope) ?? await countedProcs(reader, dir);
    if (p) out.pids = p;
  }
  return out;
}
