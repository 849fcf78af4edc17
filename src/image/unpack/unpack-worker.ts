// The unpack worker thread: runs extractLayer for the pool (unpack-pool.ts), for each job it is given
// (several may run side by side, interleaved chunk by chunk).
// Decompression, tar parsing and the file writes all happen here, and a download's blob file is
// written and hashed here too (blob-file.ts), so a pull keeps the daemon's event loop free for
// RPCs. The messages are the pool's protocol (unpack-protocol.ts).
import { parentPort } from 'node:worker_threads';
import { setThreadNice } from '../../sys/libc.js';
import { BlobFile } from './blob-file.js';
import { extractLayer } from './extract-layer.js';
import { NO_JOB, serializeError, type FromWorker, type ToWorker } from './unpack-protocol.js';

if (!parentPort) throw new Error('unpack-worker.ts runs as a worker thread (see unpack-pool.ts)');
const port = parentPort;
const post = (m: FromWorker, transfer?: ArrayBuffer[]): void => port.postMessage(m, transfer);

/**
 * The nice value of unpack threads. A pull keeps every unpack thread busy (up to three on a
 * two-core node), and at the event loop's priority they held its core for tens of ms at a time:
 * bench:pull's synthetic image, daemon loop delay during the pull p99 16 ms, max 28 ms; at nice
 * 10, p99 10 ms, max 24 ms (the registry and the client share the two cores too). At 10 the
 * kernel gives the event loop about nine times their share of a contended core, and a pull the
 * CPU that RPCs and containers leave idle.
 */
const UNPACK_NICE = 10;
try {
  setThreadNice(UNPACK_NICE);
} catch (err) {
  post({ t: 'warn', id: NO_JOB, fields: { err: (err as Error).message }, msg: 'unpack thread left at normal priority' });
}

/**
 * The compressed bytes of a streamed job, as they arrive. The pool sends at most its window of
 * chunk memory that we have not acknowledged, so this queue is bounded; a chunk is acknowledged when
 * the decompressor takes it. A chunk the decompressor is done with (release) goes back with the
 * next acknowledgement: every data chunk arrives in a buffer of its own, moved here, which no
 * one reads once the chunk is written to the blob file and inflated.
 */
class ChunkQueue implements AsyncIterable<Buffer> {
  private readonly chunks: Buffer[] = [];
  private spent: ArrayBuffer[] = [];
  private ended = false;
  private failure: Error | undefined;
  private wake: (() => void) | undefined;

  constructor(private readonly onTaken: (n: number, spent: ArrayBuffer[]) => void) {}

  /** The decompressor has read `chunk` for good. */
  release(chunk: Buffer): void {
    const buf = chunk.buffer;
    // Listed once: a buffer twice in a transfer list fails the whole message.
    if (buf instanceof ArrayBuffer && buf.byteLength > 0 && !this.spent.includes(buf)) this.spent.push(buf);
  }

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

  /** Drop the chunks nobody took; the memory they held (heldBy). */
  drop(): number {
    const n = this.chunks.reduce((sum, c) => sum + heldBy(c), 0);
    this.chunks.length = 0;
    return n;
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
        const spent = this.spent;
        this.spent = [];
        this.onTaken(heldBy(chunk), spent);
        yield chunk;
        continue;
      }
      if (this.ended) return;
      await new Promise<void>((resolve) => (this.wake = resolve));
    }
  }
}

/** The memory a data chunk holds, as the pool counts its window: its whole buffer, its own. */
function heldBy(chunk: Buffer): number {
  return chunk.buffer.byteLength;
}

interface Job {
  id: number;
  abort: AbortController;
  /** A download's bytes, as they arrive; its blob file. */
  download?: {
    queue: ChunkQueue;
    blob: BlobFile;
    /** Every byte is in. */
    ended: boolean;
    /** Why the unpack failed before every byte was in: reported once the digest is known. */
    held?: { err: unknown };
  };
}

const jobs = new Map<number, Job>();

