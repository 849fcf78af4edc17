// cgroup v1: each controller has its own hierarchy under the root (/sys/fs/cgroup/cpuacct,
// /memory, /pids...; sometimes co-mounted as "cpu,cpuacct"), and the cgroup has one directory in
// each. A controller's hierarchy is the first cgroup mount directly under the root, in name
// order, whose super options list it (cgroup-v1-mounts.ts): the mount table says what is a
// hierarchy, not a directory's name.
import { readFile } from 'node:fs/promises';
import { cgroupV1Mounts, controllerMount, type CgroupV1Mount } from './cgroup-v1-mounts.js';
import { CgroupFileTexts, countedProcs, floorSub, limited, pidsCount } from './cgroup-files.js';
import type { CgroupReadScope, CgroupStats, CpuReading, MemoryReading, SwapReading } from './cgroup-stats.js';
import type { DirFiles, KernelFileReader } from './kernel-file-reader.js';

// cpuacct.stat counts USER_HZ ticks, which Linux fixes at 100 for user space on every arch.
const NS_PER_TICK = 10_000_000n;

// The keys each reading uses (cgroup-files.ts parses only these). total_* include the
// sub-cgroups, as usage_in_bytes does (a pod's containers).
const MEMORY_STAT_KEYS = new Set(['total_inactive_file', 'total_rss', 'total_cache', 'total_pgfault', 'total_pgmajfault']);
const CPUACCT_STAT_KEYS = new Set(['user', 'system']);
const CPU_STAT_KEYS = new Set(['nr_periods', 'nr_throttled', 'throttled_time']);
const OOM_CONTROL_KEYS = new Set(['oom_kill']);

// Mounts change only when the host is reconfigured; reading the mount table for each of a
// hundred containers in one ListContainerStats is wasted work, so it is kept for a few seconds.
const HIERARCHY_TTL_MS = 5000;
const hierarchyCache = new Map<string, { at: number; mounts: Promise<CgroupV1Mount[]> }>();

/** The v1 hierarchies under root, from `mountinfo` when given (tests), else this process's mount table. */
function hierarchies(root: string, mountinfo: string | undefined): Promise<CgroupV1Mount[]> {
  if (mountinfo !== undefined) return Promise.resolve(cgroupV1Mounts(mountinfo, root));
  const now = performance.now();
  const hit = hierarchyCache.get(root);
  if (hit && now - hit.at < HIERARCHY_TTL_MS) return hit.mounts;
  const mounts = readFile('/proc/self/mountinfo', 'utf8').then((text) => cgroupV1Mounts(text, root));
  hierarchyCache.set(root, { at: now, mounts });
  mounts.catch(() => hierarchyCache.delete(root));
  return mounts;
}

/** The files each hierarchy's directory gives a reading of `scope`, made once per scope. */
interface V1Files {
  cpuacct: readonly string[];
  cpu: readonly string[];
  memory: readonly string[];
  pids: readonly string[];
}
const FILES_BY_SCOPE: (V1Files | undefined)[] = [];
function filesFor(scope: CgroupReadScope): V1Files {
  const key = (scope.metrics ? 2 : 0) + (scope.pids ? 1 : 0);
  let files = FILES_BY_SCOPE[key];
  if (files === undefined) {
    // The user/system split, throttling, failcnt, OOM kills and the pids limit are reported only
    // in metrics; the cpu hierarchy is read only for them.
    files = {
      cpuacct: scope.metrics ? ['cpuacct.usage', 'cpuacct.stat'] : ['cpuacct.usage'],
      cpu: ['cpu.stat'],
      memory: [
        'memory.usage_in_bytes', 'memory.stat', 'memory.limit_in_bytes',
        // memsw counts memory + swap; its files exist only with swap accounting on.
        'memory.memsw.usage_in_bytes', 'memory.memsw.limit_in_bytes',
        ...(scope.metrics ? ['memory.failcnt', 'memory.oom_control'] : []),
      ],
      pids: scope.metrics ? ['pids.current', 'pids.max'] : ['pids.current'],
    };
    FILES_BY_SCOPE[key] = files;
  }
  return files;
}

function cpu(cpuacct: CgroupFileTexts, cpuDir: CgroupFileTexts | undefined, scope: CgroupReadScope): CpuReading | undefined {
  const usage = cpuacct.single('cpuacct.usage');
  if (usage === undefined) return undefined;
  const out: CpuReading = { usageNs: usage };
  if (scope.metrics) {
    const ticks = cpuacct.flatKeyed('cpuacct.stat', CPUACCT_STAT_KEYS);
    const user = ticks?.get('user');
    const system = ticks?.get('system');
    if (user !== undefined) out.userNs = user * NS_PER_TICK;
    if (system !== undefined) out.systemNs = system * NS_PER_TICK;
    const s = cpuDir?.flatKeyed('cpu.stat', CPU_STAT_KEYS);
    if (s?.has('nr_periods')) {
      out.periods = s.get('nr_periods');
      out.throttledPeriods = s.get('nr_throttled') ?? 0n;
      out.throttledNs = s.get('throttled_time') ?? 0n;
    }
  }
  return out;
}

