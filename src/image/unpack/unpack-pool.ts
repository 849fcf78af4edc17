// A bounded pool of unpack worker threads (unpack-worker.ts), and the main-thread handle of one
// layer unpacking on it. Decompression, tar parsing and the file writes of a pull run on these
// threads, so the daemon's event loop keeps answering RPCs while a 100 MB image unpacks, and
// several layers unpack at once, each into its own directory.
//
// Bounds: at most `maxJobs` jobs at once (image.max_concurrent_downloads: one per layer a pull
// fetches at once); a job beyond that waits, and its download waits with it (backpressure). The
// jobs share at most `maxThreads` threads, by default one per CPU the daemon may run on (and no
// more than maxJobs): a thread costs 50-70 ms of CPU to start, and a thread beyond the CPU count
// only takes turns with the others, so on a two-core node three layers unpack on two threads, one
// of them running two jobs side by side. A thread costs ~10 MiB of RSS, so one idle for `idleMs`
// (10 s) is terminated: an idle daemon has none, and the worker's modules are loaded on the first
// pull, not at start.
// A download's job has at most WINDOW compressed bytes in flight to its thread, which writes
// them to the blob's temp file as well as unpacking them (the content store's BlobSink).
import { createRequire } from 'node:module';
import { availableParallelism } from 'node:os';
import { dirname, join } from 'node:path';
import { pathToFileURL } from 'node:url';
import type { Worker } from 'node:worker_threads';
import { InternalError } from '../../errors.js';
import { log } from '../../log.js';
import type { BlobSink } from '../content-store.js';
import type { ByteBudget } from '../limits.js';
import type { ExtractOptions, ExtractResult } from './extract-layer.js';
import { NO_JOB, deserializeError, type FromWorker, type ToWorker } from './unpack-protocol.js';
import { PACKAGE_ROOT } from '../../package-root.js';
import { workerThreads } from '../../sys/lazy-module.js';
import { returnReadBuffers } from '../../sys/read-buffers.js';
import { isSoleView } from '../../sys/sole-view.js';

/**
 * Memory of the compressed chunks sent to a job's thread and not yet taken by its decompressor:
 * each chunk counts its whole buffer, so a read that filled a third of its 64 KiB buffer counts
 * 64 KiB. Counting only the bytes, a registry sending in small segments made a job hold up to
 * four times the window, and every pull's first seconds read into ~400 new buffers (their page
 * faults cost the event loop ~35 ms per 100 MB pull) where ~200 fill the windows.
 * 2 MiB, with reads of up to 1 MiB (registry/blob-http.ts), measured against 4 MiB in
 * bench/pull-ab.ts (synthetic image, 8 rounds, medians): wall 634 -> 564 ms, the daemon's CPU
 * 780 -> 710 ms (a cold pull reads its windows into memory never touched before, whose page
 * faults are the main thread's); 8 MiB took 605 -> 655 ms, 1 MiB 631 -> 594 ms.
 */
const WINDOW = 2 << 20;
/** Bytes per message to a thread. */
const BATCH = 256 << 10;
const DEFAULT_IDLE_MS = 10_000;

export type UnpackResult = ExtractResult;

/** A blob file on disk, or a download whose bytes the thread writes to the file named. */
export type UnpackSource = { file: string } | { download: string };

export interface LayerUnpackOptions extends Omit<ExtractOptions, 'what' | 'maxBytes' | 'maxEntries'> {
  what?: string;
  maxBytes?: number;
  maxEntries?: number;
  signal?: AbortSignal;
  /** The image's running total of uncompressed bytes (image.max_image_size). */
  budget?: ByteBudget;
}

/**
 * The worker's entry module. Built, it is the package's dist/image/unpack/unpack-worker.cjs, a
 * CommonJS bundle of its own (deploy/bundle-daemon.mjs: a worker starts sooner without the ES
 * module loader); run from source (vitest, tsx) it is the .ts file beside this one, which a worker
 * can only load with tsx's loader registered inside it first.
 */
function workerEntry(): URL {
  const here = import.meta.url;
  if (!here.endsWith('.ts')) return new URL('dist/image/unpack/unpack-worker.cjs', PACKAGE_ROOT);
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
  /** The jobs running on it. */
  jobs: Set<LayerUnpack>;
  idleTimer: NodeJS.Timeout | undefined;
}

export class UnpackPool {
  private readonly threads = new Set<Thread>();
  private readonly waiting: LayerUnpack[] = [];
  private nextId = 1;
  readonly maxThreads: number;

