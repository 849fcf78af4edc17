// Readings → CRI PodSandboxMetrics (ListPodSandboxMetrics), cAdvisor-shaped: pod-level entries
// for the pod's own cgroup (container="") and its network namespace, container entries for each
// container's cgroup and writable layer. Values are the CRI's UInt64Value, so second counters
// are whole seconds (rounded down), as CRI-O reports them; kubelet converts them to floats.
import type { Metric } from '../gen/runtime/v1/Metric.js';
import type { PodSandboxMetadata } from '../gen/runtime/v1/PodSandboxMetadata.js';
import type { PodSandboxMetrics } from '../gen/runtime/v1/PodSandboxMetrics.js';
import type { CgroupStats } from './cgroup-stats.js';
import { u64 } from './cri-stats.js';
import type { FsUsage } from './fs-usage.js';
import { METRICS, type MetricDef } from './metric-descriptors.js';
import type { NetworkReading } from './network-stats.js';

export { listMetricDescriptors } from './metric-descriptors.js';

const NS_PER_S = 1_000_000_000n;

export interface ContainerMetricsInput {
  id: string;
  /** The Kubernetes container name (ContainerMetadata.name). */
  name: string;
  /** Image reference the container was created from. */
  image: string;
  /** The container's cgroup path (resolveCgroupPath), cAdvisor's "id" label; defaults to id. */
  cgroupPath?: string;
  stats?: CgroupStats;
  writableLayer?: { usage: FsUsage; mountpoint: string };
}

export interface PodMetricsInput {
  podSandboxId: string;
  metadata: Pick<PodSandboxMetadata, 'name' | 'namespace'>;
  /** The pod cgroup path (resolvePodCgroupPath); defaults to the sandbox id. */
  cgroupPath?: string;
  /** The pod cgroup's reading, when the pod has a cgroup of its own. */
  stats?: CgroupStats;
  network?: NetworkReading;
  containers: ContainerMetricsInput[];
}

/** Collects metrics that share the base label values of one container (or the pod). */
class MetricList {
  readonly metrics: Metric[] = [];
  constructor(private readonly base: string[]) {}

  add(def: MetricDef, value: bigint, timestamp: string, extra: string[] = []): void {
    this.metrics.push({
      name: def.name,
      timestamp,
      metricType: def.type,
      labelValues: [...this.base, ...extra],
      value: u64(value),
    });
  }
}

function addCgroupMetrics(out: MetricList, s: CgroupStats): void {
  const ts = s.timestamp;
  const cpu = s.cpu;
  if (cpu) {
    out.add(METRICS.cpuUsage, cpu.usageNs / NS_PER_S, ts, ['total']);
    if (cpu.userNs !== undefined) out.add(METRICS.cpuUser, cpu.userNs / NS_PER_S, ts);
    if (cpu.systemNs !== undefined) out.add(METRICS.cpuSystem, cpu.systemNs / NS_PER_S, ts);
    if (cpu.periods !== undefined) {
      out.add(METRICS.cfsPeriods, cpu.periods, ts);
      out.add(METRICS.cfsThrottledPeriods, cpu.throttledPeriods ?? 0n, ts);
      out.add(METRICS.cfsThrottledSeconds, (cpu.throttledNs ?? 0n) / NS_PER_S, ts);
    }
  }
  const mem = s.memory;
  if (mem) {
    out.add(METRICS.memoryUsage, mem.usageBytes, ts);
    out.add(METRICS.memoryWorkingSet, mem.workingSetBytes, ts);
    out.add(METRICS.memoryRss, mem.rssBytes, ts);
    out.add(METRICS.memoryCache, mem.cacheBytes, ts);
    // cgroup page-fault counters include sub-cgroups: cAdvisor's "hierarchy" scope.
    out.add(METRICS.memoryFailures, mem.pageFaults, ts, ['pgfault', 'hierarchy']);
    out.add(METRICS.memoryFailures, mem.majorPageFaults, ts, ['pgmajfault', 'hierarchy']);
    out.add(METRICS.memoryLimit, mem.limitBytes ?? 0n, ts);
    if (mem.failcnt !== undefined) out.add(METRICS.memoryFailcnt, mem.failcnt, ts);
    if (mem.oomKills !== undefined) out.add(METRICS.oomEvents, mem.oomKills, ts);
  }
  if (s.swap) out.add(METRICS.memorySwap, s.swap.usageBytes, ts);
  if (s.pids) out.add(METRICS.processes, s.pids.current, ts);
  out.add(METRICS.lastSeen, BigInt(ts) / NS_PER_S, ts);
}

function addNetworkMetrics(out: MetricList, net: NetworkReading): void {
  const ts = net.timestamp;
  // Loopback never leaves the pod; cAdvisor leaves it out too.
  for (const i of net.interfaces.filter((n) => n.name !== 'lo')) {
    const l = [i.name];
    out.add(METRICS.netRxBytes, i.rxBytes, ts, l);
    out.add(METRICS.netRxPackets, i.rxPackets, ts, l);
    out.add(METRICS.netRxErrors, i.rxErrors, ts, l);
    out.add(METRICS.netRxDropped, i.rxDropped, ts, l);
    out.add(METRICS.netTxBytes, i.txBytes, ts, l);
    out.add(METRICS.netTxPackets, i.txPackets, ts, l);
    out.add(METRICS.netTxErrors, i.txErrors, ts, l);
    out.add(METRICS.netTxDropped, i.txDropped, ts, l);
  }
}

/** One pod's metrics; label values follow BASE_LABEL_KEYS plus each metric's extra keys. */
export function podSandboxMetrics(input: PodMetricsInput): PodSandboxMetrics {
  const ns = input.metadata.namespace ?? '';
  const pod = input.metadata.name ?? '';
  const podLevel = new MetricList(
    ['', input.cgroupPath ?? input.podSandboxId, '', input.podSandboxId, ns, pod]);
  if (input.stats) addCgroupMetrics(podLevel, input.stats);
  if (input.network) addNetworkMetrics(podLevel, input.network);

  const containerMetrics = input.containers.map((c) => {
    const list = new MetricList([c.name, c.cgroupPath ?? c.id, c.image, c.id, ns, pod]);
    if (c.stats) addCgroupMetrics(list, c.stats);
    if (c.writableLayer) {
      const u = c.writableLayer.usage;
      list.add(METRICS.fsUsage, u.bytes, u.timestamp, [c.writableLayer.mountpoint]);
    }
    return { containerId: c.id, metrics: list.metrics };
  });
  return { podSandboxId: input.podSandboxId, metrics: podLevel.metrics, containerMetrics };
}
