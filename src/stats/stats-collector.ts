// The stats service's one entry point: turns what the daemon knows about a container or pod
// (its cgroupsPath / cgroupParent, writable layer dir, pinned netns) into CRI stats and metrics.
// It owns the state that must outlive one RPC: the previous CPU sample per id (for rates), the
// short-lived writable-layer walk cache, and the open descriptors of the cgroup files it reads
// (never their values). Every read is async and bounded (KernelFileReader, FsUsageCache, at
// most a few netns-exec helpers at once), so a listing never holds the event loop. A section
// that cannot be read (the container has exited and its cgroup is gone, the netns was removed)
// is left out, never an RPC error: kubelet lists stats for every container, running or not.
import type { ContainerAttributes } from '../gen/runtime/v1/ContainerAttributes.js';
import type { ContainerStats } from '../gen/runtime/v1/ContainerStats.js';
import type { MetricDescriptor } from '../gen/runtime/v1/MetricDescriptor.js';
import type { PodSandboxAttributes } from '../gen/runtime/v1/PodSandboxAttributes.js';
import type { PodSandboxMetrics } from '../gen/runtime/v1/PodSandboxMetrics.js';
import type { PodSandboxStats } from '../gen/runtime/v1/PodSandboxStats.js';
import { errnoCode, NotFoundError } from '../errors.js';
import { log } from '../log.js';
import { cgroupLayout, resolveCgroupPath, resolvePodCgroupPath, type CgroupLayout } from './cgroup-path.js';
import { FULL_SCOPE, readCgroupStats, type CgroupReadScope, type CgroupStats } from './cgroup-stats.js';
import { CpuRateTracker } from './cpu-rate.js';
import { buildContainerStats, buildPodSandboxStats } from './cri-stats.js';
import { FsUsageCache, type FsUsage } from './fs-usage.js';
import { KernelFileReader } from './kernel-file-reader.js';
import { listMetricDescriptors, podSandboxMetrics } from './metrics.js';
import {
  HostInterfaceTable, readNetworkStats, readProcessNetworkStats, vethPeerReading, type NetworkReading,
} from './network-stats.js';
import { stat } from 'node:fs/promises';
import type { Stats } from 'node:fs';
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
  /** The pod's veth pair when the built-in network made it: the host end's name, and the pod
   * end's name inside the pod. Its counters are read on the host; without it (CNI), inside the
   * namespace by a helper process. */
  veth?: { host: string; pod: string };
  /** Pids of the pod's running processes (container inits): any one in the pod's network
   * namespace lets its table be read without entering it. */
  pids?: number[];
  containers: ContainerSubject[];
}

export interface StatsCollectorOptions {
  layout?: CgroupLayout;
  /** Minimum window for CPU rates (default 1 s). */
  minRateWindowNs?: bigint;
  /** How long a writable-layer walk is served without a new one starting (default 2 s; an older
   * result is still served, while the new walk runs: fs-usage.ts). */
  fsTtlMs?: number;
  /** cgroup and /proc files opened at once through the threadpool (default 2; reads of open
   * files are done in place, in slices: see KernelFileReader). */
  parallelOpens?: number;
  /** How long a cgroup's reading is reused (default 1 s; 0: never). */
  cgroupTtlMs?: number;
}

