// The crib daemon: owns the root lock, the components, and the gRPC server on the CRI socket.
// Start-up order matters: claim the socket and lock the root first (two daemons on one root
// would corrupt state; a refused daemon must create nothing), then recover state from disk, then
// listen — kubelet must never see a half-recovered runtime.
import { chown, mkdir, unlink } from 'node:fs/promises';
import { join } from 'node:path';
import type { CribConfig } from '../config/config.js';
import { log } from '../log.js';
import { nativeBinaries } from '../native-paths.js';
import { ImageService } from '../image/image-service.js';
import { Snapshotter } from '../snapshot/snapshotter.js';
import { ImageVolumes } from '../container/image-volumes.js';
import { CRIB_VERSION } from '../version.js';
import { NodeNetwork } from '../network/node-network.js';
import { createCriServer } from '../server/cri-server.js';
import { newStatsCollector, type StatsCollector } from '../server/stats-rpcs.js';
import { keepListingPeriods, takeListingPeriods } from './listing-periods-file.js';
import type { GrpcServer } from '../server/grpc-server.js';
import type { RpcObserver } from '../server/rpc.js';
import { runtimeInfoSource } from '../server/runtime-info.js';
import { SandboxService } from '../sandbox/sandbox-service.js';
import { cribPinns } from '../sandbox/namespaces.js';
import { tmpfsShm } from '../sandbox/pod-files.js';
import { ContainerService } from '../container/container-service.js';
import { CdiRegistry } from '../container/cdi/cdi-registry.js';
import { selinuxEnabled } from '../container/oci-spec/lsm-host.js';
import { RuntimeRegistry, type RuntimeHandlerSpec } from '../runtime/runtime-registry.js';
import { serveSealedBinaries } from '../runtime/sealed-binaries.js';
import { NO_FEATURES } from '../runtime/runtime-features.js';
import { StreamingServer } from '../streaming/server/streaming-server.js';
import { ContainerStreams } from '../streaming/server/container-streams.js';
import { RootLock } from './root-lock.js';
import { SocketClaim } from './socket-claim.js';
import { bindGrpc, groupId, unixSocketPath, type GrpcListener } from './grpc-listener.js';
import { PRIVATE, stateDirAccess, tightenInstall } from './private-dirs.js';
import { MemoryTrim } from './memory-trim.js';
import { mallocSettingGiven, mallocTrim, releaseHeap, setMallocMmapThreshold, shrinkHeap, v8WorkersToBatch } from '../sys/libc.js';
import { criState } from '../container/container-record.js';
import { podSandboxState } from '../server/cri-messages.js';
import type { DaemonMetrics } from '../metrics/daemon-metrics.js';
import type { MetricsServer } from '../metrics/metrics-server.js';

/** How often the running daemon saves the stats listings' periods for its successor: a kill -9
 * leaves them at most this old (daemon/listing-periods-file.ts). */
const LISTING_PERIODS_SAVE_MS = 60_000;
/** Above the 1 MiB read buffers a pull reuses (image/registry/blob-http.ts), which stay in the
 * arenas: at glibc's own 128 KiB they were mapped anew, and a cold pull took 8% more CPU
 * (bench/pull-ab.ts, 690 / 750 ms) for 1-2 MiB less RSS after it. */
const MALLOC_MMAP_THRESHOLD = (1 << 20) + (64 << 10);

/**
 * The calls a node makes on a period whatever happens (kubelet's relists, status and stats
 * polling, exec probes): they change nothing the daemon keeps, so a quiet spell after them alone
 * does not have the memory trim shrink V8's heap (daemon/memory-trim.ts). Any other call counts
 * as work.
 */
const PERIODIC_READS: ReadonlySet<string> = new Set([
  'Version', 'Status', 'RuntimeConfig', 'ListPodSandbox', 'PodSandboxStatus', 'ListContainers', 'ContainerStatus',
  'ContainerStats', 'ListContainerStats', 'PodSandboxStats', 'ListPodSandboxStats', 'ListMetricDescriptors',
  'ListPodSandboxMetrics', 'ExecSync', 'ListImages', 'ImageStatus', 'ImageFsInfo',
]);

