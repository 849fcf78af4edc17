// The container-runtime port's implementation: crib-monitor for every container and exec, driving
// a runc-CLI runtime (crib-runtime by default; runc, crun as RuntimeClass handlers). One instance
// per handler; it alone knows the runtime's binary, its root, and the monitor's protocol.
import { existsSync } from 'node:fs';
import type { Socket } from 'node:net';
import { DeadlineExceededError, FailedPreconditionError, InternalError, errnoCode } from '../errors.js';
import { KeyedLock } from '../lifecycle/keyed-lock.js';
import { log } from '../log.js';
import type {
  CheckpointOptions, ContainerRuntime, CreateOptions, Created, ExecSession, ExecSyncResult, ExitRecord, OciProcess, RuntimeEvent,
  RuntimeRef, StartState,
} from './container-runtime.js';
import { startExecSession } from './exec-session.js';
import { runExecSync } from './exec-sync.js';
import { readExitFile } from './exit-file.js';
import { writeLegacyControl } from './legacy-control-fifo.js';
import { MonitorControl, type MonitorReply } from './monitor-control.js';
import { spawnDetachedMonitor } from './monitor-launch.js';
import { MonitorWatch } from './monitor-watch.js';
import { OciRuntime, OciRuntimeError } from './oci-runtime.js';
import { withMemoryFile } from '../sys/memory-file.js';
import { processAlive, processStartTime } from '../sys/process-identity.js';
import type { RuntimeFeatures } from './runtime-features.js';
import { newExecFiles, runtimeFiles } from './runtime-files.js';
import { connectUnix } from './unix-connect.js';

/** How long a killed orphan may take to be gone. */
const ORPHAN_GONE_MS = 10_000;
/** How long a monitor may take to go after its container's runtime delete, when waited for. */
const MONITOR_GONE_MS = 10_000;
/** How long a protocol-1 monitor may take to reopen its log (it does not answer). */
const LEGACY_REOPEN_MS = 5000;

export class MonitoredRuntime implements ContainerRuntime {
  private readonly oci: OciRuntime;
  private readonly watches = new Map<string, MonitorWatch>();
  /** Containers whose state deleteExited removed, until delete() forgets them. */
  private readonly stateDeleted = new Set<string>();
  /** delete and deleteExited of one container, one at a time. */
  private readonly deletions = new KeyedLock();

  private readonly captureExec: boolean;

  /** `o.stateDirPerId`: the runtime keeps each container's state in <root>/<id> (OciRuntime.hasState).
   * `o.captureExec`: it is crib-runtime, which runs an ExecSync itself (runtime/exec-sync.ts). */
  constructor(readonly handler: string, binary: string, root: string, o: { stateDirPerId?: boolean; captureExec?: boolean } = {}) {
    this.oci = new OciRuntime(handler, binary, root, o.stateDirPerId ?? false);
    this.captureExec = o.captureExec ?? false;
  }

  get features(): RuntimeFeatures {
    return this.oci.features;
  }

  /** Reads what the handler supports (its `features` command); once, when the daemon starts. */
  async probeFeatures(): Promise<RuntimeFeatures> {
    return this.oci.probeFeatures();
  }

  /**
   * Makes crib-runtime's template mount namespace (OciRuntime.makeMountTemplate), once, when the
   * daemon starts. Without it containers still start, each with a copy of the host's mount
   * table (slower on a node with many mounts): a failure is logged, not thrown.
   */
  async makeMountTemplate(): Promise<void> {
    try {
      await this.oci.makeMountTemplate();
    } catch (err) {
      log.warn({ handler: this.handler, err }, 'runtime: cannot make the template mount namespace; each container\'s mount namespace will be a copy of the host\'s');
    }
  }

  /** Unpins it when the daemon stops: running containers do not need it (their namespaces are
   * copies), and a stopped daemon leaves no mount of its own behind. Logged, not thrown. */
  async removeMountTemplate(): Promise<void> {
    try {
      await this.oci.removeMountTemplate();
    } catch (err) {
      log.warn({ handler: this.handler, err }, 'runtime: cannot remove the template mount namespace');
    }
  }

  // ---- lifecycle ----------------------------------------------------------------------------

  async create(c: RuntimeRef, o: CreateOptions): Promise<Created> {
    return this.launch(c, o, 'create');
  }

