// When the next stats listing of one kind (containers, or pods) is expected, so the collector
// can read its cgroups just before it comes instead of while the caller waits.
//
// kubelet lists on a fixed period (its housekeeping, 10 s; a metrics scrape, 15-60 s). The
// forecast is the last interval between two listings: the readings are refreshed `leadMs`
// before the listing is due, which costs what answering it by reading would have (one reading
// per listing), and the listing then finds readings under cgroupTtlMs old. A late listing is
// covered by a few more refreshes (`followUps`, `followUpMs` apart); past them, or for a
// listing that came early, the collector serves the last readings (stats-collector.ts). A
// listing served readings no refresh has renewed for longer than `freshMs` (it came before its
// refresh, or the forecast period was wrong: a caller that paused, or changed its period) is
// followed by one catch-up refresh, `catchUpMs` after it, so the next listing is not served
// older readings still or, past the collector's stale bound, read while it waits. So a caller
// that lists irregularly costs at most 1 + followUps readings per listing, never a refresh loop
// that runs on its own. The period outlives a restart of the daemon (saved, resume): the
// caller's clock did not stop, so its next listing is still due on its own tick.
//
// Until two listings have measured a period (a first start, or the caller came back after a
// pause), the next listing is presumed one period after this one: the last period measured, or
// `presumedPeriodMs` (kubelet's 10 s). Without it, the first two listings of a new caller (or
// of one back from a pause) were each read while it waited. A wrong presumption costs one
// reading: its refresh has no follow-ups, and its listing is not periodic (`periodic`), so it is
// never served older readings for it, and no catch-up follows it.

/** What a forecast knows that is worth handing to the next daemon: the caller's period, and
 * when its last listing came (wall clock, ms since the epoch: the next daemon's monotonic clock
 * starts anew). */
export interface ListingPeriod {
  periodMs: number;
  lastListedAtMs: number;
}

export interface ListingForecastOptions {
  /** Listings closer together than this say nothing about the period (the second one was served
   * from the first one's readings: another caller). */
  minPeriodMs: number;
  /** A longer interval is not a period: the caller went away, then came back. */
  maxPeriodMs: number;
  followUps: number;
  followUpMs: number;
  /** How old the last refresh may be for a listing to count as served fresh readings. */
  freshMs: number;
  /** How long after a listing that was not (freshMs) its catch-up refresh is due. */
  catchUpMs: number;
  /** The period presumed while none has been measured (none: nothing is read ahead then). */
  presumedPeriodMs?: number;
}

export class ListingForecast<S> {
  /** What to refresh: the subjects the next listing will ask for, as they are when the refresh
   * runs (the last listing said how to list them again). */
  subjects: () => S[] = () => [];
  private at = -Infinity;
  /** The period measured by the last two listings (or resumed), if they measured one. */
  private period: number | undefined;
  /** The last period measured, kept past a pause of the caller: presumed until one is again. */
  private lastPeriod: number | undefined;
  /** When the next refresh is due (performance.now()), if one is. */
  private dueAt: number | undefined;
  private followUpsLeft = 0;
  /** When the last refresh started. */
  private refreshedAt = -Infinity;
  /** When the forecast's refresh is due, while a catch-up refresh comes before it. */
  private forecastAt: number | undefined;

  constructor(private readonly opts: ListingForecastOptions) {}

  /** A listing came at `now`, whose subjects `subjects` lists again when asked; `leadMs`: how
   * long before the next one to refresh. */
  listed(subjects: () => S[], now: number, leadMs: number): void {
    const interval = now - this.at;
    if (interval >= this.opts.minPeriodMs) this.period = interval <= this.opts.maxPeriodMs ? interval : undefined;
    if (this.period !== undefined) this.lastPeriod = this.period;
    this.at = now;
    this.subjects = subjects;
    this.followUpsLeft = this.period === undefined ? 0 : this.opts.followUps;
    const expected = this.period ?? this.lastPeriod ?? this.opts.presumedPeriodMs;
    this.dueAt = expected === undefined ? undefined : now + Math.max(0, expected - leadMs);
    this.forecastAt = undefined;
    // Only with a period measured: without one, the collector read for the listing (nothing stale).
    const catchUpAt = now + this.opts.catchUpMs;
    if (this.period !== undefined && now - this.refreshedAt > this.opts.freshMs && catchUpAt < this.dueAt!) {
      this.forecastAt = this.dueAt;
      this.dueAt = catchUpAt;
    }
  }

  /** The period and when the last listing came (`now` is performance.now(), `wallNow`
   * Date.now()); undefined while no period is known. */
  saved(now: number, wallNow: number): ListingPeriod | undefined {
    if (this.period === undefined) return undefined;
    return { periodMs: this.period, lastListedAtMs: wallNow - (now - this.at) };
  }

  /**
   * Carries on a period the daemon before this one saw (`saved`): the caller lists on its own
   * clock, so its next listing comes a whole number of periods after its last one, whatever
   * the restart in between cost. The refresh before it is due as after any listing, and that
   * listing counts as periodic. False, and nothing changed: the period is out of bounds, or
   * the last listing is longer ago than maxPeriodMs (or in the future: the clock moved back).
   */
  resume(saved: ListingPeriod, subjects: () => S[], now: number, wallNow: number, leadMs: number): boolean {
    const { periodMs, lastListedAtMs } = saved;
    const since = wallNow - lastListedAtMs;
    if (!(periodMs >= this.opts.minPeriodMs && periodMs <= this.opts.maxPeriodMs)) return false;
    if (!(since >= 0 && since <= this.opts.maxPeriodMs)) return false;
    // The last tick of the caller's clock: its listings during the restart failed, not moved.
    const lastTick = lastListedAtMs + Math.floor(since / periodMs) * periodMs;
    this.at = now - (wallNow - lastTick);
    this.period = periodMs;
    this.lastPeriod = periodMs;
    this.subjects = subjects;
    this.followUpsLeft = this.opts.followUps;
    this.forecastAt = undefined;
    this.dueAt = Math.max(now, this.at + periodMs - leadMs);
    return true;
  }

  /** When the next refresh is due, or undefined: none (no period known or presumed, or
   * follow-ups spent). */
  get due(): number | undefined {
    return this.dueAt;
  }

  /** Whether the last listing's successor is forecast from a measured (or resumed) period, not
   * a presumed one: only then may it be served readings older than freshMs. */
  get periodic(): boolean {
    return this.period !== undefined;
  }

  /** A refresh that was due ran (started at `now`): after a catch-up, the forecast's is next;
   * after that, a follow-up, if any is left. */
  refreshed(now: number): void {
    this.refreshedAt = now;
    if (this.forecastAt !== undefined) {
      this.dueAt = this.forecastAt;
      this.forecastAt = undefined;
    } else if (this.followUpsLeft > 0) {
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
    this.lastPeriod = undefined;
    this.dueAt = undefined;
    this.forecastAt = undefined;
    this.refreshedAt = -Infinity;
  }
}
