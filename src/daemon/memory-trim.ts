// Gives memory back to the kernel once the daemon has done some work. Pulls and bursts of RPCs
// leave freed memory in glibc's malloc arenas (Node's Buffers, TLS, zlib and the worker threads
// all allocate there), and glibc returns it only from the top of the main arena: measured
// (issue 14), malloc_trim(0) after a pull and 10 pods gave back 4-6 MiB of the daemon's RSS in
// 1-2 ms.
//
// V8's heap: a burst of pods leaves its garbage in the old generation, and with no allocation
// after it nothing collects it. V8's memory reducer shrinks the heap only 8 s or more after a
// full collection, and never when the burst needed none: a daemon idle after 100 pods started
// and removed held 10 MiB of garbage and 2.5 MiB of freed Buffers until then. A quiet trim
// therefore first has V8 begin its incremental collection for memory (sys/libc.ts shrinkHeap).
// bench/daemon-memory.ts, N=3, 100 pods, RSS 3 s after each stage, median / p95, before -> after:
// fresh 58.0 / 58.1 -> 56.9 / 57.1 MiB, after the pods' churn 78.7 / 80.6 -> 76.9 / 77.6, with
// 100 pods 72.9 / 78.9 -> 69.8 / 69.9. A plain full collection (`gc()`, --expose-gc) frees the
// garbage but keeps the pages (with 100 pods about 70.3 MiB) and pauses the event loop for all of it.
// The collection ends after that trim has begun: the malloc memory it frees (dead Buffers) goes
// back with the late trim.
// The incremental collection keeps what V8 holds for its next allocations: the young
// generation's pages, touched through by a pull, and the free pages it pools for reuse. A late
// trim that finds the daemon quiet all along (no call for 15 s or more) therefore first releases
// the heap: V8's full collections for low memory (sys/libc.ts releaseHeap), which return those
// too. They pause the event loop once per quiet spell, for 12 ms in a fresh daemon, 13-19 ms
// after six 100 MB pulls and 28 ms with 100 pods, and never while kubelet polls (its calls keep
// the late trim from running). Idle 20 s after those pulls, two runs each, the daemon's RSS was
// 60.8 and 59.6 MiB without and 58.8 and 58.7 with it; bench/daemon-memory.ts read 20 s after
// each stage, N=2, 100 pods, without -> with: after a pull and 100 pods started and removed
// 66.0 -> 61.7 MiB, with 100 pods 66.2 -> 63.2, fresh 54.1 -> 53.8.
//
// A quiet spell that comes round on a period (a stats listing every 10 s and nothing else, as
// kubelet asks when its relists come from events, bench:stats' pattern) shrank the heap at every
// spell: a compacting collection each time, whose final pause fell on the next listing or on the
// read-ahead before it, for memory the next listing took back. So a quiet trim shrinks the heap
// only after work (any call but the reads a node makes on a period whatever happens: listings,
// statuses, stats, exec probes), or when V8's heap grew heapGrowthBytes since the quiet trim
// before: after a pull or pods started or removed, not after one more listing. What a periodic
// pattern leaves is the late trim's, once quiet for 15 s. bench:stats (200 containers, a listing
// every 2.1 s), the daemon beside one without this, in the same slots: with no pods replaced,
// major collections 5.2 -> 0.4 ms a period, the daemon's CPU 103 -> 74 ms a second, and its own
// work holding the event loop between listings p95 8.1 -> 4.3 ms, max 22.6 -> 4.9; with 10 pods
// replaced every 8.4 s (work), two runs, 5.2 -> 2.3 and 4.9 -> 2.9 ms a period, 139 -> 121 and
// 140 -> 123 ms a second. bench/daemon-memory.ts (a pull and 20 pods, N=3): RSS unchanged.
//
// When: once the daemon has been quiet for `quietMs` after some activity (or, when kubelet's
// polling never lets it be quiet, at most `maxDelayMs` after it); then once more `lateMs` later,
// for the memory that threads free when they end after their own idle time (the unpack pool
// ends an idle thread after 10 s). A unary call in flight
// is activity: a trim that began during a pull took the pull's freshly freed memory, which it
// then faulted in again.
//
// How: off the event loop. After a 100 MB pull, malloc_trim walked the arenas' free chunks for
// 7-209 ms (an madvise and a TLB shootdown per range); on the event loop every RPC waited behind
// it. On a thread of libuv's pool the loop runs on, held only where it allocates from an arena
// while that arena is being trimmed.

