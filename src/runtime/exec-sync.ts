// ExecSync through `crib-monitor exec-sync` (native/monitor/exec-sync.c): it runs the runtime's
// exec with pipes, enforces the timeout and the output cap, and prints one JSON result. Started
// with posix_spawn (sys/posix-spawn.ts), not a fork of the daemon: kubelet's exec probes are the
// daemon's most frequent spawns (one per pod every 10 s or so). The exec'd process's pid file,
// which the monitor reads to kill it at the timeout, is in the container's state dir (on the
// daemon's state root, /run/crib: a tmpfs on a node): the monitor removes it, and this module
// does when the monitor was killed; what is still left goes with the container.
import { unlink } from 'node:fs/promises';
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
  /** Where the runtime writes the exec'd process's pid: a new path in the container's state dir. */
  pidFile: string;
  timeoutSeconds: number;
  maxOutput: number;
}

/** The monitor's own errors are a line or two; a flood is cut. */
const MONITOR_STDERR_KEEP = 64 << 10;

export async function runExecSync(opts: ExecSyncOptions): Promise<ExecSyncResult> {
  const args = [
    'exec-sync', '--runtime', opts.runtimeBinary, '--runtime-root', opts.runtimeRoot, '--id', opts.id,
    '--process', opts.processFile, '--container-pid-file', opts.pidFile, '--timeout', String(opts.timeoutSeconds), '--max-output', String(opts.maxOutput),
  ];
  // The result is what stdout held at its EOF (the monitor bounds it: --max-output).
  let out: string;
  let err: string;
  let code: number | null;
  try {
    const p = await spawnWithoutFork(nativeBinaries.monitor, args);
    let signal: number | null;
    [out, err, { code, signal }] = await Promise.all([readToEnd(p.stdout), readBoundedToEnd(p.stderr, MONITOR_STDERR_KEEP), p.exited]);
    if (signal !== null) {
      err = `${err}${err ? ' ' : ''}(killed by ${signalName(signal)})`;
      // A monitor that exits removes the pid file itself; a killed one may have left it. What
      // cannot be removed goes with the container's dir.
      await unlink(opts.pidFile).catch((e: unknown) => {
        if (errnoCode(e) !== 'ENOENT') log.warn({ id: opts.id, file: opts.pidFile, err: (e as Error).message }, 'exec: could not remove the exec\'s pid file');
      });
    }
  } catch (e) {
    throw new InternalError(`exec in ${opts.id}: starting ${nativeBinaries.monitor} failed: ${(e as Error).message}`);
  }
  const why = err.trim();
  if (!out.trim()) throw new InternalError(`exec in ${opts.id} failed (monitor exit ${code}): ${why || 'no output and no message'}`);
  let r: { exitCode: number; stdout: string; stderr: string; timedOut: boolean; truncated: boolean };
  try {
    r = JSON.parse(out) as typeof r;
  } catch {
    throw new InternalError(`exec in ${opts.id}: the monitor's result is not JSON (${out.length} bytes, monitor exit ${code}): ${why}`);
  }
  return {
    exitCode: r.exitCode,
    stdout: Buffer.from(r.stdout, 'base64'),
    stderr: Buffer.from(r.stderr, 'base64'),
    timedOut: r.timedOut,
    truncated: r.truncated,
  };
}
