// One job at a time per key, in call order; jobs on different keys run concurrently. Stop racing
// remove on one pod would free things twice, and two IPAM jobs interleaving their read, decide and
// write would hand out one address twice. A failed job does not block the next one, and a key
// whose queue ran empty is dropped, so ids that come and go leave nothing behind.
export class KeyedLock {
  private readonly tails = new Map<string, Promise<void>>();

  run<T>(key: string, job: () => Promise<T>): Promise<T> {
    const prev = this.tails.get(key) ?? Promise.resolve();
    // The arrow keeps the previous job's result away from this one.
    const result = prev.then(() => job());
    const tail = result.then(() => undefined, () => undefined);
    this.tails.set(key, tail);
    void tail.then(() => {
      if (this.tails.get(key) === tail) this.tails.delete(key);
    });
    return result;
  }

  /** How many keys have a job queued or running. */
  get activeKeys(): number {
    return this.tails.size;
  }
}

/** KeyedLock with one key: every job in call order (one state file's read-modify-write). */
export class SerialQueue {
  private readonly lock = new KeyedLock();

  run<T>(job: () => Promise<T>): Promise<T> {
    return this.lock.run('', job);
  }
}