export class Daemon {
  private socketClaim: SocketClaim | undefined;
  private lock: RootLock | undefined;
  private server: GrpcServer | undefined;
  private stats: StatsCollector | undefined;
  /** Saves the stats listings' periods for the next daemon (listing-periods-file.ts). */
  private listingPeriods: { stop(): Promise<void> } | undefined;
  private images: ImageService | undefined;
  private network: NodeNetwork | undefined;
  private containers: ContainerService | undefined;
  private sandboxes: SandboxService | undefined;
  private runtimes: RuntimeRegistry | undefined;
  private streaming: StreamingServer | undefined;
  private address = '';
  private listener: GrpcListener | undefined;
  private metrics: DaemonMetrics | undefined;
  private metricsServer: MetricsServer | undefined;
  // Quiet 2 s, or at most 30 s into kubelet's steady polling, and again 15 s later (after the
  // unpack pool's 10 s idle threads are gone); a trim takes 1-2 ms. A quiet one also begins
  // shrinking V8's heap after work other than reads (PERIODIC_READS), or when it grew 4 MiB since
  // the quiet one before, and a late one that finds the daemon still quiet releases it (one pause
  // of 12-28 ms).
  private readonly memoryTrim = new MemoryTrim({
    quietMs: 2000, maxDelayMs: 30_000, lateMs: 15_000, heapGrowthBytes: 4 << 20,
    trim: mallocTrim, shrinkHeap, releaseHeap, heapBytes: () => process.memoryUsage().heapTotal,
  });

  constructor(readonly config: CribConfig) {}

  /**
   * Fixes malloc's mmap threshold (sys/libc.ts): blocks over 1 MiB get mappings of their own, and
   * glibc's trim threshold stays at its 128 KiB, so a thread's arena gives back the top of its
   * heap as it frees. Left to glibc, both follow the largest block freed (a pull's 1 MiB read
   * buffers: 1 and 2 MiB), and the unpack threads' arenas kept 1.4-2 MiB of their tops resident
   * after the threads ended: malloc_trim does not trim a thread arena's top. Idle 20 s after six
   * 100 MB pulls the daemon's RSS was 68.2-69.9 MiB left to glibc and 66.8-67.0 with this; with
   * 100 pods after 200 started and removed, 82.6 and 79.3 MiB (one run each). A cold pull's CPU
   * was unchanged (bench/pull-ab.ts, 740 / 730 ms). Measured before the daemon ran with one
   * arena (daemon/node-flags.ts): with it, the threshold keeps the main arena giving back its top
   * as it frees, between malloc_trims, and the thread arenas an operator's own limit allows.
   */
  private fixMallocMmapThreshold(): void {
    // An operator's own setting wins, as a node flag set in NODE_OPTIONS does (daemon/node-flags.ts).
    if (mallocSettingGiven(process.env, 'MALLOC_MMAP_THRESHOLD_', 'glibc.malloc.mmap_threshold')) return;
    try {
      setMallocMmapThreshold(MALLOC_MMAP_THRESHOLD);
    } catch (err) {
      log.warn({ err }, 'cannot fix malloc\'s mmap threshold: memory freed after pulls may stay with the daemon');
    }
  }

  /**
   * V8's worker threads to SCHED_BATCH (sys/libc.ts v8WorkersToBatch): woken by a collection or
   * a compile, they took the CPU of the main thread mid-answer, or of the client it had just
   * answered, while the other core sat idle.
   */
  private batchV8Workers(): void {
    try {
      const threads = v8WorkersToBatch();
      log.debug({ threads }, 'V8 worker threads run as SCHED_BATCH');
    } catch (err) {
      log.warn({ err }, 'V8 worker threads left at the normal policy: they may preempt the threads answering RPCs');
    }
  }

  /** The address the gRPC server listens on, once started. */
  get listenAddress(): string {
    return this.address;
  }

  /** The metrics endpoint's host:port, once started with metrics.address set. */
  get metricsAddress(): string {
    return this.metricsServer?.address ?? '';
  }

  /** The streaming server's base URL (http[s]://host:port), once listening (after the first Exec, Attach or PortForward). */
  get streamingUrl(): string {
    return this.streaming?.baseUrl ?? '';
  }

