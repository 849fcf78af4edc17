// The stats service's one entry point: turns what the daemon knows about a container or pod
// (its cgroupsPath / cgroupParent, writable layer dir, pinned netns) into CRI stats and metrics.
// It owns the state that must outlive one RPC: the previous CPU sample per id (for rates), the
// short-lived writable-layer walk cache, which cgroup files are missing where (the files are
// opened, read and closed at each reading: kernel-file-reader.ts), and
// the last reading of each cgroup and pod network table (at most cgroupTtlMs old when served).
//
// A periodic caller's listing (kubelet's, every 10 s) is answered from readings taken just
// before it came (listing-forecast.ts) of what it lists then (pods and containers started since
// the last one too), its containers' writable layers walked then too (so no walk competes with
// the listing for the CPU): reading 200 containers' cgroups costs tens of milliseconds of CPU,
// which on a busy node becomes hundreds of milliseconds of wall time if it is done while the
// caller waits. Every reading carries its own timestamp (when its read started), so one served
// from the cache is reported truthfully. Every read is async and bounded (KernelFileReader,
// the walk gate, at most a few netns-exec helpers at once), so neither a listing nor a refresh
// holds the event loop. A periodic listing is answered from what the read-ahead last read
// (maxStaleMs), even when the read-ahead is late (on a loaded node it can outlast its lead) or
// has not run yet (the listing came before it: a refresh right after the listing then catches
// up, so the next one is not served older readings still); and any listing that comes while a
// refresh is running neither waits for the refresh's reads nor does them beside it: it is
// answered from the last readings of what the refresh is renewing. Each reading carries its own
// timestamp. Apart from those two cases, a reading is served to each kind of caller (container
// listings, pod listings, metrics) once: asked again, that kind gets a newer reading, so a caller
// sampling faster than the cache's age bound (crictl stats compares two samples a second apart)
// sees every sample move. A section that cannot be read (the container has exited and its cgroup is
// gone, the netns was removed, its writable layer's walk failed) is left out, never an RPC error:
// kubelet lists stats for every container, running or not.
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
import { eachBounded, mapInTurns } from './each-bounded.js';
import { buildContainerStats, buildPodSandboxStats } from './cri-stats.js';
import { FsUsageCache, type FsUsage } from './fs-usage.js';
import { KernelFileReader } from './kernel-file-reader.js';
import { ListingForecast, type ListingPeriod } from './listing-forecast.js';
import { ReadingCache } from './reading-cache.js';
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

/** Each watched listing's period and last listing (listing-forecast.ts), kept across a restart. */
export interface ListingPeriods {
  containers?: ListingPeriod;
  pods?: ListingPeriod;
}

export interface StatsCollectorOptions {
  layout?: CgroupLayout;
  /** Minimum window for CPU rates (default 1 s). */
  minRateWindowNs?: bigint;
  /** How long a writable-layer walk is served without a new one starting (default 2 s; an older
   * result is still served, while the new walk runs: fs-usage.ts). */
  fsTtlMs?: number;
  /** How old a cgroup's (or a pod network table's) reading may be when served (default 2 s;
   * 0: read for every request, no background refresh). kubelet lists every 10 s: two seconds
   * leave the read-ahead room to finish on a loaded node before the listing comes. */
  cgroupTtlMs?: number;
  /** How long before a periodic listing is due its readings are refreshed (default: the last
   * refresh's duration + 200 ms, within 300 ms and cgroupTtlMs − 400 ms). */
  leadMs?: number;
  /** Refreshes after the due one while the listing has not come (default 2), and how far apart
   * (default cgroupTtlMs − 200 ms: past the lead, so never while a listing that came on time is
   * served, and before the due refresh's readings are too old; a listing up to ~4 s late still
   * finds fresh readings). */
  followUps?: number;
  followUpMs?: number;
  /** How long after a periodic listing served readings older than cgroupTtlMs (its read-ahead
   * had not run) a catch-up refresh renews them (default 200 ms: listing-forecast.ts). */
  catchUpMs?: number;
  /** Listings further apart than this are not a period (default 120 s). */
  maxPeriodMs?: number;
  /** The period presumed for a watched listing's successor until two listings measure one
   * (default 10 s: kubelet's housekeeping and eviction monitoring; listing-forecast.ts).
   * 0: nothing is read ahead before a period is measured. */
  presumedPeriodMs?: number;
  /** How old a reading (or a writable layer's walk) may be when served while the refresher is
   * about to read it anew (default 15 s): a listing that comes while a refresh is running (it
   * overran its lead on a loaded node) is answered from the last readings, each with its own
   * timestamp, instead of waiting for the refresh's reads or doing them itself. kubelet's own
   * cAdvisor readings are up to 15 s old (its housekeeping interval at most). */
  maxStaleMs?: number;
  /** The reader of cgroup files (tests: one whose reads they can hold or count). */
  reader?: KernelFileReader;
  /** Called on each ContainerStats the read-ahead builds, before the listing that will send it
   * comes (the daemon encodes it then: server/direct-encoder.ts withEncodedBody). */
  prepare?: (stats: ContainerStats) => ContainerStats;
  /** The same for each PodSandboxStats the read-ahead builds (its containers' prepared inside). */
  preparePod?: (stats: PodSandboxStats) => PodSandboxStats;
}

