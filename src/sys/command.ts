// Spawning the tools that do network, namespace and mount work for us (ip, nft, crib-pinns). They run as
// separate processes on purpose: the daemon never changes namespaces in its own threads.
import { execFile } from 'node:child_process';
import { InternalError } from '../errors.js';
import { endChildInput } from './child-input.js';

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

/** Run a command; resolves with its stdout, rejects with CommandError carrying its stderr. */
export function runCommand(file: string, args: readonly string[], opts: RunOptions = {}): Promise<string> {
  return new Promise((resolve, reject) => {
    const child = execFile(
      file,
      args,
      { encoding: 'utf8', timeout: opts.timeoutMs ?? 30_000, maxBuffer: 16 * 1024 * 1024 },
      (err, stdout, stderr) => {
        if (!err) return resolve(stdout);
        const code = typeof err.code === 'number' ? err.code : null;
        const what = `${file} ${args.join(' ')}`.slice(0, 300);
        reject(new CommandError(what, code, stderr || err.message, { cause: err }));
      },
    );
    if (opts.onStdout) child.stdout?.on('data', opts.onStdout);
    if (opts.input !== undefined) endChildInput(child, opts.input);
  });
}
