// RuntimeService pod sandbox calls.
import type { RuntimeServiceDefinition } from '../gen/runtime/v1/RuntimeService.js';
import type { PodSandboxStatus } from '../gen/runtime/v1/PodSandboxStatus.js';
import type { PodSandbox } from '../gen/runtime/v1/PodSandbox.js';
import type { NamespaceOption } from '../gen/runtime/v1/NamespaceOption.js';
import type { ContainerService } from '../container/container-service.js';
import type { SandboxService } from '../sandbox/sandbox-service.js';
import type { SandboxRecord } from '../sandbox/sandbox-record.js';
import { nowNs } from '../time.js';
import { containerStatusMessage } from './container-rpcs.js';
import type { CriGuards } from './cri-guards.js';
import { matchesFilter, type CriListFilter } from './label-selector.js';
import { podListedBytes } from './listed-size.js';
import { sendInBatches, type ServiceHandlers } from './rpc.js';

function criState(rec: SandboxRecord): 'SANDBOX_READY' | 'SANDBOX_NOTREADY' {
  return rec.state === 'ready' ? 'SANDBOX_READY' : 'SANDBOX_NOTREADY';
}

/**
 * The pod's namespace options as they apply. A pod created without any gives its containers a
 * PID namespace each (as containers without options get), so its status says CONTAINER, not
 * the proto's zero value POD, which would claim a shared PID namespace it does not have.
 */
function namespaceOptionsInEffect(rec: SandboxRecord): NamespaceOption {
  const given = rec.config.linux?.securityContext?.namespaceOptions;
  return given ?? { network: 'POD', pid: 'CONTAINER', ipc: 'POD' };
}

export function podSandboxStatusMessage(rec: SandboxRecord): PodSandboxStatus {
  const net = rec.network;
  return {
    id: rec.id,
    metadata: rec.config.metadata,
    state: criState(rec),
    createdAt: rec.createdAt,
    // A pod without its own network (or stopped) reports no IP, as kubelet expects.
    network: net && rec.state === 'ready' ? { ip: net.ip, additionalIps: net.ip6 ? [{ ip: net.ip6 }] : [] } : { ip: '', additionalIps: [] },
    linux: { namespaces: { options: namespaceOptionsInEffect(rec) } },
    labels: rec.config.labels,
    annotations: rec.config.annotations,
    runtimeHandler: rec.runtimeHandler,
  };
}

function podSandboxMessage(rec: SandboxRecord): PodSandbox {
  return {
    id: rec.id,
    metadata: rec.config.metadata,
    state: criState(rec),
    createdAt: rec.createdAt,
    labels: rec.config.labels,
    annotations: rec.config.annotations,
    runtimeHandler: rec.runtimeHandler,
  };
}

export function podSandboxHandlers(pods: SandboxService, containers: ContainerService, guards: CriGuards): ServiceHandlers<RuntimeServiceDefinition> {
  const filtered = (filter: CriListFilter | null | undefined) =>
    pods.list().filter((p) => matchesFilter({ id: p.id, state: criState(p), labels: p.config.labels }, filter));

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
      const inPod = containers.list().filter((c) => c.podId === rec.id);
      const statuses = await Promise.all(inPod.map(async (c) => containerStatusMessage(await containers.status(c.id))));
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
          resources: rec.resources,
          config: rec.config,
        });
      }
      return { status: podSandboxStatusMessage(rec), info, containersStatuses: statuses, timestamp: nowNs() };
    },

    UpdatePodSandboxResources: async (req) => {
      guards.validate.podResources('UpdatePodSandboxResources', req.overhead, req.resources);
      await pods.updateResources(req.podSandboxId, req.overhead, req.resources);
      return {};
    },

    ListPodSandbox: async (req) => ({ items: filtered(req.filter).map(podSandboxMessage) }),

    StreamPodSandboxes: async (req, _ctx, send) => {
      const all = filtered(req.filter).map(podSandboxMessage);
      sendInBatches(all, send, (batch) => ({ podSandboxes: batch }));
    },
  };
}
