// Starting crib-monitor processes and reading what they report. Output is read to its end (the
// pipes' EOF, Node's 'close'), never only until the process exits: Node reaps every exited child
// whenever any SIGCHLD arrives, so under load a helper's 'exit' can fire before the output it
// wrote has been read from its pipe (ExecSync probes then failed with "monitor exit 0" and an
// empty result).
import { spawn } from 'node:child_process';
import type { Readable } from 'node:stream';
import { nativeBinaries } from '../native-paths.js';
import { exitCode, readToEnd } from '../sys/child-output.js';

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
