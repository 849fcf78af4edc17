// ExecSync through `crib-monitor exec-sync` (native/monitor/exec-sync.c): it runs the runtime's
// exec with pipes, enforces the timeout and the output cap, and prints one JSON result.
import { spawn } from 'node:child_process';
import { InternalError } from '../errors.js';
import { nativeBinaries } from '../native-paths.js';
import type { ExecSyncResult } from './container-runtime.js';
import { exitCode, readToEnd } from './monitor-launch.js';

export interface ExecSyncOptions {
  runtimeBinary: string;
  runtimeRoot: string;
  id: string;
  processFile: string;
  timeoutSeconds: number;
  maxOutput: number;
}

export async function runExecSync(opts: ExecSyncOptions): Promise<ExecSyncResult> {
  const args = [
    'exec-sync', '--runtime', opts.runtimeBinary, '--runtime-root', opts.runtimeRoot, '--id', opts.id,
    '--process', opts.processFile, '--timeout', String(opts.timeoutSeconds), '--max-output', String(opts.maxOutput),
  ];
  const child = spawn(nativeBinaries.monitor, args, { stdio: ['ignore', 'pipe', 'pipe'] });
  // The result is what stdout held at its EOF: the process's exit may be seen before the output
  // has been read (see monitor-launch.ts).
  const [out, err, { code, error }] = await Promise.all([readToEnd(child.stdout), readToEnd(child.stderr), exitCode(child)]);
  const why = `${err.trim()}${error ? ` ${error.message}` : ''}`.trim();
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
