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

const pad = (n: number, width: number) => String(n).padStart(width, '0');

interface CivilTime { year: number; month: number; day: number; weekday: number; hour: number; minute: number; second: number; milli: number }

/**
 * The UTC calendar fields of `ms` (since the epoch), by arithmetic; undefined for years outside
 * 0-9999, which no clock gives. Why not Date: the first formatting of a Date in a process
 * (toISOString, toUTCString, its JSON) touches about 0.8 MiB of the node binary's pages (RssFile,
 * measured in a bare node; making or parsing a Date costs nothing of the kind), which an idle
 * daemon logging at info paid for its two start-up lines.
 */
function civilTime(ms: number): CivilTime | undefined {
  const t = Math.floor(ms);
  if (!Number.isFinite(t)) return undefined;
  const days = Math.floor(t / 86_400_000);
  const inDay = t - days * 86_400_000;
  // The civil date of a day number (days since 1970-01-01), counted in 400-year eras that start
  // on March 1st, so the leap day ends a year.
  const z = days + 719_468;
  const era = Math.floor(z / 146_097);
  const dayOfEra = z - era * 146_097;
  const yearOfEra = Math.floor((dayOfEra - Math.floor(dayOfEra / 1460) + Math.floor(dayOfEra / 36_524) - Math.floor(dayOfEra / 146_096)) / 365);
  const dayOfYear = dayOfEra - (365 * yearOfEra + Math.floor(yearOfEra / 4) - Math.floor(yearOfEra / 100));
  const mp = Math.floor((5 * dayOfYear + 2) / 153);
  const month = mp < 10 ? mp + 3 : mp - 9;
  const year = yearOfEra + era * 400 + (month <= 2 ? 1 : 0);
  if (year < 0 || year > 9999) return undefined;
  return {
    year, month, day: dayOfYear - Math.floor((153 * mp + 2) / 5) + 1,
    weekday: (((days + 4) % 7) + 7) % 7, // 1970-01-01 was a Thursday; 0 is Sunday
    hour: Math.floor(inDay / 3_600_000), minute: Math.floor(inDay / 60_000) % 60, second: Math.floor(inDay / 1000) % 60, milli: inDay % 1000,
  };
}

/** `ms` (since the epoch) as Date's toISOString writes it ("2026-12-05T18:19:00.321Z"), without a Date (civilTime says why). */
export function isoTime(ms: number = Date.now()): string {
  const c = civilTime(ms);
  if (!c) return new Date(ms).toISOString();
  return `${pad(c.year, 4)}-${pad(c.month, 2)}-${pad(c.day, 2)}T${pad(c.hour, 2)}:${pad(c.minute, 2)}:${pad(c.second, 2)}.${pad(c.milli, 3)}Z`;
}

const WEEKDAYS = ['Sun', 'Mon', 'Tue', 'Wed', 'Thu', 'Fri', 'Sat'];
const MONTHS = ['Jan', 'Feb', 'Mar', 'Apr', 'May', 'Jun', 'Jul', 'Aug', 'Sep', 'Oct', 'Nov', 'Dec'];

/** `ms` (since the epoch) as an HTTP date, as Date's toUTCString writes it ("Sat, 05 Dec 2026 18:19:00 GMT"), without a Date. */
export function httpDate(ms: number = Date.now()): string {
  const c = civilTime(ms);
  if (!c) return new Date(ms).toUTCString();
  return `${WEEKDAYS[c.weekday]}, ${pad(c.day, 2)} ${MONTHS[c.month - 1]} ${pad(c.year, 4)} ${pad(c.hour, 2)}:${pad(c.minute, 2)}:${pad(c.second, 2)} GMT`;
}
