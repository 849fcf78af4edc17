// RuntimeService calls that describe the runtime itself: Version, Status, RuntimeConfig.
import type { RuntimeServiceDefinition } from '../gen/runtime/v1/RuntimeService.js';
import type { RuntimeCondition } from '../gen/runtime/v1/RuntimeCondition.js';
import type { ServiceHandlers } from './rpc.js';
import type { RuntimeFeatures } from '../runtime/runtime-features.js';
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
        runtimeHandlers: src.handlerNames().map((name, i) => ({
          // The default handler is listed under the empty name too, as kubelet expects.
          name: i === 0 ? '' : name,
          features: { recursiveReadOnlyMounts: src.handlerFeatures(name).recursiveReadOnly, userNamespaces: false },
        })),
        // Merge and Strict are both applied (src/container/spec/user.ts) and reported in
        // ContainerStatus.user.
        features: { supplementalGroupsPolicy: true, userNamespacesHostNetwork: false },
      };
    },

    RuntimeConfig: async () => ({
      linux: { cgroupDriver: src.cgroupDriver() === 'systemd' ? 'SYSTEMD' : 'CGROUPFS' },
    }),
  };
}
