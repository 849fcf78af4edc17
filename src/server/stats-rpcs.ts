// RuntimeService stats and metrics calls: container and pod stats from cgroups (v1 and v2),
// the writable layer, and the pod network namespace; cAdvisor-style metrics for kubelet.
import type { RuntimeServiceDefinition } from '../gen/runtime/v1/RuntimeService.js';
import type { ContainerService } from '../container/container-service.js';
import type { ContainerRecord } from '../container/container-record.js';
import type { ImageService } from '../image/image-service.js';
import type { SandboxService } from '../sandbox/sandbox-service.js';
import type { SandboxRecord } from '../sandbox/sandbox-record.js';
import { log } from '../log.js';
import { StatsCollector, type ContainerSubject, type ListingPeriods, type PodSubject } from '../stats/stats-collector.js';
import type { PodSandboxMetrics } from '../gen/runtime/v1/PodSandboxMetrics.js';
import type { PodSandboxStats } from '../gen/runtime/v1/PodSandboxStats.js';
import { messageEncoder } from './cri-proto.js';
import { withEncodedBody } from './direct-encoder.js';
import { matchesFilter, type CriListFilter } from './label-selector.js';
import { encodedOncePerState } from './listed-messages.js';
import { MAX_REPORTED_INTERFACES } from './listed-size.js';
import { sendInBatches, type ServiceHandlers } from './rpc.js';

/**
 * A pod's network namespace may hold any number of interfaces (a pod with NET_ADMIN can make
 * thousands), and each one is a few dozen bytes in every stats list: only the first ones are
 * reported, the default interface always among them, so that a pod's share of a list stays
 * within what the listed-size budget charged it.
 */
function capInterfaces(stats: PodSandboxStats): PodSandboxStats {
  const net = stats.linux?.network;
  if (!net?.interfaces || net.interfaces.length <= MAX_REPORTED_INTERFACES) return stats;
  const def = net.defaultInterface;
  const others = net.interfaces.filter((i) => i.name !== def?.name);
  net.interfaces = [...(def ? [def] : []), ...others].slice(0, MAX_REPORTED_INTERFACES);
  return stats;
}

const NETWORK_METRIC = /^container_network_/;

/** How long after the daemon starts with a pod running, or after a pod or container starts, the
 * pod's stats are first read (statsHandlers). */
const FIRST_READING_AFTER_MS = 500;

/** The same bound on the pod's network metrics (one series per interface and counter). */
function capInterfaceMetrics(metrics: PodSandboxMetrics): PodSandboxMetrics {
  const kept = new Set<string>();
  metrics.metrics = (metrics.metrics ?? []).filter((m) => {
    if (!NETWORK_METRIC.test(m.name ?? '')) return true;
    const iface = m.labelValues?.[m.labelValues.length - 1] ?? '';
    if (kept.has(iface)) return true;
    if (kept.size >= MAX_REPORTED_INTERFACES) return false;
    kept.add(iface);
    return true;
  });
  return metrics;
}

/** A listing that asks for everything (kubelet's): no id, pod or label filter. */
const isUnfiltered = (f: CriListFilter | null | undefined): boolean =>
  !f?.id && !f?.podSandboxId && Object.keys(f?.labelSelector ?? {}).length === 0;

export type { ListingPeriods, StatsCollector };

/**
 * The daemon's stats collector. Each ContainerStats and PodSandboxStats the read-ahead builds is
 * encoded then, before the listing that sends it comes: the listing copies its bytes (a pod's,
 * its containers' too). A pod's interfaces are capped before its bytes are made.
 */
export function newStatsCollector(): StatsCollector {
  let encodeContainerStats: ((value: object) => Buffer) | undefined;
  let encodePodStats: ((value: object) => Buffer) | undefined;
  return new StatsCollector({
    prepare: (s) => withEncodedBody(s, (encodeContainerStats ??= messageEncoder('ContainerStats'))(s)),
    preparePod: (s) => {
      const capped = capInterfaces(s);
      return withEncodedBody(capped, (encodePodStats ??= messageEncoder('PodSandboxStats'))(capped));
    },
  });
}

/**
 * The stats calls, answered by `collector`. `resumed`: the listing periods the daemon before
 * this one saw (daemon/listing-periods-file.ts): each kind's first listing here is read ahead
 * of as its next one would have been there.
 */
