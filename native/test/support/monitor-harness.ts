// Drives crib-monitor against a real OCI runtime (runc by default; CRIB_TEST_RUNTIME switches to
// crib-runtime) for the monitor tests. Everything a test creates is registered in a Harness and
// removed by cleanup(): containers (runtime delete --force), monitors (SIGKILL by pid), temp dirs.
import { execFile, spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { connect, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { makeBundle, type BundleOptions } from './monitor-bundle.js';

const execFileP = promisify(execFile);

export const RUNTIME = process.env.CRIB_TEST_RUNTIME ?? '/usr/sbin/runc';
export const MONITOR = process.env.CRIB_MONITOR_BINARY
  ?? fileURLToPath(new URL('../../build/crib-monitor', import.meta.url));

export async function waitFor<T>(what: string, fn: () => Promise<T | undefined | false> | T | undefined | false,
  timeoutMs = 20_000): Promise<T> {
  const until = Date.now() + timeoutMs;
  for (;;) {
    const v = await fn();
    if (v !== undefined && v !== false) return v as T;
    if (Date.now() > until) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 25));
  }
}

export function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

export interface SyncResult { pid: number; monitorPid?: number; message?: string }

export interface ExitFile { exitCode: number; signal: number | null; exitedAt: string; oomKilled: boolean }

export interface LogRecord { time: string; stream: 'stdout' | 'stderr'; tag: 'P' | 'F'; content: string }

export interface MonitorOptions extends BundleOptions {
  stdin?: boolean;
  stdinOnce?: boolean;
  logMaxLine?: number;
  /** Use this log path instead of <container dir>/ctr.log. */
  logPath?: string;
  /** Use this exit file path instead of <container dir>/exit. */
  exitFile?: string;
  /** Run the monitor from `sh -c` that stays alive (the "daemon" a test can kill). */
  viaIntermediate?: boolean;
  /** Shell commands run before the monitor, in the shell that execs it (e.g. to leak an fd). */
  shellPrefix?: string;
  /** Close the test's end of the sync fd at once (a daemon that died while the monitor started). */
  closeSync?: boolean;
}

export interface Container {
  id: string;
  dir: string;
  bundle: string;
  cgroupsPath: string;
  logPath: string;
  exitFile: string;
  attachSocket: string;
  ctlSocket: string;
  sync: SyncResult;
  /** The pid of the intermediate `sh` when viaIntermediate was set. */
  intermediatePid?: number;
  /** The monitor command's own exit code (its first process returns once detached). */
  monitorExit: number | null;
  start(): Promise<void>;
  waitExit(timeoutMs?: number): Promise<ExitFile>;
  log(): Promise<LogRecord[]>;
  /** One control command on a connection of its own; resolves with the reply. */
  ctl(cmd: Record<string, unknown>): Promise<CtlReply>;
  /** A control connection that stays open (events arrive on it). */
  control(): Promise<ControlClient>;
}

/**
 * The log's records: its whole lines. What follows the last newline is not one yet, as for
 * kubelet, which reads a CRI log by whole lines: a record being written, or one a full disk cut
 * short, which the monitor then truncates away (log-writer.c write_record).
 */
export function parseLog(text: string): LogRecord[] {
  const out: LogRecord[] = [];
  const lines = text.split('\n');
  lines.pop();
  for (const line of lines) {
    if (line === '') continue;
    const m = /^(\S+) (stdout|stderr) ([PF]) (.*)$/s.exec(line);
    if (!m) throw new Error(`malformed log line: ${JSON.stringify(line)}`);
    out.push({ time: m[1], stream: m[2] as 'stdout' | 'stderr', tag: m[3] as 'P' | 'F', content: m[4] });
  }
  return out;
}

export interface ExecSession {
  exitFile: string;
  attachSocket: string;
  ctlSocket: string;
  sync: SyncResult;
  /** The client connected before the process ran (waitAttach). */
  client?: AttachClient;
  waitExit(timeoutMs?: number): Promise<ExitFile>;
  ctl(cmd: Record<string, unknown>): Promise<CtlReply>;
}

export interface CtlReply { ok: boolean; error?: string; [key: string]: unknown }

