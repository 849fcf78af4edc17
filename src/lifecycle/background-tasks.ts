// Work done in the background, one task per key, at most `limit` running at once and the rest
// waiting in the order they came. A caller that needs a key's work out of the way settles it: a
// task still waiting is withdrawn (the caller does the work itself, now, instead of waiting
// behind the queue), a running one is awaited. A task's failure is its own to handle: one that
// rejects anyway is handed to onError, never to whoever settles it.

export class BackgroundTasks {
  /** Waiting tasks, oldest first (a Map keeps insertion order). */
  private readonly waiting = new Map<string, () => Promise<void>>();
  /** Running tasks; their promises never reject. */
  private readonly running = new Map<string, Promise<void>>();

  constructor(
    private readonly limit: number,
    private readonly onError: (key: string, err: unknown) => void,
  ) {
    if (!Number.isInteger(limit) || limit < 1) throw new RangeError(`BackgroundTasks: limit must be a positive integer, not ${limit}`);
  }

  /** Queues `task` under `key`, unless work of that key is waiting or running already. */
  add(key: string, task: () => Promise<void>): void {
    if (this.waiting.has(key) || this.running.has(key)) return;
    this.waiting.set(key, task);
    this.pump();
  }

  /** Whether work of `key` is waiting or running. */
  has(key: string): boolean {
    return this.waiting.has(key) || this.running.has(key);
  }

  get size(): number {
    return this.waiting.size + this.running.size;
  }

  /** Withdraws the key's task if it has not begun; else resolves once it has ended. Never rejects. */
  async settle(key: string): Promise<void> {
    this.waiting.delete(key);
    await this.running.get(key);
  }

  /** Drops every waiting task and resolves once the running ones have ended (the daemon stops). */
  async drain(): Promise<void> {
    this.waiting.clear();
    await Promise.all([...this.running.values()]);
  }

  private pump(): void {
    while (this.running.size < this.limit && this.waiting.size > 0) {
      const [key, task] = this.waiting.entries().next().value as [string, () => Promise<void>];
      this.waiting.delete(key);
      const done = Promise.resolve()
        .then(task)
        .catch((err: unknown) => this.onError(key, err))
        .finally(() => {
          this.running.delete(key);
          this.pump();
        });
      this.running.set(key, done);
    }
  }
}
