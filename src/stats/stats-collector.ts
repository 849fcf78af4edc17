// The stats service's one entry point: turns what the daemon knows about a container or pod
// (its cgroupsPath / cgroupParent, writable layer dir, pinned netns) into CRI stats and metrics.
// It owns the state that must outlive one RPC: the previous CPU sample per id (for rates) and
// the short-lived writable-layer walk cache. A section that cannot be read (the container has
// exited and its cgroup is gone, the netns was removed) is left out, never an RPC error: kubelet
// lists stats for every container, running or not.
import type { ContainerAttributes } from '../gen/runtime/v1/ContainerAttributes.js';
import type { ContainerStats } from '../gen/runtime/v1/ContainerStats.js';
import type { MetricDescriptor } from '../gen/runtime/v1/MetricDescriptor.js';
import type { PodSandboxAttributes } from '../gen/runtime/v1/PodSandboxAttributes.js';
import type { PodSandboxMetrics } from '../gen/runtime/v1/PodSandboxMetrics.js';
import type { PodSandboxStats } from '../gen/runtime/v1/PodSandboxStats.js';
import { NotFoundError } from '../errors.js';
import { log } from '../log.js';
import { cgroupLayout, resolveCgroupPath, resolvePodCgroupPath, type CgroupLayout } from './cgroup-path.js';
import { readCgroupStats, type CgroupStats } from './cgroup-stats.js';
import { CpuRateTracker } from './cpu-rate.js';
import { buildContainerStats, buildPodSandboxStats } from './cri-stats.js';
import { FsUsageCache, type FsUsage } from './fs-usage.js';
import { listMetricDescriptors, podSandboxMetrics } from './metrics.js';
import { readNetworkStats, type NetworkReading } from './network-stats.js';
import { sumCgroupStats } from './sum-cgroup-stats.js';

export interface ContainerSubject {
  attributes: ContainerAttributes & { id: string };
  /** The OCI spec's linux.cgroupsPath the container was created with. */
  cgroupsPath: string;
  /** The container's writable layer (overlay upper dir), and the filesystem it lives on. */
  writableLayer?: { dir: string; mountpoint: string };
  /** Image reference, for the metrics' "image" label. */
  image?: string;
}

export interface PodSubject {
  attributes: PodSandboxAttributes & { id: string };
  /** PodSandboxConfig.linux.cgroupParent ("" or absent: no pod cgroup of its own). */
  cgroupParent?: string;
  /** The pinned network namespace file; absent for host-network pods (no pod network stats). */
  netnsPath?: string;
  containers: ContainerSubject[];
}

export interface StatsCollectorOptions {
  layout?: CgroupLayout;
  /** Minimum window for CPU rates (default 1 s). */
  minRateWindowNs?: bigint;
  /** How long a writable-layer walk is reused (default 2 s). */
  fsTtlMs?: number;
}

interface ContainerReading {
  subject: ContainerSubject;
  cgroupPath: string;
  cgroup?: CgroupStats;
  fs?: FsUsage;
}

export class StatsCollector {
  private readonly layout: CgroupLayout;
  private readonly rates: CpuRateTracker;
  private readonly fs: FsUsageCache;

  constructor(opts: StatsCollectorOptions = {}) {
    this.layout = opts.layout ?? cgroupLayout();
    this.rates = new CpuRateTracker(opts.minRateWindowNs);
    this.fs = new FsUsageCache(opts.fsTtlMs);
  }

  /** ContainerStats of one container (ContainerStats / ListContainerStats). */
  async containerStats(c: ContainerSubject): Promise<ContainerStats> {
    return this.toContainerStats(await this.readContainer(c));
  }

  /** PodSandboxStats of one pod with its containers (PodSandboxStats / ListPodSandboxStats). */
  async podSandboxStats(p: PodSubject): Promise<PodSandboxStats> {
    const { pod, containers, network } = await this.readPod(p);
    // Without a pod cgroup, the pod's usage is the sum of its containers'.
    const podCgroup = pod.stats ?? sumCgroupStats(containers.flatMap((c) => (c.cgroup ? [c.cgroup] : [])));
    return buildPodSandboxStats({
      attributes: p.attributes,
      cgroup: podCgroup,
      nanoCores: podCgroup?.cpu ? this.rates.rate(`pod/${p.attributes.id}`, podCgroup.cpu.usageNs, podCgroup.timestamp) : undefined,
      network,
      containers: containers.map((c) => this.toContainerStats(c)),
    });
  }