  /** The monitor runs `<runtime> restore` instead of create (native/monitor/main.c, --restore). */
  async restore(c: RuntimeRef, o: CreateOptions & { imagePath: string }): Promise<Created> {
    if (o.tty) throw new FailedPreconditionError(`restoring container ${c.id}: a container with a terminal cannot be restored`);
    return this.launch(c, o, 'restore', o.imagePath);
  }

  async checkpoint(c: RuntimeRef, o: CheckpointOptions): Promise<void> {
    await this.oci.checkpoint(c.id, o);
  }

  async pause(c: RuntimeRef): Promise<void> {
    await this.oci.pause(c.id);
  }

  async resume(c: RuntimeRef): Promise<void> {
    await this.oci.resume(c.id);
  }

  private async launch(c: RuntimeRef, o: CreateOptions, verb: 'create' | 'restore', imagePath?: string): Promise<Created> {
    const files = runtimeFiles(c.dir);
    const args = [
      '--runtime', this.oci.binary, '--runtime-root', this.oci.root, '--id', c.id,
      '--bundle', o.bundle, '--log-path', o.logPath, '--exit-file', files.exitFile,
      '--attach-socket', files.attachSocket, '--ctl-socket', files.ctlSocket, '--sync-fd', '3',
    ];
    if (o.stdin) args.push('--stdin');
    if (o.stdinOnce) args.push('--stdin-once');
    if (o.tty) args.push('--terminal');
    if (imagePath) args.push('--restore', imagePath);
    const { exited, syncLine } = spawnDetachedMonitor(args);
    const line = await syncLine.catch((err: unknown) => {
      throw new InternalError(`crib-monitor for ${c.id}: ${err instanceof Error ? err.message : String(err)}`);
    });
    if (!line) {
      const { code, stderr } = await exited;
      throw new InternalError(`crib-monitor for ${c.id} failed (exit ${code}): ${stderr || 'no message'}`);
    }
    const msg = JSON.parse(line) as { pid: number; monitorPid?: number; message?: string };
    if (msg.pid < 0) {
      // criu's reasons (a missing mount source, an unusable kernel) are the node's: say them.
      if (verb === 'restore') throw new FailedPreconditionError(`restoring container ${c.id}: ${msg.message ?? 'unknown error'}`);
      throw new OciRuntimeError('create', msg.message ?? 'unknown error', null);
    }
    const monitorPid = msg.monitorPid ?? 0;
    // Both are alive now (the process is parked): their start times name them from now on.
    return { pid: msg.pid, pidStartTime: processStartTime(msg.pid), monitorPid, monitorStartTime: processStartTime(monitorPid) };
  }

  async start(c: RuntimeRef): Promise<void> {
    await this.oci.start(c.id);
  }

  async startState(c: RuntimeRef): Promise<StartState> {
    // No state dir: nothing to ask the runtime (a created container has none until its start).
    if (!this.oci.hasState(c.id)) return 'gone';
    const st = await this.oci.state(c.id);
    if (!st) return 'gone';
    return st.status === 'created' ? 'parked' : 'started';
  }

  async kill(c: RuntimeRef, signal: string, o: { all?: boolean } = {}): Promise<void> {
    await this.oci.kill(c.id, signal, o.all ?? false);
  }

  async delete(c: RuntimeRef, o: { waitForMonitor?: boolean } = {}): Promise<void> {
    const watch = this.watches.get(c.id);
    this.watches.delete(c.id);
    // After a deleteExited in flight: never two runtime deletes of one container at once.
    await this.deletions.run(c.id, async () => {
      // deleteExited ran after exitRecorded: the monitor was told, and the state is gone.
      if (this.stateDeleted.delete(c.id)) {
        watch?.stop();
        return;
      }
      // Whatever its exit file says no longer matters: the monitor may go now.
      await this.exitRecordedOn(watch?.connection, c).catch(() => undefined);
      watch?.stop();
      // Connected before the kill: the monitor exits once its process is gone, closing this.
      const monitorGone = o.waitForMonitor ? await this.monitorGone(c) : undefined;
      // A container never started has no state (and a monitor none either): no runtime to run.
      if (this.oci.hasState(c.id)) await this.oci.delete(c.id, true);
      await monitorGone?.();
    });
  }

  async deleteExited(c: RuntimeRef): Promise<void> {
    await this.deletions.run(c.id, async () => {
      if (this.stateDeleted.has(c.id) || !this.oci.hasState(c.id)) return;
      await this.oci.delete(c.id, true);
      this.stateDeleted.add(c.id);
    });
  }

