// ExecSync through `crib-monitor exec-sync` (native/monitor/exec-sync.c): it runs the runtime's
// exec with pipes, enforces the timeout and the output cap, and prints one JSON result.
import { InternalError } from '../errors.js';
import { nativeBinaries } from '../native-paths.js';
import type { ExecSyncResult } from './container-runtime.js';
import { spawnOnThread } from '../sys/spawn-thread.js';

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
  // On the spawn thread: a fork from the main thread would hold every other RPC (spawn-thread.ts).
  // The result is what stdout held at its EOF, read there to the end.
  const { stdout: out, stderr: err, code, error } = await spawnOnThread(nativeBinaries.monitor, args);
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