  async start(): Promise<void> {
    const { config } = this;
    log.level = config.log_level;
    this.fixMallocMmapThreshold();
    this.batchV8Workers();
    // Private from the first moment: a new install is made tight, an old one tightened before
    // anything else is created in it (see private-dirs.ts).
    const socketPath = unixSocketPath(config.grpc.address);
    const socketGroup = config.grpc.socket_group;
    const stateAccess = stateDirAccess(config.state, socketPath,
      socketGroup === undefined ? undefined : groupId(socketGroup));
    const makeStateDir = async (): Promise<void> => {
      const made = await mkdir(config.state, { recursive: true, mode: stateAccess.mode });
      if (made !== undefined && stateAccess.gid !== undefined) await chown(config.state, process.geteuid?.() ?? 0, stateAccess.gid);
    };
    // A refused start creates nothing: both the root lock and the socket are checked, and the
    // socket claimed, before root, state, bridge or nftables table exist.
    RootLock.assertFree(config.root);
    if (socketPath !== undefined) {
      this.socketClaim = await SocketClaim.take(socketPath, async (dir) => {
        if (join(dir) === join(config.state)) await makeStateDir();
        else await mkdir(dir, { recursive: true, mode: 0o711 });
      });
    }
    try {
      await mkdir(config.root, { recursive: true, mode: PRIVATE.mode });
      this.lock = RootLock.acquire(config.root);
      await makeStateDir();
      await tightenInstall({ root: config.root, state: config.state, stateAccess, log });
      serveSealedBinaries();
      // The snapshotter is made once: images unpack into it, containers run on it.
      const snapshots = await Snapshotter.open(config.root);
      this.images = await ImageService.open(config, snapshots);
      this.network = await NodeNetwork.open(config);
      // Services are wired once, here: each gets what it uses, and nothing reaches through
      // another to find it.
      const runtimes = await RuntimeRegistry.open(this.handlerSpecs(), config.state);
      this.runtimes = runtimes;
      const containers = new ContainerService({
        root: config.root,
        state: config.state,
        runtimes,
        images: this.images,
        snapshots,
        cdi: new CdiRegistry(config.cdi.spec_dirs),
        imageVolumes: new ImageVolumes(this.images, snapshots),
      });
      this.containers = containers;
      const sandboxes = new SandboxService({
        root: config.root,
        state: config.state,
        network: this.network.backend,
        handlers: new Set(runtimes.names()),
        defaultHandler: config.runtime.default_handler,
        userNamespaces: (name) => runtimes.features(name).userNamespaces,
        containers,
        namespaces: cribPinns,
        shm: tmpfsShm,
        selinux: selinuxEnabled(),
        onPodEvent: (kind, pod) => containers.events.emitPodEvent(kind, pod),
      });
      // Containers first: finishing a pod's interrupted stop or removal stops or removes its
      // containers, which must be loaded (and their exits known) by then.
      await containers.recover();
      this.sandboxes = sandboxes;
      await sandboxes.recover();
      if (config.metrics.address !== undefined) {
        // Loaded only when asked for: a daemon without metrics carries no prom-client.
        const { DaemonMetrics } = await import('../metrics/daemon-metrics.js');
        const images = this.images;
        this.metrics = new DaemonMetrics({
          podStates: () => sandboxes.list().map(podSandboxState),
          containerStates: () => containers.list().map(criState),
          monitorsAlive: () => containers.monitorsWatched,
          onPullFinished: (l) => images.onPullFinished(l),
        });
        this.metrics.setRecovered(sandboxes.list().length, containers.list().length);
      }
      const streaming = new StreamingServer({
        address: config.streaming.address,
        port: config.streaming.port,
        tlsCert: config.streaming.tls_cert,
        tlsKey: config.streaming.tls_key,
        maxTokens: config.limits.max_stream_tokens,
        maxTokensPerTarget: config.limits.max_stream_tokens_per_target,
      }, new ContainerStreams(containers, sandboxes, { stallTimeoutMs: config.streaming.stall_timeout }));
      this.streaming = streaming;
      await streaming.start();
      const stats = newStatsCollector();
      this.stats = stats;
      const server = createCriServer({
        limits: config.limits,
        stats,
        statsListingPeriods: await takeListingPeriods(config.state),
        sandboxes,
        containers,
        images: this.images,
        streaming,
        runtimeInfo: runtimeInfoSource({
          config,
          handlerPaths: this.handlerPaths(),
          handlerFeatures: (name) => this.runtimes?.features(name) ?? NO_FEATURES,
          network: this.network,
          pods: sandboxes,
        }),
        observeRpc: this.observeRpc(),
      });
      this.server = server;
      this.listingPeriods = keepListingPeriods(config.state, () => stats.listingPeriods(), LISTING_PERIODS_SAVE_MS);
      this.listener = await bindGrpc(server, {
        address: config.grpc.address,
        socketMode: parseInt(config.grpc.socket_mode, 8),
        socketGroup: config.grpc.socket_group,
      });
      this.address = this.listener.address;
      if (this.metrics && config.metrics.address !== undefined) {
        const { serveMetrics } = await import('../metrics/metrics-server.js');
        this.metricsServer = await serveMetrics(this.metrics, config.metrics.address);
      }
      log.info({ address: this.address, root: config.root, version: CRIB_VERSION }, 'crib daemon serving');
    } catch (err) {
      await this.stop();
      throw err;
    }
  }

