// RuntimeService calls about the runtime itself: Version, Status, RuntimeConfig and
// UpdateRuntimeConfig. The daemon hands in what they read (handlers, features, the node's
// network); the readiness rules live here.
import { access, constants } from 'node:fs/promises';
import type { RuntimeServiceDefinition } from '../gen/runtime/v1/RuntimeService.js';
import type { RuntimeCondition } from '../gen/runtime/v1/RuntimeCondition.js';
import type { CribConfig } from '../config/config.js';
import { apparmorEnabled, selinuxEnabled } from '../container/oci-spec/lsm-host.js';
import type { NodeNetwork } from '../network/node-network.js';
import type { RuntimeFeatures } from '../runtime/runtime-features.js';
import type { SandboxService } from '../sandbox/sandbox-service.js';
import type { ServiceHandlers } from './rpc.js';
import { CRI_API_VERSION, CRIB_VERSION } from '../version.js';

/** A component's readiness as the runtime's Status reports it. */
export interface Readiness {
  ready: boolean;
  reason?: string;
  message?: string;
}

export interface RuntimeInfoSource {
  runtimeReadiness(): Promise<Readiness>;
  networkReadiness(): Promise<Readiness>;
  handlerNames(): string[];
  handlerFeatures(name: string): RuntimeFeatures;
  cgroupDriver(): 'cgroupfs' | 'systemd';
  /** Extra detail for `Status` with verbose set: values are JSON. */
  verboseInfo(): Promise<Record<string, unknown>>;
  /** UpdateRuntimeConfig's pod CIDR ("" when kubelet sends none). */
  updatePodCidr(cidr: string): Promise<void>;
}

export interface RuntimeInfoDeps {
  config: CribConfig;
  /** Every RuntimeClass handler and its runtime binary. */
  handlerPaths: ReadonlyMap<string, string>;
  handlerFeatures(name: string): RuntimeFeatures;
  network: NodeNetwork;
  pods: SandboxService;
}

/** What the runtime-info calls read, from the daemon's components. */
export function runtimeInfoSource({ config, handlerPaths, handlerFeatures, network, pods }: RuntimeInfoDeps): RuntimeInfoSource {
  const defaultHandler = config.runtime.default_handler;
  return {
    runtimeReadiness: async (): Promise<Readiness> => {
      const path = handlerPaths.get(defaultHandler);
      if (!path) {
        return { ready: false, reason: 'NoDefaultHandler', message: `runtime.default_handler "${defaultHandler}" is not configured` };
      }
      try {
        await access(path, constants.X_OK);
        return { ready: true };
      } catch {
        return { ready: false, reason: 'RuntimeBinaryMissing', message: `${path} is not an executable (run make -C native)` };
      }
    },
    networkReadiness: () => network.readiness(),
    handlerNames: () => [defaultHandler, ...[...handlerPaths.keys()].filter((h) => h !== defaultHandler)],
    handlerFeatures,
    cgroupDriver: () => config.runtime.cgroup_driver,
    verboseInfo: async () => ({
      version: CRIB_VERSION,
      root: config.root,
      state: config.state,
      handlers: Object.fromEntries(handlerPaths),
      image: config.image,
      registryHosts: Object.keys(config.registry),
      // Whether AppArmor and SELinux are enforced here (without them their CRI fields are ignored,
      // an explicit AppArmor Localhost profile refused).
      securityModules: { apparmor: apparmorEnabled(), selinux: selinuxEnabled() },
    }),
    updatePodCidr: (cidr) => network.updatePodCidr(cidr, (next) => pods.replaceNetwork(next)),
  };
}

function condition(type: string, r: Readiness): RuntimeCondition {
  return { type, status: r.ready, reason: r.reason ?? '', message: r.message ?? '' };
}

export function runtimeInfoHandlers(src: RuntimeInfoSource): ServiceHandlers<RuntimeServiceDefinition> {
  return {
    Version: async () => ({
      version: '0.1.0',
      runtimeName: 'crib',
      runtimeVersion: CRIB_VERSION,
      runtimeApiVersion: CRI_API_VERSION,
    }),

    Status: async (req) => {
      const [runtime, network] = await Promise.all([src.runtimeReadiness(), src.networkReadiness()]);
      const info: Record<string, string> = {};
      if (req.verbose) {
        for (const [k, v] of Object.entries(await src.verboseInfo())) info[k] = JSON.stringify(v);
      }
      return {
        status: { conditions: [condition('RuntimeReady', runtime), condition('NetworkReady', network)] },
        info,
        // The default handler is listed under the empty name (what kubelet uses without a
        // RuntimeClass) and under its own name (what a RuntimeClass's handler names).
        runtimeHandlers: [src.handlerNames()[0]!, ...src.handlerNames()].map((name, i) => {
          const f = src.handlerFeatures(name);
          return {
            name: i === 0 ? '' : name,
            features: { recursiveReadOnlyMounts: f.recursiveReadOnly, userNamespaces: f.userNamespaces },
          };
        }),
        // Merge and Strict are both applied (src/container/oci-spec/user.ts) and reported in
        // ContainerStatus.user.
        features: { supplementalGroupsPolicy: true, userNamespacesHostNetwork: false },
      };
    },

    RuntimeConfig: async () => ({
      linux: { cgroupDriver: src.cgroupDriver() === 'systemd' ? 'SYSTEMD' : 'CGROUPFS' },
    }),

    UpdateRuntimeConfig: async (req) => {
      await src.updatePodCidr(req.runtimeConfig?.networkConfig?.podCidr ?? '');
      return {};
    },
  };
}
