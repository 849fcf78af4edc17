// cgroup v1: each controller has its own hierarchy under the root (/sys/fs/cgroup/cpuacct,
// /memory, /pids...; sometimes co-mounted as "cpu,cpuacct"), and the cgroup has one directory in
// each. Hierarchies are found the way crib-runtime finds them (cgroup-detect.c): the first
// directory entry, in name order, whose comma-separated name lists the controller.
import { readdir } from 'node:fs/promises';
import {
  floorSub, isDirectory, limited, readFlatKeyed, readOptional, readSingle,
} from './cgroup-files.js';
import type { CgroupStats, CpuReading, MemoryReading, PidsReading, SwapReading } from './cgroup-stats.js';

// cpuacct.stat counts USER_HZ ticks, which Linux fixes at 100 for user space on every arch.
const NS_PER_TICK = 10_000_000n;

// Mounts change only when the host is reconfigured; listing the root for each of a hundred
// containers in one ListContainerStats is wasted work, so the list is kept for a few seconds.
const HIERARCHY_TTL_MS = 5000;
const hierarchyCache = new Map<string, { at: number; names: Promise<string[]> }>();

function hierarchies(root: string): Promise<string[]> {
  const now = performance.now();
  const hit = hierarchyCache.get(root);
  if (hit && now - hit.at < HIERARCHY_TTL_MS) return hit.names;
  const names = readdir(root, { withFileTypes: true }).then((entries) => entries
    .filter((e) => !e.name.startsWith('.') && (e.isDirectory() || e.isSymbolicLink()))
    .map((e) => e.name)
    .sort());
  hierarchyCache.set(root, { at: now, names });
  names.catch(() => hierarchyCache.delete(root));
  return names;
}

function controllerDir(root: string, names: string[], controller: string, relPath: string) {
  const name = names.find((n) => n.split(',').includes(controller));
  return name === undefined ? undefined : `${root}/${name}${relPath}`;
}

async function cpu(cpuacct: string, cpuDir: string | undefined): Promise<CpuReading | undefined> {
  const [usage, ticks, s] = await Promise.all([
    readSingle(`${cpuacct}/cpuacct.usage`),
    readFlatKeyed(`${cpuacct}/cpuacct.stat`),
    cpuDir === undefined ? undefined : readFlatKeyed(`${cpuDir}/cpu.stat`),
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

async function memory(dir: string): Promise<MemorySection> {
  const [usage, s, rawLimit, failcnt, oom, memsw, rawMemswLimit] = await Promise.all([
    readSingle(`${dir}/memory.usage_in_bytes`),
    readFlatKeyed(`${dir}/memory.stat`),
    readSingle(`${dir}/memory.limit_in_bytes`),
    readSingle(`${dir}/memory.failcnt`),
    readFlatKeyed(`${dir}/memory.oom_control`),
    // memsw counts memory + swap; its files exist only with swap accounting on.
    readSingle(`${dir}/memory.memsw.usage_in_bytes`),
    readSingle(`${dir}/memory.memsw.limit_in_bytes`),
  ]);
  if (usage === undefined || s === undefined) return {};
  // total_* include the sub-cgroups, as usage_in_bytes does (a pod's containers).
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

async function pids(pidsDir: string | undefined, procsDir: string): Promise<PidsReading | undefined> {
  const [current, limit] = pidsDir === undefined ? [] : await Promise.all(
    [readSingle(`${pidsDir}/pids.current`), readSingle(`${pidsDir}/pids.max`)]);
  if (current !== undefined) {
    const out: PidsReading = { current };
    if (limit !== undefined) out.limit = limit;
    return out;
  }
  const procs = await readOptional(`${procsDir}/cgroup.procs`);
  if (procs === undefined) return undefined;
  return { current: BigInt(procs.split('\n').filter((l) => l.trim() !== '').length) };
}

export async function readCgroupStatsV1(
  root: string, relPath: string, timestamp: string): Promise<CgroupStats | undefined> {
  const names = await hierarchies(root);
  const dirOf = async (controller: string) => {
    const dir = controllerDir(root, names, controller, relPath);
    return dir !== undefined && (await isDirectory(dir)) ? dir : undefined;
  };
  const [cpuacctDir, cpuDir, memoryDir, pidsDir] = await Promise.all(
    [dirOf('cpuacct'), dirOf('cpu'), dirOf('memory'), dirOf('pids')]);
  const anyDir = pidsDir ?? memoryDir ?? cpuacctDir ?? cpuDir;
  if (anyDir === undefined) return undefined;

  const [c, m, p] = await Promise.all([
    cpuacctDir === undefined ? undefined : cpu(cpuacctDir, cpuDir),
    memoryDir === undefined ? ({} as MemorySection) : memory(memoryDir),
    pids(pidsDir, anyDir),
  ]);
  const out: CgroupStats = { timestamp };
  if (c) out.cpu = c;
  if (m.memory) out.memory = m.memory;
  if (m.swap) out.swap = m.swap;
  if (p) out.pids = p;
  return out;
}