  /**
   * A function resolving once the container's monitor is gone (its control socket's connection
   * closed), at most MONITOR_GONE_MS after it is called; without a monitor listening, one that
   * resolves at once. The monitor's pid may be unknown (a start a crash interrupted).
   */
  private async monitorGone(c: RuntimeRef): Promise<() => Promise<void>> {
    const sock = await connectUnix(runtimeFiles(c.dir).ctlSocket, 'control socket').catch(() => undefined);
    if (!sock) return async () => undefined;
    sock.on('error', () => undefined);
    sock.on('end', () => sock.end());
    // Flowing: a paused socket never reads the EOF, and would never close.
    sock.resume();
    const closed = new Promise<void>((resolve) => sock.once('close', () => resolve()));
    return async () => {
      let timer: NodeJS.Timeout | undefined;
      const late = new Promise<boolean>((resolve) => {
        timer = setTimeout(() => resolve(true), MONITOR_GONE_MS);
      });
      const timedOut = await Promise.race([closed.then(() => false), late]);
      clearTimeout(timer);
      if (timedOut) {
        sock.destroy();
        log.warn({ container: c.id, ms: MONITOR_GONE_MS }, 'the container\'s monitor was still there after its runtime delete');
      }
    };
  }

  async update(c: RuntimeRef, resources: unknown): Promise<void> {
    await this.oci.update(c.id, resources);
  }

  // ---- processes in the container -----------------------------------------------------------

  execSync(c: RuntimeRef, proc: OciProcess, o: { timeoutSeconds: number; maxOutput: number }): Promise<ExecSyncResult> {
    return withMemoryFile('crib-exec-process', JSON.stringify(proc), (processFile) => runExecSync({
      runtimeBinary: this.oci.binary, runtimeRoot: this.oci.root, id: c.id, processFile,
      ...(this.captureExec ? {} : { monitorPidFile: newExecFiles(c.dir).pidFile }),
      timeoutSeconds: o.timeoutSeconds, maxOutput: o.maxOutput,
    }));
  }

  exec(c: RuntimeRef, proc: OciProcess, o: { stdin: boolean; tty: boolean }): Promise<ExecSession> {
    return startExecSession({
      runtimeBinary: this.oci.binary, runtimeRoot: this.oci.root, containerId: c.id, dir: c.dir,
      process: proc, stdin: o.stdin, tty: o.tty,
    });
  }

  attach(c: RuntimeRef): Promise<Socket> {
    return connectUnix(runtimeFiles(c.dir).attachSocket, 'attach socket');
  }

  // ---- control ------------------------------------------------------------------------------

  /** One command to the container's monitor: on the watch's connection, or on one of its own. */
  private async command(c: RuntimeRef, cmd: Record<string, unknown>, timeoutMs?: number): Promise<MonitorReply> {
    const live = this.watches.get(c.id)?.connection;
    if (live) return live.request(cmd, timeoutMs);
    const control = await MonitorControl.connect(runtimeFiles(c.dir).ctlSocket);
    try {
      return await control.request(cmd, timeoutMs);
    } finally {
      control.close();
    }
  }

  /** A protocol-1 monitor: it has a control fifo and no control socket. */
  private legacy(c: RuntimeRef): string | undefined {
    const files = runtimeFiles(c.dir);
    return !existsSync(files.ctlSocket) && existsSync(files.legacyCtlFifo) ? files.legacyCtlFifo : undefined;
  }

  async resize(c: RuntimeRef, rows: number, cols: number): Promise<void> {
    const fifo = this.legacy(c);
    if (fifo) {
      await writeLegacyControl(fifo, `resize ${rows} ${cols}`);
      return;
    }
    const r = await this.command(c, { cmd: 'resize', rows, cols });
    if (!r.ok) throw new FailedPreconditionError(`resizing the terminal of container ${c.id}: ${r.error ?? 'refused'}`);
  }

  async reopenLog(c: RuntimeRef): Promise<void> {
    const fifo = this.legacy(c);
    if (fifo) {
      await this.reopenLegacy(c, fifo);
      return;
    }
    let r: MonitorReply;
    try {
      r = await this.command(c, { cmd: 'reopen' });
    } catch (err) {
      if (err instanceof DeadlineExceededError) throw err;
      throw new FailedPreconditionError(`ReopenContainerLog: the monitor of ${c.id} is not listening (${errnoCode(err) ?? (err as Error).message})`);
    }
    if (!r.ok) throw new FailedPreconditionError(`ReopenContainerLog: the monitor of ${c.id} could not reopen the log: ${r.error ?? 'no reason given'}`);
  }