port.on('message', (m: ToWorker) => {
  switch (m.t) {
    case 'start': {
      const job: Job = { id: m.id, abort: new AbortController() };
      if ('download' in m.source) {
        let blob: BlobFile;
        try {
          blob = new BlobFile(m.source.download);
        } catch (err) {
          post({ t: 'fail', id: m.id, error: serializeError(err) });
          return;
        }
        job.download = {
          queue: new ChunkQueue((n, spent) => post({ t: 'ack', id: m.id, n, ...(spent.length > 0 ? { buffers: spent } : {}) }, spent)),
          blob, ended: false,
        };
      }
      jobs.set(m.id, job);
      const queue = job.download?.queue;
      const input = queue ? { chunks: queue, release: (c: Buffer) => queue.release(c) } : { file: (m.source as { file: string }).file };
      extractLayer(input, m.dir, m.opts, {
        signal: job.abort.signal,
        onBytes: (n) => post({ t: 'bytes', id: m.id, n }),
        warn: (fields, msg) => post({ t: 'warn', id: m.id, fields, msg }),
      }).then(
        (result) => finish(job, { t: 'done', id: m.id, result }),
        (err: unknown) => unpackFailed(job, err),
      );
      return;
    }
    case 'data': {
      const job = jobs.get(m.id);
      if (!job?.download || job.abort.signal.aborted) return;
      let taken = 0;
      for (const c of m.chunks) {
        const chunk = Buffer.from(c.buffer, c.byteOffset, c.byteLength);
        try {
          job.download.blob.write(chunk);
        } catch (err) {
          stop(job, err as Error);
          return;
        }
        if (job.download.held) taken += heldBy(chunk);
        else job.download.queue.push(chunk);
      }
      // Nothing unpacks the bytes any more: they are taken once written.
      if (taken > 0) post({ t: 'ack', id: m.id, n: taken });
      return;
    }
    case 'end': {
      const job = jobs.get(m.id);
      if (!job?.download || job.abort.signal.aborted) return;
      job.download.ended = true;
      try {
        post({ t: 'blob', id: m.id, digest: job.download.blob.finish() });
      } catch (err) {
        stop(job, err as Error);
        return;
      }
      const held = job.download.held;
      if (held) finish(job, failure(job, held.err));
      else job.download.queue.end();
      return;
    }
    case 'abort': {
      const job = jobs.get(m.id);
      if (job) stop(job, Object.assign(new Error(m.reason), { name: 'AbortError' }));
      return;
    }
  }
});

function failure(job: Job, err: unknown): FromWorker {
  return { t: 'fail', id: job.id, error: serializeError(err) };
}

/** The job is over: say how, and let go of its blob file. */
function finish(job: Job, outcome: FromWorker): void {
  post(outcome);
  job.download?.blob.close();
  jobs.delete(job.id);
}

/**
 * The extraction failed. A download whose bytes do not unpack may not be the blob's bytes at
 * all (corrupted on the way, or sent by a hostile registry), and then the digest is what is
 * wrong, not the layer: the failure waits until every byte is in and the blob's digest has been
 * reported (the content store checks it first), the rest of the bytes only written and hashed.
 */
function unpackFailed(job: Job, err: unknown): void {
  // A job stopped here (its blob file could not be written, or the pool aborted it) fails with
  // why it was stopped, not with the AbortError the extraction saw.
  if (job.abort.signal.aborted) finish(job, failure(job, job.abort.signal.reason));
  else if (job.download && !job.download.ended) {
    job.download.held = { err };
    // The pool counts what it sent until it is taken: the unread chunks are taken now.
    const unread = job.download.queue.drop();
    if (unread > 0) post({ t: 'ack', id: job.id, n: unread });
  } else finish(job, failure(job, err));
}

/** End a job early: its extraction fails with `reason`, and reports it. */
function stop(job: Job, reason: Error): void {
  const held = job.download?.held !== undefined;
  job.abort.abort(reason);
  job.download?.queue.fail(reason);
  // An extraction that failed already will not report again.
  if (held) finish(job, failure(job, reason));
}
