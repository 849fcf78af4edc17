// A pod without a cgroup of its own (no cgroupParent) still owes kubelet pod-level CPU and
// memory: the sum of its containers' readings, which is what the pod cgroup would hold.
import type { CgroupStats, CpuReading, MemoryReading } from './cgroup-stats.js';

const sum = (xs: bigint[]): bigint => xs.reduce((a, b) => a + b, 0n);

function sumOptional(xs: (bigint | undefined)[]): bigint | undefined {
  return xs.some((x) => x === undefined) ? undefined : sum(xs as bigint[]);
}

/** Undefined for no readings. Limits are not summed (a pod limit is not the sum of the parts). */
export function sumCgroupStats(readings: CgroupStats[]): CgroupStats | undefined {
  if (readings.length === 0) return undefined;
  // The latest timestamp: the sum is complete only once the last part was read.
  const timestamp = readings.map((r) => BigInt(r.timestamp)).reduce((a, b) => (a > b ? a : b)).toString();
  const out: CgroupStats = { timestamp };
  const cpus = readings.flatMap((r) => (r.cpu ? [r.cpu] : []));
  if (cpus.length > 0) {
    const cpu: CpuReading = { usageNs: sum(cpus.map((c) => c.usageNs)) };
    const user = sumOptional(cpus.map((c) => c.userNs));
    const system = sumOptional(cpus.map((c) => c.systemNs));
    if (user !== undefined) cpu.userNs = user;
    if (system !== undefined) cpu.systemNs = system;
    out.cpu = cpu;
  }
  const mems = readings.flatMap((r) => (r.memory ? [r.memory] : []));
  if (mems.length > 0) {
    const memory: MemoryReading = {
      usageBytes: sum(mems.map((m) => m.usageBytes)),
      workingSetBytes: sum(mems.map((m) => m.workingSetBytes)),
      rssBytes: sum(mems.map((m) => m.rssBytes)),
      cacheBytes: sum(mems.map((m) => m.cacheBytes)),
      pageFaults: sum(mems.map((m) => m.pageFaults)),
      majorPageFaults: sum(mems.map((m) => m.majorPageFaults)),
    };
    out.memory = memory;
  }
  const pids = readings.flatMap((r) => (r.pids ? [r.pids.current] : []));
  if (pids.length > 0) out.pids = { current: sum(pids) };
  const swaps = readings.flatMap((r) => (r.swap ? [r.swap.usageBytes] : []));
  if (swaps.length > 0) out.swap = { usageBytes: sum(swaps) };
  return out;
}