// CRI stats show totals only (CgroupReadScope); a container's process count is wanted only when
// its pod has no cgroup to count them.
const STATS_SCOPE: CgroupReadScope = { metrics: false, pids: false };
const POD_STATS_SCOPE: CgroupReadScope = { metrics: false, pids: true };
// netns-exec helpers (CNI pods' network counters) running at once.
const MAX_NETNS_READS = 4;

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
  private readonly files: KernelFileReader;
  private readonly hostInterfaces: HostInterfaceTable;
  /** For /proc/<pid>/net/dev: opened and closed on each read (never pins a namespace). */
  private readonly procFiles: KernelFileReader;
  /** Identity of each pod's pinned netns file, by path (a path names one pod's namespace). */
  private readonly netnsIds = new Map<string, Stats>();
  private netnsReads = 0;
  private readonly netnsWaiting: (() => void)[] = [];
  /**
   * The last reading of each cgroup (by path and scope), reused for cgroupTtlMs: kubelet asks
   * for pod stats and container stats in the same housekeeping, and both read every container's
   * cgroup; a reading carries its own timestamp, so one reused is still reported truthfully.
   * Concurrent requests share one reading.
   */
  private readonly cgroupReadings = new Map<string, { at: number; value: Promise<CgroupStats | undefined> }>();
  private readonly cgroupTtlMs: number;

  constructor(opts: StatsCollectorOptions = {}) {
    this.layout = opts.layout ?? cgroupLayout();
    this.rates = new CpuRateTracker(opts.minRateWindowNs);
    this.fs = new FsUsageCache({ ttlMs: opts.fsTtlMs });
    this.files = new KernelFileReader({ parallel: opts.parallelOpens });
    this.hostInterfaces = new HostInterfaceTable(this.files);
    this.procFiles = new KernelFileReader({ keepOpen: false, parallel: opts.parallelOpens });
    this.cgroupTtlMs = opts.cgroupTtlMs ?? 1000;
  }

  /** cgroup and /proc descriptors kept open now. */
  get openDescriptors(): number {
    return this.files.openDescriptors;
  }

  /** Close every kept descriptor (the collector stays usable: they are opened again). */
  close(): void {
    this.files.close();
  }

  /** ContainerStats of one container (ContainerStats / ListContainerStats). */
  async containerStats(c: ContainerSubject): Promise<ContainerStats> {
    return this.toContainerStats(await this.readContainer(c, STATS_SCOPE));
  }

  /** PodSandboxStats of one pod with its containers (PodSandboxStats / ListPodSandboxStats). */
  async podSandboxStats(p: PodSubject): Promise<PodSandboxStats> {
    const { pod, containers, network } = await this.readPod(p, POD_STATS_SCOPE);
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
    const { pod, containers, network } = await this.readPod(p, FULL_SCOPE);
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
  private async readPod(p: PodSubject, podScope: CgroupReadScope) {
    const podCgroup = resolvePodCgroupPath(p.cgroupParent);
    // The containers' process counts are summed only for a pod without a cgroup of its own.
    const scope = podCgroup === undefined || podScope.metrics ? podScope : STATS_SCOPE;
    const [containers, network] = await Promise.all([
      Promise.all(p.containers.map((c) => this.readContainer(c, scope))), this.readNetwork(p)]);
    // Never a reused reading: it must not be older than its containers' (readCgroup's cache).
    const pod = { path: podCgroup, stats: podCgroup === undefined ? undefined : await this.readCgroupNow(podCgroup, podScope) };
    return { pod, containers, network };
  }

  listMetricDescriptors(): MetricDescriptor[] {
    return listMetricDescriptors();
  }

  /** Drop cached samples of everything not in `liveIds` (container and pod ids). */
  retainOnly(liveIds: Iterable<string>): void {
    const keep = [...liveIds];
    const now = performance.now();
    for (const [k, e] of this.cgroupReadings) if (now - e.at >= this.cgroupTtlMs) this.cgroupReadings.delete(k);
    this.rates.retainOnly([...keep, ...keep.map((id) => `pod/${id}`)]);
    // Namespace identities are few and small; forget them all now and then.
    if (this.netnsIds.size > 4 * keep.length + 64) this.netnsIds.clear();
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

  private async readContainer(c: ContainerSubject, scope: CgroupReadScope): Promise<ContainerReading> {
    const cgroupPath = resolveCgroupPath(c.cgroupsPath, c.attributes.id);
    const [cgroup, fs] = await Promise.all([
      this.readCgroup(cgroupPath, scope),
      c.writableLayer ? this.fs.usage(c.writableLayer.dir) : undefined,
    ]);
    return { subject: c, cgroupPath, cgroup, fs };
  }

  private readCgroup(path: string, scope: CgroupReadScope): Promise<CgroupStats | undefined> {
    if (this.cgroupTtlMs <= 0) return this.readCgroupNow(path, scope);
    const now = performance.now();
    const key = `${scope.metrics ? 'm' : '-'}${scope.pids ? 'p' : '-'}${path}`;
    const hit = this.cgroupReadings.get(key);
    if (hit && now - hit.at < this.cgroupTtlMs) return hit.value;
    if (this.cgroupReadings.size > 4096) {
      for (const [k, e] of this.cgroupReadings) if (now - e.at >= this.cgroupTtlMs) this.cgroupReadings.delete(k);
    }
    const value = this.readCgroupNow(path, scope);
    const entry = { at: now, value };
    this.cgroupReadings.set(key, entry);
    // A failed reading is not reused.
    value.catch(() => {
      if (this.cgroupReadings.get(key) === entry) this.cgroupReadings.delete(key);
    });
    return value;
  }

  private async readCgroupNow(path: string, scope: CgroupReadScope): Promise<CgroupStats | undefined> {
    try {
      return await readCgroupStats(this.layout, path, { reader: this.files, scope });
    } catch (err) {
      if (err instanceof NotFoundError) return undefined;
      throw err;
    }
  }

  private async readNetwork(p: PodSubject): Promise<NetworkReading | undefined> {
    if (!p.netnsPath) return undefined;
    try {
      for (const pid of p.pids ?? []) {
        const reading = await readProcessNetworkStats(this.procFiles, pid, await this.netnsId(p.netnsPath));
        if (reading) return reading;
      }
      if (p.veth) {
        const reading = vethPeerReading(await this.hostInterfaces.read(), p.veth.host, p.veth.pod);
        if (reading) return reading;
        // No host end: the pod is being torn down, or its veth was removed behind our back.
        // Its namespace, if still there, tells which.
      }
      return await this.readInNetns(p.netnsPath);
    } catch (err) {
      // A pod being torn down loses its netns between listing and reading: not worth failing for.
      if (err instanceof NotFoundError) log.debug({ pod: p.attributes.id, err }, 'stats: pod netns is gone');
      else log.warn({ pod: p.attributes.id, err }, 'stats: cannot read pod network counters');
      return undefined;
    }
  }

  private async netnsId(path: string): Promise<Stats> {
    let id = this.netnsIds.get(path);
    if (id === undefined) {
      try {
        id = await stat(path);
      } catch (err) {
        if (errnoCode(err) === 'ENOENT') throw new NotFoundError(`network namespace file ${path} does not exist (pod stopped?)`);
        throw err;
      }
      this.netnsIds.set(path, id);
    }
    return id;
  }

  /** readNetworkStats through a helper process, a few at once (a spawn costs the event loop). */
  private async readInNetns(netnsPath: string): Promise<NetworkReading> {
    if (this.netnsReads < MAX_NETNS_READS) this.netnsReads++;
    else await new Promise<void>((r) => this.netnsWaiting.push(r));
    try {
      return await readNetworkStats(netnsPath);
    } finally {
      const next = this.netnsWaiting.shift();
      if (next) next();
      else this.netnsReads--;
    }
  }
}
