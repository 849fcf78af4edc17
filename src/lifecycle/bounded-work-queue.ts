// Work done in the background with a bounded backlog: one task per key, at most `width` running
// at once and at most `capacity` held in all (running, waiting their turn, or waiting to be tried
// again). Adding to a full queue waits for room, so callers that produce work faster than it
// drains are slowed down to its pace (backpressure) instead of leaving an ever longer backlog. A
// task that fails is tried again after a delay, keeping its place meanwhile: a failing disk fills
// the queue and slows its producers, and no work is dropped. Only close() gives up on a failing
// task, for whatever the queue's owner does at its next start (a marker on disk) to finish.

export interface BoundedWorkQueueOptions {
  /** Tasks running at once, at most. */
  width: number;
  /** Tasks held (running, waiting, waiting to be tried again), at most; add() waits past it. */
  capacity: number;
  /** Milliseconds before a task that failed `failures` times is tried again. */
  retryDelayMs: (failures: number) => number;
  /** Told of each failure; `retried` says whether the task will be tried again. */
  onError: (key: string, err: unknown, retried: boolean) => void;
}

interface Held {
  task: () => Promise<void>;
  failures: number;
  retryTimer?: NodeJS.Timeout;
}

export class BoundedWorkQueue {
  private readonly held = new Map<string, Held>();
  /** Keys waiting for their turn, oldest first. */
  private readonly waiting: string[] = [];
  private running = 0;
  /** add() calls waiting for room, oldest first. */
  private readonly admissions: (() => void)[] = [];
  /** Room kept for add() calls woken and not yet run. */
  private reserved = 0;
  /** settled() calls waiting for nothing to run or wait. */
  private idleWaiters: (() => void)[] = [];
  private closing = false;

  constructor(private readonly opts: BoundedWorkQueueOptions) {
    for (const [name, n] of [['width', opts.width], ['capacity', opts.capacity]] as const) {
      if (!Number.isInteger(n) || n < 1) throw new RangeError(`BoundedWorkQueue: ${name} must be a positive integer, not ${n}`);
    }
    if (opts.capacity < opts.width) throw new RangeError(`BoundedWorkQueue: capacity ${opts.capacity} is less than width ${opts.width}`);
  }

  /** Tasks held: running, waiting, or waiting to be tried again. */
  get size(): number {
    return this.held.size;
  }

  has(key: string): boolean {
    return this.held.has(key);
  }

  /**
   * Queues `task` under `key` (nothing when work of that key is held already); resolves once it
   * holds its place, which is at once unless the queue is full.
   */
  async add(key: string, task: () => Promise<void>): Promise<void> {
    if (this.held.has(key)) return;
    // Those already waiting for room go first.
    if (this.held.size + this.reserved >= this.opts.capacity || this.admissions.length > 0) {
      await new Promise<void>((resolve) => this.admissions.push(resolve));
      this.reserved -= 1;
      if (this.held.has(key)) {
        this.admitNext();
        return;
      }
    }
    this.held.set(key, { task, failures: 0 });
    this.waiting.push(key);
    this.pump();
  }

  /**
   * A task of `key` waiting to be tried again after a failure is tried now instead, in its turn
   * (someone is waiting on it: a retried call should not wait out the back-off); whether there
   * was one. Its failures still count towards the next delay.
   */
  retryNow(key: string): boolean {
    const h = this.held.get(key);
    if (!h?.retryTimer) return false;
    clearTimeout(h.retryTimer);
    delete h.retryTimer;
    this.waiting.push(key);
    this.pump();
    return true;
  }

  /** Resolves once nothing runs or waits its turn (tasks waiting to be tried again aside). */
  async settled(): Promise<void> {
    if (this.running === 0 && this.waiting.length === 0) return;
    await new Promise<void>((resolve) => this.idleWaiters.push(resolve));
  }

  /**
   * The owner stops: what is held runs once more (those waiting to be tried again at once), none
   * is tried again after that; resolves once nothing is held.
   */
  async close(): Promise<void> {
    this.closing = true;
    for (const [key, h] of this.held) {
      if (!h.retryTimer) continue;
      clearTimeout(h.retryTimer);
      delete h.retryTimer;
      this.waiting.push(key);
    }
    this.pump();
    await this.settled();
  }

  /** Wakes those waiting for room, as many as there is room for (kept for them until they wake). */
  private admitNext(): void {
    while (this.admissions.length > 0 && this.held.size + this.reserved < this.opts.capacity) {
      this.reserved += 1;
      this.admissions.shift()!();
    }
  }

  private pump(): void {
    while (this.running < this.opts.width && this.waiting.length > 0) {
      const key = this.waiting.shift()!;
      const h = this.held.get(key)!;
      this.running += 1;
      void Promise.resolve()
        .then(h.task)
        .then(
          () => {
            this.held.delete(key);
          },
          (err: unknown) => {
            h.failures += 1;
            const retried = !this.closing;
            this.opts.onError(key, err, retried);
            if (!retried) {
              this.held.delete(key);
              return;
            }
            h.retryTimer = setTimeout(() => {
              delete h.retryTimer;
              this.waiting.push(key);
              this.pump();
            }, this.opts.retryDelayMs(h.failures));
          },
        )
        .finally(() => {
          this.running -= 1;
          this.admitNext();
          this.pump();
          if (this.running === 0 && this.waiting.length === 0) {
            const waiters = this.idleWaiters;
            this.idleWaiters = [];
            for (const wake of waiters) wake();
          }
        });
    }
  }
}
