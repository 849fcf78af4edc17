// RuntimeService pod sandbox calls.
import type { RuntimeServiceDefinition } from '../gen/runtime/v1/RuntimeService.js';
import type { ContainerService } from '../container/container-service.js';
import type { SandboxService } from '../sandbox/sandbox-service.js';
import { nowNs } from '../time.js';
import type { CriGuards } from './cri-guards.js';
import { podSandboxState } from './cri-messages.js';
import { encodedPodSandboxStatus, listedPodSandbox, podContainerStatuses } from './listed-messages.js';
import { matchesFilter, type CriListFilter } from './label-selector.js';
import { podListedBytes } from './listed-size.js';
import { sendInBatches, type ServiceHandlers } from './rpc.js';

export function podSandboxHandlers(pods: SandboxService, containers: ContainerService, guards: CriGuards): ServiceHandlers<RuntimeServiceDefinition> {
  const filtered = (filter: CriListFilter | null | undefined) =>
    pods.list().filter((p) => matchesFilter({ id: p.id, state: podSandboxState(p), labels: p.config.labels }, filter));

  return {
    RunPodSandbox: async (req, ctx) => {
      const config = req.config;
      guards.validate.podSandboxConfig('RunPodSandbox', config);
      const podSandboxId = await guards.listed.charge('RunPodSandbox', 'pod', podListedBytes(config, req.runtimeHandler), () =>
        pods.run(config, req.runtimeHandler, ctx.signal));
      return { podSandboxId };
    },

    StopPodSandbox: async (req) => {
      await pods.stop(req.podSandboxId);
      return {};
    },

    RemovePodSandbox: async (req) => {
      await pods.remove(req.podSandboxId);
      return {};
    },

    PodSandboxStatus: async (req) => {
      const rec = pods.get(req.podSandboxId);
      const statuses = podContainerStatuses(containers.list(), rec.id);
      const info: Record<string, string> = {};
      if (req.verbose) {
        info.info = JSON.stringify({
          pid: rec.podInitPid ?? 0,
          netns: rec.netnsPath,
          ipcns: rec.ipcnsPath,
          utsns: rec.utsnsPath,
          network: rec.network,
          files: rec.files,
          runtimeHandler: rec.runtimeHandler,
          // The pod's own MCS level (SELinux nodes): what its containers run at by default.
          selinuxLevel: rec.selinuxLevel,
          resources: rec.resources,
          config: rec.config,
        });
      }
      return { status: encodedPodSandboxStatus(rec), info, containersStatuses: statuses, timestamp: nowNs() };
    },

    UpdatePodSandboxResources: async (req) => {
      guards.validate.podResources('UpdatePodSandboxResources', req.overhead, req.resources);
      await pods.updateResources(req.podSandboxId, req.overhead, req.resources);
      return {};
    },

    ListPodSandbox: async (req) => ({ items: filtered(req.filter).map(listedPodSandbox) }),

    StreamPodSandboxes: async (req, _ctx, send) => {
      const all = filtered(req.filter).map(listedPodSandbox);
      sendInBatches(all, send, (batch) => ({ podSandboxes: batch }));
    },
  };
}
