// cgroup v1: each controller has its own hierarchy under the root (/sys/fs/cgroup/cpuacct,
// /memory, /pids...; sometimes co-mounted as "cpu,cpuacct"), and the cgroup has one directory in
// each. A controller's hierarchy is the first cgroup mount directly under the root, in name
// order, whose super options list it (cgroup-v1-mounts.ts): the mount table says what is a
// hierarchy, not a directory's name.
import { readFile } from 'node:fs/promises';
import { cgroupV1Mounts, controllerMount, type CgroupV1Mount } from './cgroup-v1-mounts.js';
import { cgroupDirFiles, countProcs, floorSub, limited, type CgroupDirFiles } from './cgroup-files.js';
import type { CgroupReadScope, CgroupStats, CpuReading, MemoryReading, PidsReading, SwapReading } from './cgroup-stats.js';
import { DirectoryGoneError, type KernelFileReader } from './kernel-file-reader.js';

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

/** What `read` gives for the cgroup's directory in one hierarchy, or gone: not in that one. */
type InHierarchy<T> = { there: true; value: T } | { there: false };

async function inHierarchy<T>(f: CgroupDirFiles | undefined, read: (f: CgroupDirFiles) => Promise<T>): Promise<InHierarchy<T>> {
  if (f === undefined) return { there: false };
  try {
    return { there: true, value: await read(f) };
  } catch (err) {
    if (err instanceof DirectoryGoneError && err.dir === f.dir) return { there: false };
    throw err;
  }
}

async function cpu(cpuacct: CgroupDirFiles, cpuDir: CgroupDirFiles | undefined, scope: CgroupReadScope): Promise<CpuReading | undefined> {
  // User/system split and throttling are reported only in metrics; CRI stats need the total.
  const [usage, ticks, s] = await Promise.all([
    cpuacct.single('cpuacct.usage'),
    scope.metrics ? cpuacct.flatKeyed('cpuacct.stat', CPUACCT_STAT_KEYS) : undefined,
    cpuDir === undefined || !scope.metrics ? undefined
      : inHierarchy(cpuDir, (f) => f.flatKeyed('cpu.stat', CPU_STAT_KEYS)).then((r) => (r.there ? r.value : undefined)),
  ]);
  if (usage === undefined) return undefined;
  const out: CpuReading = { usageNs: usage };
  const user = ticks?.get('user');
  const system = ticks?.get('system');
  if (user !== undefined) out.userNs = user * NS_PER_TICK;
  if (system !== undefined) out.systemNs = system * NS_PER_TICK;
  if (s?.has('nr_periods')) {
    out.periods = s.get('nr_periods');
    out.throttledPeriods = s.get('nr_throttled') ?? 0n;
    out.throttledNs = s.get('throttled_time') ?? 0n;
  }
  return out;
}

interface MemorySection {
  memory?: MemoryReading;
  swap?: SwapReading;
}

async function memory(f: CgroupDirFiles, scope: CgroupReadScope): Promise<MemorySection> {
  const [usage, s, rawLimit, failcnt, oom, memsw, rawMemswLimit] = await Promise.all([
    f.single('memory.usage_in_bytes'),
    f.flatKeyed('memory.stat', MEMORY_STAT_KEYS),
    f.single('memory.limit_in_bytes'),
    // Reported only in metrics.
    scope.metrics ? f.single('memory.failcnt') : undefined,
    scope.metrics ? f.flatKeyed('memory.oom_control', OOM_CONTROL_KEYS) : undefined,
    // memsw counts memory + swap; its files exist only with swap accounting on.
    f.single('memory.memsw.usage_in_bytes'),
    f.single('memory.memsw.limit_in_bytes'),
  ]);
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
  const limit = limited(rawLimit);
  if (limit !== undefined) {
    mem.limitBytes = limit;
    mem.availableBytes = floorSub(limit, workingSet);
  }
  if (failcnt !== undefined) mem.failcnt = failcnt;
  if (oom?.has('oom_kill')) mem.oomKills = oom.get('oom_kill');

  if (memsw === undefined) return { memory: mem };
  const swap: SwapReading = { usageBytes: floorSub(memsw, usage) };
  const memswLimit = limited(rawMemswLimit);
  if (memswLimit !== undefined && limit !== undefined) {
    swap.limitBytes = floorSub(memswLimit, limit);
    swap.availableBytes = floorSub(swap.limitBytes, swap.usageBytes);
  }
  return { memory: mem, swap };
}

/** pids.current (and pids.max for metrics); undefined when the pids controller has no count. */
async function pidsCount(f: CgroupDirFiles, scope: CgroupReadScope): Promise<PidsReading | undefined> {
  const [current, limit] = await Promise.all([f.single('pids.current'), scope.metrics ? f.single('pids.max') : undefined]);
  if (current === undefined) return undefined;
  const out: PidsReading = { current };
  if (limit !== undefined) out.limit = limit;
  return out;
}

export async function readCgroupStatsV1(
  reader: KernelFileReader, root: string, relPath: string, timestamp: string, scope: CgroupReadScope, mountinfo?: string,
): Promise<CgroupStats | undefined> {
  const mounts = await hierarchies(root, mountinfo);
  const filesOf = (controller: string) => {
    const mount = controllerMount(mounts, controller);
    return mount === undefined ? undefined : cgroupDirFiles(reader, `${mount}${relPath}`);
  };
  const cpuacctDir = filesOf('cpuacct');
  const memoryDir = filesOf('memory');
  const pidsDir = filesOf('pids');
  // Whether the cgroup is there in a hierarchy is learnt from reading its files there: no stat
  // of each directory before each read.
  const [c, m, p] = await Promise.all([
    inHierarchy(cpuacctDir, (f) => cpu(f, filesOf('cpu'), scope)),
    inHierarchy(memoryDir, (f) => memory(f, scope)),
    inHierarchy(pidsDir, (f) => (scope.pids ? pidsCount(f, scope) : Promise.resolve(undefined))),
  ]);
  if (!c.there && !m.there && !p.there) return undefined;

  const out: CgroupStats = { timestamp };
  if (c.there && c.value) out.cpu = c.value;
  if (m.there && m.value.memory) out.memory = m.value.memory;
  if (m.there && m.value.swap) out.swap = m.value.swap;
  if (p.there && p.value) out.pids = p.value;
  else if (scope.pids) {
    // No pids controller: count the processes listed in the cgroup itself, in the first
    // hierarchy that has it.
    const anyDir = [p.there ? pidsDir : undefined, m.there ? memoryDir : undefined, c.there ? cpuacctDir : undefined]
      .find((f) => f !== undefined);
    const procs = anyDir === undefined ? undefined : await inHierarchy(anyDir, (f) => f.list('cgroup.procs'));
    if (procs?.there && procs.value !== undefined) out.pids = { current: countProcs(procs.value) };
  }
  return out;
}
