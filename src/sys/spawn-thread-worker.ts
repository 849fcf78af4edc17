// The spawn thread's side (spawn-thread.ts): runs one command per message, reads its stdout and
// stderr to their end, and posts them back with its exit code (with execFile and its bounds for
// execFileOnThread's requests; for a detached monitor, its exit and then its sync line).
import { execFile, spawn } from 'node:child_process';
import type { Readable } from 'node:stream';
import { parentPort } from 'node:worker_threads';
import { endChildInput } from './child-input.js';
import { exitCode, LineTooLongError, readBoundedToEnd, readFirstLine, readToEnd } from './child-output.js';
import type { ExecOptions, SpawnChunk, SpawnExited, SpawnReply, SpawnRequest } from './spawn-thread.js';

/** A detached launch's stderr kept (crib-monitor's errors are a line or two; a flood is cut). */
const DETACHED_STDERR_KEEP = 64 << 10;
/** A detached launch's sync line: crib-monitor's report is a small JSON object. */
const SYNC_LINE_MAX = 4096;

if (!parentPort) throw new Error('spawn-thread-worker.ts runs only as a worker thread');
const port = parentPort;

/** execFile, answered as a reply: the exit code, whether the timeout killed it, and execFile's error message. */
function execReply(req: SpawnRequest & { exec: ExecOptions }): Promise<SpawnReply> {
  return new Promise((resolve) => {
    const { timeoutMs, killSignal = 'SIGKILL', maxBuffer, input, streamStdout } = req.exec;
    const child = execFile(req.file, req.args, { encoding: 'utf8', timeout: timeoutMs, killSignal, maxBuffer }, (err, stdout, stderr) => {
      if (!err) return resolve({ id: req.id, stdout, stderr, code: 0 });
      const code = typeof (err as { code?: unknown }).code === 'number' ? (err as { code: number }).code : null;
      resolve({ id: req.id, stdout, stderr, code, killed: (err as { killed?: boolean }).killed === true, error: err.message });
    });
    // Posted from this listener, so every chunk goes out before the reply execFile's callback posts.
    if (streamStdout) child.stdout?.on('data', (chunk: string) => port.postMessage({ id: req.id, stdoutChunk: chunk } satisfies SpawnChunk));
    if (input !== undefined) endChildInput(child, input);
  });
}

/**
 * A command that daemonises (crib-monitor): stdio 0-1 /dev/null, stderr and a sync pipe on fd 3.
 * Its exit is posted as soon as it is known (SpawnExited: the caller may act on it while the
 * detached process is still working), and the reply, always after it, carries the sync pipe's
 * first line as stdout. Both are bounded: the first DETACHED_STDERR_KEEP bytes of stderr are kept
 * (the rest read and dropped), and a sync line longer than SYNC_LINE_MAX fails the reply.
 */
async function detachedReply(req: SpawnRequest): Promise<SpawnReply> {
  const child = spawn(req.file, req.args, { stdio: ['ignore', 'ignore', 'pipe', 'pipe'], detached: true });
  const syncLine = readFirstLine(child.stdio[3] as Readable, SYNC_LINE_MAX).then(
    (line): { line: string; error?: string } => ({ line }),
    (err: unknown) => ({ line: '', error: err instanceof LineTooLongError ? `${req.file}'s sync pipe (fd 3): ${err.message}` : String(err) }),
  );
  // The detached process makes its stdio /dev/null at once, so stderr ends soon after the first
  // process exits, and holds everything either of them printed.
  const stderr = readBoundedToEnd(child.stderr, DETACHED_STDERR_KEEP);
  const { code, error } = await exitCode(child);
  const exited = { code, stderr: `${await stderr}${error ? error.message : ''}`.trim() };
  port.postMessage({ id: req.id, exited } satisfies SpawnExited);
  const sync = await syncLine;
  return { id: req.id, stdout: sync.line, stderr: exited.stderr, code, ...(sync.error !== undefined ? { error: sync.error } : {}) };
}

port.on('message', (req: SpawnRequest) => {
  void (async () => {
    let reply: SpawnReply;
    try {
      if (req.exec) {
        port.postMessage(await execReply(req as SpawnRequest & { exec: ExecOptions }));
        return;
      }
      if (req.detached) {
        port.postMessage(await detachedReply(req));
        return;
      }
      const child = spawn(req.file, req.args, { stdio: ['ignore', 'pipe', 'pipe'] });
      const [stdout, stderr, { code, error }] = await Promise.all([readToEnd(child.stdout), readToEnd(child.stderr), exitCode(child)]);
      reply = { id: req.id, stdout, stderr, code, error: error?.message };
    } catch (err) {
      reply = { id: req.id, stdout: '', stderr: '', code: null, error: err instanceof Error ? err.message : String(err) };
    }
    port.postMessage(reply);
  })();
});
