// What the streaming server does with a connected client: run an exec, attach to a container,
// or forward a port into a pod. Transport-neutral: SPDY and WebSocket both arrive here as a
// RemoteCommandIo (or a Duplex per forwarded connection). The processes are the container
// runtime's: ContainerService hands out its exec sessions and attach sockets.
import type { Duplex } from 'node:stream';
import { log } from '../../log.js';
import type { AttachTarget, ContainerService } from '../../container/container-service.js';
import type { ExecSession } from '../../runtime/container-runtime.js';
import type { SandboxService } from '../../sandbox/sandbox-service.js';
import { DEFAULT_STALL_TIMEOUT_MS, pumpAttachInput, pumpAttachOutput } from './attach-socket.js';
import { HOST_NETNS, relayPort } from './port-forward-relay.js';
import type { RemoteCommandIo } from './remote-io.js';
import type { AttachStreamRequest, ExecStreamRequest } from './stream-requests.js';

/** How long after its output ends an exec's exit status may take to appear. */
const SLOW_CLIENT_GRACE_MS = 5000;

/** The runtime side the streaming server drives; ContainerStreams is the real one. */
export interface StreamingRuntime {
  exec(req: ExecStreamRequest, io: RemoteCommandIo): Promise<void>;
  attach(req: AttachStreamRequest, io: RemoteCommandIo): Promise<void>;
  /** Forwards one connection; resolves with the failure reason, or undefined. */
  forward(podSandboxId: string, port: number, data: Duplex): Promise<string | undefined>;
}

export interface ContainerStreamsOptions {
  /** How long output may wait on a client that reads nothing before the session is cut off. */
  stallTimeoutMs?: number;
}

export class ContainerStreams implements StreamingRuntime {
  private readonly stallTimeoutMs: number;

  constructor(
    private readonly containers: ContainerService,
    private readonly sandboxes: SandboxService,
    opts: ContainerStreamsOptions = {},
  ) {
    this.stallTimeoutMs = opts.stallTimeoutMs ?? DEFAULT_STALL_TIMEOUT_MS;
  }

  async exec(req: ExecStreamRequest, io: RemoteCommandIo): Promise<void> {
    const clog = log.child({ container: req.containerId });
    let proc: ExecSession;
    try {
      // The container may have stopped between the RPC and the connection: exec checks.
      proc = await this.containers.exec(req.containerId, req.cmd, { stdin: req.stdin, tty: req.tty });
    } catch (err) {
      clog.info({ err: (err as Error).message, cmd: req.cmd }, 'streaming exec could not start');
      await io.finish({ error: err as Error });
      return;
    }
    clog.debug({ pid: proc.pid, cmd: req.cmd, tty: req.tty }, 'streaming exec started');
    if (req.tty) io.onResize((size) => void proc.resize(size.height, size.width));
    if (io.stdin) pumpAttachInput(io.stdin, proc.io);
    const output = pumpAttachOutput(proc.io, io.stdout, io.stderr, this.stallTimeoutMs);
    const outcome = await Promise.race([output, io.closed.then(() => 'gone' as const)]);
    clog.debug({ pid: proc.pid, outcome }, 'exec output ended');
    if (outcome !== 'ended') {
      // kubelet's contract: a client that hangs up takes its process with it; so does one that
      // stopped reading (nobody would ever see the output).
      clog.info({ pid: proc.pid, outcome }, outcome === 'gone' ? 'exec client went away; killing the process'
        : 'exec client stopped reading; killing the process');
      proc.kill();
      await proc.exited(10_000).catch((err: unknown) => clog.warn({ err: (err as Error).message }, 'exec after kill'));
      await proc.close();
      if (outcome === 'stalled') await io.finish({ error: 'the client did not read the output; the process was killed' });
      return;
    }
    try {
      // The monitor ends the attach socket only after the process exited, so the exit follows at
      // once; if it does not, the monitor dropped us as a slow reader (its per-client queue
      // overflowed) and the process runs on with nobody to see it: end it.
      const exit = await proc.exited(SLOW_CLIENT_GRACE_MS).catch(() => undefined);
      if (exit) {
        await io.finish({ exitCode: exit.exitCode });
      } else {
        clog.info({ pid: proc.pid }, 'exec client did not keep up with the output; killing the process');
        proc.kill();
        await proc.exited(10_000).catch(() => undefined);
        await io.finish({ error: 'the client did not read the output fast enough; the process was killed' });
      }
    } catch (err) {
      await io.finish({ error: err as Error });
    } finally {
      await proc.close();
    }
  }

  async attach(req: AttachStreamRequest, io: RemoteCommandIo): Promise<void> {
    const clog = log.child({ container: req.containerId });
    let target: AttachTarget;
    try {
      target = await this.containers.attach(req.containerId);
    } catch (err) {
      clog.info({ err: (err as Error).message }, 'attach failed');
      await io.finish({ error: err as Error });
      return;
    }
    const { record: rec, io: sock } = target;
    if (req.tty && rec.config.tty) {
      io.onResize((size) => {
        target.resize(size.height, size.width).catch((err: unknown) =>
          clog.debug({ err: (err as Error).message }, 'attach resize after the container ended'));
      });
    }
    // Input only reaches a container created with stdin (the monitor drops it otherwise).
    if (io.stdin && rec.config.stdin) pumpAttachInput(io.stdin, sock);
    else io.stdin?.resume();
    const output = pumpAttachOutput(sock, io.stdout, io.stderr, this.stallTimeoutMs);
    const outcome = await Promise.race([output, io.closed.then(() => 'gone' as const)]);
    sock.destroy();
    if (outcome === 'ended') await io.finish({ exitCode: 0 });
    else if (outcome === 'stalled') await io.finish({ error: 'the client did not read the output; detached it' });
    clog.debug({ outcome }, 'attach ended');
  }

  async forward(podSandboxId: string, port: number, data: Duplex): Promise<string | undefined> {
    const pod = this.sandboxes.find(podSandboxId);
    if (!pod) return `pod sandbox ${podSandboxId} not found`;
    if (pod.state !== 'ready') return `pod sandbox ${pod.id} is not ready (state ${pod.state})`;
    return relayPort(pod.netnsPath ?? HOST_NETNS, port, data);
  }
}
