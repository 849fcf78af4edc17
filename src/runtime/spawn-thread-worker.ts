// The spawn thread's side (spawn-thread.ts): runs one command per message, reads its stdout and
// stderr to their end, and posts them back with its exit code.
import { spawn } from 'node:child_process';
import { parentPort } from 'node:worker_threads';
import { exitCode, readToEnd } from './monitor-launch.js';
import type { SpawnReply, SpawnRequest } from './spawn-thread.js';

const port = parentPort;
if (!port) throw new Error('spawn-thread-worker.ts runs only as a worker thread');

port.on('message', (req: SpawnRequest) => {
  void (async () => {
    let reply: SpawnReply;
    try {
      const child = spawn(req.file, req.args, { stdio: ['ignore', 'pipe', 'pipe'] });
      const [stdout, stderr, { code, error }] = await Promise.all([readToEnd(child.stdout), readToEnd(child.stderr), exitCode(child)]);
      reply = { id: req.id, stdout, stderr, code, error: error?.message };
    } catch (err) {
      reply = { id: req.id, stdout: '', stderr: '', code: null, error: err instanceof Error ? err.message : String(err) };
    }
    port.postMessage(reply);
  })();
});
