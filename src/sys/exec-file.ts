// Running a short helper command to its end with execFile's bounds (a timeout, a cap on its
// output), its input written to stdin, its stdout reported as it arrives: the OCI runtime's
// start/kill/delete/state, crib-pinns, ip and nft. Started with posix_spawn (posix-spawn.ts), so
// the daemon is never forked: no RPC waits on a page-table copy, and the daemon takes no
// copy-on-write faults after each helper.
import { StringDecoder } from 'node:string_decoder';
import type { Readable } from 'node:stream';
import { spawnWithoutFork } from './posix-spawn.js';
import { signalName } from './signal-name.js';

export interface ExecOptions {
  /** Killed with killSignal after this long. */
  timeoutMs: number;
  /** The timeout's (and an output overflow's) signal; SIGKILL unless set. */
  killSignal?: NodeJS.Signals;
  /** Stdout or stderr beyond this many bytes kills the command and fails it. */
  maxBuffer: number;
  /** Its environment; the daemon's unless given. */
  env?: NodeJS.ProcessEnv;
  /** Its working directory; the daemon's unless given. */
  cwd?: string;
  /** Written to its stdin, which is then closed; stdin is /dev/null without it. */
  input?: string;
  /** Each chunk of stdout as the command writes it (all before the call resolves; stdout still holds everything). */
  onStdout?: (chunk: string) => void;
}


/**
 * How a command ended: `error` set when it failed (exit code not 0, a signal, its time or output
 * ran out, or it could not start), its message saying which (callers name the command).
 */
export interface ExecResult {
  stdout: string;
  stderr: string;
  /** Its exit code; null when a signal ended it or it never ran. */
  code: number | null;
  /** Its time ran out and it was killed. */
  killed: boolean;
  error?: Error;
}

/** Runs `file args` to its end within `opts`' bounds; never rejects (a failure is in `error`). */
export async function execFileWithoutFork(file: string, args: readonly string[], opts: ExecOptions): Promise<ExecResult> {
  let p;
  try {
    p = await spawnWithoutFork(file, args, { env: opts.env, stdinPipe: opts.input !== undefined, cwd: opts.cwd });
  } catch (err) {
    return { stdout: '', stderr: '', code: null, killed: false, error: err as Error };
  }
  const child = p;
  const killSignal = opts.killSignal ?? 'SIGKILL';
  let overflow: string | undefined;
  let killed = false;
  // What the command leaves running (a `sleep &` of a shell) may hold its pipes open: once it is
  // killed, its output is no longer waited for, as execFile does.
  const stopReading = () => {
    child.stdout?.destroy();
    child.stderr.destroy();
  };
  const collect = (stream: Readable, name: 'stdout' | 'stderr', onChunk?: (chunk: string) => void): Promise<string> => {
    const decoder = new StringDecoder('utf8');
    let text = '';
    let bytes = 0;
    stream.on('data', (d: Buffer) => {
      if (overflow !== undefined) return;
      bytes += d.length;
      if (bytes > opts.maxBuffer) {
        overflow = `${name} passed ${opts.maxBuffer} bytes`;
        child.kill(killSignal);
        stopReading();
        return;
      }
      const chunk = decoder.write(d);
      text += chunk;
      if (chunk) onChunk?.(chunk);
    });
    return new Promise((resolve) => stream.once('close', () => resolve(text + decoder.end())));
  };
  const timer = setTimeout(() => {
    killed = child.kill(killSignal);
    stopReading();
  }, opts.timeoutMs);
  if (opts.input !== undefined) child.stdin?.end(opts.input);
  const [stdout, stderr, exit] = await Promise.all([collect(child.stdout!, 'stdout', opts.onStdout), collect(child.stderr, 'stderr'), child.exited]);
  clearTimeout(timer);
  const result: ExecResult = { stdout, stderr, code: exit.code, killed };
  if (killed) result.error = new Error(`killed with ${killSignal} after ${opts.timeoutMs} ms`);
  else if (overflow !== undefined) result.error = new Error(`its ${overflow} and it was killed with ${killSignal}`);
  else if (exit.signal !== null) result.error = new Error(`killed by ${signalName(exit.signal)}`);
  else if (exit.code !== 0) result.error = new Error(`exited with status ${exit.code}`);
  return result;
}
