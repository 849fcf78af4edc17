// When the next stats listing of one kind (containers, or pods) is expected, so the collector
// can read its cgroups just before it comes instead of while the caller waits.
//
// kubelet lists on a fixed period (its housekeeping, 10 s; a metrics scrape, 15-60 s). The
// forecast is the last interval between two listings: the readings are refreshed `leadMs`
// before the listing is due, which costs what answering it by reading would have (one reading
// per listing), and the listing then finds readings under cgroupTtlMs old. A late listing is
// covered by a few more refreshes (`followUps`, `followUpMs` apart); past them, or for a
// listing that came early, the collector reads on demand as it would without a forecast. So
// a caller that lists irregularly costs at most 1 + followUps readings per listing, never a
// refresh loop that runs on its own.

export interface ListingForecastOptions {
  /** Listings closer together than this say nothing about the period (the second one was served
   * from the first one's readings: another caller). */
  minPeriodMs: number;
  /** A longer interval is not a period: the caller went away, then came back. */
  maxPeriodMs: number;
  followUps: number;
  followUpMs: number;
}

export class ListingForecast<S> {
  /** What to refresh: the subjects the next listing will ask for, as they are when the refresh
   * runs (the last listing said how to list them again). */
  subjects: () => S[] = () => [];
  private at = -Infinity;
  private period: number | undefined;
  /** When the next refresh is due (performance.now()), if one is. */
  private dueAt: number | undefined;
  private followUpsLeft = 0;

  constructor(private readonly opts: ListingForecastOptions) {}

  /** A listing came at `now`, whose subjects `subjects` lists again when asked; `leadMs`: how
   * long before the next one to refresh. */
  listed(subjects: () => S[], now: number, leadMs: number): void {
    const interval = now - this.at;
    if (interval >= this.opts.minPeriodMs) this.period = interval <= this.opts.maxPeriodMs ? interval : undefined;
    this.at = now;
    this.subjects = subjects;
    this.followUpsLeft = this.opts.followUps;
    this.dueAt = this.period === undefined ? undefined : now + Math.max(0, this.period - leadMs);
  }

  /** When the next refresh is due, or undefined: none (no period known, or follow-ups spent). */
  get due(): number | undefined {
    return this.dueAt;
  }

  /** A refresh that was due ran (started at `now`): the next one is a follow-up, if any is left. */
  refreshed(now: number): void {
    if (this.followUpsLeft > 0) {
      this.followUpsLeft--;
      this.dueAt = now + this.opts.followUpMs;
    } else {
      this.dueAt = undefined;
    }
  }

  /** Forget everything (the collector was closed). */
  reset(): void {
    this.subjects = () => [];
    this.at = -Infinity;
    this.period = undefined;
    this.dueAt = undefined;
  }
}
