// Readings → CRI stats messages (ContainerStats, PodSandboxStats). Pure functions: the caller
// reads cgroups, the writable layer and the pod's network namespace, and passes what it got;
// a section it could not read is left null, which kubelet treats as "not reported".
import type { ContainerAttributes } from '../gen/runtime/v1/ContainerAttributes.js';
import type { ContainerStats } from '../gen/runtime/v1/ContainerStats.js';
import type { CpuUsage } from '../gen/runtime/v1/CpuUsage.js';
import type { FilesystemUsage } from '../gen/runtime/v1/FilesystemUsage.js';
import type { IoUsage } from '../gen/runtime/v1/IoUsage.js';
import type { MemoryUsage } from '../gen/runtime/v1/MemoryUsage.js';
import type { NetworkInterfaceUsage } from '../gen/runtime/v1/NetworkInterfaceUsage.js';
import type { NetworkUsage } from '../gen/runtime/v1/NetworkUsage.js';
import type { PodSandboxAttributes } from '../gen/runtime/v1/PodSandboxAttributes.js';
import type { PodSandboxStats } from '../gen/runtime/v1/PodSandboxStats.js';
import type { ProcessUsage } from '../gen/runtime/v1/ProcessUsage.js';
import type { PsiStats } from '../gen/runtime/v1/PsiStats.js';
import type { SwapUsage } from '../gen/runtime/v1/SwapUsage.js';
import type { UInt64Value } from '../gen/runtime/v1/UInt64Value.js';
import type { PsiLine, PsiReading } from './cgroup-files.js';
import type { CgroupStats, CpuReading, MemoryReading, PidsReading, SwapReading } from './cgroup-stats.js';
import type { FsUsage } from './fs-usage.js';
import type { InterfaceCounters, NetworkReading } from './network-stats.js';

/** The interface kubelet treats as the pod's own (its default network interface name). */
export const DEFAULT_INTERFACE = 'eth0';

export const u64 = (v: bigint): UInt64Value => ({ value: v.toString() });

function psiData(line: PsiLine) {
  return { Total: line.totalNs.toString(), Avg10: line.avg10, Avg60: line.avg60, Avg300: line.avg300 };
}

export function buildPsi(psi: PsiReading): PsiStats {
  return {
    Some: psi.some ? psiData(psi.some) : null,
    Full: psi.full ? psiData(psi.full) : null,
  };
}

export function buildCpuUsage(cpu: CpuReading, timestamp: string, nanoCores?: bigint): CpuUsage {
  return {
    timestamp,
    usageCoreNanoSeconds: u64(cpu.usageNs),
    usageNanoCores: nanoCores === undefined ? null : u64(nanoCores),
    psi: cpu.psi ? buildPsi(cpu.psi) : null,
  };
}

export function buildMemoryUsage(mem: MemoryReading, timestamp: string): MemoryUsage {
  return {
    timestamp,
    workingSetBytes: u64(mem.workingSetBytes),
    availableBytes: mem.availableBytes === undefined ? null : u64(mem.availableBytes),
    usageBytes: u64(mem.usageBytes),
    rssBytes: u64(mem.rssBytes),
    pageFaults: u64(mem.pageFaults),
    majorPageFaults: u64(mem.majorPageFaults),
    psi: mem.psi ? buildPsi(mem.psi) : null,
  };
}

export function buildSwapUsage(swap: SwapReading, timestamp: string): SwapUsage {
  return {
    timestamp,
    swapAvailableBytes: swap.availableBytes === undefined ? null : u64(swap.availableBytes),
    swapUsageBytes: u64(swap.usageBytes),
  };
}

export function buildIoUsage(psi: PsiReading, timestamp: string): IoUsage {
  return { timestamp, psi: buildPsi(psi) };
}

export function buildProcessUsage(pids: PidsReading, timestamp: string): ProcessUsage {
  return { timestamp, processCount: u64(pids.current) };
}

/** `mountpoint` names the filesystem holding the layer (the snapshotter's root), as containerd does. */
export function buildFilesystemUsage(usage: FsUsage, mountpoint: string): FilesystemUsage {
  return {
    timestamp: usage.timestamp,
    fsId: { mountpoint },
    usedBytes: u64(usage.bytes),
    inodesUsed: u64(usage.inodes),
  };
}

function buildInterface(c: InterfaceCounters): NetworkInterfaceUsage {
  return {
    name: c.name,
    rxBytes: u64(c.rxBytes),
    rxErrors: u64(c.rxErrors),
    txBytes: u64(c.txBytes),
    txErrors: u64(c.txErrors),
  };
}

/**
 * Pod network usage. Loopback is left out, as cAdvisor leaves it out: its traffic never leaves
 * the pod. The default interface is `defaultInterface` when present, else the first other one.
 */
export function buildNetworkUsage(net: NetworkReading, defaultInterface = DEFAULT_INTERFACE): NetworkUsage {
  const interfaces = net.interfaces.filter((i) => i.name !== 'lo').map(buildInterface);
  const def = interfaces.find((i) => i.name === defaultInterface) ?? interfaces[0] ?? null;
  return { timestamp: net.timestamp, defaultInterface: def, interfaces };
}

export interface ContainerStatsInput {
  attributes: ContainerAttributes;
  /** Absent when the container has no cgroup (created, not started; or exited and removed). */
  cgroup?: CgroupStats;
  /** From CpuRateTracker; absent on the first sample. */
  nanoCores?: bigint;
  writableLayer?: { usage: FsUsage; mountpoint: string };
}

export function buildContainerStats(input: ContainerStatsInput): ContainerStats {
  const cg = input.cgroup;
  const ts = cg?.timestamp;
  return {
    attributes: input.attributes,
    cpu: cg?.cpu && ts ? buildCpuUsage(cg.cpu, ts, input.nanoCores) : null,
    memory: cg?.memory && ts ? buildMemoryUsage(cg.memory, ts) : null,
    writableLayer: input.writableLayer
      ? buildFilesystemUsage(input.writableLayer.usage, input.writableLayer.mountpoint)
      : null,
    swap: cg?.swap && ts ? buildSwapUsage(cg.swap, ts) : null,
    io: cg?.io?.psi && ts ? buildIoUsage(cg.io.psi, ts) : null,
  };
}

export interface PodSandboxStatsInput {
  attributes: PodSandboxAttributes;
  /** The pod cgroup (its cgroup parent); absent when the pod has none of its own. */
  cgroup?: CgroupStats;
  nanoCores?: bigint;
  network?: NetworkReading;
  containers: ContainerStats[];
  defaultInterface?: string;
}

export function buildPodSandboxStats(input: PodSandboxStatsInput): PodSandboxStats {
  const cg = input.cgroup;
  const ts = cg?.timestamp;
  return {
    attributes: input.attributes,
    linux: {
      cpu: cg?.cpu && ts ? buildCpuUsage(cg.cpu, ts, input.nanoCores) : null,
      memory: cg?.memory && ts ? buildMemoryUsage(cg.memory, ts) : null,
      network: input.network ? buildNetworkUsage(input.network, input.defaultInterface) : null,
      process: cg?.pids && ts ? buildProcessUsage(cg.pids, ts) : null,
      containers: input.containers,
      io: cg?.io?.psi && ts ? buildIoUsage(cg.io.psi, ts) : null,
    },
    windows: null,
  };
}
