// The unpack worker thread: runs extractLayer for the pool (unpack-pool.ts), one job at a time.
// Decompression, tar parsing and the file writes all happen here, so a pull keeps the daemon's
// event loop free for RPCs. The messages are the pool's protocol (unpack-protocol.ts).
import { open } from 'node:fs/promises';
import { parentPort } from 'node:worker_threads';
import { fsError } from '../../errors.js';
import { syncfs } from '../../sys/libc.js';
import { extractLayer } from './extract-layer.js';
import { serializeError, type FromWorker, type ToWorker } from './unpack-protocol.js';

if (!parentPort) throw new Error('unpack-worker.ts runs as a worker thread (see unpack-pool.ts)');
const port = parentPort;
const post = (m: FromWorker): void => port.postMessage(m);

/**
 * The compressed bytes of a streamed job, as they arrive. The pool sends at most its window of
 * bytes that we have not acknowledged, so this queue is bounded; a chunk is acknowledged when
 * the decompressor takes it.
 */
class ChunkQueue implements AsyncIterable<Buffer> {
  private readonly chunks: Buffer[] = [];
  private ended = false;
  private failure: Error | undefined;
  private wake: (() => void) | undefined;

  constructor(private readonly onTaken: (n: number) => void) {}

  push(chunk: Buffer): void {
    this.chunks.push(chunk);
    this.notify();
  }

  end(): void {
    this.ended = true;
    this.notify();
  }

  fail(err: Error): void {
    this.failure = err;
    this.notify();
  }

  private notify(): void {
    const w = this.wake;
    this.wake = undefined;
    w?.();
  }

  async *[Symbol.asyncIterator](): AsyncGenerator<Buffer> {
    for (;;) {
      if (this.failure) throw this.failure;
      const chunk = this.chunks.shift();
      if (chunk) {
        this.onTaken(chunk.length);
        yield chunk;
        continue;
      }
      if (this.ended) return;
      await new Promise<void>((resolve) => (this.wake = resolve));
    }
  }
}

interface Job {
  abort: AbortController;
  queue?: ChunkQueue;
}

const jobs = new Map<number, Job>();

port.on('message', (m: ToWorker) => {
  switch (m.t) {
    case 'start': {
      const job: Job = { abort: new AbortController() };
      if (m.file === undefined) job.queue = new ChunkQueue((n) => post({ t: 'ack', id: m.id, n }));
      jobs.set(m.id, job);
      const input = m.file !== undefined ? { file: m.file } : { chunks: job.queue! };
      extractLayer(input, m.dir, m.opts, {
        signal: job.abort.signal,
        onBytes: (n) => post({ t: 'bytes', id: m.id, n }),
        warn: (fields, msg) => post({ t: 'warn', id: m.id, fields, msg }),
      }).then(
        (result) => post({ t: 'done', id: m.id, result }),
        (err: unknown) => post({ t: 'fail', id: m.id, error: serializeError(err) }),
      ).finally(() => jobs.delete(m.id));
      return;
    }
    case 'syncfs':
      flush(m.dir).then(
        () => post({ t: 'synced', id: m.id }),
        (err: unknown) => post({ t: 'fail', id: m.id, error: serializeError(fsError(err, m.dir, 'syncfs')) }),
      );
      return;
    case 'data':
      jobs.get(m.id)?.queue?.push(Buffer.from(m.chunk.buffer, m.chunk.byteOffset, m.chunk.byteLength));
      return;
    case 'end':
      jobs.get(m.id)?.queue?.end();
      return;
    case 'abort': {
      const job = jobs.get(m.id);
      if (!job) return;
      const reason = Object.assign(new Error(m.reason), { name: 'AbortError' });
      job.abort.abort(reason);
      job.queue?.fail(reason);
      return;
    }
  }
});

async function flush(dir: string): Promise<void> {
  const fh = await open(dir, 'r');
  try {
    syncfs(fh.fd);
  } finally {
    await fh.close();
  }
}
