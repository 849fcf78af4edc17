// Starting crib-monitor processes and reading what they report. Output is read to its end (the
// pipes' EOF, Node's 'close'), never only until the process exits: Node reaps every exited child
// whenever any SIGCHLD arrives, so under load a helper's 'exit' can fire before the output it
// wrote has been read from its pipe (ExecSync probes then failed with "monitor exit 0" and an
// empty result).
import { spawn, type ChildProcess } from 'node:child_process';
import type { Readable } from 'node:stream';
import { nativeBinaries } from '../native-paths.js';

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

/** Everything a stream yields until its end, as text. */
export function readToEnd(stream: Readable | null | undefined): Promise<string> {
  return new Promise((resolve) => {
    if (!stream) {
      resolve('');
      return;
    }
    const chunks: Buffer[] = [];
    const done = (): void => resolve(Buffer.concat(chunks).toString());
    stream.on('data', (d: Buffer) => chunks.push(d));
    stream.once('end', done);
    stream.once('close', done);
    stream.once('error', done);
  });
}

/** The exit code of a child (null when killed by a signal); a spawn error is a failed exit. */
export function exitCode(child: ChildProcess): Promise<{ code: number | null; error?: Error }> {
  return new Promise((resolve) => {
    child.once('exit', (code) => resolve({ code }));
    child.once('error', (error) => resolve({ code: null, error }));
  });
}

/**
 * Runs `crib-monitor <args>` whose first process daemonises and exits; the detached monitor
 * reports on fd 3. Resolves with the first process's exit code, its stderr (complete: read to
 * EOF), and the sync line (which may come later: --wait-attach sends it only once a client is
 * connected).
 */
export function spawnDetachedMonitor(args: string[]): { exited: Promise<{ code: number | null; stderr: string }>; syncLine: Promise<string> } {
  const child = spawn(nativeBinaries.monitor, args, { stdio: ['ignore', 'ignore', 'pipe', 'pipe'], detached: true });
  const syncLine = readFirstLine(child.stdio[3] as Readable);
  // The detached monitor makes its stdio /dev/null at once, so stderr ends soon after the
  // first process exits, and holds everything either of them printed.
  const stderr = readToEnd(child.stderr);
  const exited = exitCode(child).then(async ({ code, error }) => ({
    code, stderr: `${await stderr}${error ? error.message : ''}`.trim(),
  }));
  return { exited, syncLine };
}
