// CRI CpuUsage.usage_nano_cores is a rate, but cgroups only give a cumulative counter: the rate
// comes from the previous sample of the same cgroup, as containerd computes it. The first request
// for an id has no previous sample and reports no rate (undefined) rather than blocking the RPC
// for a second sample; kubelet polls every ~10 s, so from its second poll on the rate is there.
//
// Several clients poll at once (kubelet's summary API, crictl stats, metrics scrapes). A window
// shorter than `minWindowNs` would turn scheduling jitter into wild rates, so such calls return
// the last computed rate and keep the older sample as the base.

interface Sample {
  usageNs: bigint;
  timestampNs: bigint;
  nanoCores?: bigint;
}

export class CpuRateTracker {
  private readonly samples = new Map<string, Sample>();

  constructor(private readonly minWindowNs = 1_000_000_000n) {}

  /**
   * Record a cumulative reading (`usageNs` taken at `timestamp`, CRI nanoseconds) for `id` and
   * return the CPU rate in nanocores (1e9 = one core busy) since the previous kept sample, or
   * undefined when there is none yet (first call, or the counter went backwards: a new cgroup).
   */
  rate(id: string, usageNs: bigint, timestamp: string | bigint): bigint | undefined {
    const ts = BigInt(timestamp);
    const next = this.next(this.samples.get(id), usageNs, ts);
    if (next.keep !== undefined) this.samples.set(id, next.keep);
    return next.nanoCores;
  }

  /** What rate() would return for this reading now, recording nothing (the stats read-ahead
   * builds a listing's answer before the listing, which then records the same reading). */
  peek(id: string, usageNs: bigint, timestamp: string | bigint): bigint | undefined {
    return this.next(this.samples.get(id), usageNs, BigInt(timestamp)).nanoCores;
  }

  /** The rate for a reading after `prev`, and the sample to keep from then on (undefined: prev). */
  private next(prev: Sample | undefined, usageNs: bigint, ts: bigint): { nanoCores?: bigint; keep?: Sample } {
    // The same reading again (the collector reuses a cgroup's reading for a second): same rate.
    if (prev !== undefined && ts === prev.timestampNs && usageNs === prev.usageNs) return { nanoCores: prev.nanoCores };
    if (prev === undefined || usageNs < prev.usageNs || ts <= prev.timestampNs) return { keep: { usageNs, timestampNs: ts } };
    const window = ts - prev.timestampNs;
    if (window < this.minWindowNs) return { nanoCores: prev.nanoCores };
    const nanoCores = ((usageNs - prev.usageNs) * 1_000_000_000n) / window;
    return { nanoCores, keep: { usageNs, timestampNs: ts, nanoCores } };
  }

  /** Drop the sample of a removed container or pod. */
  forget(id: string): void {
    this.samples.delete(id);
  }

  /** Drop every sample whose id is not in `live` (call after listing, so the cache stays small). */
  retainOnly(live: Iterable<string>): void {
    const keep = new Set(live);
    for (const id of this.samples.keys()) if (!keep.has(id)) this.samples.delete(id);
  }

  get size(): number {
    return this.samples.size;
  }
}