// CRI stats show totals only (CgroupReadScope); a container's process count is wanted only when
// its pod has no cgroup to count them.
const STATS_SCOPE: CgroupReadScope = { metrics: false, pids: false };
const POD_STATS_SCOPE: CgroupReadScope = { metrics: false, pids: true };
// The kinds of caller each reading is served to once (reading-cache.ts): asked again by the same
// kind, a newer reading is given. Container listings and single-container calls are one kind.
const FOR_CONTAINERS = 1;
const FOR_PODS = 2;
const FOR_METRICS = 4;
// A reading taken before any caller asked (takeFirstReadings): served to no kind yet.
const FOR_NOBODY = 0;

/** How a listing is answered (watchedListing): from readings the read-ahead renews
 * (`maintained`), and whether the read-ahead walks its writable layers before the next one. */
interface ListingHow {
  maintained: boolean;
  walkedAhead: boolean;
}
/** A call that is no whole listing (filtered, one container, metrics): nothing is read ahead of it. */
const NOT_WATCHED: ListingHow = { maintained: false, walkedAhead: false };

// Readings kept beyond those that could still be served are dropped past this many.
const MAX_CACHED_READINGS = 4096;
// netns-exec helpers (CNI pods' network counters) running at once.
const MAX_NETNS_READS = 4;
// Subjects (a pod with its containers, or a container) a background refresh reads at once, and
// layers it walks at once. Started all together, a refresh's hundreds of pending reads and their
// closures outlive many young-generation collections (the daemon's is 1 MiB: node-flags.ts):
// each one copies them, and promotes them to be collected again by the old generation's. With 16
// at once a refresh of 100 pods spent 16-23 ms in scavenges; bench:stats A/B against 16, three
// runs: 8 and 4 cut the scavenges by a quarter to a third and the mark-compact time to a third,
// the listings as fast with 8, while with 4 the container listing's median was 10 % slower (a
// longer refresh, still running when it comes).
const REFRESH_PARALLEL = 8;
const REFRESH_WALKS = 2;
// Subjects a listing builds at once, and the longest run of its work before it yields to the
// event loop (each-bounded.ts mapInTurns): a listing answered from the read-ahead's readings is
// all microtasks, 7-14 ms in one task for 100 pods without turns. Cached, the subjects in flight
// are what a turn overruns its slice by (about 0.1 ms each); not cached, their reads are what
// each of the file reader's slices has queued.
const LISTING_PARALLEL = 8;
const LISTING_SLICE_MS = 1;
// A listing due this soon after a refresh starts is read ahead by it too (readings this much older).
const DUE_TOGETHER_MS = 250;
// A catch-up refresh starts this long after the periodic listing that was served old readings:
// after kubelet's other listing of the tick (within DUE_TOGETHER_MS, so one pass renews both),
// and after both were answered (from the cache, a few milliseconds).
const CATCH_UP_MS = 200;
// kubelet's stats period (its housekeeping and its eviction manager's monitoring), presumed for
// a watched listing's successor until two listings measure the caller's own.
const PRESUMED_PERIOD_MS = 10_000;

/**
 * The scope a pod's containers are read with: the containers' process counts are summed only
 * for a pod without a cgroup of its own. readPod and the refresher both use it, so the refresher
 * warms exactly the readings a listing asks for.
 */
const containerScopeInPod = (podCgroup: string | undefined, podScope: CgroupReadScope): CgroupReadScope =>
  (podCgroup === undefined || podScope.metrics ? podScope : STATS_SCOPE);

/** A pod's cgroup usage: its own cgroup's reading; without a pod cgroup, the sum of its
 * containers' (a new object each time, so never the same as a built one: built anew). */
const podUsage = (podCgroup: CgroupStats | undefined, containers: ContainerReading[]): CgroupStats | undefined =>
  podCgroup ?? sumCgroupStats(containers.flatMap((c) => (c.cgroup ? [c.cgroup] : [])));

/** A writable layer whose walk failed is left out of its container's stats (logged), never the
 * listing's error: one container's layer must not take every container's stats with it. */
const unwalked = (c: ContainerSubject, dir: string, err: unknown): undefined => {
  log.warn({ container: c.attributes.id, dir, err }, 'stats: walking a writable layer failed: its usage is left out of the container\'s stats');
  return undefined;
};

/** A pod's key among the CPU rates' samples (a container's is its id). */
const podRateKey = (id: string) => `pod/${id}`;

