// Gives memory back to the kernel once the daemon has done some work. Pulls and bursts of RPCs
// leave freed memory in glibc's malloc arenas (Node's Buffers, TLS, zlib and the worker threads
// all allocate there), and glibc returns it only from the top of the main arena: measured
// (issue 14), malloc_trim(0) after a pull and 10 pods gave back 4-6 MiB of the daemon's RSS in
// 1-2 ms. A full GC first (--expose-gc) gave nothing more, so there is none.
//
// When: once the daemon has been quiet for `quietMs` after some activity (or, when kubelet's
// polling never lets it be quiet, at most `maxDelayMs` after it); then once more `lateMs` later,
// for the memory that threads free when they end after their own idle time (the unpack pool
// ends an idle thread after 10 s, and its arena stays with the process).

export interface MemoryTrimOptions {
  /** How long without activity counts as quiet. */
  quietMs: number;
  /** The longest a trim waits after the activity that asked for it, quiet or not. */
  maxDelayMs: number;
  /** The second trim, this long after the first. */
  lateMs: number;
  /** Returns free malloc memory to the kernel (sys/libc.ts mallocTrim). */
  trim: () => unknown;
}

export class MemoryTrim {
  private timer: NodeJS.Timeout | undefined;
  private late: NodeJS.Timeout | undefined;
  private firstActivity = 0;
  private lastActivity = 0;
  private closed = false;
  /** How many trims have run. */
  runs = 0;

  constructor(private readonly opts: MemoryTrimOptions) {}

  /** Some work was done: trim once it is over. Cheap enough to call after every RPC. */
  activity(): void {
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
    const quietFor = now - this.lastActivity;
    const waited = now - this.firstActivity;
    if (quietFor < this.opts.quietMs && waited < this.opts.maxDelayMs) {
      this.timer = this.after(Math.min(this.opts.quietMs - quietFor, this.opts.maxDelayMs - waited), () => this.due());
      return;
    }
    this.timer = undefined;
    this.run();
    clearTimeout(this.late);
    this.late = this.after(this.opts.lateMs, () => {
      this.late = undefined;
      this.run();
    });
  }

  private run(): void {
    this.opts.trim();
    this.runs++;
  }
}