async function waitExitFile(path: string, timeoutMs: number): Promise<ExitFile> {
  const text = await waitFor(`exit file ${path}`,
    async () => (existsSync(path) ? readFile(path, 'utf8') : undefined), timeoutMs);
  return JSON.parse(text) as ExitFile;
}

/**
 * A client of a monitor's control socket (see native/monitor/main.c): commands are answered in
 * order, one line each; event lines are collected in `events`.
 */
export class ControlClient {
  readonly events: Record<string, unknown>[] = [];
  /** Every line received, replies and events, in order. */
  readonly lines: string[] = [];
  closed = false;
  private buf = '';
  private waiting: ((reply: CtlReply) => void)[] = [];

  private constructor(readonly sock: Socket) {
    sock.setEncoding('utf8');
    sock.on('data', (d: string) => {
      this.buf += d;
      for (let nl = this.buf.indexOf('\n'); nl >= 0; nl = this.buf.indexOf('\n')) {
        const line = this.buf.slice(0, nl);
        this.buf = this.buf.slice(nl + 1);
        this.lines.push(line);
        const msg = JSON.parse(line) as Record<string, unknown>;
        if ('event' in msg) this.events.push(msg);
        else this.waiting.shift()?.(msg as CtlReply);
      }
    });
    const end = () => {
      this.closed = true;
      for (const w of this.waiting.splice(0)) w({ ok: false, error: 'connection closed' });
    };
    sock.on('close', end);
    sock.on('error', end);
  }

  static connect(path: string): Promise<ControlClient> {
    return new Promise((resolve, reject) => {
      const sock = connect({ path });
      sock.once('connect', () => resolve(new ControlClient(sock)));
      sock.once('error', reject);
    });
  }

  send(cmd: Record<string, unknown> | string): Promise<CtlReply> {
    return new Promise((resolve) => {
      this.waiting.push(resolve);
      this.sock.write(`${typeof cmd === 'string' ? cmd : JSON.stringify(cmd)}\n`);
    });
  }

  close(): void { this.sock.destroy(); }
}

async function ctlOnce(path: string, cmd: Record<string, unknown>): Promise<CtlReply> {
  const c = await ControlClient.connect(path);
  try { return await c.send(cmd); } finally { c.close(); }
}

/**
 * Spawn crib-monitor with a sync pipe on fd 3. `exited` is the first process's exit code (it
 * returns once the monitor is detached); `sync` is the first line on fd 3.
 */
function launchMonitor(args: string[], viaIntermediate: boolean, shellPrefix?: string, closeSync = false):
  { pid: number | undefined; exited: Promise<number | null>; sync: Promise<SyncResult> } {
  const stdio: ('ignore' | 'pipe')[] = ['ignore', 'pipe', 'pipe', 'pipe'];
  const child = viaIntermediate
    ? spawn('/bin/sh', ['-c', `${shellPrefix ?? ''}"$0" "$@"; exec sleep 1000`, MONITOR, ...args], { stdio })
    : shellPrefix
      ? spawn('/bin/sh', ['-c', `${shellPrefix}exec "$0" "$@"`, MONITOR, ...args], { stdio })
      : spawn(MONITOR, args, { stdio });
  let stderr = '';
  child.stderr!.on('data', (d) => { stderr += d; });
  child.stdout!.resume();
  const exited = new Promise<number | null>((resolve, reject) => {
    child.on('exit', (code) => resolve(code));
    child.on('error', reject);
  });
  if (closeSync) {
    (child.stdio[3] as NodeJS.ReadableStream & { destroy(): void }).destroy();
    return { pid: child.pid, exited, sync: Promise.resolve({ pid: -1, message: 'the test closed the sync fd' }) };
  }
  const sync = new Promise<SyncResult>((resolve, reject) => {
    let text = '';
    let done = false;
    const finish = () => {
      if (done) return;
      done = true;
      if (text === '') text = JSON.stringify({ pid: -1, message: `no sync line; stderr: ${stderr}` });
      try {
        resolve(JSON.parse(text.split('\n')[0]) as SyncResult);
      } catch {
        reject(new Error(`bad sync line ${JSON.stringify(text)}; stderr: ${stderr}`));
      }
    };
    const fd3 = child.stdio[3] as NodeJS.ReadableStream;
    fd3.on('data', (d) => { text += d; if (text.includes('\n')) finish(); });
    // After 'end', stderr may still be arriving: give the exit a chance to flush it.
    fd3.on('end', () => { void exited.then(finish, finish); });
  });
  return { pid: child.pid, exited, sync };
}