/** A cgroup reading's cache key: its scope and path. */
const cgroupKey = (path: string, scope: CgroupReadScope) => `${scope.metrics ? 'm' : '-'}${scope.pids ? 'p' : '-'}${path}`;

/** A pod network reading's cache key: the pod and the namespace file it was read through. */
const networkKey = (p: PodSubject) => `${p.attributes.id} ${p.netnsPath ?? ''}`;

interface ContainerReading {
  subject: ContainerSubject;
  cgroupPath: string;
  cgroup?: CgroupStats;
  fs?: FsUsage;
}

/** A container's last built ContainerStats and what it was built from: the same readings,
 * rate and attributes give the same object back (not built, nor encoded, again). */
interface BuiltStats {
  cgroup?: CgroupStats;
  fs?: FsUsage;
  nanoCores?: bigint;
  attributes: ContainerSubject['attributes'];
  mountpoint?: string;
  stats: ContainerStats;
}

/** A pod's last built PodSandboxStats and what it was built from (as BuiltStats). */
interface BuiltPodStats {
  cgroup: CgroupStats;
  network?: NetworkReading;
  nanoCores?: bigint;
  containers: ContainerStats[];
  attributes: PodSubject['attributes'];
  stats: PodSandboxStats;
}

/** Attributes with the same parts (the daemon makes each listing's from its records' config). */
const sameAttributes = (a: ContainerSubject['attributes'] | PodSubject['attributes'], b: typeof a) =>
  a === b || (a.id === b.id && a.metadata === b.metadata && a.labels === b.labels && a.annotations === b.annotations);

const sameItems = <T>(a: T[], b: T[]) => a.length === b.length && a.every((x, i) => x === b[i]);

export class StatsCollector {
  private readonly layout: CgroupLayout;
  private readonly rates: CpuRateTracker;
  private readonly fs: FsUsageCache;
  private readonly files: KernelFileReader;
  private readonly hostInterfaces: HostInterfaceTable;
  /** Identity of each pod's pinned netns file, by path (a path names one pod's namespace). */
  private readonly netnsIds = new Map<string, Stats>();
  private netnsReads = 0;
  private readonly netnsWaiting: (() => void)[] = [];
  /** The last reading of each cgroup, by scope and path (cgroupKey). */
  private readonly cgroupReadings = new ReadingCache<CgroupStats | undefined>();
  /** The last network reading of each pod, by pod and namespace file (networkKey). */
  private readonly networkReadings = new ReadingCache<NetworkReading | undefined>();
  private readonly cgroupTtlMs: number;
  private readonly fsTtlMs: number;
  private readonly leadMs: number | undefined;
  /** The last unfiltered listings of each kind, and when the next is expected. */
  private readonly containerListings: ListingForecast<ContainerSubject>;
  private readonly podListings: ListingForecast<PodSubject>;
  private lastRefreshMs = 0;
  /** The lead the last watched listing was given: how long before it its refresh starts. */
  private lastLeadMs = 0;
  private refreshTimer: NodeJS.Timeout | undefined;
  private refreshing = false;
  private readonly maxStaleMs: number;
  /** While a refresh runs: the reading keys (cgroupKey, networkKey) and layer dirs it will read
   * or walk. A listing meanwhile serves what it has of those (up to maxStaleMs old). */
  private refreshKeys: ReadonlySet<string> | undefined;
  private refreshLayers: ReadonlySet<string> | undefined;
  /** Each container's last built ContainerStats, by id. */
  private readonly built = new Map<string, BuiltStats>();
  /** Each pod's last built PodSandboxStats, by id (pods with a cgroup of their own). */
  private readonly builtPods = new Map<string, BuiltPodStats>();
  private readonly prepare: ((stats: ContainerStats) => ContainerStats) | undefined;
  private readonly preparePod: ((stats: PodSandboxStats) => PodSandboxStats) | undefined;

  constructor(opts: StatsCollectorOptions = {}) {
    this.layout = opts.layout ?? cgroupLayout();
    this.rates = new CpuRateTracker(opts.minRateWindowNs);
    this.fsTtlMs = opts.fsTtlMs ?? 2000;
    this.fs = new FsUsageCache({ ttlMs: this.fsTtlMs });
    this.files = opts.reader ?? new KernelFileReader();
    this.prepare = opts.prepare;
    this.preparePod = opts.preparePod;
    this.hostInterfaces = new HostInterfaceTable(this.files);
    this.cgroupTtlMs = opts.cgroupTtlMs ?? 2000;
    this.maxStaleMs = Math.max(this.cgroupTtlMs, opts.maxStaleMs ?? 15_000);
    this.leadMs = opts.leadMs;
    const forecast = {
      minPeriodMs: this.cgroupTtlMs,
      maxPeriodMs: opts.maxPeriodMs ?? 120_000,
      followUps: opts.followUps ?? 2,
      followUpMs: Math.max(10, opts.followUpMs ?? this.cgroupTtlMs - 200),
      freshMs: this.cgroupTtlMs,
      catchUpMs: opts.catchUpMs ?? CATCH_UP_MS,
      presumedPeriodMs: opts.presumedPeriodMs === 0 ? undefined : opts.presumedPeriodMs ?? PRESUMED_PERIOD_MS,
    };
    this.containerListings = new ListingForecast(forecast);
    this.podListings = new ListingForecast(forecast);
  }

