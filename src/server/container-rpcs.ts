// RuntimeService container calls.
import type { RuntimeServiceDefinition } from '../gen/runtime/v1/RuntimeService.js';
import type { ContainerEventResponse } from '../gen/runtime/v1/ContainerEventResponse.js';
import type { ContainerService } from '../container/container-service.js';
import { criState, type ContainerRecord } from '../container/container-record.js';
import type { SandboxService } from '../sandbox/sandbox-service.js';
import { FailedPreconditionError, InvalidArgumentError } from '../errors.js';
import { log } from '../log.js';
import type { CriGuards } from './cri-guards.js';
import { encodedContainerStatus, encodedPodSandboxStatus, listedContainer, podContainerStatuses } from './listed-messages.js';
import { EXEC_SYNC_OUTPUT_BUDGET, fitExecOutput } from './exec-output.js';
import { matchesFilter, type CriListFilter } from './label-selector.js';
import { containerListedBytes } from './listed-size.js';
import { sendInBatches, type ServiceHandlers } from './rpc.js';

/**
 * Verbose ContainerStatus info (config and OCI spec as JSON) must fit one response beside the
 * status; past this it is replaced by a note saying so (crictl inspect shows it).
 */
const MAX_VERBOSE_INFO_BYTES = 8 * 1024 * 1024;

function boundedVerboseInfo(info: string, rec: ContainerRecord): string {
  const size = Buffer.byteLength(info);
  if (size <= MAX_VERBOSE_INFO_BYTES) return info;
  return JSON.stringify({
    pid: rec.pid ?? 0,
    sandboxId: rec.podId,
    runtimeHandler: rec.runtimeHandler,
    omitted: `config and runtimeSpec take ${size} bytes as JSON, more than the ${MAX_VERBOSE_INFO_BYTES} a status response has room for`,
  });
}

export function containerHandlers(containers: ContainerService, pods: SandboxService, guards: CriGuards): ServiceHandlers<RuntimeServiceDefinition> {
  const filtered = (filter: CriListFilter | null | undefined) =>
    containers.list().filter((c) => matchesFilter({ id: c.id, podId: c.podId, state: criState(c), labels: c.config.labels }, filter));

  return {
    CreateContainer: async (req, ctx) => {
      if (!req.podSandboxId) throw new InvalidArgumentError('CreateContainer: podSandboxId must not be empty');
      const config = req.config;
      guards.validate.containerConfig('CreateContainer', config);
      const logDir = pods.find(req.podSandboxId)?.config.logDirectory ?? '';
      const bytes = containerListedBytes(config, `${logDir}/${config.logPath}`);
      const pod = pods.get(req.podSandboxId);
      pods.assertReady(pod);
      const containerId = await guards.listed.charge('CreateContainer', 'container', bytes, () =>
        containers.create(pod, config, ctx.signal));
      return { containerId };
    },

    StartContainer: async (req) => {
      // As containerd: only in a ready pod. A stopped pod has released its namespaces
      // (sandbox-service.ts releaseStoppedPod): a container a CreateContainer racing
      // StopPodSandbox left is refused here, by name, not by the runtime failing to join them.
      const c = containers.get(req.containerId);
      const pod = pods.find(c.podId);
      if (pod && pod.state !== 'ready') {
        throw new FailedPreconditionError(`StartContainer: container ${c.id} cannot start: its pod sandbox ${pod.id} is not ready (state ${pod.state})`);
      }
      await containers.start(req.containerId);
      return {};
    },

    CheckpointContainer: async (req, ctx) => {
      if (!req.containerId) throw new InvalidArgumentError('CheckpointContainer: containerId must not be empty');
      const timeout = Number(req.timeout);
      if (!Number.isSafeInteger(timeout) || timeout < 0) {
        throw new InvalidArgumentError(`CheckpointContainer: timeout must be 0 (the default) or a positive number of seconds, got ${req.timeout}`);
      }
      await containers.checkpoint(req.containerId, req.location, timeout, ctx.signal);
      return {};
    },

    StopContainer: async (req) => {
      await containers.stop(req.containerId, Math.max(0, Number(req.timeout)));
      return {};
    },

    RemoveContainer: async (req) => {
      if (!req.containerId) throw new InvalidArgumentError('RemoveContainer: containerId must not be empty');
      await containers.remove(req.containerId);
      return {};
    },

    // The records as they are: each is what ContainerStatus answers too (no per-container lookup).
    ListContainers: async (req) => ({ containers: filtered(req.filter).map(listedContainer) }),

    StreamContainers: async (req, _ctx, send) => {
      const all = filtered(req.filter).map(listedContainer);
      sendInBatches(all, send, (batch) => ({ containers: batch }));
    },

    ContainerStatus: async (req) => {
      const rec = await containers.status(req.containerId);
      const info: Record<string, string> = {};
      if (req.verbose) {
        info.info = JSON.stringify({
          pid: rec.pid ?? 0,
          monitorPid: rec.monitorPid ?? 0,
          sandboxId: rec.podId,
          runtimeHandler: rec.runtimeHandler,
          runtimeSpec: await containers.spec(rec.id),
          config: rec.config,
        });
        info.info = boundedVerboseInfo(info.info, rec);
      }
      return { status: encodedContainerStatus(rec), info };
    },

    UpdateContainerResources: async (req) => {
      guards.validate.containerResources('UpdateContainerResources', req.linux);
      // New resources are listed in the container's status: charge what they add.
      const rec = containers.get(req.containerId);
      const before = containerListedBytes(rec.config, rec.logPath);
      const after = containerListedBytes({ ...rec.config, linux: { ...rec.config.linux, resources: req.linux } as typeof rec.config.linux }, rec.logPath);
      await guards.listed.charge('UpdateContainerResources', 'container', Math.max(0, after - before), () =>
        containers.updateResources(req.containerId, req.linux));
      return {};
    },

    ReopenContainerLog: async (req) => {
      await containers.reopenLog(req.containerId);
      return {};
    },

    ExecSync: async (req) => {
      guards.validate.execCommand('ExecSync', req.cmd);
      const res = await containers.execSync(req.containerId, req.cmd, Math.max(0, Number(req.timeout)));
      const fitted = fitExecOutput(res.stdout, res.stderr);
      if (fitted.cut || res.truncated) {
        log.warn({
          container: req.containerId, stdoutBytes: fitted.stdout.length, stderrBytes: fitted.stderr.length,
          budget: EXEC_SYNC_OUTPUT_BUDGET, cutPerStream: res.truncated, cutToFit: fitted.cut,
        }, 'ExecSync output truncated: each stream keeps its first bytes, together within one gRPC response');
      }
      return { stdout: fitted.stdout, stderr: fitted.stderr, exitCode: res.exitCode };
    },

    GetContainerEvents: async (_req, ctx, send) => {
      // Runs until the client goes away: kubelet keeps one stream open for its lifetime.
      await new Promise<void>((resolve) => {
        const unsubscribe = containers.events.subscribe((e) => {
          const pod = e.pod ?? pods.find(e.podId);
          const msg: ContainerEventResponse = {
            containerId: e.containerId,
            containerEventType: e.type,
            createdAt: e.createdAt,
            podSandboxStatus: pod ? encodedPodSandboxStatus(pod) : null,
            containersStatuses: podContainerStatuses(containers.list(), e.podId),
          };
          send(msg);
        });
        ctx.signal.addEventListener('abort', () => {
          unsubscribe();
          resolve();
        }, { once: true });
      });
    },
  };
}
