// The stats listings' periods, handed from one daemon to the one that starts after it
// (stats/listing-forecast.ts resume). kubelet keeps listing on its own clock while crib restarts
// (an upgrade, a config change, a crash): with the period and the last listing's time, the new
// daemon reads ahead of kubelet's first listing as the old one would have, instead of reading
// every pod's cgroups while kubelet waits. The running daemon writes the file every minute (so
// a kill -9 leaves one at most a minute old: kubelet's period drifts by a few milliseconds a
// tick, which a minute does not let add up) and once more when it stops; start-up takes it
// (reads, then deletes it). Without one (a first start, a daemon killed within a minute of its
// own start) the first listings are read on demand, as before. It lives in the state dir,
// which a reboot empties: the periods mean nothing to a kubelet that restarted too.
import { join } from 'node:path';
import { log } from '../log.js';
import type { ListingPeriods } from '../server/stats-rpcs.js';
import { defineSchema } from '../store/schema.js';
import { StateFile } from '../store/state-file.js';

const FILE = 'stats-listing-periods.json';
const SCHEMA = defineSchema<ListingPeriods>('stats listing periods');

const file = (state: string) => new StateFile(join(state, FILE), SCHEMA);

/** A period of the file, if it is one: two finite non-negative numbers (the forecast bounds them further). */
function period(v: unknown): { periodMs: number; lastListedAtMs: number } | undefined {
  if (typeof v !== 'object' || v === null) return undefined;
  const { periodMs, lastListedAtMs } = v as Record<string, unknown>;
  if (typeof periodMs !== 'number' || typeof lastListedAtMs !== 'number') return undefined;
  if (!Number.isFinite(periodMs) || !Number.isFinite(lastListedAtMs) || periodMs <= 0 || lastListedAtMs < 0) return undefined;
  return { periodMs, lastListedAtMs };
}

/** The periods the last daemon saved, removing the file; undefined when there is none, or it is
 * not what this daemon writes (logged: the first listings are then read on demand). A newer
 * crib's file is removed too: it is a hint, of use to one start only. */
export async function takeListingPeriods(state: string): Promise<ListingPeriods | undefined> {
  const f = file(state);
  let saved: ListingPeriods | undefined;
  try {
    await f.sweep(); // a stop killed while writing it
    const doc = await f.read();
    if (doc !== undefined) {
      const containers = period(doc.containers);
      const pods = period(doc.pods);
      saved = { ...(containers ? { containers } : {}), ...(pods ? { pods } : {}) };
    }
  } catch (err) {
    log.warn({ err: (err as Error).message }, 'stats listing periods of the last daemon not read; the first listings read what they need');
  }
  await f.remove().catch((err: unknown) => log.warn({ err: (err as Error).message }, `${f.path} not removed`));
  return saved;
}

/** Saves the periods for the next daemon; nothing to save: no file written. Never throws: a
 * daemon that could not write it only answers its successor's first listings more slowly. */
export async function saveListingPeriods(state: string, periods: ListingPeriods): Promise<void> {
  if (!periods.containers && !periods.pods) return;
  // Not synced: a power cut that loses it reboots the node, and kubelet with it.
  await file(state).write(periods, { syncDir: false }).catch((err: unknown) =>
    log.warn({ err: (err as Error).message }, 'stats listing periods not saved; the next daemon reads its first listings on demand'));
}

/**
 * Saves `periods()` every `everyMs` while the daemon runs, and once more at `stop` (after which
 * it writes nothing). One small unsynced write to the state dir's tmpfs a minute.
 */
export function keepListingPeriods(state: string, periods: () => ListingPeriods, everyMs: number): { stop(): Promise<void> } {
  let saving = Promise.resolve();
  const save = () => {
    saving = saving.then(() => saveListingPeriods(state, periods()));
    return saving;
  };
  const timer = setInterval(() => void save(), everyMs);
  timer.unref();
  return {
    stop: () => {
      clearInterval(timer);
      return save();
    },
  };
}