export class Harness {
  readonly runtimeRoot: string;
  private containers: Container[] = [];
  private monitors = new Set<number>();
  private seq = 0;

  private constructor(readonly dir: string) {
    this.runtimeRoot = join(dir, 'runtime-root');
  }

  static async create(): Promise<Harness> {
    return new Harness(await mkdtemp(join(tmpdir(), `crib-mon-${process.pid}-`)));
  }

  async runtime(...args: string[]): Promise<{ stdout: string; stderr: string }> {
    return execFileP(RUNTIME, ['--root', this.runtimeRoot, ...args], { timeout: 30_000 });
  }

  /** Start a monitor (which runs `runtime create`) and wait for its sync line. */
  async create(opts: MonitorOptions): Promise<Container> {
    const n = ++this.seq;
    const id = `mon-${process.pid}-${n}-${Math.random().toString(36).slice(2, 8)}`;
    const cdir = join(this.dir, `c${n}`);
    const bundle = await makeBundle(this.dir, `c${n}`, opts);
    const c = {
      id, dir: cdir, bundle: bundle.dir, cgroupsPath: bundle.cgroupsPath,
      logPath: opts.logPath ?? join(cdir, 'ctr.log'),
      exitFile: opts.exitFile ?? join(cdir, 'exit'),
      attachSocket: join(cdir, 'attach'),
      ctlSocket: join(cdir, 'ctl.sock'),
    };
    const args = ['--runtime', RUNTIME, '--runtime-root', this.runtimeRoot, '--id', id,
      '--bundle', c.bundle, '--log-path', c.logPath, '--exit-file', c.exitFile,
      '--attach-socket', c.attachSocket, '--ctl-socket', c.ctlSocket, '--sync-fd', '3'];
    if (opts.stdin) args.push('--stdin');
    if (opts.stdinOnce) args.push('--stdin-once');
    if (opts.terminal) args.push('--terminal');
    if (opts.logMaxLine !== undefined) args.push('--log-max-line', String(opts.logMaxLine));
    const { sync, exit, intermediatePid } = await this.spawnMonitor(args, opts.viaIntermediate ?? false,
      opts.shellPrefix, opts.closeSync);
    const self = this;
    if (sync.pid < 0 && process.env.CRIB_TEST_DEBUG) console.warn(`monitor for ${id}: ${sync.message}`);
    const container: Container = {
      ...c, sync, monitorExit: exit, intermediatePid,
      async start() { await self.runtime('start', id); },
      waitExit: (timeoutMs = 30_000) => waitExitFile(c.exitFile, timeoutMs),
      async log() { return parseLog(await readFile(c.logPath, 'utf8')); },
      ctl: (cmd: Record<string, unknown>) => ctlOnce(c.ctlSocket, cmd),
      control: () => ControlClient.connect(c.ctlSocket),
    };
    this.containers.push(container);
    return container;
  }

  private async spawnMonitor(args: string[], viaIntermediate: boolean, shellPrefix?: string, closeSync?: boolean):
    Promise<{ sync: SyncResult; exit: number | null; intermediatePid?: number }> {
    const l = launchMonitor(args, viaIntermediate, shellPrefix, closeSync);
    const sync = await l.sync;
    const exit = viaIntermediate ? null : await l.exited;
    if (sync.monitorPid) this.monitors.add(sync.monitorPid);
    return { sync, exit, intermediatePid: viaIntermediate ? l.pid : undefined };
  }