  constructor(readonly maxJobs: number, private readonly idleMs = DEFAULT_IDLE_MS,
    maxThreads = availableParallelism()) {
    if (!Number.isInteger(maxJobs) || maxJobs < 1) throw new RangeError(`unpack pool size ${maxJobs} is not a positive integer`);
    if (!Number.isInteger(maxThreads) || maxThreads < 1) throw new RangeError(`unpack thread count ${maxThreads} is not a positive integer`);
    this.maxThreads = Math.min(maxThreads, maxJobs);
  }

  /** Jobs on a thread now. */
  private get running(): number {
    let n = 0;
    for (const t of this.threads) n += t.jobs.size;
    return n;
  }

  /** Threads alive now (busy or idle), for tests and metrics. */
  get size(): number {
    return this.threads.size;
  }

  /**
   * Unpack a layer into `dir` (created if missing): from the blob `file`, or from a download: the
   * bytes given to the handle's write() and end(), which the thread also writes to the new file
   * `download` (the content store's temp file for the blob). On failure the caller removes `dir`
   * (and the download's file), after `result` has settled: the thread has stopped writing by then.
   */
  unpack(dir: string, source: UnpackSource, opts: LayerUnpackOptions = {}): LayerUnpack {
    const job = new LayerUnpack(this.nextId++, dir, source, opts, (j) => this.dequeue(j));
    this.waiting.push(job);
    this.schedule();
    return job;
  }

  /**
   * Start the threads `n` jobs about to come will run on (up to the bound), so their start-up
   * (tens of ms) overlaps a pull's manifest and config fetches.
   */
  warm(n: number): void {
    const want = Math.min(this.running + this.waiting.length + n, this.maxThreads);
    while (this.threads.size < want) this.idle(this.spawn());
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
    while (this.waiting.length > 0 && this.running < this.maxJobs) {
      const job = this.waiting.shift()!;
      const thread = this.threadFor();
      if (thread.idleTimer) clearTimeout(thread.idleTimer);
      thread.idleTimer = undefined;
      thread.jobs.add(job);
      thread.worker.ref();
      job.attach((m, transfer) => thread.worker.postMessage(m, transfer), () => this.release(thread, job));
    }
  }

  /** An idle thread, else a new one while under the bound, else the one with the fewest jobs. */
  private threadFor(): Thread {
    let least: Thread | undefined;
    for (const t of this.threads) {
      if (t.jobs.size === 0) return t;
      if (!least || t.jobs.size < least.jobs.size) least = t;
    }
    return !least || this.threads.size < this.maxThreads ? this.spawn() : least;
  }

  private spawn(): Thread {
    const worker = new (workerThreads().Worker)(workerEntry(), {
      // Bounds a runaway thread; the writer bounds its own bookkeeping to 64 MiB.
      resourceLimits: { maxOldGenerationSizeMb: 256 },
    });
    const thread: Thread = { worker, jobs: new Set(), idleTimer: undefined };
    this.threads.add(thread);
    worker.on('message', (m: FromWorker) => {
      if (m.t === 'warn' && m.id === NO_JOB) log.warn(m.fields, m.msg);
      else for (const job of thread.jobs) if (job.id === m.id) job.receive(m);
    });
    const died = (why: string): void => {
      if (!this.threads.delete(thread)) return;
      if (thread.idleTimer) clearTimeout(thread.idleTimer);
      // Its jobs hold no slot any more (only a live thread's count): each fails, and its release
      // (below) starts the next waiting job.
      for (const job of [...thread.jobs]) job.workerDied(why);
    };
    worker.on('error', (err) => {
      log.warn({ err }, 'unpack worker failed');
      died(err.message);
    });
    worker.on('exit', (code) => died(`exited with code ${code}`));
    return thread;
  }

  /** `job` is over (done, failed, or its thread died): its slot goes to the next job waiting. */
  private release(thread: Thread, job: LayerUnpack): void {
    thread.jobs.delete(job);
    if (this.threads.has(thread) && thread.jobs.size === 0) this.idle(thread);
    this.schedule();
  }

  private idle(thread: Thread): void {
    // An idle thread must not keep the process alive, and goes away if nothing needs it.
    thread.worker.unref();
    thread.idleTimer = setTimeout(() => {
      this.threads.delete(thread);
      void thread.worker.terminate();
    }, this.idleMs);
    thread.idleTimer.unref();
  }
}

/**
 * One layer unpacking on the pool, as the main thread sees it; for a download, also the sink the
 * content store writes the blob into.
 */
