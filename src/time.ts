// Wall-clock nanoseconds from the monotonic clock, anchored once: timestamps taken in order
// never go backwards, and they carry more than Date.now()'s millisecond precision.
const anchor = BigInt(Date.now()) * 1_000_000n - process.hrtime.bigint();

/** Now, in nanoseconds since the epoch, as the CRI's int64 decimal string. */
export function nowNs(): string {
  return (anchor + process.hrtime.bigint()).toString();
}

/** An RFC 3339 time (as monitors write it) in CRI nanoseconds. */
export function isoToNs(iso: string): string {
  const m = /\.(\d+)/.exec(iso);
  const ms = Date.parse(iso);
  if (Number.isNaN(ms)) return '0';
  const frac = (m?.[1] ?? '').padEnd(9, '0').slice(0, 9);
  return (BigInt(Math.floor(ms / 1000)) * 1_000_000_000n + BigInt(frac)).toString();
}