export function statsHandlers(
  containers: ContainerService, pods: SandboxService, images: ImageService, collector: StatsCollector, resumed?: ListingPeriods,
): ServiceHandlers<RuntimeServiceDefinition> {
  // A container's and a pod's attributes (id, metadata, labels, annotations: kubelet's labels and
  // annotations are most of a stats entry's bytes) change only with the record: built and encoded
  // once per record, every ContainerStats and PodSandboxStats the read-ahead encodes copies them.
  const containerAttributes = encodedOncePerState('ContainerAttributes', () => '', (c: ContainerRecord) =>
    ({ id: c.id, metadata: c.config.metadata, labels: c.config.labels, annotations: c.config.annotations }));
  const podAttributes = encodedOncePerState('PodSandboxAttributes', () => '', (p: SandboxRecord) =>
    ({ id: p.id, metadata: p.config.metadata, labels: p.config.labels, annotations: p.config.annotations }));

  // A container's writable layer is where its snapshot was made, for its whole life; asking the
  // snapshotter (which builds the snapshot's whole overlay layout) for each container of every
  // listing was 4% of the daemon's busy time in a profile of 200-container listings. Kept by
  // id; dropped with the container at the next listing (or when there are too many: only
  // single-container calls).
  const layers = new Map<string, { dir: string; mountpoint: string }>();
  const MAX_LAYERS = 4096;
  const writableLayer = (id: string) => {
    let layer = layers.get(id);
    if (layer === undefined) {
      if (layers.size >= MAX_LAYERS) layers.clear();
      layer = images.writableLayer(id);
      if (layer !== undefined) layers.set(id, layer);
    }
    return layer;
  };
  const containerSubject = (c: ContainerRecord): ContainerSubject => ({
    attributes: containerAttributes(c),
    cgroupsPath: c.cgroupsPath ?? '',
    writableLayer: writableLayer(c.id),
    image: c.imageName,
  });
  // Stats are about what runs: containers that exited have no cgroup left to read.
  const running = (c: ContainerRecord) => c.startedAt !== undefined && c.finishedAt === undefined;
  /** `podContainers`: the running containers of pod `p`. */
  const podSubject = (p: SandboxRecord, podContainers: ContainerRecord[]): PodSubject => {
    const ready = p.state === 'ready';
    const net = p.network;
    return {
      attributes: podAttributes(p),
      cgroupParent: p.config.linux?.cgroupParent,
      netnsPath: ready ? p.netnsPath : undefined,
      // Only the built-in network records a host interface: always a veth pair.
      veth: ready && net?.hostInterface ? { host: net.hostInterface, pod: net.interface } : undefined,
      pids: podContainers.flatMap((c) => (c.pid ? [c.pid] : [])),
      containers: podContainers.map(containerSubject),
    };
  };
  /** Running containers by pod, gathered in one pass for a whole listing. */
  const containersByPod = () => {
    const out = new Map<string, ContainerRecord[]>();
    for (const c of containers.list()) {
      if (!running(c)) continue;
      const list = out.get(c.podId);
      if (list) list.push(c);
      else out.set(c.podId, [c]);
    }
    return out;
  };
  // Stats filters carry no state: only running containers and ready pods have stats.
  const listContainers = (filter: CriListFilter | null | undefined) =>
    containers.list().filter((c) => running(c) && matchesFilter({ id: c.id, podId: c.podId, state: '', labels: c.config.labels }, filter));
  const listPods = (filter: CriListFilter | null | undefined) =>
    pods.list().filter((p) => p.state === 'ready' && matchesFilter({ id: p.id, state: '', labels: p.config.labels }, filter));
  const podStats = async (p: SandboxRecord, byPod = containersByPod()) =>
    capInterfaces(await collector.podSandboxStats(podSubject(p, byPod.get(p.id) ?? [])));
  /** The subjects of `records` (pods), their running containers gathered in one pass. */
  const podSubjects = (records: SandboxRecord[]) => {
    const byPod = containersByPod();
    return records.map((p) => podSubject(p, byPod.get(p.id) ?? []));
  };
  const containerSubjects = (filter: CriListFilter | null | undefined) => listContainers(filter).map(containerSubject);
  // An unfiltered listing is what kubelet repeats: the collector keeps the readings of what the
  // next one will list (the pods and containers then) fresh for it (stats-collector.ts).
  const allPodStats = async (filter: CriListFilter | null | undefined) =>
    (await collector.listPodSandboxStats(podSubjects(listPods(filter)), isUnfiltered(filter) ? { watch: () => podSubjects(listPods(undefined)) } : {}))
      .map(capInterfaces);
  const allContainerStats = (filter: CriListFilter | null | undefined) =>
    collector.listContainerStats(containerSubjects(filter), isUnfiltered(filter) ? { watch: () => containerSubjects(undefined) } : {});
  const allPodMetrics = () =>
    Promise.all(podSubjects(listPods(undefined)).map(async (p) => capInterfaceMetrics(await collector.podSandboxMetrics(p))));
  const forget = () => {
    const ids = containers.list().map((c) => c.id);
    const live = new Set(ids);
    for (const id of layers.keys()) if (!live.has(id)) layers.delete(id);
    collector.retainOnly([...ids, ...pods.list().map((p) => p.id)]);
  };
  // A pod's first stats reading opens its and its containers' cgroup files (~0.5 ms of CPU per
  // cgroup), walks their writable layers, and gives no CPU rate: a rate needs an earlier sample.
  // Taken by the first listing, all of that is paid while kubelet waits (after a restart with
  // 250 pods running, about a second on a busy node), and the pod shows no CPU use until the
  // listing after. So each pod is read once in the background soon after the daemon starts with
  // it running, or after it or one of its containers starts, all the pods that started within
  // FIRST_READING_AFTER_MS of each other together (stats-collector.ts takeFirstReadings).
  const firstReadings = new Set<string>();
  let firstReadingTimer: NodeJS.Timeout | undefined;
  const readSoon = (podIds: Iterable<string>) => {
    for (const id of podIds) firstReadings.add(id);
    if (firstReadingTimer !== undefined || firstReadings.size === 0) return;
    firstReadingTimer = setTimeout(() => {
      firstReadingTimer = undefined;
      const ids = new Set(firstReadings);
      firstReadings.clear();
      (async () => {
        const subjects = podSubjects(listPods(undefined).filter((p) => ids.has(p.id)));
        if (subjects.length === 0) return;
        await collector.takeFirstReadings(subjects);
        // As after a listing: what this keeps is only ever of live pods and containers.
        forget();
      })().catch((err: unknown) => log.debug({ err }, 'stats: a first reading failed (the first listing reads what it needs)'));
    }, FIRST_READING_AFTER_MS);
    firstReadingTimer.unref();
  };
  readSoon(listPods(undefined).map((p) => p.id));
  if (resumed) {
    const kinds = collector.resumeListings(resumed, { containers: () => containerSubjects(undefined), pods: () => podSubjects(listPods(undefined)) });
    if (kinds.length > 0) log.debug({ kinds }, 'stats: listing periods resumed from the daemon before this one');
  }
  containers.events.subscribe((e) => {
    if (e.type === 'CONTAINER_STARTED_EVENT') readSoon([e.podId]);
  });
  // Housekeeping (about 1 ms for 200 containers), done in a turn of its own after the answer is
  // sent rather than in the listing's first one. What a listing serves never depends on it: a
  // removed container or pod is not among its subjects, and its readings are dropped by age.
  let forgetting = false;
  const forgetAfterAnswer = () => {
    if (forgetting) return;
    forgetting = true;
    setImmediate(() => {
      forgetting = false;
      forget();
    });
  };

  return {
    ContainerStats: async (req) => ({ stats: await collector.containerStats(containerSubject(await containers.status(req.containerId))) }),

    ListContainerStats: async (req) => {
      const stats = await allContainerStats(req.filter);
      forgetAfterAnswer();
      return { stats };
    },

    StreamContainerStats: async (req, _ctx, send) => {
      const all = await allContainerStats(req.filter);
      sendInBatches(all, send, (batch) => ({ containerStats: batch }));
    },

    PodSandboxStats: async (req) => ({ stats: await podStats(pods.get(req.podSandboxId)) }),

    ListPodSandboxStats: async (req) => {
      const stats = await allPodStats(req.filter);
      forgetAfterAnswer();
      return { stats };
    },

    StreamPodSandboxStats: async (req, _ctx, send) => {
      const all = await allPodStats(req.filter);
      sendInBatches(all, send, (batch) => ({ podSandboxStats: batch }));
    },

    ListMetricDescriptors: async () => ({ descriptors: collector.listMetricDescriptors() }),

    ListPodSandboxMetrics: async () => ({
      podMetrics: await allPodMetrics(),
    }),

    StreamPodSandboxMetrics: async (_req, _ctx, send) => {
      const all = await allPodMetrics();
      sendInBatches(all, send, (batch) => ({ podSandboxMetrics: batch }));
    },
  };
}