  /** Every RPC: the metrics (when on), and a memory trim once the work is over. */
  private observeRpc(): RpcObserver {
    const metrics = this.metrics?.observeRpc;
    const trim = this.memoryTrim;
    return {
      unaryStarted: (method) => trim.callStarted(PERIODIC_READS.has(method.slice(method.lastIndexOf('/') + 1))),
      ended: (method, code, seconds, unary) => {
        metrics?.(method, code, seconds);
        if (unary) trim.callEnded();
        else trim.activity();
      },
    };
  }

  /** Stop serving: in-flight calls get a few seconds to finish, then are cut. */
  async stop(): Promise<void> {
    const server = this.server;
    this.server = undefined;
    if (server) {
      // No new connections; the server's shutdown below ends the open ones.
      void this.listener?.close();
      this.listener = undefined;
      await new Promise<void>((resolve) => {
        const force = setTimeout(() => {
          server.forceShutdown();
          resolve();
        }, 5000);
        server.tryShutdown(() => {
          clearTimeout(force);
          resolve();
        });
      });
      const path = unixSocketPath(this.address);
      if (path) await unlink(path).catch(() => undefined);
    }
    if (this.stats) {
      // No listing comes any more: what the collector knows of their periods goes to the next daemon.
      await this.listingPeriods?.stop();
      this.listingPeriods = undefined;
      this.stats.close();
      this.stats = undefined;
    }
    this.memoryTrim.close();
    await this.metricsServer?.close();
    this.metricsServer = undefined;
    this.metrics?.close();
    this.metrics = undefined;
    await this.streaming?.stop();
    this.streaming = undefined;
    await this.containers?.close();
    this.containers = undefined;
    await this.runtimes?.close();
    // Removed pods' files still being deleted: a clean stop leaves none for start-up to find.
    await this.sandboxes?.removalsSettled();
    this.sandboxes = undefined;
    await this.images?.close();
    this.images = undefined;
    this.lock?.release();
    this.lock = undefined;
    // Released only now that the socket is gone: the next daemon may take it over.
    this.socketClaim?.release();
    this.socketClaim = undefined;
  }

  private handlerSpecs(): Map<string, RuntimeHandlerSpec> {
    const specs = new Map<string, RuntimeHandlerSpec>([['crib', { binary: nativeBinaries.runtime, stateDirPerId: true, mountTemplate: true, captureExec: true }]]);
    for (const [name, h] of Object.entries(this.config.runtime.handlers)) {
      specs.set(name, { binary: h.path, ...(h.root !== undefined ? { root: h.root } : {}) });
    }
    return specs;
  }

  private handlerPaths(): Map<string, string> {
    const paths = new Map<string, string>([['crib', nativeBinaries.runtime]]);
    for (const [name, h] of Object.entries(this.config.runtime.handlers)) paths.set(name, h.path);
    return paths;
  }
}