interface MemorySection {
  memory?: MemoryReading;
  swap?: SwapReading;
}

function memory(f: CgroupFileTexts, scope: CgroupReadScope): MemorySection {
  const usage = f.single('memory.usage_in_bytes');
  const s = f.flatKeyed('memory.stat', MEMORY_STAT_KEYS);
  if (usage === undefined || s === undefined) return {};
  const workingSet = floorSub(usage, s.get('total_inactive_file') ?? 0n);
  const mem: MemoryReading = {
    usageBytes: usage,
    workingSetBytes: workingSet,
    rssBytes: s.get('total_rss') ?? 0n,
    cacheBytes: s.get('total_cache') ?? 0n,
    pageFaults: s.get('total_pgfault') ?? 0n,
    majorPageFaults: s.get('total_pgmajfault') ?? 0n,
  };
  const limit = limited(f.single('memory.limit_in_bytes'));
  if (limit !== undefined) {
    mem.limitBytes = limit;
    mem.availableBytes = floorSub(limit, workingSet);
  }
  if (scope.metrics) {
    const failcnt = f.single('memory.failcnt');
    const oom = f.flatKeyed('memory.oom_control', OOM_CONTROL_KEYS);
    if (failcnt !== undefined) mem.failcnt = failcnt;
    if (oom?.has('oom_kill')) mem.oomKills = oom.get('oom_kill');
  }

  const memsw = f.single('memory.memsw.usage_in_bytes');
  if (memsw === undefined) return { memory: mem };
  const swap: SwapReading = { usageBytes: floorSub(memsw, usage) };
  const memswLimit = limited(f.single('memory.memsw.limit_in_bytes'));
  if (memswLimit !== undefined && limit !== undefined) {
    swap.limitBytes = floorSub(memswLimit, limit);
    swap.availableBytes = floorSub(swap.limitBytes, swap.usageBytes);
  }
  return { memory: mem, swap };
}

export async function readCgroupStatsV1(
  reader: KernelFileReader, root: string, relPath: string, timestamp: string, scope: CgroupReadScope, mountinfo?: string,
): Promise<CgroupStats | undefined> {
  const mounts = await hierarchies(root, mountinfo);
  const files = filesFor(scope);
  // Every hierarchy's files of the reading in one job of the reader. Whether the cgroup is there
  // in a hierarchy is learnt from reading its files there: no stat of each directory first.
  const groups: DirFiles[] = [];
  const ask = (controller: string, names: readonly string[]): number => {
    const mount = controllerMount(mounts, controller);
    return mount === undefined ? -1 : groups.push({ dir: `${mount}${relPath}`, names }) - 1;
  };
  const cpuacctAt = ask('cpuacct', files.cpuacct);
  const cpuAt = scope.metrics ? ask('cpu', files.cpu) : -1;
  const memoryAt = ask('memory', files.memory);
  const pidsAt = scope.pids ? ask('pids', files.pids) : -1;
  const texts = await reader.readDirs(groups);
  const there = (at: number): CgroupFileTexts | undefined => {
    const t = at < 0 ? undefined : texts[at];
    return t === undefined ? undefined : new CgroupFileTexts(groups[at]!.dir, groups[at]!.names, t);
  };
  const cpuacctDir = there(cpuacctAt);
  const memoryDir = there(memoryAt);
  const pidsDir = there(pidsAt);
  if (cpuacctDir === undefined && memoryDir === undefined && pidsDir === undefined) return undefined;

  const out: CgroupStats = { timestamp };
  const c = cpuacctDir && cpu(cpuacctDir, there(cpuAt), scope);
  if (c) out.cpu = c;
  if (memoryDir) {
    const m = memory(memoryDir, scope);
    if (m.memory) out.memory = m.memory;
    if (m.swap) out.swap = m.swap;
  }
  if (scope.pids) {
    // No pids controller: count the processes listed in the cgroup itself, in the first
    // hierarchy that has it.
    const p = (pidsDir && pidsCount(pidsDir, scope))
      ?? await countedProcs(reader, (pidsDir ?? memoryDir ?? cpuacctDir)!.dir);
    if (p) out.pids = p;
  }
  return out;
}
