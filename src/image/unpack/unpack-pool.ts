// A bounded pool of unpack worker threads (unpack-worker.ts), and the main-thread handle of one
// layer unpacking on it. Decompression, tar parsing and the file writes of a pull run on these
// threads, so the daemon's event loop keeps answering RPCs while a 100 MB image unpacks, and
// several layers unpack at once, each into its own directory.
//
// Bounds: at most `maxWorkers` threads (image.max_concurrent_downloads: one per layer a pull
// fetches at once); a job beyond that waits for a thread, and its download waits with it
// (backpressure). A thread costs ~10 MiB of RSS, so one idle for `idleMs` (10 s) is terminated:
// an idle daemon has none, and the worker's modules are loaded on the first pull, not at start.
// A streamed job has at most WINDOW compressed bytes in flight to its thread.
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { Worker } from 'node:worker_threads';
import { InternalError } from '../../errors.js';
import { log } from '../../log.js';
import type { ByteBudget } from '../limits.js';
import type { ExtractOptions, ExtractResult } from './extract-layer.js';
import { deserializeError, type FromWorker, type ToWorker } from './unpack-protocol.js';

/** Compressed bytes sent to a job's thread and not yet taken by its decompressor. */
const WINDOW = 4 << 20;
/** Bytes per message to a thread. */
const BATCH = 256 << 10;
const DEFAULT_IDLE_MS = 10_000;

export type UnpackResult = ExtractResult;

export interface LayerUnpackOptions extends Omit<ExtractOptions, 'what' | 'maxBytes' | 'maxEntries'> {
  what?: string;
  maxBytes?: number;
  maxEntries?: number;
  signal?: AbortSignal;
  /** The image's running total of uncompressed bytes (image.max_image_size). */
  budget?: ByteBudget;
}

/**
 * The worker's entry module. Built, it is unpack-worker.js beside this file; run from source
 * (vitest, tsx) it is the .ts file, which a worker can only load with tsx's loader registered
 * inside it first.
 */
function workerEntry(): URL {
  const here = import.meta.url;
  if (!here.endsWith('.ts')) return new URL('./unpack-worker.js', here);
  // The ESM build of tsx's API (require.resolve would give the CommonJS one).
  const tsxDir = dirname(createRequire(here).resolve('tsx/package.json'));
  const tsx = pathToFileURL(join(tsxDir, 'dist/esm/api/index.mjs')).href;
  const entry = new URL('./unpack-worker.ts', here).href;
  const boot = `const api = await import(${JSON.stringify(tsx)}); api.register(); ` +
    `await import(${JSON.stringify(entry)});`;
  return new URL(`data:text/javascript,${encodeURIComponent(boot)}`);
}

interface Thread {
  worker: Worker;
  job: LayerUnpack | undefined;
  idleTimer: NodeJS.Timeout | undefined;
}

export class UnpackPool {
  private readonly threads = new Set<Thread>();
  private readonly waiting: LayerUnpack[] = [];
  private nextId = 1;

  constructor(readonly maxWorkers: number, private readonly idleMs = DEFAULT_IDLE_MS) {
    if (!Number.isInteger(maxWorkers) || maxWorkers < 1) throw new RangeError(`unpack pool size ${maxWorkers} is not a positive integer`);
  }

  /** Threads alive now (busy or idle), for tests and metrics. */
  get size(): number {
    return this.threads.size;
  }

  /**
   * Unpack a layer into `dir` (created if missing): from the blob `file`, or, with 'stream', from
   * the bytes given to the handle's write() and end(). On failure the caller removes `dir`, after
   * `result` has settled (the thread has stopped writing by then).
   */
  unpack(dir: string, source: { file: string } | 'stream', opts: LayerUnpackOptions = {}): LayerUnpack {
    const job = new LayerUnpack(this.nextId++, dir, source === 'stream' ? undefined : source.file, opts, (j) => this.dequeue(j));
    this.waiting.push(job);
    this.schedule();
    return job;
  }

  /**
   * Flush the filesystem holding `dir` (syncfs) on a pool thread: on the event loop the call
   * would stall every RPC for as long as the disk takes to write a pull's hundreds of MB.
   */
  async syncfs(dir: string): Promise<void> {
    const job = new LayerUnpack(this.nextId++, dir, undefined, { what: `the filesystem of ${dir}` }, (j) => this.dequeue(j), true);
    this.waiting.push(job);
    this.schedule();
    await job.result;
  }

  /**
   * Start threads for `n` jobs about to come (up to the bound), so their start-up (loading the
   * worker's modules, tens of ms) overlaps a pull's manifest and config fetches.
   */
  warm(n: number): void {
    const idle = [...this.threads].filter((t) => t.job === undefined).length;
    for (let i = idle + this.waiting.length; i < n && this.threads.size < this.maxWorkers; i++) {
      this.release(this.spawn());
    }
  }