export interface MemoryTrimOptions {
  /** How long without activity counts as quiet. */
  quietMs: number;
  /** The longest a trim waits after the activity that asked for it, quiet or not. */
  maxDelayMs: number;
  /** The second trim, this long after the first. */
  lateMs: number;
  /** Returns free malloc memory to the kernel, off the event loop (sys/libc.ts mallocTrim). */
  trim: () => Promise<unknown>;
  /**
   * Begins a collection that shrinks V8's heap (sys/libc.ts shrinkHeap), with a trim that comes
   * when the daemon is quiet after work, or after reads alone once V8's heap grew
   * heapGrowthBytes since the quiet trim before.
   */
  shrinkHeap: () => void;
  /** The size of V8's heap, bytes (process.memoryUsage().heapTotal). */
  heapBytes: () => number;
  /**
   * How much larger V8's heap must be than at the quiet trim before for a quiet trim after reads
   * alone to shrink it.
   */
  heapGrowthBytes: number;
  /**
   * V8's full collections for low memory, done when it returns (sys/libc.ts releaseHeap), with a
   * late trim that finds the daemon still quiet.
   */
  releaseHeap: () => void;
}

export class MemoryTrim {
  private timer: NodeJS.Timeout | undefined;
  private late: NodeJS.Timeout | undefined;
  private firstActivity = 0;
  private lastActivity = 0;
  /** Unary calls in flight. */
  private calls = 0;
  private trimming = false;
  private closed = false;
  /** V8's heap at the last quiet trim, whether it shrank the heap or not; undefined before the first. */
  private lastQuietHeap: number | undefined;
  /** Work other than reads since the last quiet trim. */
  private workSinceQuiet = false;
  /** How many trims have run. */
  runs = 0;

  constructor(private readonly opts: MemoryTrimOptions) {}

  /**
   * A unary call began: the daemon is not quiet until it ends. `reads`: a call that only reads
   * (a listing, a status, stats, an exec probe), which alone does not have a quiet trim shrink
   * the heap.
   */
  callStarted(reads = false): void {
    this.calls++;
    if (reads) this.touch();
    else this.activity();
  }

  /** A unary call ended. */
  callEnded(): void {
    this.calls = Math.max(0, this.calls - 1);
    this.touch();
  }

  /** Some work was done: trim once it is over. Cheap enough to call after every RPC. */
  activity(): void {
    this.workSinceQuiet = true;
    this.touch();
  }

  /** The daemon was busy now: a trim once it has been quiet, or maxDelayMs from now at most. */
  private touch(): void {
    if (this.closed) return;
    const now = Date.now();
    this.lastActivity = now;
    if (this.timer) return;
    this.firstActivity = now;
    this.timer = this.after(this.opts.quietMs, () => this.due());
  }

  close(): void {
    this.closed = true;
    clearTimeout(this.timer);
    clearTimeout(this.late);
    this.timer = this.late = undefined;
  }

  /** A timer that never keeps the daemon alive. */
  private after(ms: number, fn: () => void): NodeJS.Timeout {
    const t = setTimeout(fn, ms);
    t.unref();
    return t;
  }

  private due(): void {
    const now = Date.now();
    const quietFor = this.calls > 0 ? 0 : now - this.lastActivity;
    const waited = now - this.firstActivity;
    if (quietFor < this.opts.quietMs && waited < this.opts.maxDelayMs) {
      this.timer = this.after(Math.min(this.opts.quietMs - quietFor, this.opts.maxDelayMs - waited), () => this.due());
      return;
    }
    this.timer = undefined;
    this.run(quietFor >= this.opts.quietMs ? 'quiet' : 'forced');
    clearTimeout(this.late);
    this.late = this.after(this.opts.lateMs, () => {
      this.late = undefined;
      // Work since then brings a trim of its own once it is over. This one is for what threads
      // ending and the first one's collection freed, and what V8 still pools: it finds the daemon
      // quiet since the first one, so a pause for V8's release delays nothing.
      if (this.calls === 0 && !this.timer) this.run('late');
    });
  }

  /**
   * `quiet`: no call in flight and none for quietMs, so V8's incremental collection shares the
   * loop with no call; begun after work, or when the heap grew since the quiet trim before.
   * `forced`: maxDelayMs into work that goes on; V8's heap is left alone. `late`: the late trim,
   * quiet since the first one: V8 releases its heap first.
   */
  private run(kind: 'quiet' | 'forced' | 'late'): void {
    // The late trim can come due while a slow first one still runs: one at a time.
    if (this.trimming) return;
    this.trimming = true;
    this.runs++;
    if (kind === 'quiet') {
      const heap = this.opts.heapBytes();
      const grew = this.lastQuietHeap === undefined || heap - this.lastQuietHeap >= this.opts.heapGrowthBytes;
      if (this.workSinceQuiet || grew) this.opts.shrinkHeap();
      this.lastQuietHeap = heap;
      this.workSinceQuiet = false;
    } else if (kind === 'late') {
      this.opts.releaseHeap();
    }
    this.opts.trim().catch(() => undefined).finally(() => {
      this.trimming = false;
    });
  }
}