  /** Stop the background refresher and forget which cgroup files are missing (the collector
   * stays usable: the next listing starts the refresher again). */
  close(): void {
    clearTimeout(this.refreshTimer);
    this.refreshTimer = undefined;
    this.containerListings.reset();
    this.podListings.reset();
    this.files.close();
  }

  /** Whether a background refresh is scheduled or running. */
  get refresherActive(): boolean {
    return this.refreshTimer !== undefined || this.refreshing;
  }

  /**
   * ContainerStats of every subject (ListContainerStats). `watch`: this is a whole listing (no
   * filter), whose next one is forecast and read ahead of; it lists the subjects again for the
   * read-ahead, which so reads the containers started since this listing too.
   */
  listContainerStats(subjects: ContainerSubject[], opts: { watch?: () => ContainerSubject[] } = {}): Promise<ContainerStats[]> {
    const how = this.watchedListing(this.containerListings, opts.watch);
    return mapInTurns(subjects, LISTING_PARALLEL, LISTING_SLICE_MS,
      async (c) => this.toContainerStats(await this.readContainer(c, STATS_SCOPE, FOR_CONTAINERS, how)));
  }

  /** PodSandboxStats of every subject (ListPodSandboxStats); `watch` as listContainerStats. */
  listPodSandboxStats(subjects: PodSubject[], opts: { watch?: () => PodSubject[] } = {}): Promise<PodSandboxStats[]> {
    const how = this.watchedListing(this.podListings, opts.watch);
    return mapInTurns(subjects, LISTING_PARALLEL, LISTING_SLICE_MS, (p) => this.podStats(p, how));
  }

  /** ContainerStats of one container (ContainerStats / ListContainerStats). */
  async containerStats(c: ContainerSubject): Promise<ContainerStats> {
    return this.toContainerStats(await this.readContainer(c, STATS_SCOPE, FOR_CONTAINERS));
  }

  /** PodSandboxStats of one pod with its containers (PodSandboxStats / ListPodSandboxStats). */
  podSandboxStats(p: PodSubject): Promise<PodSandboxStats> {
    return this.podStats(p, NOT_WATCHED);
  }

  /**
   * Takes each pod's first readings (its and its containers' cgroups and its network, their
   * writable layers walked) and their first CPU samples, building nothing: the listing that first
   * includes the pod finds its layers walked (served up to the walk cache's maxStaleMs old) and
   * has its CPU rates. Served to no kind of caller, so a listing may serve them still while they
   * are under cgroupTtlMs old.
   */
  async takeFirstReadings(pods: PodSubject[]): Promise<void> {
    await mapInTurns(pods, LISTING_PARALLEL, LISTING_SLICE_MS, async (p) => {
      const { pod, containers } = await this.readPod(p, POD_STATS_SCOPE, FOR_NOBODY);
      for (const c of containers) this.rateOf(c.subject.attributes.id, c.cgroup);
      this.rateOf(podRateKey(p.attributes.id), podUsage(pod.stats, containers));
    });
  }

  /** `how`: whether the read-ahead renews this pod's readings and walks (see readContainer). */
  private async podStats(p: PodSubject, how: ListingHow): Promise<PodSandboxStats> {
    const { pod, containers, network } = await this.readPod(p, POD_STATS_SCOPE, FOR_PODS, how);
    const containerStats = containers.map((c) => this.toContainerStats(c));
    const cgroup = podUsage(pod.stats, containers);
    const nanoCores = this.rateOf(podRateKey(p.attributes.id), cgroup);
    if (pod.stats !== undefined) return this.podStatsOf(p, pod.stats, network, nanoCores, containerStats);
    return buildPodSandboxStats({ attributes: p.attributes, cgroup, nanoCores, network, containers: containerStats });
  }

  /** The last built PodSandboxStats of `p` if it was built from exactly these, else a new one
   * (containerStatsOf's rule, for a pod with a cgroup of its own). */
  private podStatsOf(
    p: PodSubject, cgroup: CgroupStats, network: NetworkReading | undefined, nanoCores: bigint | undefined,
    containers: ContainerStats[], prepare?: (stats: PodSandboxStats) => PodSandboxStats,
  ): PodSandboxStats {
    const id = p.attributes.id;
    const last = this.builtPods.get(id);
    if (last !== undefined && last.cgroup === cgroup && last.network === network && last.nanoCores === nanoCores
      && sameItems(last.containers, containers) && sameAttributes(last.attributes, p.attributes)) return last.stats;
    let stats = buildPodSandboxStats({ attributes: p.attributes, cgroup, nanoCores, network, containers });
    if (prepare) stats = prepare(stats);
    if (this.builtPods.size > MAX_CACHED_READINGS) this.builtPods.clear();
    this.builtPods.set(id, { cgroup, network, nanoCores, containers, attributes: p.attributes, stats });
    return stats;
  }