  /** Terminate every thread (jobs still running fail). */
  async close(): Promise<void> {
    await Promise.all([...this.threads].map((t) => t.worker.terminate()));
  }

  private dequeue(job: LayerUnpack): void {
    const i = this.waiting.indexOf(job);
    if (i >= 0) this.waiting.splice(i, 1);
  }

  private schedule(): void {
    while (this.waiting.length > 0) {
      let thread = [...this.threads].find((t) => t.job === undefined);
      if (!thread) {
        if (this.threads.size >= this.maxWorkers) return;
        thread = this.spawn();
      }
      const job = this.waiting.shift()!;
      if (thread.idleTimer) clearTimeout(thread.idleTimer);
      thread.idleTimer = undefined;
      thread.job = job;
      thread.worker.ref();
      job.attach((m, transfer) => thread.worker.postMessage(m, transfer), () => this.release(thread));
    }
  }

  private spawn(): Thread {
    const worker = new Worker(workerEntry(), {
      // Bounds a runaway thread; the writer bounds its own bookkeeping to 64 MiB.
      resourceLimits: { maxOldGenerationSizeMb: 256 },
    });
    const thread: Thread = { worker, job: undefined, idleTimer: undefined };
    this.threads.add(thread);
    worker.on('message', (m: FromWorker) => thread.job?.receive(m));
    const died = (why: string): void => {
      if (!this.threads.delete(thread)) return;
      if (thread.idleTimer) clearTimeout(thread.idleTimer);
      const job = thread.job;
      thread.job = undefined;
      job?.workerDied(why);
      this.schedule();
    };
    worker.on('error', (err) => {
      log.warn({ err }, 'unpack worker failed');
      died(err.message);
    });
    worker.on('exit', (code) => died(`exited with code ${code}`));
    return thread;
  }

  private release(thread: Thread): void {
    thread.job = undefined;
    if (!this.threads.has(thread)) return;
    // An idle thread must not keep the process alive, and goes away if nothing needs it.
    thread.worker.unref();
    thread.idleTimer = setTimeout(() => {
      this.threads.delete(thread);
      void thread.worker.terminate();
    }, this.idleMs);
    thread.idleTimer.unref();
    this.schedule();
  }
}

/** One layer unpacking on the pool, as the main thread sees it. */
export class LayerUnpack {
  readonly result: Promise<UnpackResult>;
  private settle!: { resolve(r: UnpackResult): void; reject(err: unknown): void };
  private post: ((m: ToWorker, transfer?: ArrayBuffer[]) => void) | undefined;
  private release: (() => void) | undefined;
  /** Messages for the thread before it is assigned. */
  private readonly outbox: { m: ToWorker; transfer?: ArrayBuffer[] }[] = [];
  private unacked = 0;
  /** Bytes written and not yet sent (up to BATCH). */
  private batch: Uint8Array | undefined;
  private batchLength = 0;
  private roomWaiters: (() => void)[] = [];
  private failure: Error | undefined;
  private settled = false;
  private ended = false;
  private readonly what: string;
  private readonly onAbort: () => void;

  constructor(private readonly id: number, private readonly dir: string, private readonly file: string | undefined,
    private readonly opts: LayerUnpackOptions, private readonly dequeue: (j: LayerUnpack) => void,
    /** A flush of `dir`'s filesystem rather than an unpack (UnpackPool.syncfs). */
    private readonly syncOnly = false) {
    this.what = opts.what ?? `layer ${file ?? dir}`;
    this.result = new Promise<UnpackResult>((resolve, reject) => (this.settle = { resolve, reject }));
    this.result.catch(() => undefined); // the owner awaits it; never an unhandled rejection meanwhile
    this.onAbort = () => this.abort(opts.signal!.reason instanceof Error ? opts.signal!.reason : new Error(String(opts.signal!.reason)));
    if (opts.signal?.aborted) queueMicrotask(this.onAbort);
    else opts.signal?.addEventListener('abort', this.onAbort, { once: true });
  }

