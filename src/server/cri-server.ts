// The gRPC server and every service on it: RuntimeService, ImageService and crib's Admin
// service, each through implementService (logging, error mapping, UNIMPLEMENTED for the rest).
// The daemon builds the components once and hands them in; nothing here constructs a service.
import type { CribConfig } from '../config/config.js';
import type { ContainerService } from '../container/container-service.js';
import type { ImageService } from '../image/image-service.js';
import type { SandboxService } from '../sandbox/sandbox-service.js';
import type { StreamingServer } from '../streaming/server/streaming-server.js';
import { ADMIN_SERVICE_NAME, adminHandlers, adminServiceDefinition } from './admin-service.js';
import { containerHandlers } from './container-rpcs.js';
import { criGuards, criLimitsFromConfig } from './cri-guards.js';
import { GRPC_MAX_MESSAGE_BYTES } from './cri-limits.js';
import { criServices } from './cri-proto.js';
import { GrpcServer } from './grpc-server.js';
import { imageServiceHandlers } from './image-service.js';
import { podSandboxHandlers } from './pod-sandbox-rpcs.js';
import { implementService, type RpcObserver } from './rpc.js';
import { runtimeInfoHandlers, type RuntimeInfoSource } from './runtime-info.js';
import { statsHandlers, type ListingPeriods, type StatsCollector } from './stats-rpcs.js';
import { prewarmOnLifecycleEvents } from './status-prewarm.js';
import { streamingHandlers } from './streaming-rpcs.js';

export interface CriComponents {
  limits: CribConfig['limits'];
  sandboxes: SandboxService;
  containers: ContainerService;
  images: ImageService;
  streaming: StreamingServer;
  runtimeInfo: RuntimeInfoSource;
  /** What answers the stats calls (server/stats-rpcs.ts newStatsCollector). */
  stats: StatsCollector;
  /** The stats listing periods the daemon before this one saw, when it left them (daemon/listing-periods-file.ts). */
  statsListingPeriods?: ListingPeriods;
  /** Every call's outcome and duration (the metrics), when metrics are on. */
  observeRpc?: RpcObserver;
}

export function createCriServer(c: CriComponents): GrpcServer {
  const guards = criGuards(criLimitsFromConfig(c.limits), c.sandboxes, c.containers);
  const proto = criServices();
  const server = new GrpcServer({ maxMessageBytes: GRPC_MAX_MESSAGE_BYTES });
  prewarmOnLifecycleEvents(c.containers.events, { pod: (id) => c.sandboxes.find(id), container: (id) => c.containers.find(id) });
  server.addService(
    proto.RuntimeService,
    implementService('runtime.v1.RuntimeService', proto.RuntimeService, {
      ...runtimeInfoHandlers(c.runtimeInfo),
      ...podSandboxHandlers(c.sandboxes, c.containers, guards),
      ...containerHandlers(c.containers, c.sandboxes, guards),
      ...statsHandlers(c.containers, c.sandboxes, c.images, c.stats, c.statsListingPeriods),
      ...streamingHandlers(c.containers, c.sandboxes, c.streaming, guards),
    }, c.observeRpc),
  );
  server.addService(
    proto.ImageService,
    implementService('runtime.v1.ImageService', proto.ImageService, imageServiceHandlers(c.images, guards.validate, () => c.runtimeInfo.handlerNames()), c.observeRpc),
  );
  server.addService(adminServiceDefinition, implementService(ADMIN_SERVICE_NAME, adminServiceDefinition, adminHandlers(c.images), c.observeRpc));
  return server;
}