export class LayerUnpack implements BlobSink {
  readonly result: Promise<UnpackResult>;
  private settle!: { resolve(r: UnpackResult): void; reject(err: unknown): void };
  private post: ((m: ToWorker, transfer?: ArrayBuffer[]) => void) | undefined;
  private release: (() => void) | undefined;
  /** Messages for the thread before it is assigned. */
  private readonly outbox: { m: ToWorker; transfer?: ArrayBuffer[] }[] = [];
  private unacked = 0;
  /** Chunks written and not yet sent (about BATCH bytes). */
  private batch: Uint8Array[] = [];
  private batchLength = 0;
  private roomWaiters: (() => void)[] = [];
  private failure: Error | undefined;
  private settled = false;
  private ended = false;
  /** A download's blob digest, once the thread has the whole file synced. */
  private blobWritten: { resolve(digest: string): void; reject(err: unknown): void } | undefined;
  private readonly what: string;
  private readonly onAbort: () => void;

  constructor(readonly id: number, private readonly dir: string,
    private readonly source: UnpackSource,
    private readonly opts: LayerUnpackOptions, private readonly dequeue: (j: LayerUnpack) => void) {
    this.what = opts.what ?? `layer ${'file' in source ? source.file : dir}`;
    this.result = new Promise<UnpackResult>((resolve, reject) => (this.settle = { resolve, reject }));
    this.result.catch(() => undefined); // the owner awaits it; never an unhandled rejection meanwhile
    this.onAbort = () => this.abort(opts.signal!.reason instanceof Error ? opts.signal!.reason : new Error(String(opts.signal!.reason)));
    if (opts.signal?.aborted) queueMicrotask(this.onAbort);
    else opts.signal?.addEventListener('abort', this.onAbort, { once: true });
  }

  /**
   * Hand the next compressed bytes of a download to the thread; `chunk` is the job's from then on
   * (it may be moved to the thread). Resolves at once while the window has room, later when the
   * thread has caught up; rejects once the job has failed.
   */
  write(chunk: Buffer): Promise<void> | undefined {
    if (this.failure) return Promise.reject(this.failure);
    if (this.ended) return Promise.reject(new Error(`${this.what}: write after end`));
    // Network chunks are 16 KiB-1 MiB, each read into a buffer of its own: such a chunk moves to the
    // thread as it is, with no copy and no new allocation (copying into fresh batch buffers cost
    // a 100 MB pull ~80 ms of the event loop, and their garbage more). Any other view into a
    // larger buffer is copied: moving that buffer would take the bytes around the view from their
    // owner.
    if (chunk.length > 0) {
      const sent = isSoleView(chunk) ? chunk : new Uint8Array(chunk);
      this.batch.push(sent);
      this.batchLength += chunk.length;
      // The thread acknowledges the same measure (unpack-protocol.ts, 'ack').
      this.unacked += sent.buffer.byteLength;
      if (this.batchLength >= BATCH) this.flushBatch();
    }
    if (this.unacked <= WINDOW) return undefined;
    return new Promise<void>((resolve) => this.roomWaiters.push(resolve)).then(() => {
      if (this.failure) throw this.failure;
    });
  }

  /**
   * Every byte of the download was written: the thread syncs and closes the blob file and
   * finishes the layer. Resolves to the blob's sha256 digest once the file is synced (before the
   * layer is unpacked: `result` says when that is); rejects if the job fails first.
   */
  end(): Promise<string> {
    if (this.failure) return Promise.reject(this.failure);
    if (this.ended) return Promise.reject(new Error(`${this.what}: ended twice`));
    this.ended = true;
    const written = new Promise<string>((resolve, reject) => (this.blobWritten = { resolve, reject }));
    this.flushBatch();
    this.send({ t: 'end', id: this.id });
    return written;
  }

  private flushBatch(): void {
    if (this.batch.length === 0) return;
    const chunks = this.batch;
    this.batch = [];
    this.batchLength = 0;
    this.send({ t: 'data', id: this.id, chunks }, [...new Set(chunks.map((c) => c.buffer as ArrayBuffer))]);
  }

  /** Stop the job; `result` rejects with `err` once the thread has stopped writing. */
  abort(err: Error): void {
    if (this.settled || this.failure) return;
    this.fail(err);
  }

  /** Abort, and resolve once the thread no longer writes the layer's dir or the blob file. */
  async stop(err: Error): Promise<void> {
    this.abort(err);
    await this.result.catch(() => undefined);
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
    post({ t: 'start', id: this.id, dir: this.dir, source: this.source, opts });
    for (const { m, transfer } of this.outbox.splice(0)) post(m, transfer);
  }

  receive(m: FromWorker): void {
    if (m.id !== this.id) return;
    switch (m.t) {
      case 'ack':
        if (m.buffers) returnReadBuffers(m.buffers);
        this.unacked -= m.n;
        if (this.unacked <= WINDOW) this.wakeWriters();
        return;
      case 'blob':
        this.blobWritten?.resolve(m.digest);
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
      this.blobWritten?.reject(failure);
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
