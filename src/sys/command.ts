// Spawning the tools that do network, namespace and mount work for us (ip, nft, crib-pinns). They run as
// separate processes on purpose: the daemon never changes namespaces in its own threads.
//
// They are forked from the spawn thread (spawn-thread.ts), not the event loop's: the pod path's
// crib-pinns runs (pinning and attach in RunPodSandbox, the veth delete StopPodSandbox leaves
// running) would otherwise hold every other RPC for the fork's page-table copy. The node's own
// setup (ip/nft for the bridge and table, once per daemon) may ask for the event loop's thread
// instead (onEventLoop): the thread is a V8 isolate of its own (~10 MiB of RSS), which a daemon
// with no pod yet should not carry for a few forks at start-up.
import { execFile } from 'node:child_process';
import { InternalError } from '../errors.js';
import { endChildInput } from './child-input.js';
import { execFileOnThread, type ExecResult } from './spawn-thread.js';

export class CommandError extends InternalError {
  constructor(
    readonly command: string,
    readonly exitCode: number | null,
    readonly stderr: string,
    options?: { cause?: unknown },
  ) {
    super(`${command}: ${stderr.trim() || `exited with status ${exitCode}`}`, options);
  }
}

export interface RunOptions {
  /** Written to the command's stdin (nft -f -, ip -batch -). */
  input?: string;
  timeoutMs?: number;
  /** Called with each chunk of stdout as it arrives (a helper reporting progress). */
  onStdout?: (chunk: string) => void;
  /** Fork from the event loop's thread: only for node setup and clean-up, never a pod's RPC. */
  onEventLoop?: boolean;
}

const MAX_OUTPUT = 16 * 1024 * 1024;

/** execFile from this thread, answered like execFileOnThread. */
function execFileHere(file: string, args: string[], opts: RunOptions, timeoutMs: number): Promise<ExecResult> {
  return new Promise((resolve) => {
    const child = execFile(file, args, { encoding: 'utf8', timeout: timeoutMs, maxBuffer: MAX_OUTPUT }, (err, stdout, stderr) => {
      const code = err ? (typeof err.code === 'number' ? err.code : null) : 0;
      resolve({ stdout, stderr, code, killed: err?.killed === true, error: err ?? undefined });
    });
    if (opts.onStdout) child.stdout?.on('data', opts.onStdout);
    if (opts.input !== undefined) endChildInput(child, opts.input);
  });
}

/** Run a command; resolves with its stdout, rejects with CommandError carrying its stderr. */
export async function runCommand(file: string, args: readonly string[], opts: RunOptions = {}): Promise<string> {
  const timeoutMs = opts.timeoutMs ?? 30_000;
  const r = opts.onEventLoop
    ? await execFileHere(file, [...args], opts, timeoutMs)
    : await execFileOnThread(file, [...args], { timeoutMs, killSignal: 'SIGTERM', maxBuffer: MAX_OUTPUT, input: opts.input, onStdout: opts.onStdout });
  if (!r.error) return r.stdout;
  const what = `${file} ${args.join(' ')}`.slice(0, 300);
  throw new CommandError(what, r.code, r.stderr || r.error.message, { cause: r.error });
}
