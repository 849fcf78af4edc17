// The crib daemon: owns the root lock, the components, and the gRPC server on the CRI socket.
// Start-up order matters: claim the socket and lock the root first (two daemons on one root
// would corrupt state; a refused daemon must create nothing), then recover state from disk, then
// listen — kubelet must never see a half-recovered runtime.
import { access, chown, constants, mkdir, unlink } from 'node:fs/promises';
import * as grpc from '@grpc/grpc-js';
import type { CribConfig } from '../config/config.js';
import { log } from '../log.js';
import { nativeBinaries } from '../native-paths.js';
import { criProto } from '../server/cri-proto.js';
import { implementService } from '../server/rpc.js';
import { runtimeInfoHandlers, type Readiness, type RuntimeInfoSource } from '../server/runtime-info.js';
import { imageServiceHandlers } from '../server/image-service.js';
import { ImageService } from '../image/image-service.js';
import { adminHandlers, adminServiceDefinition } from '../server/admin-service.js';
import { CRIB_VERSION } from '../version.js';
import { PodNetwork } from '../network/pod-network.js';
import { CniNetwork } from '../network/cni-network.js';
import { loadCniConfig } from '../network/cni-config.js';
import type { PodNetworking } from '../network/pod-networking.js';
import { SandboxService } from '../sandbox/sandbox-service.js';
import { ContainerService } from '../container/container-service.js';
import { OciRuntime } from '../runtime/oci-runtime.js';
import { NO_FEATURES } from '../runtime/runtime-features.js';
import { podSandboxHandlers } from '../server/pod-sandbox-rpcs.js';
import { containerHandlers } from '../server/container-rpcs.js';
import { statsHandlers } from '../server/stats-rpcs.js';
import { streamingHandlers } from '../server/streaming-rpcs.js';
import { criGuards, criLimitsFromConfig } from '../server/cri-guards.js';
import { GRPC_MAX_MESSAGE_BYTES } from '../server/cri-limits.js';
import { StreamingServer } from '../streaming/server/streaming-server.js';
import { ContainerStreams } from '../streaming/server/container-streams.js';
import { join } from 'node:path';
import { RootLock } from './root-lock.js';
import { SocketClaim } from './socket-claim.js';
import { bindGrpc, groupId, unixSocketPath, type GrpcListener } from './grpc-listener.js';
import { PRIVATE, stateDirAccess, tightenInstall } from './private-dirs.js';

export class Daemon {
  private socketClaim: SocketClaim | undefined;
  private lock: RootLock | undefined;
  private server: grpc.Server | undefined;
  private images: ImageService | undefined;
  private network: PodNetworking | undefined;
  private networkError: string | undefined;
  private containers: ContainerService | undefined;
  private runtimes = new Map<string, OciRuntime>();
  private streaming: StreamingServer | undefined;
  private address = '';
  private listener: GrpcListener | undefined;

  constructor(readonly config: CribConfig) {}

  /** The address the gRPC server listens on, once started. */
  get listenAddress(): string {
    return this.address;
  }

  /** The streaming server's base URL (http[s]://host:port), once started. */
  get streamingUrl(): string {
    return this.streaming?.baseUrl ?? '';
  }

