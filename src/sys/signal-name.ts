// How a signal is named in an error a person reads: SIGKILL, not 9.
import { constants } from 'node:os';

/** The signal's name (the first Node lists for its number, e.g. SIGABRT before SIGIOT), or "signal N". */
export function signalName(n: number): string {
  return Object.entries(constants.signals).find(([, v]) => v === n)?.[0] ?? `signal ${n}`;
}
