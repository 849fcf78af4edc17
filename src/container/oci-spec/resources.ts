// CRI LinuxContainerResources → linux.resources and process.oomScoreAdj. CRI int64s arrive as
// decimal strings; 0 means "not set" for every field, as in containerd.
import { existsSync, readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { InvalidArgumentError } from '../../errors.js';
import type { LinuxContainerResources__Output } from '../../gen/runtime/v1/LinuxContainerResources.js';
import { log } from '../../log.js';
import type { OciCpu, OciHugepageLimit, OciMemory } from './oci-types.js';

export interface ResourceLimits {
  cpu?: OciCpu;
  memory?: OciMemory;
  hugepageLimits?: OciHugepageLimit[];
  unified?: Record<string, string>;
}

export interface ResourceInput {
  resources: LinuxContainerResources__Output | null | undefined;
  cgroupVersion: 1 | 2;
  /** memory.memsw (v1) / memory.swap.max (v2) exists: swap can be limited. */
  swapAvailable: boolean;
  /** The hugetlb controller is there; without it hugepage limits are skipped with a warning. */
  hugetlbAvailable: boolean;
}

function int(text: string | undefined, field: string, min = 0): number {
  if (text === undefined || text === '') return 0;
  const n = Number(text);
  if (!/^-?\d+$/.test(text) || !Number.isSafeInteger(n) || n < min) {
    throw new InvalidArgumentError(`resources.${field} "${text}" must be an integer >= ${min}`);
  }
  return n;
}

const CPUSET_RE = /^(\d+(-\d+)?)(,\d+(-\d+)?)*$/;

export function containerResources(input: ResourceInput): ResourceLimits {
  const r = input.resources;
  if (!r) return {};
  const out: ResourceLimits = {};
  const cpu: OciCpu = {};
  const period = int(r.cpuPeriod, 'cpuPeriod');
  // -1 is the kernel's "no quota"; anything lower is meaningless.
  const quota = int(r.cpuQuota, 'cpuQuota', -1);
  const shares = int(r.cpuShares, 'cpuShares');
  if (period !== 0) cpu.period = period;
  if (quota !== 0) cpu.quota = quota;
  if (shares !== 0) cpu.shares = shares;
  for (const [key, field] of [['cpus', 'cpusetCpus'], ['mems', 'cpusetMems']] as const) {
    const value = r[field];
    if (!value) continue;
    if (!CPUSET_RE.test(value)) throw new InvalidArgumentError(`resources.${field} "${value}" is not a cpuset list like "0-2,4"`);
    cpu[key] = value;
  }
  if (Object.keys(cpu).length > 0) out.cpu = cpu;

  const memory: OciMemory = {};
  const limit = int(r.memoryLimitInBytes, 'memoryLimitInBytes');
  const swap = int(r.memorySwapLimitInBytes, 'memorySwapLimitInBytes', -1);
  if (limit !== 0) {
    memory.limit = limit;
    // Docker's rule: no swap limit given → memory+swap = memory, i.e. no swap.
    if (swap === 0 && input.swapAvailable) memory.swap = limit;
  }
  if (swap !== 0 && input.swapAvailable) {
    if (swap !== -1 && limit !== 0 && swap < limit) {
      throw new InvalidArgumentError(`resources.memorySwapLimitInBytes ${swap} is below memoryLimitInBytes ${limit} (it counts memory + swap)`);
    }
    memory.swap = swap;
  }
  if (Object.keys(memory).length > 0) out.memory = memory;

  if (r.hugepageLimits.length > 0) {
    if (!input.hugetlbAvailable) {
      log.warn({ hugepageLimits: r.hugepageLimits }, 'hugetlb cgroup controller is absent: hugepage limits skipped');
    } else {
      out.hugepageLimits = r.hugepageLimits.map((h, i) => {
        if (!/^\d+[KMG]B$/.test(h.pageSize)) throw new InvalidArgumentError(`resources.hugepageLimits[${i}].pageSize "${h.pageSize}" is not like "2MB"`);
        return { pageSize: h.pageSize, limit: int(h.limit, `hugepageLimits[${i}].limit`) };
      });
    }
  }

  const unified = r.unified ?? {};
  if (Object.keys(unified).length > 0) {
    if (input.cgroupVersion !== 2) {
      throw new InvalidArgumentError(`resources.unified (${Object.keys(unified).join(', ')}) needs cgroup v2; this node runs cgroup v1`);
    }
    for (const key of Object.keys(unified)) {
      if (!/^[a-z0-9_]+\.[a-z0-9_.]+$/.test(key)) throw new InvalidArgumentError(`resources.unified key "${key}" is not a cgroup v2 file name`);
    }
    out.unified = { ...unified };
  }
  return out;
}

/**
 * Whether the kernel accounts swap per cgroup, i.e. a swap limit can be set. v1: the memory
 * hierarchy has memory.memsw.*. v2: memory.swap.max exists in every cgroup below the root that
 * has the memory controller, when swap accounting is on — but never in the root itself, where a
 * daemon without systemd runs. So the daemon's own cgroup answers, else the first child of the
 * root with memory enabled, else (no such cgroup yet) the memory controller's presence: the
 * runtime then checks the container's own cgroup and warns, naming the file, if it lacks it.
 */
export function swapAccounting(cgroupVersion: 1 | 2, root = '/sys/fs/cgroup'): boolean {
  if (cgroupVersion === 1) return existsSync(join(root, 'memory/memory.memsw.limit_in_bytes'));
  const candidates: string[] = [];
  try {
    const own = readFileSync('/proc/self/cgroup', 'utf8').split('\n').find((l) => l.startsWith('0::'))?.slice(3);
    if (own && own !== '/') candidates.push(join(root, own));
    for (const e of readdirSync(root, { withFileTypes: true })) if (e.isDirectory()) candidates.push(join(root, e.name));
    const probe = candidates.find((dir) => existsSync(join(dir, 'memory.current')));
    if (probe !== undefined) return existsSync(join(probe, 'memory.swap.max'));
    return readFileSync(join(root, 'cgroup.controllers'), 'utf8').split(/\s+/).includes('memory');
  } catch {
    return false;
  }
}

/** The daemon's own oom_score_adj: without CAP_SYS_RESOURCE nothing it spawns may go lower. */
export function currentOomScoreAdj(): number {
  try {
    return Number.parseInt(readFileSync('/proc/self/oom_score_adj', 'utf8').trim(), 10) || 0;
  } catch {
    return 0;
  }
}

/**
 * process.oomScoreAdj: the CRI value, raised to `floor` when it is lower, because lowering it
 * needs CAP_SYS_RESOURCE and would fail the whole container start (containerd's
 * restrict_oom_score_adj behaviour). Undefined when the config has no resources.
 */
export function oomScoreAdj(resources: LinuxContainerResources__Output | null | undefined, floor: number): number | undefined {
  if (!resources) return undefined;
  const adj = int(resources.oomScoreAdj, 'oomScoreAdj', -1000);
  if (adj > 1000) throw new InvalidArgumentError(`resources.oomScoreAdj ${adj} must be in -1000..1000`);
  if (adj < floor) {
    log.warn({ requested: adj, used: floor }, 'oom_score_adj below the daemon\'s own cannot be set without CAP_SYS_RESOURCE; using the daemon\'s');
    return floor;
  }
  return adj;
}
