// The spawn thread's side (spawn-thread.ts): runs one command per message, reads its stdout and
// stderr to their end, and posts them back with its exit code (with execFile and its bounds for
// execFileOnThread's requests).
import { execFile, spawn } from 'node:child_process';
import { parentPort } from 'node:worker_threads';
import { endChildInput } from './child-input.js';
import { exitCode, readToEnd } from './child-output.js';
import type { ExecOptions, SpawnChunk, SpawnReply, SpawnRequest } from './spawn-thread.js';

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

port.on('message', (req: SpawnRequest) => {
  void (async () => {
    let reply: SpawnReply;
    try {
      if (req.exec) {
        port.postMessage(await execReply(req as SpawnRequest & { exec: ExecOptions }));
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
