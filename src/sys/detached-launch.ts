// Launching a helper that daemonises (crib-monitor, for StartContainer's container and each
// streaming exec): its first process exits once the detached one is on its own, which later
// writes one line on descriptor 3 and closes it. Started with posix_spawn (posix-spawn.ts), in a
// session of its own, so the daemon is never forked on those call paths. Both reports are bounded:
// the first DETACHED_STDERR_KEEP bytes of stderr are kept (the rest read and dropped), and a sync
// line longer than SYNC_LINE_MAX fails the launch.
import { LineTooLongError, readBoundedToEnd, readFirstLine } from './child-output.js';
import { spawnWithoutFork } from './posix-spawn.js';
import { signalName } from './signal-name.js';

/** A detached launch's stderr kept (crib-monitor's errors are a line or two; a flood is cut). */
const DETACHED_STDERR_KEEP = 64 << 10;
/** A detached launch's sync line: crib-monitor's report is a small JSON object. */
const SYNC_LINE_MAX = 4096;

/** How the first process of a detached launch ended: its exit code (null: killed, or never started) and stderr. */
export interface DetachedExit {
  code: number | null;
  stderr: string;
}

/**
 * Spawns `file args` (stdin and stdout /dev/null, stderr and a sync pipe on descriptor 3).
 * `exited` resolves when the first process has exited, with its stderr read to the end (the
 * detached process makes its stdio /dev/null at once, so stderr ends soon after). `syncLine`
 * resolves with the sync pipe's first line ("" when it closed without one; rejected when it
 * passed SYNC_LINE_MAX bytes without a newline), never before `exited`.
 */
export function spawnDetached(file: string, args: string[]): { exited: Promise<DetachedExit>; syncLine: Promise<string> } {
  const launched = launch(file, args);
  const exited = launched.then((l) => l.exited);
  const syncLine = launched.then((l) => l.syncLine);
  // A caller that gives up on the launch before reading the line (its first process failed)
  // must not leave a rejection unhandled.
  syncLine.catch(() => undefined);
  return { exited, syncLine };
}

/** spawnDetached's two reports, once the first process runs (or could not be started). */
async function launch(file: string, args: string[]): Promise<{ exited: Promise<DetachedExit>; syncLine: Promise<string> }> {
  let p;
  try {
    p = await spawnWithoutFork(file, args, { stdoutToNull: true, fd3Pipe: true, newSession: true });
  } catch (err) {
    return { exited: Promise.resolve({ code: null, stderr: (err as Error).message }), syncLine: Promise.resolve('') };
  }
  const line = readFirstLine(p.fd3, SYNC_LINE_MAX).then(
    (text): { text: string; error?: Error } => ({ text }),
    (err: unknown) => ({ text: '', error: err instanceof LineTooLongError ? new Error(`${file}'s sync pipe (fd 3): ${err.message}`) : (err as Error) }),
  );
  const stderr = readBoundedToEnd(p.stderr, DETACHED_STDERR_KEEP);
  const exited = p.exited.then(async ({ code, signal }) => {
    const text = (await stderr).trim();
    return { code, stderr: signal === null ? text : `${text}${text ? ' ' : ''}(killed by ${signalName(signal)})` };
  });
  const syncLine = exited.then(() => line).then(({ text, error }) => {
    if (error) throw error;
    return text;
  });
  syncLine.catch(() => undefined);
  return { exited, syncLine };
}
