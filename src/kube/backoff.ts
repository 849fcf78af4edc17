// kubelet's crash-loop back-off for restarting a container: the first restart is immediate, each
// later one waits twice as long as the one before (10 s, 20 s, 40 s, ... up to 5 min), counted
// from when the container exited. A container that ran longer than twice the maximum before it
// exited starts over at the first step. Pure functions over a small record the state file keeps.
export const DEFAULT_BACKOFF_BASE_MS = 10_000;
export const DEFAULT_BACKOFF_MAX_MS = 300_000;

export interface BackoffEntry {
  /** The wait the next restart must respect. */
  delayMs: number;
  /** When the entry last moved (ms since the epoch). */
  updatedAt: number;
}

export interface BackoffPolicy {
  baseMs: number;
  maxMs: number;
}

const expired = (e: BackoffEntry, eventAt: number, p: BackoffPolicy) => eventAt - e.updatedAt > 2 * p.maxMs;

/** When a container that exited at `finishedAt` may restart: now, or the end of its back-off. */
export function restartAt(entry: BackoffEntry | undefined, finishedAt: number, p: BackoffPolicy): number {
  if (!entry || expired(entry, finishedAt, p)) return finishedAt;
  return finishedAt + entry.delayMs;
}

/** The entry after a restart is let through at `now`. */
export function afterRestart(entry: BackoffEntry | undefined, finishedAt: number, now: number, p: BackoffPolicy): BackoffEntry {
  if (!entry || expired(entry, finishedAt, p)) return { delayMs: p.baseMs, updatedAt: now };
  return { delayMs: Math.min(entry.delayMs * 2, p.maxMs), updatedAt: now };
}