  /**
   * Streaming exec into a running container (`crib-monitor exec`). With waitAttach a client is
   * connected once the command returned and before the process runs.
   */
  async exec(c: Container, args: string[], opts: { terminal?: boolean; stdin?: boolean;
    stdinOnce?: boolean; waitAttach?: boolean } = {}): Promise<ExecSession> {
    const n = ++this.seq;
    const dir = join(this.dir, `exec${n}`);
    await mkdir(dir, { recursive: true });
    const processPath = join(dir, 'process.json');
    await writeFile(processPath, JSON.stringify({
      terminal: opts.terminal ?? false, user: { uid: 0, gid: 0 }, args,
      env: ['PATH=/bin', 'TERM=xterm'], cwd: '/',
    }));
    const paths = { exitFile: join(dir, 'exit'), attachSocket: join(dir, 'attach'), ctlSocket: join(dir, 'ctl.sock') };
    const argv = ['exec', '--runtime', RUNTIME, '--runtime-root', this.runtimeRoot, '--id', c.id,
      '--process', processPath, '--exit-file', paths.exitFile, '--attach-socket', paths.attachSocket,
      '--ctl-socket', paths.ctlSocket, '--sync-fd', '3'];
    if (opts.terminal) argv.push('--terminal');
    if (opts.stdin) argv.push('--stdin');
    if (opts.stdinOnce) argv.push('--stdin-once');
    if (opts.waitAttach) argv.push('--wait-attach');
    const l = launchMonitor(argv, false);
    const exit = await l.exited;
    let client: AttachClient | undefined;
    if (exit === 0 && opts.waitAttach) client = await this.attachPath(paths.attachSocket);
    const sync = await l.sync;
    if (sync.monitorPid) this.monitors.add(sync.monitorPid);
    return {
      ...paths, sync, client,
      waitExit: (timeoutMs = 30_000) => waitExitFile(paths.exitFile, timeoutMs),
      ctl: (cmd: Record<string, unknown>) => ctlOnce(paths.ctlSocket, cmd),
    };
  }

  /** Attach a client to a container's attach socket. */
  attach(c: Container): Promise<AttachClient> {
    return this.attachPath(c.attachSocket);
  }

  attachPath(path: string): Promise<AttachClient> {
    return new Promise((resolve, reject) => {
      const sock = connect({ path, allowHalfOpen: true });
      sock.once('connect', () => resolve(new AttachClient(sock)));
      sock.once('error', reject);
    });
  }

  async cleanup(): Promise<void> {
    for (const c of this.containers) {
      await this.runtime('delete', '--force', c.id).catch(() => undefined);
      if (c.intermediatePid && alive(c.intermediatePid)) process.kill(c.intermediatePid, 'SIGKILL');
    }
    for (const pid of this.monitors) {
      if (alive(pid)) {
        // Only kill it if it is still our monitor (pids are reused).
        const cmd = await readFile(`/proc/${pid}/cmdline`, 'utf8').catch(() => '');
        if (cmd.includes('crib-monitor') && cmd.includes(this.dir)) process.kill(pid, 'SIGKILL');
      }
    }
    await rm(this.dir, { recursive: true, force: true });
  }
}

/** Reads attach frames: [stream id][0 0 0][u32 BE length] payload. */
export class AttachClient {
  readonly chunks: { stream: number; data: Buffer }[] = [];
  closed = false;
  private pending = Buffer.alloc(0);

  constructor(readonly sock: Socket) {
    sock.on('data', (d: Buffer) => {
      this.pending = Buffer.concat([this.pending, d]);
      while (this.pending.length >= 8) {
        const len = this.pending.readUInt32BE(4);
        if (this.pending.length < 8 + len) break;
        this.chunks.push({ stream: this.pending[0], data: this.pending.subarray(8, 8 + len) });
        this.pending = this.pending.subarray(8 + len);
      }
    });
    // Output over: close our side too, as the daemon does (the monitor waits for that).
    sock.on('end', () => { this.closed = true; sock.end(); });
    sock.on('close', () => { this.closed = true; });
    sock.on('error', () => { this.closed = true; });
  }

  text(stream?: number): string {
    return Buffer.concat(this.chunks.filter((c) => stream === undefined || c.stream === stream)
      .map((c) => c.data)).toString('utf8');
  }

  write(s: string): void { this.sock.write(s); }
  end(): void { this.sock.end(); }
  destroy(): void { this.sock.destroy(); }
}