  /** Protocol 1 had no reply: wait for the new file (kubelet looks for it when the call returns). */
  private async reopenLegacy(c: RuntimeRef, fifo: string): Promise<void> {
    try {
      await writeLegacyControl(fifo, 'reopen');
    } catch (err) {
      throw new FailedPreconditionError(`ReopenContainerLog: the monitor of ${c.id} is not listening (${errnoCode(err)})`);
    }
    if (!c.logPath) return;
    const until = Date.now() + LEGACY_REOPEN_MS;
    while (!existsSync(c.logPath)) {
      if (Date.now() > until) throw new DeadlineExceededError(`ReopenContainerLog: the monitor of ${c.id} did not reopen ${c.logPath} within ${LEGACY_REOPEN_MS} ms`);
      await new Promise((r) => setTimeout(r, 10));
    }
  }

  // ---- exits --------------------------------------------------------------------------------

  async watch(c: RuntimeRef, onEvent: (e: RuntimeEvent) => void): Promise<() => void> {
    this.watches.get(c.id)?.stop();
    const watch = new MonitorWatch(c, (e) => {
      if (e.kind === 'monitor-gone' && this.watches.get(c.id) === watch) this.watches.delete(c.id);
      onEvent(e);
    });
    this.watches.set(c.id, watch);
    await watch.begin();
    return () => {
      watch.stop();
      if (this.watches.get(c.id) === watch) this.watches.delete(c.id);
    };
  }

  async exitStatus(c: RuntimeRef): Promise<ExitRecord | undefined> {
    const files = runtimeFiles(c.dir);
    if (existsSync(files.ctlSocket)) {
      const r = await this.command(c, { cmd: 'status' }).catch(() => undefined);
      if (r?.ok) return (r.exit as ExitRecord | null) ?? undefined;
    }
    return readExitFile(files.exitFile);
  }

  async exitRecorded(c: RuntimeRef): Promise<void> {
    await this.exitRecordedOn(this.watches.get(c.id)?.connection, c);
    const watch = this.watches.get(c.id);
    this.watches.delete(c.id);
    watch?.stop();
  }

  private async exitRecordedOn(live: MonitorControl | undefined, c: RuntimeRef): Promise<void> {
    const socket = runtimeFiles(c.dir).ctlSocket;
    if (!live && !existsSync(socket)) return; // gone already, or a protocol-1 monitor that goes by itself
    try {
      const control = live ?? (await MonitorControl.connect(socket));
      try {
        await control.request({ cmd: 'ack-exit' }, 2000);
      } finally {
        if (!live) control.close();
      }
    } catch (err) {
      log.debug({ container: c.id, err: (err as Error).message }, 'ack-exit not delivered (the monitor is gone)');
    }
  }

  async killOrphan(c: RuntimeRef): Promise<boolean> {
    if (!c.pid || !(await this.orphanAlive(c))) return false;
    await this.oci.kill(c.id, 'KILL', true).catch((err: unknown) => {
      log.warn({ container: c.id, err: (err as Error).message }, 'runtime kill of an orphaned container failed; killing its pid');
    });
    if (processAlive(c.pid, c.pidStartTime)) {
      try {
        process.kill(c.pid, 'SIGKILL');
      } catch (err) {
        if (errnoCode(err) !== 'ESRCH') throw err;
      }
    }
    const until = Date.now() + ORPHAN_GONE_MS;
    while (processAlive(c.pid, c.pidStartTime)) {
      if (Date.now() > until) throw new InternalError(`the process ${c.pid} of container ${c.id} outlived SIGKILL for ${ORPHAN_GONE_MS} ms`);
      await new Promise((r) => setTimeout(r, 20));
    }
    return true;
  }

  /** Whether the container's process still runs; without its start time, the runtime's state says
   * whether the pid is still the container's. */
  private async orphanAlive(c: RuntimeRef): Promise<boolean> {
    if (!processAlive(c.pid, c.pidStartTime)) return false;
    if (c.pidStartTime !== undefined) return true;
    const st = await this.oci.state(c.id).catch(() => undefined);
    return st !== undefined && st.status !== 'stopped' && st.pid === c.pid;
  }
}