  /** PodSandboxMetrics of one pod (ListPodSandboxMetrics). */
  async podSandboxMetrics(p: PodSubject): Promise<PodSandboxMetrics> {
    const { pod, containers, network } = await this.readPod(p);
    return podSandboxMetrics({
      podSandboxId: p.attributes.id,
      metadata: p.attributes.metadata ?? {},
      cgroupPath: pod.path,
      stats: pod.stats,
      network,
      containers: containers.map((c) => ({
        id: c.subject.attributes.id,
        name: c.subject.attributes.metadata?.name ?? '',
        image: c.subject.image ?? '',
        cgroupPath: c.cgroupPath,
        stats: c.cgroup,
        writableLayer: c.fs && c.subject.writableLayer
          ? { usage: c.fs, mountpoint: c.subject.writableLayer.mountpoint } : undefined,
      })),
    });
  }

  /**
   * The pod's containers and network, then its cgroup: read after its containers, the pod's
   * cumulative counters (CPU time) never show less than a container inside it, which a
   * parallel read could when the containers are busy.
   */
  private async readPod(p: PodSubject) {
    const [containers, network] = await Promise.all([
      Promise.all(p.containers.map((c) => this.readContainer(c))), this.readNetwork(p)]);
    const pod = await this.readPodCgroup(p);
    return { pod, containers, network };
  }

  listMetricDescriptors(): MetricDescriptor[] {
    return listMetricDescriptors();
  }

  /** Drop cached samples of everything not in `liveIds` (container and pod ids). */
  retainOnly(liveIds: Iterable<string>): void {
    const keep = [...liveIds];
    this.rates.retainOnly([...keep, ...keep.map((id) => `pod/${id}`)]);
  }

  private toContainerStats(r: ContainerReading): ContainerStats {
    const id = r.subject.attributes.id;
    const cpu = r.cgroup?.cpu;
    return buildContainerStats({
      attributes: r.subject.attributes,
      cgroup: r.cgroup,
      nanoCores: cpu && r.cgroup ? this.rates.rate(id, cpu.usageNs, r.cgroup.timestamp) : undefined,
      writableLayer: r.fs && r.subject.writableLayer
        ? { usage: r.fs, mountpoint: r.subject.writableLayer.mountpoint } : undefined,
    });
  }

  private async readContainer(c: ContainerSubject): Promise<ContainerReading> {
    const cgroupPath = resolveCgroupPath(c.cgroupsPath, c.attributes.id);
    const [cgroup, fs] = await Promise.all([
      this.readCgroup(cgroupPath),
      c.writableLayer ? this.fs.usage(c.writableLayer.dir) : undefined,
    ]);
    return { subject: c, cgroupPath, cgroup, fs };
  }

  private async readPodCgroup(p: PodSubject): Promise<{ path?: string; stats?: CgroupStats }> {
    const path = resolvePodCgroupPath(p.cgroupParent);
    return { path, stats: path === undefined ? undefined : await this.readCgroup(path) };
  }

  private async readCgroup(path: string): Promise<CgroupStats | undefined> {
    try {
      return await readCgroupStats(this.layout, path);
    } catch (err) {
      if (err instanceof NotFoundError) return undefined;
      throw err;
    }
  }

  private async readNetwork(p: PodSubject): Promise<NetworkReading | undefined> {
    if (!p.netnsPath) return undefined;
    try {
      return await readNetworkStats(p.netnsPath);
    } catch (err) {
      // A pod being torn down loses its netns between listing and reading: not worth failing for.
      if (err instanceof NotFoundError) log.debug({ pod: p.attributes.id, err }, 'stats: pod netns is gone');
      else log.warn({ pod: p.attributes.id, err }, 'stats: cannot read pod network counters');
      return undefined;
    }
  }
}
