// Watching one container's monitor until it reports the exit or is found dead; the port's
// watch() (container-runtime.ts). The daemon holds one control connection to every live monitor:
// the exit arrives as an event on it, and the connection closing without one means the monitor
// is gone, which the daemon then knows at once. A connection that closes while the monitor lives
// (it turned us away, or we could not connect) is tried again, so a live monitor is never taken
// for a dead one. Monitors of protocol 1 (no control socket, started by an older crib) are
// polled: their exit file, and whether their process still lives, once a second.
import { existsSync } from 'node:fs';
import { log } from '../log.js';
import type { ExitRecord, RuntimeEvent, RuntimeRef } from './container-runtime.js';
import { readExitFile } from './exit-file.js';
import { MonitorControl } from './monitor-control.js';
import { processAlive, processCmdline } from '../sys/process-identity.js';
import { runtimeFiles } from './runtime-files.js';
import type { UnixConnectError } from './unix-connect.js';

const LEGACY_POLL_MS = 1000;
const RECONNECT_FIRST_MS = 10;
const RECONNECT_MAX_MS = 1000;

/** Whether the monitor of `ref` still runs (pid, and start time or command line). */
export function monitorAlive(ref: RuntimeRef): boolean {
  if (!processAlive(ref.monitorPid, ref.monitorStartTime)) return false;
  if (ref.monitorStartTime !== undefined) return true;
  // A record from before start times were kept: the command line must still be this monitor's.
  const argv = processCmdline(ref.monitorPid!);
  const at = argv.indexOf('--id');
  return argv.some((a) => a.endsWith('crib-monitor')) && at >= 0 && argv[at + 1] === ref.id;
}

export class MonitorWatch {
  private control: MonitorControl | undefined;
  private reported = false;
  private stopped = false;
  private timer: NodeJS.Timeout | undefined;
  private retryMs = RECONNECT_FIRST_MS;
  private readonly files;

  constructor(private readonly ref: RuntimeRef, private readonly onEvent: (e: RuntimeEvent) => void) {
    this.files = runtimeFiles(ref.dir);
  }

  /** The live control connection, when there is one. */
  get connection(): MonitorControl | undefined {
    return this.control && !this.control.closed ? this.control : undefined;
  }

  /** Resolves once the current state is known (connected, exit reported, or monitor gone). */
  async begin(): Promise<void> {
    await this.connect();
  }

  stop(): void {
    this.stopped = true;
    clearTimeout(this.timer);
    this.control?.close();
    this.control = undefined;
  }

  private report(e: RuntimeEvent): void {
    if (this.reported || this.stopped) return;
    this.reported = true;
    clearTimeout(this.timer);
    this.onEvent(e);
  }

  private exited(exit: ExitRecord): void {
    this.report({ kind: 'exited', exit });
  }

  private async connect(): Promise<void> {
    if (this.stopped || this.reported) return;
    let control: MonitorControl;
    try {
      control = await MonitorControl.connect(this.files.ctlSocket, {
        onExit: (e) => this.exited(e),
        onClose: () => void this.closed(control),
      });
    } catch (err) {
      await this.unreachable((err as UnixConnectError).code ?? 'EIO');
      return;
    }
    if (this.stopped) {
      control.close();
      return;
    }
    this.control = control;
    this.retryMs = RECONNECT_FIRST_MS;
    // An exit while nobody was connected was not pushed to anyone: ask.
    const st = await control.status().catch(() => undefined);
    if (st?.exit) this.exited(st.exit);
  }

  private async closed(control: MonitorControl): Promise<void> {
    if (this.control === control) this.control = undefined;
    if (this.reported || this.stopped) return;
    await this.unreachable('closed');
  }

  /** No connection (`why`: the errno of the connect, or 'closed'): find out what became of it. */
  private async unreachable(why: string): Promise<void> {
    if (this.stopped || this.reported) return;
    const exit = await readExitFile(this.files.exitFile).catch(() => undefined);
    if (exit) {
      this.exited(exit);
      return;
    }
    if (monitorAlive(this.ref)) {
      if (!existsSync(this.files.ctlSocket) && existsSync(this.files.legacyCtlFifo)) {
        log.info({ container: this.ref.id, monitorPid: this.ref.monitorPid }, 'container monitor of an older crib (no control socket): polling its exit file');
        this.pollLegacy();
        return;
      }
      // Alive but not talking to us (it turned us away, or is just exiting): ask again soon.
      if (this.retryMs >= RECONNECT_MAX_MS) log.warn({ container: this.ref.id, why }, 'container monitor alive but not reachable; retrying');
      this.timer = setTimeout(() => void this.connect(), this.retryMs);
      this.timer.unref();
      this.retryMs = Math.min(this.retryMs * 2, RECONNECT_MAX_MS);
      return;
    }
    // Dead. It may have written the exit file just before it went.
    const late = await readExitFile(this.files.exitFile).catch(() => undefined);
    if (late) this.exited(late);
    else this.report({ kind: 'monitor-gone', detail: `crib-monitor (pid ${this.ref.monitorPid ?? 'unknown'}) is gone (${why === 'closed' ? 'its control socket closed' : why}) and left no exit status` });
  }

  private pollLegacy(): void {
    this.timer = setTimeout(async () => {
      if (this.stopped || this.reported) return;
      const exit = await readExitFile(this.files.exitFile).catch(() => undefined);
      if (exit) this.exited(exit);
      else if (!monitorAlive(this.ref)) await this.unreachable('exited');
      else this.pollLegacy();
    }, LEGACY_POLL_MS);
    this.timer.unref();
  }
}
