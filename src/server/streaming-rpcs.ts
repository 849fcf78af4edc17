// RuntimeService streaming calls: Exec, Attach and PortForward validate the request and return
// a single-use URL on the streaming server, where the client then connects (kubelet's
// GetExec/GetAttach/GetPortForward). Nothing runs until the client presents the URL.
import type { RuntimeServiceDefinition } from '../gen/runtime/v1/RuntimeService.js';
import type { ContainerService } from '../container/container-service.js';
import { criState } from '../container/container-record.js';
import type { SandboxService } from '../sandbox/sandbox-service.js';
import { FailedPreconditionError, InvalidArgumentError } from '../errors.js';
import type { StreamingServer } from '../streaming/server/streaming-server.js';
import type { CriGuards } from './cri-guards.js';
import type { ServiceHandlers } from './rpc.js';

interface StreamFlagsInput {
  stdin: boolean;
  stdout: boolean;
  stderr: boolean;
  tty: boolean;
}

/** kubelet's validateExecRequest / validateAttachRequest rules, with its wording. */
function checkFlags(rpc: string, f: StreamFlagsInput): void {
  if (f.tty && f.stderr) {
    throw new InvalidArgumentError(`${rpc}: tty and stderr cannot both be true (a terminal merges stderr into stdout)`);
  }
  if (!f.stdin && !f.stdout && !f.stderr) {
    throw new InvalidArgumentError(`${rpc}: one of stdin, stdout, or stderr must be set`);
  }
}

export function streamingHandlers(
  containers: ContainerService,
  sandboxes: SandboxService,
  streaming: StreamingServer,
  guards: CriGuards,
): ServiceHandlers<RuntimeServiceDefinition> {
  const running = async (rpc: string, id: string) => {
    if (!id) throw new InvalidArgumentError(`${rpc}: containerId must not be empty`);
    const rec = await containers.status(id);
    const state = criState(rec);
    if (state !== 'CONTAINER_RUNNING') {
      throw new FailedPreconditionError(`${rpc}: container ${rec.id} is not running (${state.slice(10).toLowerCase()})`);
    }
    return rec;
  };

  return {
    Exec: async (req) => {
      const rec = await running('Exec', req.containerId);
      if (req.cmd.length === 0 || !req.cmd[0]) throw new InvalidArgumentError('Exec: cmd must not be empty');
      guards.validate.execCommand('Exec', req.cmd);
      checkFlags('Exec', req);
      return {
        url: await streaming.urlFor({
          kind: 'exec', containerId: rec.id, cmd: [...req.cmd],
          stdin: req.stdin, stdout: req.stdout, stderr: req.stderr, tty: req.tty,
        }),
      };
    },

    Attach: async (req) => {
      const rec = await running('Attach', req.containerId);
      checkFlags('Attach', req);
      if (req.stdin && !rec.config.stdin) {
        throw new InvalidArgumentError(`Attach: stdin requested but container ${rec.id} was not created with stdin`);
      }
      return {
        url: await streaming.urlFor({
          kind: 'attach', containerId: rec.id,
          stdin: req.stdin, stdout: req.stdout, stderr: req.stderr, tty: req.tty,
        }),
      };
    },

    PortForward: async (req) => {
      if (!req.podSandboxId) throw new InvalidArgumentError('PortForward: podSandboxId must not be empty');
      guards.validate.portForwardPorts('PortForward', req.port);
      const pod = sandboxes.get(req.podSandboxId);
      sandboxes.assertReady(pod);
      for (const port of req.port) {
        if (!Number.isInteger(port) || port < 1 || port > 65535) {
          throw new InvalidArgumentError(`PortForward: port ${port} is not in 1..65535`);
        }
      }
      return { url: await streaming.urlFor({ kind: 'portforward', podSandboxId: pod.id, ports: [...req.port] }) };
    },
  };
}
