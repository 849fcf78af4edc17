// Running the tools that do network, namespace and mount work for us (ip, nft, crib-pinns). They
// run as separate processes on purpose: the daemon never changes namespaces in its own threads.
// They start through posix_spawn (exec-file.ts), never a fork of the daemon: the pod path's
// crib-pinns runs (pinning and attach in RunPodSandbox, the veth delete StopPodSandbox leaves
// running) would otherwise hold every other RPC for the fork's page-table copy.
import { InternalError } from '../errors.js';
import { execFileWithoutFork } from './exec-file.js';

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
}

const MAX_OUTPUT = 16 * 1024 * 1024;

/** Run a command; resolves with its stdout, rejects with CommandError carrying its stderr. */
export async function runCommand(file: string, args: readonly string[], opts: RunOptions = {}): Promise<string> {
  const timeoutMs = opts.timeoutMs ?? 30_000;
  const r = await execFileWithoutFork(file, args, { timeoutMs, killSignal: 'SIGTERM', maxBuffer: MAX_OUTPUT, input: opts.input, onStdout: opts.onStdout });
  if (!r.error) return r.stdout;
  const what = `${file} ${args.join(' ')}`.slice(0, 300);
  throw new CommandError(what, r.code, r.stderr || r.error.message, { cause: r.error });
}