  /** PodSandboxMetrics of one pod (ListPodSandboxMetrics). */
  async podSandboxMetrics(p: PodSubject): Promise<PodSandboxMetrics> {
    const { pod, containers, network } = await this.readPod(p, FULL_SCOPE, FOR_METRICS);
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
   * cumulative CPU time never shows less than the containers inside it, which a parallel read
   * could when the containers are busy. A cached pod reading is used as long as it does not
   * (its CPU time at least its containers' together): one from before a container was read
   * again on its own (the container listing's read-ahead, a refresh now running) is consistent
   * still, each reading with its own timestamp; one that falls behind is read again, after.
   */
  private async readPod(p: PodSubject, podScope: CgroupReadScope, consumer: number, how = NOT_WATCHED) {
    const podCgroup = resolvePodCgroupPath(p.cgroupParent);
    const scope = containerScopeInPod(podCgroup, podScope);
    const [containers, network] = await Promise.all([
      Promise.all(p.containers.map((c) => this.readContainer(c, scope, consumer, how))), this.cachedNetwork(p, consumer, how.maintained)]);
    let stats: CgroupStats | undefined;
    if (podCgroup !== undefined) {
      stats = await this.readCgroup(podCgroup, podScope, consumer, how.maintained);
      const containersCpu = containers.reduce((sum, c) => sum + (c.cgroup?.cpu?.usageNs ?? 0n), 0n);
      const behind = (s: CgroupStats | undefined) => s?.cpu !== undefined && s.cpu.usageNs < containersCpu;
      // A read of the pod in flight (the refresher's, started once its containers were read) is
      // shared rather than doubled.
      if (behind(stats)) {
        stats = await this.cgroupReadings.refresh(cgroupKey(podCgroup, podScope), () => this.readCgroupNow(podCgroup, podScope));
        if (behind(stats)) stats = await this.readCgroupNow(podCgroup, podScope);
      }
    }
    return { pod: { path: podCgroup, stats }, containers, network };
  }

  listMetricDescriptors(): MetricDescriptor[] {
    return listMetricDescriptors();
  }

  /** Drop cached samples of everything not in `liveIds` (container and pod ids). */
  retainOnly(liveIds: Iterable<string>): void {
    const keep = [...liveIds];
    // Readings the refresher no longer renews go once they could not be served anyway.
    this.cgroupReadings.dropOlderThan(this.maxStaleMs);
    this.networkReadings.dropOlderThan(this.maxStaleMs);
    this.rates.retainOnly([...keep, ...keep.map(podRateKey)]);
    const live = new Set(keep);
    for (const id of this.built.keys()) if (!live.has(id)) this.built.delete(id);
    for (const id of this.builtPods.keys()) if (!live.has(id)) this.builtPods.delete(id);
    // Namespace identities are few and small; forget them all now and then.
    if (this.netnsIds.size > 4 * keep.length + 64) this.netnsIds.clear();
  }

  /**
   * A listing came; `watch` (a whole listing) has its next one forecast (listed). `maintained`:
   * it is from a measured period, so the read-ahead renews its readings from now on (a presumed
   * one is read ahead of once, but its listings are not served older readings for it).
   * `walkedAhead`: a read-ahead is due before the next such listing, which walks its writable
   * layers anew: a walk result this listing serves past its TTL starts no walk behind it. Such a
   * walk would only be served to the next listing, which the read-ahead's serves instead, and
   * its callbacks competed with this listing for the event loop: the first listing after a
   * start (200 containers, every layer walked by the first readings) spent a third of its time
   * on them.
   */
  private watchedListing<S>(forecast: ListingForecast<S>, watch: (() => S[]) | undefined): ListingHow {
    if (watch === undefined || this.cgroupTtlMs <= 0) return NOT_WATCHED;
    forecast.listed(watch, performance.now(), this.nextLead());
    this.scheduleRefresh();
    return { maintained: forecast.periodic, walkedAhead: forecast.due !== undefined };
  }

  /** How long before the next listing its refresh starts: room for the whole refresh (walks and
   * readings), but the readings still under cgroupTtlMs when it comes, with 400 ms to spare
   * for a late caller. */
  private nextLead(): number {
    this.lastLeadMs = this.leadMs ?? Math.min(Math.max(300, this.lastRefreshMs + 200), this.cgroupTtlMs - 400);
    return this.lastLeadMs;
  }

  /** The periods of the watched listings and when each last came, for the next daemon
   * (resumeListings): a kind without a period known is left out. */
  listingPeriods(): ListingPeriods {
    const now = performance.now();
    const wallNow = Date.now();
    const containers = this.containerListings.saved(now, wallNow);
    const pods = this.podListings.saved(now, wallNow);
    return { ...(containers ? { containers } : {}), ...(pods ? { pods } : {}) };
  }

  /**
   * Carries on the periods a daemon before this one saw (listingPeriods), so the first listing
   * of each kind after a restart is read ahead of like any other (listing-forecast.ts resume),
   * not read while its caller waits. `subjects` lists what each kind's listing asks for, as a
   * watched listing's `watch` does. Returns the kinds resumed.
   */
  resumeListings(saved: ListingPeriods, subjects: { containers: () => ContainerSubject[]; pods: () => PodSubject[] }): ('containers' | 'pods')[] {
    if (this.cgroupTtlMs <= 0) return [];
    const now = performance.now();
    const wallNow = Date.now();
    const lead = this.nextLead();
    const resumed: ('containers' | 'pods')[] = [];
    if (saved.containers && this.containerListings.resume(saved.containers, subjects.containers, now, wallNow, lead)) resumed.push('containers');
    if (saved.pods && this.podListings.resume(saved.pods, subjects.pods, now, wallNow, lead)) resumed.push('pods');
    this.scheduleRefresh();
    return resumed;
  }

  /** (Re)arms the timer for the earliest due refresh; none due: no timer. */
  private scheduleRefresh(): void {
    if (this.refreshing) return; // refreshOnce schedules when it ends
    clearTimeout(this.refreshTimer);
    this.refreshTimer = undefined;
    const dues = [this.containerListings.due, this.podListings.due].filter((d) => d !== undefined);
    if (dues.length === 0) return;
    this.refreshTimer = setTimeout(() => {
      this.refreshTimer = undefined;
      // A refresh that fails as a whole (its subjects could not be listed) stops the refresher
      // until the next watched listing starts it again; the listings read what they need.
      this.refreshOnce().catch((err: unknown) => log.warn({ err }, 'stats: background refresh failed'));
    }, Math.max(0, Math.min(...dues) - performance.now()));
    // Never what keeps the daemon's process alive.
    this.refreshTimer.unref();
  }

  /**
   * One background refresh of the listings now due: each pod's containers and network, then
   * its cgroup (readPod's order), and the listed containers not in a refreshed pod.
   */
  private async refreshOnce(): Promise<void> {
    const started = performance.now();
    // Due soon counts as due now: kubelet lists pods and containers one right after the other,
    // and two passes would read the containers twice, the second time after the pods' cgroups,
    // so the pod listing would find its pod readings older than its containers' and read them
    // all again while it waits (readPod).
    const isDue = (f: ListingForecast<unknown>) => f.due !== undefined && f.due <= started + DUE_TOGETHER_MS;
    const podsDue = isDue(this.podListings);
    const containersDue = isDue(this.containerListings);
    if (podsDue) this.podListings.refreshed(started);
    if (containersDue) this.containerListings.refreshed(started);
    this.refreshing = true;
    try {
      // What the listings will ask for now, not what the last ones asked for: a pod or container
      // started since is read ahead too, and its first reading (which opens its files, several
      // times the cost of the next ones) is not taken while the listing waits.
      const pods = podsDue ? this.podListings.subjects() : [];
      const containers = containersDue ? this.containerListings.subjects() : [];
      this.markRefreshed(pods, containers);
      // The writable layers first, then the readings: the readings end just before the listing
      // comes, and no walk's callbacks compete with the listing for the event loop. A layer
      // walked recently enough to be still under its TTL when the listing comes (about the lead
      // after this refresh starts) is not walked again: the listing serves that walk.
      const fsMaxAgeMs = Math.max(0, this.fsTtlMs - this.lastLeadMs);
      await eachBounded([...(this.refreshLayers ?? [])], REFRESH_WALKS, (dir) => this.fs.prefetch(dir, fsMaxAgeMs));
      const done = new Set<string>();
      const refreshContainer = (c: ContainerSubject, scope: CgroupReadScope) => {
        const path = resolveCgroupPath(c.cgroupsPath, c.attributes.id);
        const key = cgroupKey(path, scope);
        if (done.has(key)) return undefined;
        done.add(key);
        return this.cgroupReadings.refresh(key, () => this.readCgroupNow(path, scope)).then((cgroup) => this.prebuild(c, cgroup));
      };
      const refreshPod = async (p: PodSubject) => {
        const podCgroup = resolvePodCgroupPath(p.cgroupParent);
        const scope = containerScopeInPod(podCgroup, POD_STATS_SCOPE);
        await Promise.all([
          ...p.containers.map((c) => refreshContainer(c, scope)),
          p.netnsPath ? this.networkReadings.refresh(networkKey(p), () => this.readNetwork(p)) : undefined,
        ]);
        if (podCgroup !== undefined) {
          const stats = await this.cgroupReadings.refresh(cgroupKey(podCgroup, POD_STATS_SCOPE), () => this.readCgroupNow(podCgroup, POD_STATS_SCOPE));
          this.prebuildPod(p, scope, stats);
        }
      };
      const jobs = [
        ...pods.map((p) => () => refreshPod(p)),
        ...containers.map((c) => async () => refreshContainer(c, STATS_SCOPE)),
      ];
      await eachBounded(jobs, REFRESH_PARALLEL, (job) => job().catch((err: unknown) => {
        log.debug({ err }, 'stats: a background refresh failed (the next listing reads it)');
      }));
    } finally {
      this.refreshing = false;
      this.refreshKeys = undefined;
      this.refreshLayers = undefined;
      this.lastRefreshMs = performance.now() - started;
    }
    this.scheduleRefresh();
  }

  /** Records what this refresh reads and walks (refreshKeys, refreshLayers). A subject whose
   * cgroup path does not resolve is left out: its job fails alone, as it always has. */
  private markRefreshed(pods: PodSubject[], containers: ContainerSubject[]): void {
    const keys = new Set<string>();
    const layers = new Set<string>();
    const add = (key: () => string) => {
      try {
        keys.add(key());
      } catch {
        /* reported by the refresh's job for it */
      }
    };
    for (const p of pods) {
      let podCgroup: string | undefined;
      try {
        podCgroup = resolvePodCgroupPath(p.cgroupParent);
      } catch {
        continue; // reported by the refresh's job for it
      }
      const scope = containerScopeInPod(podCgroup, POD_STATS_SCOPE);
      for (const c of p.containers) add(() => cgroupKey(resolveCgroupPath(c.cgroupsPath, c.attributes.id), scope));
      if (podCgroup !== undefined) keys.add(cgroupKey(podCgroup, POD_STATS_SCOPE));
      if (p.netnsPath) keys.add(networkKey(p));
    }
    for (const c of containers) add(() => cgroupKey(resolveCgroupPath(c.cgroupsPath, c.attributes.id), STATS_SCOPE));
    for (const c of [...pods.flatMap((p) => p.containers), ...containers]) {
      if (c.writableLayer !== undefined) layers.add(c.writableLayer.dir);
    }
    this.refreshKeys = keys;
    this.refreshLayers = layers;
  }

  private toContainerStats(r: ContainerReading): ContainerStats {
    return this.containerStatsOf(r.subject, r.cgroup, r.fs, this.rateOf(r.subject.attributes.id, r.cgroup));
  }

  /** The CPU rate since the last sample of `key` (a container id, or podRateKey), recording
   * this reading as its sample; undefined without a CPU reading. */
  private rateOf(key: string, cgroup: CgroupStats | undefined): bigint | undefined {
    return cgroup?.cpu ? this.rates.rate(key, cgroup.cpu.usageNs, cgroup.timestamp) : undefined;
  }

  /** The rate rateOf would give for this reading, recording nothing (the read-ahead's prebuilds). */
  private peekRateOf(key: string, cgroup: CgroupStats | undefined): bigint | undefined {
    return cgroup?.cpu ? this.rates.peek(key, cgroup.cpu.usageNs, cgroup.timestamp) : undefined;
  }

  /**
   * The read-ahead's ContainerStats of `c` from the reading that just landed, with the layer's
   * last walk and the rate the listing will compute (recording nothing): the listing that uses
   * the same readings gets this object, built and prepared (encoded) before it came. Undefined
   * when its layer was never walked: the listing waits for a walk anyway, and builds then.
   */
  private prebuild(c: ContainerSubject, cgroup: CgroupStats | undefined): ContainerStats | undefined {
    const fs = c.writableLayer ? this.fs.peek(c.writableLayer.dir) : undefined;
    if (c.writableLayer && fs === undefined) return undefined;
    return this.containerStatsOf(c, cgroup, fs, this.peekRateOf(c.attributes.id, cgroup), this.prepare);
  }

  /**
   * The read-ahead's PodSandboxStats of `p` once its cgroup's reading (`cgroup`) has landed,
   * from its containers' and its network's last readings, as prebuild does for a container: the
   * pod listing that uses the same readings sends this object, built and prepared before it came.
   */
  private prebuildPod(p: PodSubject, scope: CgroupReadScope, cgroup: CgroupStats | undefined): void {
    if (cgroup === undefined) return;
    const containers: ContainerStats[] = [];
    for (const c of p.containers) {
      const reading = this.cgroupReadings.peek(cgroupKey(resolveCgroupPath(c.cgroupsPath, c.attributes.id), scope));
      // A container not read, or never walked: the listing reads or waits for it, and builds then.
      const stats = reading === undefined ? undefined : this.prebuild(c, reading.value);
      if (stats === undefined) return;
      containers.push(stats);
    }
    const network = p.netnsPath ? this.networkReadings.peek(networkKey(p)) : undefined;
    if (p.netnsPath && network === undefined) return;
    this.podStatsOf(p, cgroup, network?.value, this.peekRateOf(podRateKey(p.attributes.id), cgroup), containers, this.preparePod);
  }

  /** The last built ContainerStats of `c` if it was built from exactly these, else a new one. */
  private containerStatsOf(
    c: ContainerSubject, cgroup: CgroupStats | undefined, fs: FsUsage | undefined, nanoCores: bigint | undefined,
    prepare?: (stats: ContainerStats) => ContainerStats,
  ): ContainerStats {
    const id = c.attributes.id;
    const mountpoint = c.writableLayer?.mountpoint;
    const last = this.built.get(id);
    if (last !== undefined && last.cgroup === cgroup && last.fs === fs && last.nanoCores === nanoCores
      && last.mountpoint === mountpoint && sameAttributes(last.attributes, c.attributes)) return last.stats;
    let stats = buildContainerStats({
      attributes: c.attributes,
      cgroup,
      nanoCores,
      writableLayer: fs && mountpoint !== undefined ? { usage: fs, mountpoint } : undefined,
    });
    if (prepare) stats = prepare(stats);
    // Single-container calls without listings in between never reach retainOnly.
    if (this.built.size > MAX_CACHED_READINGS) this.built.clear();
    this.built.set(id, { cgroup, fs, nanoCores, attributes: c.attributes, mountpoint, stats });
    return stats;
  }

  /**
   * `how.maintained`: the caller's listing is periodic and forecast, so the read-ahead renews its
   * readings and walks before each one: it is answered from what the read-ahead last read (up
   * to maxStaleMs old, each reading with its timestamp), never by reading or walking while it
   * waits, even when the read-ahead is late or has not run yet (then even a reading it had
   * before). Any other caller is never served a reading its kind (`consumer`) had already.
   * `how.walkedAhead`: a read-ahead will walk the layer before the caller's next listing, so a
   * walk result served past its TTL starts no walk behind it (watchedListing).
   */
  private async readContainer(c: ContainerSubject, scope: CgroupReadScope, consumer: number, how = NOT_WATCHED): Promise<ContainerReading> {
    const cgroupPath = resolveCgroupPath(c.cgroupsPath, c.attributes.id);
    const layer = c.writableLayer?.dir;
    const walkBehind = !how.maintained && !how.walkedAhead && !(layer !== undefined && this.refreshLayers?.has(layer));
    const [cgroup, fs] = await Promise.all([
      this.readCgroup(cgroupPath, scope, consumer, how.maintained),
      layer !== undefined ? this.fs.usage(layer, { walkBehind }).catch((err: unknown) => unwalked(c, layer, err)) : undefined,
    ]);
    return { subject: c, cgroupPath, cgroup, fs };
  }

  private readCgroup(path: string, scope: CgroupReadScope, consumer: number, maintained = false): Promise<CgroupStats | undefined> {
    if (this.cgroupTtlMs <= 0) return this.readCgroupNow(path, scope);
    // Single-container calls without listings in between never reach retainOnly.
    if (this.cgroupReadings.size > MAX_CACHED_READINGS) this.cgroupReadings.dropOlderThan(this.cgroupTtlMs);
    const key = cgroupKey(path, scope);
    return this.cgroupReadings.get(key, this.cgroupTtlMs, () => this.readCgroupNow(path, scope), this.staleMsFor(key, maintained), consumer);
  }

  private async readCgroupNow(path: string, scope: CgroupReadScope): Promise<CgroupStats | undefined> {
    try {
      return await readCgroupStats(this.layout, path, { reader: this.files, scope });
    } catch (err) {
      if (err instanceof NotFoundError) return undefined;
      throw err;
    }
  }

  private cachedNetwork(p: PodSubject, consumer: number, maintained = false): Promise<NetworkReading | undefined> {
    // A pod without a namespace now (stopped) has no network section, whatever was read before.
    if (this.cgroupTtlMs <= 0 || !p.netnsPath) return this.readNetwork(p);
    if (this.networkReadings.size > MAX_CACHED_READINGS) this.networkReadings.dropOlderThan(this.cgroupTtlMs);
    const key = networkKey(p);
    return this.networkReadings.get(key, this.cgroupTtlMs, () => this.readNetwork(p), this.staleMsFor(key, maintained), consumer);
  }

  /** How old a reading of `key` may be served: up to maxStaleMs for a maintained listing
   * (readContainer) and while the running refresh is to read it anew (its caller never waits
   * for that refresh, nor reads it beside it). */
  private staleMsFor(key: string, maintained: boolean): number | undefined {
    return maintained || this.refreshKeys?.has(key) ? this.maxStaleMs : undefined;
  }

  /** Never throws: a pod whose counters cannot be read has no network section. */
  private async readNetwork(p: PodSubject): Promise<NetworkReading | undefined> {
    if (!p.netnsPath) return undefined;
    try {
      for (const pid of p.pids ?? []) {
        const reading = await readProcessNetworkStats(this.files, pid, await this.netnsId(p.netnsPath));
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
