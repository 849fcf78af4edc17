// cgroup v2: every figure lives in the cgroup's one directory. Files of controllers that are not
// enabled for it (memory.*, pids.*) are simply absent; cpu.stat and cgroup.procs always exist.
import {
  floorSub, isDirectory, limited, parsePressure, readFlatKeyed, readOptional, readSingle,
} from './cgroup-files.js';
import type { CgroupStats, CpuReading, MemoryReading, PidsReading, SwapReading } from './cgroup-stats.js';

const US = 1000n;

async function pressure(dir: string, name: string) {
  const text = await readOptional(`${dir}/${name}.pressure`);
  return text === undefined ? undefined : parsePressure(text);
}

async function cpu(dir: string): Promise<CpuReading | undefined> {
  const s = await readFlatKeyed(`${dir}/cpu.stat`);
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
  const psi = await pressure(dir, 'cpu');
  if (psi) out.psi = psi;
  return out;
}

async function memory(dir: string): Promise<MemoryReading | undefined> {
  const usage = await readSingle(`${dir}/memory.current`);
  const s = await readFlatKeyed(`${dir}/memory.stat`);
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
  const limit = limited(await readSingle(`${dir}/memory.max`));
  if (limit !== undefined) {
    out.limitBytes = limit;
    out.availableBytes = floorSub(limit, workingSet);
  }
  const events = await readFlatKeyed(`${dir}/memory.events`);
  if (events) {
    out.failcnt = events.get('max') ?? 0n;
    out.oomKills = events.get('oom_kill') ?? 0n;
  }
  const psi = await pressure(dir, 'memory');
  if (psi) out.psi = psi;
  return out;
}

async function swap(dir: string): Promise<SwapReading | undefined> {
  const usage = await readSingle(`${dir}/memory.swap.current`);
  if (usage === undefined) return undefined;
  const out: SwapReading = { usageBytes: usage };
  const limit = limited(await readSingle(`${dir}/memory.swap.max`));
  if (limit !== undefined) {
    out.limitBytes = limit;
    out.availableBytes = floorSub(limit, usage);
  }
  return out;
}

async function pids(dir: string): Promise<PidsReading | undefined> {
  const current = await readSingle(`${dir}/pids.current`);
  if (current !== undefined) {
    const out: PidsReading = { current };
    const limit = await readSingle(`${dir}/pids.max`);
    if (limit !== undefined) out.limit = limit;
    return out;
  }
  const procs = await readOptional(`${dir}/cgroup.procs`);
  if (procs === undefined) return undefined;
  return { current: BigInt(procs.split('\n').filter((l) => l.trim() !== '').length) };
}

export async function readCgroupStatsV2(
  root: string, relPath: string, timestamp: string): Promise<CgroupStats | undefined> {
  const dir = `${root}${relPath}`;
  if (!(await isDirectory(dir))) return undefined;
  const [c, m, sw, p, ioPsi] = await Promise.all(
    [cpu(dir), memory(dir), swap(dir), pids(dir), pressure(dir, 'io')]);
  const out: CgroupStats = { timestamp };
  if (c) out.cpu = c;
  if (m) out.memory = m;
  if (sw) out.swap = sw;
  if (p) out.pids = p;
  if (ioPsi) out.io = { psi: ioPsi };
  return out;
}
