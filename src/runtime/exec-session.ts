// One streaming exec (kubectl exec / crictl exec -it): a `crib-monitor exec --wait-attach` that
// runs `<runtime> exec --detach` only once we are connected to its attach socket (so no early
// output is lost), then serves that socket, a control socket of its own (resize; the exit event)
// and an exit file. See native/monitor/main.c for the monitor's contract.
import { readFile, readdir, rm, writeFile } from 'node:fs/promises';
import type { Socket } from 'node:net';
import { DeadlineExceededError, InternalError, errnoCode } from '../errors.js';
import { log } from '../log.js';
import type { ExecSession, ExitRecord, OciProcess } from './container-runtime.js';
import { readExitFile } from './exit-file.js';
import { MonitorControl } from './monitor-control.js';
import { spawnDetachedMonitor } from './monitor-launch.js';
import { newExecFiles } from './runtime-files.js';
import { connectUnix } from './unix-connect.js';

/** The command could not be started (bad binary, container gone): the runtime's message. */
export class ExecStartError extends Error {}

export interface ExecSessionOptions {
  runtimeBinary: string;
  runtimeRoot: string;
  containerId: string;
  /** The container's state dir: the exec's files go there, named by a random tag. */
  dir: string;
  process: OciProcess;
  stdin: boolean;
  tty: boolean;
}

type Files = ReturnType<typeof newExecFiles>;

class MonitoredExec implements ExecSession {
  private exit: ExitRecord | undefined;
  private readonly exitWaiters = new Set<(e: ExitRecord | undefined) => void>();
  private control: MonitorControl | undefined;
  private controlGone = false;
  /** Connecting to the control socket; nothing waits for it but resize: the output must be
   * pumped from the start (the monitor waits for its attach clients before it says more). */
  private readonly listening: Promise<void>;

  constructor(readonly io: Socket, readonly pid: number, private readonly files: Files) {
    this.listening = this.listen();
  }

  /** Connects to the exec's control socket for its exit event (and resizes). */
  private async listen(): Promise<void> {
    try {
      this.control = await MonitorControl.connect(this.files.ctlSocket, {
        onExit: (e) => this.settle(e),
        onClose: () => void this.controlClosed(),
      });
    } catch {
      // The process exited, and its monitor wrote the exit file and left, before we got here.
      await this.controlClosed();
      return;
    }
    // An exit that happened before we connected was not pushed to us: ask.
    const st = await this.control.status().catch(() => undefined);
    if (st?.exit) this.settle(st.exit);
  }

  private async controlClosed(): Promise<void> {
    // Gone without an event: the exit file, written before the monitor left, says it; a monitor
    // that died left nothing, and the waiters are told so.
    const exit = this.exit ?? (await readExitFile(this.files.exitFile).catch(() => undefined));
    this.controlGone = true;
    this.settle(exit);
  }

  private settle(exit: ExitRecord | undefined): void {
    if (exit) this.exit ??= exit;
    if (!this.exit && !this.controlGone) return;
    for (const w of this.exitWaiters) w(this.exit);
    this.exitWaiters.clear();
  }

  async resize(rows: number, cols: number): Promise<void> {
    await this.listening;
    if (!this.control || this.control.closed) return;
    const r = await this.control.request({ cmd: 'resize', rows, cols }).catch((err: Error) => ({ ok: false, error: err.message }));
    if (!r.ok) log.debug({ pid: this.pid, err: r.error }, 'exec resize refused');
  }

