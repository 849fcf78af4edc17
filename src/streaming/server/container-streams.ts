// What the streaming server does with a connected client: run an exec, attach to a container,
// or forward a port into a pod. Transport-neutral: SPDY and WebSocket both arrive here as a
// RemoteCommandIo (or a Duplex per forwarded connection).
import type { Duplex } from 'node:stream';
import { FailedPreconditionError } from '../../errors.js';
import { log } from '../../log.js';
import type { ContainerService } from '../../container/container-service.js';
import { containerPaths, criState, type ContainerRecord } from '../../container/container-record.js';
import type { SandboxService } from '../../sandbox/sandbox-service.js';
import { DEFAULT_STALL_TIMEOUT_MS, connectUnix, pumpAttachInput, pumpAttachOutput } from './attach-socket.js';
import { writeControl } from './control-fifo.js';
import { ExecProcess } from './exec-process.js';
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

  private async running(id: string, what: string): Promise<ContainerRecord> {
    const rec = await this.containers.status(id);
    if (criState(rec) !== 'CONTAINER_RUNNING') {
      throw new FailedPreconditionError(`${what}: container ${rec.id} is not running (${criState(rec).slice(10).toLowerCase()})`);
    }
    return rec;
  }

  async exec(req: ExecStreamRequest, io: RemoteCommandIo): Promise<void> {
    const clog = log.child({ container: req.containerId });
    let proc: ExecProcess;
    try {
      // The container may have stopped between the RPC and the connection.
      const rec = await this.running(req.containerId, 'exec');
      const runtime = this.containers.runtimeOf(rec);
      const processFile = await this.containers.execProcessFile(rec, req.cmd, req.tty);
      proc = await ExecProcess.start({
        runtimeBinary: runtime.binary, runtimeRoot: runtime.root, containerId: rec.id, processFile,
        dir: rec.dir, stdin: req.stdin, tty: req.tty,
      });
    } catch (err) {
      clog.info({ err: (err as Error).message, cmd: req.cmd }, 'streaming exec could not start');
      await io.finish({ error: err as Error });
      return;
    }
    clog.debug({ pid: proc.pid, cmd: req.cmd, tty: req.tty }, 'streaming exec started');
    if (req.tty) io.onResize((size) => void proc.resize(size.height, size.width));
    if (io.stdin) pumpAttachInput(io.stdin, proc.attach);
    const output = pumpAttachOutput(proc.attach, io.stdout, io.stderr, this.stallTimeoutMs);
    const outcome = await Promise.race([output, io.closed.then(() => 'gone' as const)]);
    clog.debug({ pid: proc.pid, outcome }, 'exec output ended');
    if (outcome !== 'ended') {
      // kubelet's contract: a client that hangs up takes its process with it; so does one that
      // stopped reading (nobody would ever see the output).
      clog.info({ pid: proc.pid, outcome }, outcome === 'gone' ? 'exec client went away; killing the process'
        : 'exec client stopped reading; killing the process');
      proc.kill();
      await proc.waitExit(10_000).catch((err: unknown) => clog.warn({ err: (err as Error).message }, 'exec after kill'));
      await proc.cleanup();
      if (outcome === 'stalled') await io.finish({ error: 'the client did not read the output; the process was killed' });
      return;
    }
    try {
      // The monitor closes the attach socket only after the process exited, so the exit file
      // follows at once; if it does not, the monitor dropped us as a slow reader (its per-client
      // queue overflowed) and the process runs on with nobody to see it: end it.
      const exit = await proc.waitExit(SLOW_CLIENT_GRACE_MS).catch(() => undefined);
      if (exit) {
        await io.finish({ exitCode: exit.exitCode });
      } else {
        clog.info({ pid: proc.pid }, 'exec client did not keep up with the output; killing the process');
        proc.kill();
        await proc.waitExit(10_000).catch(() => undefined);
        await io.finish({ error: 'the client did not read the output fast enough; the process was killed' });
      }
    } catch (err) {
      await io.finish({ error: err as Error });
    } finally {
      await proc.cleanup();
    }
  }

  async attach(req: AttachStreamRequest, io: RemoteCommandIo): Promise<void> {
    const clog = log.child({ container: req.containerId });
    let rec: ContainerRecord;
    let sock;
    try {
      rec = await this.running(req.containerId, 'attach');
      sock = await connectUnix(containerPaths(rec.dir).attachSocket);
    } catch (err) {
      clog.info({ err: (err as Error).message }, 'attach failed');
      await io.finish({ error: err as Error });
      return;
    }
    const ctl = containerPaths(rec.dir).ctl;
    if (req.tty && rec.config.tty) {
      io.onResize((size) => {
        writeControl(ctl, `resize ${size.height} ${size.width}`).catch((err: unknown) =>
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
