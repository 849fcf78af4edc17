// The last reading of each thing the stats collector reads (a cgroup, a pod's network table),
// kept for a short while so that a listing can be answered from it, and refreshed ahead of
// the next listing by the collector's background refresher (stats-collector.ts).
//
// A CRI reading carries the time it was taken (its timestamp is when the read started), so a
// reading served from here is still reported truthfully; `maxAgeMs` bounds how old a served
// one can be. A refresh keeps the previous reading served until it lands, so a listing never
// waits behind a refresh while what it has is fresh enough; a stale entry with a read in
// flight waits for that read rather than starting a second one, unless its caller says a
// newer reading is on its way anyway (`staleMs`: the collector's refresher is reading it) and
// the last one is young enough to serve meanwhile. Failed reads are not kept.
//
// A reading is served to each kind of caller (`consumer`, a bit) once: asked again by the same
// kind, the cache gives it a newer reading (the one in flight, or a new read), however young the
// last one is. A caller sampling faster than the age bound then still sees every sample move:
// `crictl stats` takes two samples a second apart and refuses two with the same timestamp, and
// a poller would otherwise be handed one reading over and over. Different kinds of caller
// (kubelet's container and pod listings, one right after the other) still share one reading.
// The exception is a caller that says it takes a stale reading (`staleMs`): a periodic listing
// whose read-ahead is late or running, which is answered at once from the last readings rather
// than wait for the refresher or read beside it.

interface Entry<T> {
  /** The last reading that landed, when (performance.now()) its read started, and the kinds of
   * caller it was served to. */
  last?: { at: number; value: T; servedTo: number };
  /** The read in flight, if any, when it started, and the kinds of caller waiting for it. */
  pending?: { at: number; value: Promise<T>; servedTo: number };
}

export class ReadingCache<T> {
  private readonly entries = new Map<string, Entry<T>>();

  /**
   * The reading of `key` no older than `maxAgeMs` (started at most that long ago): the last
   * one, else the one in flight if it is young enough, else a new one from `read`. With
   * `staleMs`, a last reading up to that old is served as it is, whatever is in flight: for a
   * caller that must not wait for a read someone else is doing (or about to do) anyway.
   * `consumer`: the kind of caller (a bit); a reading already served to it is not served again.
   */
  get(key: string, maxAgeMs: number, read: () => Promise<T>, staleMs?: number, consumer = 0): Promise<T> {
    const now = performance.now();
    const e = this.entries.get(key);
    const last = e?.last;
    // A caller that takes a stale reading (staleMs: a newer one is on its way from the refresher)
    // takes it even if it had it before: that is the price of never waiting for the refresher.
    if (last !== undefined && (staleMs !== undefined || (last.servedTo & consumer) === 0) && now - last.at < Math.max(maxAgeMs, staleMs ?? 0)) {
      last.servedTo |= consumer;
      return Promise.resolve(last.value);
    }
    const pending = e?.pending;
    if (pending !== undefined && (pending.servedTo & consumer) === 0 && now - pending.at < maxAgeMs) {
      pending.servedTo |= consumer;
      return pending.value;
    }
    return this.start(key, read, now, consumer);
  }

  /** The last reading that landed, with when its read started (undefined: none yet). */
  peek(key: string): { at: number; value: T } | undefined {
    return this.entries.get(key)?.last;
  }

  /** A new reading of `key`, unless one is in flight already (that one is returned). */
  refresh(key: string, read: () => Promise<T>): Promise<T> {
    return this.entries.get(key)?.pending?.value ?? this.start(key, read, performance.now());
  }

  /** Drop every entry not in `keep` and with no read in flight. */
  retainOnly(keep: ReadonlySet<string>): void {
    for (const [k, e] of this.entries) if (!keep.has(k) && e.pending === undefined) this.entries.delete(k);
  }

  /** Drop entries whose last reading started more than `ageMs` ago and with no read in flight. */
  dropOlderThan(ageMs: number): void {
    const now = performance.now();
    for (const [k, e] of this.entries) {
      if (e.pending === undefined && (e.last === undefined || now - e.last.at >= ageMs)) this.entries.delete(k);
    }
  }

  get size(): number {
    return this.entries.size;
  }

  private start(key: string, read: () => Promise<T>, at: number, consumer = 0): Promise<T> {
    let e = this.entries.get(key);
    if (e === undefined) {
      e = {};
      this.entries.set(key, e);
    }
    const entry = e;
    // The entry is updated in the read's own reaction, before any caller awaiting it resumes:
    // a caller that got this reading and asks again finds it landed.
    const value: Promise<T> = read().then((v) => {
      // A newer read started since (after a retainOnly dropped this entry, say) wins.
      if (entry.last === undefined || entry.last.at <= at) entry.last = { at, value: v, servedTo: pending.servedTo };
      if (entry.pending === pending) entry.pending = undefined;
      return v;
    }, (err: unknown) => {
      if (entry.pending === pending) entry.pending = undefined;
      throw err;
    });
    const pending = { at, value, servedTo: consumer };
    entry.pending = pending;
    // Whoever asked handles the failure; a refresh nobody awaits must not be an unhandled one.
    value.catch(() => undefined);
    return value;
  }
}
