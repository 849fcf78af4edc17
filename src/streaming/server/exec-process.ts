// One streaming exec (kubectl exec / crictl exec -it): a `crib-monitor exec --wait-attach`
// that runs `<runtime> exec --detach` for the process only once we are connected to its attach
// socket (so no early output is lost), then serves that socket, a control fifo for resizes, and
// an exit file with the exit code. See native/monitor/main.c for the monitor's contract.
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import { readFile, readdir, rm } from 'node:fs/promises';
import type { Socket } from 'node:net';
import { join } from 'node:path';
import type { Readable } from 'node:stream';
import { InternalError, errnoCode } from '../../errors.js';
import { log } from '../../log.js';
import { nativeBinaries } from '../../native-paths.js';
import { readExitFile, readFirstLine, type ExitRecord } from '../../runtime/monitor.js';
import { connectUnix } from './attach-socket.js';
import { writeControl } from './control-fifo.js';

export interface ExecProcessOptions {
  runtimeBinary: string;
  runtimeRoot: string;
  containerId: string;
  /** process.json for the runtime (ContainerService.execProcessFile); removed by cleanup(). */
  processFile: string;
  /** Directory for the exec's socket, fifo and exit file (the container's dir). */
  dir: string;
  stdin: boolean;
  tty: boolean;
}

/** The command could not be started (bad binary, container gone): the runtime's message. */
export class ExecStartError extends Error {}

/** The exit file follows the attach socket's close within moments: poll fast, then back off. */
const EXIT_POLL_FIRST_MS = 1;
const EXIT_POLL_MAX_MS = 50;

export class ExecProcess {
  private exited: ExitRecord | undefined;

  private constructor(
    readonly attach: Socket,
    readonly pid: number,
    private readonly paths: { exitFile: string; pidFile: string; ctl: string; socket: string; processFile: string },
  ) {}

  /**
   * Starts the monitor, connects to its attach socket and waits for the runtime's report.
   * Throws ExecStartError with the runtime's message when the process cannot run.
   */
  static async start(opts: ExecProcessOptions): Promise<ExecProcess> {
    const tag = randomBytes(8).toString('hex');
    const paths = {
      exitFile: join(opts.dir, `exec-${tag}.exit`),
      pidFile: join(opts.dir, `exec-${tag}.pid`),
      ctl: join(opts.dir, `exec-${tag}.ctl`),
      socket: join(opts.dir, `exec-${tag}.sock`),
      processFile: opts.processFile,
    };
    const args = [
      'exec', '--runtime', opts.runtimeBinary, '--runtime-root', opts.runtimeRoot, '--id', opts.containerId,
      '--process', opts.processFile, '--exit-file', paths.exitFile, '--attach-socket', paths.socket,
      '--ctl-path', paths.ctl, '--container-pid-file', paths.pidFile, '--sync-fd', '3', '--wait-attach',
    ];
    if (opts.stdin) args.push('--stdin', '--stdin-once');
    if (opts.tty) args.push('--terminal');
    const child = spawn(nativeBinaries.monitor, args, { stdio: ['ignore', 'ignore', 'pipe', 'pipe'] });
    let stderr = '';
    child.stderr!.on('data', (d: Buffer) => (stderr += d.toString()));
    const syncLine = readFirstLine(child.stdio[3] as Readable);
    const code = await new Promise<number | null>((resolve) => {
      child.once('exit', (c) => resolve(c));
      child.once('error', (err) => {
        stderr += err.message;
        resolve(null);
      });
    });
    if (code !== 0) {
      await cleanupFiles(paths);
      throw new InternalError(`crib-monitor exec for container ${opts.containerId} failed (exit ${code}): ${stderr.trim()}`);
    }
    let attach: Socket;
    try {
      attach = await connectUnix(paths.socket);
    } catch (err) {
      // The detached monitor waits for a first client forever; nobody else will come.
      await killMonitorOf(paths.exitFile);
      await cleanupFiles(paths);
      throw err;
    }
    const line = await syncLine;
    let msg: { pid: number; message?: string };
    try {
      msg = JSON.parse(line) as { pid: number; message?: string };
    } catch {
      attach.destroy();
      await cleanupFiles(paths);
      throw new InternalError(`crib-monitor exec for container ${opts.containerId} sent no report (${JSON.stringify(line)}): ${stderr.trim()}`);
    }
    if (msg.pid < 0) {
      attach.destroy();
      await cleanupFiles(paths);
      throw new ExecStartError(msg.message ?? 'the runtime could not start the process');
    }
    return new ExecProcess(attach, msg.pid, paths);
  }

  /** Sets the terminal size (Height = rows, Width = cols). Ignored once the process is gone. */
  async resize(rows: number, cols: number): Promise<void> {
    await writeControl(this.paths.ctl, `resize ${rows} ${cols}`).catch((err: unknown) => {
      log.debug({ err: (err as Error).message }, 'exec resize after the process ended');
    });
  }

  /** Waits for the monitor's exit file (it appears after the attach socket closed). */
  async waitExit(timeoutMs = 30_000): Promise<ExitRecord> {
    const until = Date.now() + timeoutMs;
    let delay = EXIT_POLL_FIRST_MS;
    for (;;) {
      if (this.exited) return this.exited;
      const rec = await readExitFile(this.paths.exitFile).catch(() => undefined);
      if (rec) {
        this.exited = rec;
        return rec;
      }
      if (Date.now() > until) throw new InternalError(`exec process ${this.pid} left no exit status within ${timeoutMs} ms`);
      await new Promise((r) => setTimeout(r, delay));
      delay = Math.min(delay * 2, EXIT_POLL_MAX_MS);
    }
  }

  /** Kills the exec'd process (the client went away) unless it already exited. */
  kill(): void {
    if (this.exited || existsSync(this.paths.exitFile)) return;
    try {
      process.kill(this.pid, 'SIGKILL');
    } catch (err) {
      if (errnoCode(err) !== 'ESRCH') log.warn({ pid: this.pid, err: (err as Error).message }, 'killing exec process');
    }
  }

  /** Removes the exec's files; call after the exit file appeared (or the kill). */
  async cleanup(): Promise<void> {
    this.attach.destroy();
    await cleanupFiles(this.paths);
  }
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

async function cleanupFiles(paths: Record<string, string>): Promise<void> {
  await Promise.all(Object.values(paths).map((p) => rm(p, { force: true }).catch(() => undefined)));
}