  async start(): Promise<void> {
    const { config } = this;
    log.level = config.log_level;
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
      this.images = await ImageService.open(config);
      this.network = await this.openNetwork();
      const runtimes = new Map<string, OciRuntime>();
      for (const [name, path] of this.handlerPaths()) {
        runtimes.set(name, new OciRuntime(name, path, join(config.state, name === 'crib' ? 'runtime' : `runtime-${name}`)));
      }
      await Promise.all([...runtimes.values()].map((rt) => rt.probeFeatures()));
      this.runtimes = runtimes;
      const sandboxes = new SandboxService({
        root: config.root,
        state: config.state,
        network: this.network,
        handlers: new Set(runtimes.keys()),
        defaultHandler: config.runtime.default_handler,
      });
      const containers = new ContainerService({ root: config.root, state: config.state, runtimes }, sandboxes, this.images);
      this.containers = containers;
      await sandboxes.recover();
      await containers.recover();
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
      const guards = criGuards(criLimitsFromConfig(config.limits), sandboxes, containers);
      const proto = criProto().runtime.v1;
      const server = new grpc.Server({
        'grpc.max_receive_message_length': GRPC_MAX_MESSAGE_BYTES,
        'grpc.max_send_message_length': GRPC_MAX_MESSAGE_BYTES,
      });
      server.addService(
        proto.RuntimeService.service,
        implementService('runtime.v1.RuntimeService', proto.RuntimeService.service, {
          ...runtimeInfoHandlers(this.runtimeInfo()),
          ...podSandboxHandlers(sandboxes, containers, guards),
          UpdateRuntimeConfig: async (req) => {
            await this.updatePodCidr(sandboxes, req.runtimeConfig?.networkConfig?.podCidr ?? '');
            return {};
          },
          ...containerHandlers(containers, sandboxes, guards),
          ...statsHandlers(containers, sandboxes, this.images),
          ...streamingHandlers(containers, sandboxes, streaming, guards),
        }),
      );
      server.addService(
        proto.ImageService.service,
        implementService('runtime.v1.ImageService', proto.ImageService.service, imageServiceHandlers(this.images, guards.validate)),
      );
      server.addService(adminServiceDefinition(), adminHandlers(this.images));
      this.server = server;
      this.listener = await bindGrpc(server, {
        address: config.grpc.address,
        socketMode: parseInt(config.grpc.socket_mode, 8),
        socketGroup: config.grpc.socket_group,
      });
      this.address = this.listener.address;
      log.info({ address: this.address, root: config.root, version: CRIB_VERSION }, 'crib daemon serving');
    } catch (err) {
      await this.stop();
      throw err;
    }
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
    await this.streaming?.stop();
    this.streaming = undefined;
    this.containers?.close();
    this.containers = undefined;
    await this.images?.close();
    this.images = undefined;
    this.lock?.release();
    this.lock = undefined;
    // Released only now that the socket is gone: the next daemon may take it over.
    this.socketClaim?.release();
    this.socketClaim = undefined;
  }

  /**
   * kubelet sends the node's pod CIDR at start-up. An empty CIDR, the current one, or a CNI
   * backend (whose plugins own addressing) leave things as they are; otherwise the built-in
   * network moves to the new range, which is only allowed while no pod holds an address.
   */
  private async updatePodCidr(sandboxes: SandboxService, cidr: string): Promise<void> {
    const current = this.network;
    if (!cidr || !(current instanceof PodNetwork) || current.podCidr === cidr) return;
    const next = PodNetwork.fromConfig({ ...this.config, network: { ...this.config.network, pod_cidr: cidr } });
    sandboxes.replaceNetwork(next);
    await current.cleanupAll();
    this.network = next;
    this.networkError = undefined;
    await next.ensureHost().catch((err: unknown) => {
      this.networkError = (err as Error).message;
    });
    log.info({ podCidr: cidr }, 'pod CIDR updated');
  }

  /** The pod network backend; a failure leaves host-network pods working and Status says why. */
  private async openNetwork(): Promise<PodNetworking> {
    const { config } = this;
    if (config.network.plugin === 'cni') {
      const cni = new CniNetwork({ root: config.root, confDir: config.network.cni_conf_dir, binDirs: config.network.cni_bin_dirs });
      await loadCniConfig(config.network.cni_conf_dir).catch((err: unknown) => {
        this.networkError = `no usable CNI config in ${config.network.cni_conf_dir}: ${(err as Error).message}`;
      });
      return cni;
    }
    const builtin = PodNetwork.fromConfig(config);
    await builtin.ensureHost().catch((err: unknown) => {
      this.networkError = (err as Error).message;
      log.error({ err }, 'pod network setup failed');
    });
    return builtin;
  }

  private runtimeInfo(): RuntimeInfoSource {
    const { config } = this;
    const handlers = this.handlerPaths();
    return {
      runtimeReadiness: async (): Promise<Readiness> => {
        const path = handlers.get(config.runtime.default_handler);
        if (!path) {
          return { ready: false, reason: 'NoDefaultHandler', message: `runtime.default_handler "${config.runtime.default_handler}" is not configured` };
        }
        try {
          await access(path, constants.X_OK);
          return { ready: true };
        } catch {
          return { ready: false, reason: 'RuntimeBinaryMissing', message: `${path} is not an executable (run make -C native)` };
        }
      },
      networkReadiness: async (): Promise<Readiness> => {
        // A CNI config is usually installed after the runtime started (by a DaemonSet), and can
        // go away: readiness follows the config dir, as it is read on every RunPodSandbox.
        if (config.network.plugin === 'cni') {
          const dir = config.network.cni_conf_dir;
          return loadCniConfig(dir).then(
            (): Readiness => ({ ready: true }),
            (err: unknown): Readiness => ({ ready: false, reason: 'NetworkSetupFailed', message: `no usable CNI config in ${dir}: ${(err as Error).message}` }),
          );
        }
        return this.networkError === undefined
          ? { ready: true }
          : { ready: false, reason: 'NetworkSetupFailed', message: this.networkError };
      },
      handlerNames: () => [config.runtime.default_handler, ...[...handlers.keys()].filter((h) => h !== config.runtime.default_handler)],
      handlerFeatures: (name) => this.runtimes.get(name)?.features ?? NO_FEATURES,
      cgroupDriver: () => config.runtime.cgroup_driver,
      verboseInfo: async () => ({
        version: CRIB_VERSION,
        root: config.root,
        state: config.state,
        handlers: Object.fromEntries(handlers),
        image: config.image,
        registryHosts: Object.keys(config.registry),
      }),
    };
  }

  private handlerPaths(): Map<string, string> {
    const paths = new Map<string, string>([['crib', nativeBinaries.runtime]]);
    for (const [name, h] of Object.entries(this.config.runtime.handlers)) paths.set(name, h.path);
    return paths;
  }
}
