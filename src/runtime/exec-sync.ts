// ExecSync. With crib-runtime, through its `exec --capture-output` (native/src/exec.c, with
// native/common/exec-capture.c): the runtime's own process, the exec'd process's parent, reads its
// stdout and stderr from pipes, each up to the cap, kills its tree when the timeout passes
// (whether or not the daemon is still there to read the result), and prints one JSON result.
// Other runtimes (runc, crun) cannot, and run under `crib-monitor exec-sync`
// (native/monitor/exec-sync.c), which does the same around their exec, a process more: it kills
// the exec'd process through the pid file the runtime writes, in the container's state dir (on
// the daemon's state root, /run/crib: a tmpfs on a node); the monitor removes it, and this module
// does when the monitor was killed; what is still left goes with the container.
// Either is started with posix_spawn (sys/posix-spawn.ts), not a fork of the daemon: kubelet's
// exec probes are the daemon's most frequent spawns (one per pod every 10 s or so).
import { unlink } from 'node:fs/promises';
import { constants } from 'node:os';
import { errnoCode, InternalError } from '../errors.js';
import { log } from '../log.js';
import { nativeBinaries } from '../native-paths.js';
import type { ExecSyncResult } from './container-runtime.js';
import { readBoundedToEnd, readToEnd } from '../sys/child-output.js';
import { spawnWithoutFork } from '../sys/posix-spawn.js';
import { signalName } from '../sys/signal-name.js';

export interface ExecSyncOptions {
  runtimeBinary: string;
  runtimeRoot: string;
  id: string;
  processFile: string;
  timeoutSeconds: number;
  maxOutput: number;
  /** A runtime other than crib-runtime: the exec runs under crib-monitor, which kills it at the
   * timeout through this pid file (a new path in the container's state dir). */
  monitorPidFile?: string;
}

/** The helper's own errors are a line or two; a flood is cut. */
const HELPER_STDERR_KEEP = 64 << 10;

export async function runExecSync(opts: ExecSyncOptions): Promise<ExecSyncResult> {
  const pidFile = opts.monitorPidFile;
  const [helper, args] = pidFile === undefined
    ? [opts.runtimeBinary, [
      '--root', opts.runtimeRoot, 'exec', '--process', opts.processFile,
      '--capture-output', String(opts.maxOutput), '--timeout', String(opts.timeoutSeconds), opts.id,
    ]]
    : [nativeBinaries.monitor, [
      'exec-sync', '--runtime', opts.runtimeBinary, '--runtime-root', opts.runtimeRoot, '--id', opts.id,
      '--process', opts.processFile, '--container-pid-file', pidFile, '--timeout', String(opts.timeoutSeconds),
      '--max-output', String(opts.maxOutput),
    ]];
  // The result is what stdout held at its EOF (the helper bounds it).
  let out: string;
  let err: string;
  let code: number | null;
  let signal: number | null;
  try {
    const p = await spawnWithoutFork(helper, args);
    [out, err, { code, signal }] = await Promise.all([readToEnd(p.stdout), readBoundedToEnd(p.stderr, HELPER_STDERR_KEEP), p.exited]);
  } catch (e) {
    throw new InternalError(`exec in ${opts.id}: starting ${helper} failed: ${(e as Error).message}`);
  }
  if (signal !== null && pidFile !== undefined) {
    // A monitor that exits removes the pid file itself; a killed one may have left it. What
    // cannot be removed goes with the container's dir.
    await unlink(pidFile).catch((e: unknown) => {
      if (errnoCode(e) !== 'ENOENT') log.warn({ id: opts.id, file: pidFile, err: (e as Error).message }, 'exec: could not remove the exec\'s pid file');
    });
  }
  // crib-runtime's setup (joining the container's namespaces and cgroup, before the process ran)
  // outlasted the timeout: its alarm ended it, and its setup process with it.
  if (pidFile === undefined && signal === constants.signals.SIGALRM) {
    return { exitCode: 128 + signal, stdout: Buffer.alloc(0), stderr: Buffer.alloc(0), timedOut: true, truncated: false };
  }
  const why = `${err.trim()}${signal !== null ? ` (killed by ${signalName(signal)})` : ''}`;
  if (!out.trim()) throw new InternalError(`exec in ${opts.id} failed (${helper} exit ${code ?? 'none'}): ${why || 'no output and no message'}`);
  let r: { exitCode: number; stdout: string; stderr: string; timedOut: boolean; truncated: boolean };
  try {
    r = JSON.parse(out) as typeof r;
  } catch {
    throw new InternalError(`exec in ${opts.id}: the result of ${helper} is not JSON (${out.length} bytes, exit ${code ?? 'none'}): ${why}`);
  }
  return {
    exitCode: r.exitCode,
    stdout: Buffer.from(r.stdout, 'base64'),
    stderr: Buffer.from(r.stderr, 'base64'),
    timedOut: r.timedOut,
    truncated: r.truncated,
  };
}