  exited(timeoutMs: number): Promise<ExitRecord> {
    if (this.exit) return Promise.resolve(this.exit);
    if (this.controlGone) return Promise.reject(new InternalError(`the monitor of exec process ${this.pid} is gone and left no exit status`));
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.exitWaiters.delete(done);
        reject(new DeadlineExceededError(`exec process ${this.pid} left no exit status within ${timeoutMs} ms`));
      }, timeoutMs);
      const done = (e: ExitRecord | undefined): void => {
        clearTimeout(timer);
        if (e) resolve(e);
        else reject(new InternalError(`the monitor of exec process ${this.pid} is gone and left no exit status`));
      };
      this.exitWaiters.add(done);
    });
  }

  kill(): void {
    if (this.exit) return;
    try {
      process.kill(this.pid, 'SIGKILL');
    } catch (err) {
      if (errnoCode(err) !== 'ESRCH') log.warn({ pid: this.pid, err: (err as Error).message }, 'killing exec process');
    }
  }

  async close(): Promise<void> {
    this.io.destroy();
    // Its exit is known: the monitor may go even if its exit file could not be written.
    if (this.exit && this.control && !this.control.closed) await this.control.request({ cmd: 'ack-exit' }, 2000).catch(() => undefined);
    this.control?.close();
    await removeFiles(this.files);
  }
}

/**
 * Starts the monitor, connects to its attach socket and waits for the runtime's report.
 * Throws ExecStartError with the runtime's message when the process cannot run.
 */
export async function startExecSession(opts: ExecSessionOptions): Promise<ExecSession> {
  const files = newExecFiles(opts.dir);
  await writeFile(files.process, JSON.stringify(opts.process), { mode: 0o600 });
  const args = [
    'exec', '--runtime', opts.runtimeBinary, '--runtime-root', opts.runtimeRoot, '--id', opts.containerId,
    '--process', files.process, '--exit-file', files.exitFile, '--attach-socket', files.attachSocket,
    '--ctl-socket', files.ctlSocket, '--container-pid-file', files.pidFile, '--sync-fd', '3', '--wait-attach',
  ];
  if (opts.stdin) args.push('--stdin', '--stdin-once');
  if (opts.tty) args.push('--terminal');
  const { exited, syncLine } = spawnDetachedMonitor(args);
  const { code, stderr } = await exited;
  if (code !== 0) {
    await removeFiles(files);
    throw new InternalError(`crib-monitor exec for container ${opts.containerId} failed (exit ${code}): ${stderr}`);
  }
  let io: Socket;
  try {
    io = await connectUnix(files.attachSocket, 'exec attach socket');
  } catch (err) {
    // The detached monitor waits for a first client forever; nobody else will come.
    await killMonitorOf(files.exitFile);
    await removeFiles(files);
    throw err;
  }
  // A rejected sync line (one past the thread's bound) fails the exec like a missing one.
  const line = await syncLine.catch(async (err: unknown) => {
    io.destroy();
    await removeFiles(files);
    throw new InternalError(`crib-monitor exec for container ${opts.containerId}: ${err instanceof Error ? err.message : String(err)}`);
  });
  let msg: { pid: number; message?: string };
  try {
    msg = JSON.parse(line) as { pid: number; message?: string };
  } catch {
    io.destroy();
    await removeFiles(files);
    throw new InternalError(`crib-monitor exec for container ${opts.containerId} sent no report (${JSON.stringify(line)}): ${stderr}`);
  }
  if (msg.pid < 0) {
    io.destroy();
    await removeFiles(files);
    throw new ExecStartError(msg.message ?? 'the runtime could not start the process');
  }
  return new MonitoredExec(io, msg.pid, files);
}

/** Kills the monitor whose command line names `exitFile` (a random, per-exec path). */
async function killMonitorOf(exitFile: string): Promise<void> {
  for (const entry of await readdir('/proc').catch(() => [] as string[])) {
    if (!/^\d+$/.test(entry)) continue;
    const cmdline = await readFile(`/proc/${entry}/cmdline`, 'utf8').catch(() => '');
    if (!cmdline.split('\0').includes(exitFile)) continue;
    try {
      process.kill(Number(entry), 'SIGKILL');
    } catch {
      // already gone
    }
  }
}

async function removeFiles(files: Files): Promise<void> {
  await Promise.all(Object.values(files).map((p) => rm(p, { force: true }).catch(() => undefined)));
}