  /**
   * Hand the next compressed bytes to the thread (a 'stream' job). Resolves at once while the
   * window has room, later when the thread has caught up; rejects once the job has failed.
   */
  write(chunk: Buffer): Promise<void> | undefined {
    if (this.failure) return Promise.reject(this.failure);
    if (this.ended) return Promise.reject(new Error(`${this.what}: write after end`));
    // Network chunks are 16-64 KiB; they go over in batches, a copy the thread takes over (the
    // caller still writes `chunk` to the blob, and cloning a view would copy its whole backing
    // buffer, often a pooled slab much larger than the chunk).
    for (let off = 0; off < chunk.length;) {
      this.batch ??= new Uint8Array(BATCH);
      const n = Math.min(BATCH - this.batchLength, chunk.length - off);
      this.batch.set(chunk.subarray(off, off + n), this.batchLength);
      this.batchLength += n;
      off += n;
      if (this.batchLength === BATCH) this.flushBatch();
    }
    this.unacked += chunk.length;
    if (this.unacked <= WINDOW) return undefined;
    return new Promise<void>((resolve) => this.roomWaiters.push(resolve)).then(() => {
      if (this.failure) throw this.failure;
    });
  }

  /** All bytes were written (and the blob verified): the thread finishes the layer. */
  end(): void {
    if (this.ended || this.failure) return;
    this.ended = true;
    this.flushBatch();
    this.send({ t: 'end', id: this.id });
  }

  private flushBatch(): void {
    if (!this.batch || this.batchLength === 0) return;
    const data = this.batchLength === BATCH ? this.batch : this.batch.slice(0, this.batchLength);
    this.batch = undefined;
    this.batchLength = 0;
    this.send({ t: 'data', id: this.id, chunk: data }, [data.buffer as ArrayBuffer]);
  }

  /** Stop the job; `result` rejects with `err` once the thread has stopped writing. */
  abort(err: Error): void {
    if (this.settled || this.failure) return;
    this.fail(err);
  }

  private fail(err: Error): void {
    this.failure ??= err;
    this.wakeWriters();
    if (!this.post) {
      // Never started: nothing was written.
      this.dequeue(this);
      this.finish();
      return;
    }
    this.post({ t: 'abort', id: this.id, reason: err.message });
  }

  /** Called by the pool when a thread takes the job. */
  attach(post: (m: ToWorker, transfer?: ArrayBuffer[]) => void, release: () => void): void {
    this.post = post;
    this.release = release;
    const { signal: _signal, budget: _budget, ...rest } = this.opts;
    const opts: ExtractOptions = {
      ...rest,
      what: this.what,
      maxBytes: this.opts.maxBytes ?? Number.MAX_SAFE_INTEGER,
      maxEntries: this.opts.maxEntries ?? Number.MAX_SAFE_INTEGER,
    };
    if (this.syncOnly) {
      post({ t: 'syncfs', id: this.id, dir: this.dir });
      return;
    }
    post({ t: 'start', id: this.id, dir: this.dir, ...(this.file !== undefined ? { file: this.file } : {}), opts });
    for (const { m, transfer } of this.outbox.splice(0)) post(m, transfer);
  }

  receive(m: FromWorker): void {
    if (m.id !== this.id) return;
    switch (m.t) {
      case 'ack':
        this.unacked -= m.n;
        if (this.unacked <= WINDOW) this.wakeWriters();
        return;
      case 'bytes':
        try {
          this.opts.budget?.add(m.n);
        } catch (err) {
          this.fail(err as Error);
        }
        return;
      case 'done':
        this.finish(m.result);
        return;
      case 'synced':
        this.finish({ diffId: '', size: 0, compression: 'none', entries: 0, fileBytes: 0, whiteouts: 0 });
        return;
      case 'warn':
        log.warn({ layer: this.what, ...m.fields }, m.msg);
        return;
      case 'fail': {
        // Our own abort comes back as the worker's AbortError: report why we aborted.
        this.finish(undefined, this.failure ?? deserializeError(m.error));
        return;
      }
    }
  }

  /** The thread running this job is gone (a crash, out of memory); it writes no more. */
  workerDied(why: string): void {
    this.release = undefined;
    this.finish(undefined, this.failure ?? new InternalError(`the unpack thread for ${this.what} ${why}`));
  }

  private send(m: ToWorker, transfer?: ArrayBuffer[]): void {
    if (this.post) this.post(m, transfer);
    else this.outbox.push({ m, transfer });
  }

  private wakeWriters(): void {
    for (const w of this.roomWaiters.splice(0)) w();
  }

  private finish(result?: UnpackResult, err?: Error): void {
    if (this.settled) return;
    this.settled = true;
    this.opts.signal?.removeEventListener('abort', this.onAbort);
    this.outbox.length = 0;
    const release = this.release;
    this.release = undefined;
    release?.();
    const failure = err ?? this.failure;
    if (failure) {
      this.failure = failure;
      this.wakeWriters();
      this.settle.reject(failure);
    } else {
      this.settle.resolve(result!);
    }
  }
}

let shared: UnpackPool | undefined;

/** The process's pool, made on first use (a pull or unpackLayer). */
export function sharedUnpackPool(maxWorkers = 3): UnpackPool {
  shared ??= new UnpackPool(maxWorkers);
  return shared;
}
