// A container's requests and limits as kubelet turns them into LinuxContainerResources: CPU
// shares from the request, a CFS quota from the limit (period 100 ms), the memory limit, and an
// oom_score_adj that depends on the pod's QoS class. Only cpu and memory are resources here (the
// manifest validator rejects every other resource name).
import { memoryBytes, milliCpu } from './quantity.js';

export type QosClass = 'Guaranteed' | 'Burstable' | 'BestEffort';

export interface ResourceSpec {
  requests?: Record<string, string | number>;
  limits?: Record<string, string | number>;
}

/** kubelet's constants (cm/qos): shares bounds, the CFS period, the OOM scores of the classes. */
export const MIN_SHARES = 2;
export const MAX_SHARES = 262_144;
export const CFS_PERIOD_US = 100_000;
export const MIN_QUOTA_US = 1_000;
export const GUARANTEED_OOM_SCORE_ADJ = -997;
export const BEST_EFFORT_OOM_SCORE_ADJ = 1000;

export interface LinuxResources {
  cpuPeriod: number;
  cpuQuota: number;
  cpuShares: number;
  memoryLimitInBytes: number;
  oomScoreAdj: number;
}

interface Effective {
  cpuRequest: number;
  cpuLimit: number;
  memRequest: number;
  memLimit: number;
}

/** Requests default to limits (the API server's defaulting), as every later step assumes. */
function effective(r: ResourceSpec | undefined, field: string): Effective {
  const cpuLimit = r?.limits?.cpu !== undefined ? milliCpu(r.limits.cpu, `${field}.limits.cpu`) : 0;
  const memLimit = r?.limits?.memory !== undefined ? memoryBytes(r.limits.memory, `${field}.limits.memory`) : 0;
  const cpuRequest = r?.requests?.cpu !== undefined ? milliCpu(r.requests.cpu, `${field}.requests.cpu`) : cpuLimit;
  const memRequest = r?.requests?.memory !== undefined ? memoryBytes(r.requests.memory, `${field}.requests.memory`) : memLimit;
  return { cpuRequest, cpuLimit, memRequest, memLimit };
}

/**
 * The pod's QoS class from all its containers (init ones too): BestEffort when nothing is
 * requested or limited, Guaranteed when every container limits both cpu and memory and requests
 * exactly its limits, Burstable otherwise.
 */
export function qosClass(containers: { resources?: ResourceSpec }[]): QosClass {
  let any = false;
  let guaranteed = true;
  containers.forEach((c, i) => {
    const e = effective(c.resources, `containers[${i}].resources`);
    if (e.cpuRequest || e.cpuLimit || e.memRequest || e.memLimit) any = true;
    if (!e.cpuLimit || !e.memLimit || e.cpuRequest !== e.cpuLimit || e.memRequest !== e.memLimit) guaranteed = false;
  });
  if (!any) return 'BestEffort';
  return guaranteed ? 'Guaranteed' : 'Burstable';
}

export function milliCpuToShares(milli: number): number {
  if (milli === 0) return MIN_SHARES;
  return Math.min(MAX_SHARES, Math.max(MIN_SHARES, Math.floor((milli * 1024) / 1000)));
}

export function milliCpuToQuota(milli: number, period = CFS_PERIOD_US): number {
  if (milli === 0) return 0;
  return Math.max(MIN_QUOTA_US, Math.floor((milli * period) / 1000));
}

/**
 * oom_score_adj by class: Guaranteed -997, BestEffort 1000, Burstable 1000 minus the container's
 * memory request in thousandths of the node's memory, kept within 3..999 so a Burstable
 * container is never treated as Guaranteed nor as BestEffort.
 */
export function oomScoreAdj(qos: QosClass, memRequest: number, memoryCapacity: number): number {
  if (qos === 'Guaranteed') return GUARANTEED_OOM_SCORE_ADJ;
  if (qos === 'BestEffort') return BEST_EFFORT_OOM_SCORE_ADJ;
  const adj = 1000 - Math.floor((1000 * memRequest) / memoryCapacity);
  if (adj < 1000 + GUARANTEED_OOM_SCORE_ADJ) return 1000 + GUARANTEED_OOM_SCORE_ADJ;
  if (adj === BEST_EFFORT_OOM_SCORE_ADJ) return adj - 1;
  return adj;
}

export function linuxResources(r: ResourceSpec | undefined, qos: QosClass, memoryCapacity: number, field = 'resources'): LinuxResources {
  const e = effective(r, field);
  // A limit without a request: the request defaulted to it, so the shares follow the limit.
  return {
    cpuShares: milliCpuToShares(e.cpuRequest),
    cpuPeriod: CFS_PERIOD_US,
    cpuQuota: milliCpuToQuota(e.cpuLimit),
    memoryLimitInBytes: e.memLimit,
    oomScoreAdj: oomScoreAdj(qos, e.memRequest, memoryCapacity),
  };
}

/** MemTotal of /proc/meminfo's text, in bytes: the capacity kubelet's Burstable formula uses. */
export function memTotalBytes(meminfo: string): number {
  const m = /^MemTotal:\s+(\d+) kB$/m.exec(meminfo);
  if (!m) throw new Error('/proc/meminfo has no MemTotal line');
  return Number(m[1]) * 1024;
}
