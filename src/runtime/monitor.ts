// Talking to crib-monitor, the per-container process that owns a container's stdio, log file
// and exit status and outlives the daemon (see native/monitor/main.c for its contract).
import { spawn } from 'node:child_process';
import { readFile } from 'node:fs/promises';
import type { Readable } from 'node:stream';
import { InternalError, errnoCode } from '../errors.js';
import { nativeBinaries } from '../native-paths.js';
import { OciRuntimeError } from './oci-runtime.js';

export interface LaunchOptions {
  runtimeBinary: string;
  runtimeRoot: string;
  id: string;
  bundle: string;
  logPath: string;
  exitFile: string;
  attachSocket: string;
  ctlPath: string;
  stdin?: boolean;
  stdinOnce?: boolean;
  terminal?: boolean;
}

export interface Launched {
  pid: number;
  monitorPid: number;
}

export interface ExitRecord {
  exitCode: number;
  signal: number | null;
  exitedAt: string;
  oomKilled: boolean;
}

export interface ExecSyncResult {
  exitCode: number;
  stdout: Buffer;
  stderr: Buffer;
  timedOut: boolean;
  truncated: boolean;
}

/** The first line a monitor writes on its sync pipe ("" if it closes without one). */
export function readFirstLine(stream: Readable): Promise<string> {
  return new Promise((resolve) => {
    let buf = '';
    stream.setEncoding('utf8');
    stream.on('data', (d: string) => {
      buf += d;
      const nl = buf.indexOf('\n');
      if (nl >= 0) {
        stream.destroy();
        resolve(buf.slice(0, nl));
      }
    });
    stream.once('end', () => resolve(buf));
    stream.once('close', () => resolve(buf));
    stream.once('error', () => resolve(buf));
  });
}

/**
 * Start a monitor that creates the container (runtime `create`, not `start`) and wait for its
 * report. The monitor detaches at once; the sync pipe (fd 3) carries its single JSON line.
 */
export async function launchMonitor(opts: LaunchOptions): Promise<Launched> {
  const args = [
    '--runtime', opts.runtimeBinary, '--runtime-root', opts.runtimeRoot, '--id', opts.id,
    '--bundle', opts.bundle, '--log-path', opts.logPath, '--exit-file', opts.exitFile,
    '--attach-socket', opts.attachSocket, '--ctl-path', opts.ctlPath, '--sync-fd', '3',
  ];
  if (opts.stdin) args.push('--stdin');
  if (opts.stdinOnce) args.push('--stdin-once');
  if (opts.terminal) args.push('--terminal');
  const child = spawn(nativeBinaries.monitor, args, { stdio: ['ignore', 'ignore', 'pipe', 'pipe'], detached: true });
  let stderr = '';
  child.stderr!.on('data', (d: Buffer) => (stderr += d.toString()));
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  const line = await readFirstLine(child.stdio[3] as Readable);
  const code = await exited;
  if (!line) throw new InternalError(`crib-monitor for ${opts.id} failed (exit ${code}): ${stderr.trim()}`);
  const msg = JSON.parse(line) as { pid: number; monitorPid?: number; message?: string };
  if (msg.pid < 0) throw new OciRuntimeError('create', msg.message ?? 'unknown error', null);
  return { pid: msg.pid, monitorPid: msg.monitorPid ?? 0 };
}

/** The exit record a monitor wrote, or undefined while the container still runs. */
export async function readExitFile(path: string): Promise<ExitRecord | undefined> {
  try {
    return JSON.parse(await readFile(path, 'utf8')) as ExitRecord;
  } catch (err) {
    if (errnoCode(err) === 'ENOENT') return undefined;
    throw err;
  }
}

export async function execSync(opts: {
  runtimeBinary: string;
  runtimeRoot: string;
  id: string;
  processFile: string;
  timeoutSeconds: number;
  maxOutput: number;
}): Promise<ExecSyncResult> {
  const args = [
    'exec-sync', '--runtime', opts.runtimeBinary, '--runtime-root', opts.runtimeRoot, '--id', opts.id,
    '--process', opts.processFile, '--timeout', String(opts.timeoutSeconds), '--max-output', String(opts.maxOutput),
  ];
  const child = spawn(nativeBinaries.monitor, args, { stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  let err = '';
  child.stdout!.on('data', (d: Buffer) => (out += d.toString()));
  child.stderr!.on('data', (d: Buffer) => (err += d.toString()));
  // 'close', not 'exit': Node reaps every exited child whenever any SIGCHLD arrives, so under
  // load a helper's 'exit' can fire before the result it wrote has been read from its pipe (1-2%
  // of kubelet's probes then failed with "monitor exit 0" and no message). 'close' comes once
  // the process exited and its stdout and stderr reached EOF: the result is all there.
  const code = await new Promise<number | null>((resolve) => {
    child.once('close', (c) => resolve(c));
    child.once('error', (e) => {
      err += e.message;
      resolve(null);
    });
  });
  if (!out.trim()) throw new InternalError(`exec in ${opts.id} failed (monitor exit ${code}): ${err.trim() || 'no output and no message'}`);
  const r = JSON.parse(out) as { exitCode: number; stdout: string; stderr: string; timedOut: boolean; truncated: boolean };
  return {
    exitCode: r.exitCode,
    stdout: Buffer.from(r.stdout, 'base64'),
    stderr: Buffer.from(r.stderr, 'base64'),
    timedOut: r.timedOut,
    truncated: r.truncated,
  };
}
