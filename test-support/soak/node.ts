// What the soak's workers and its chaos share: the daemon of the moment (a kill replaces it), the
// kill epoch, a gate that holds new calls back while the node is being checked, and the ids
// ever seen (so the truth check can tell that removed things left nothing behind).
import type { TestDaemon } from '../daemon.js';

/** Lets calls through one at a time per worker while open; close() waits for those in flight. */
export class Gate {
  private closed = false;
  private inFlight = 0;
  private reopened: Promise<void> = Promise.resolve();
  private reopen: () => void = () => undefined;
  private drainedWaiters: (() => void)[] = [];

  /** Waits while closed, then counts the caller in. */
  async enter(): Promise<void> {
    while (this.closed) await this.reopened;
    this.inFlight++;
  }

  leave(): void {
    this.inFlight--;
    if (this.inFlight === 0) for (const w of this.drainedWaiters.splice(0)) w();
  }

  /** No new call gets in from now on (those in flight go on). */
  shut(): void {
    if (this.closed) return;
    this.closed = true;
    this.reopened = new Promise((r) => (this.reopen = r));
  }

  /** Resolves once no call is in flight. */
  drained(): Promise<void> {
    return this.inFlight === 0 ? Promise.resolve() : new Promise((r) => this.drainedWaiters.push(r));
  }

  open(): void {
    this.closed = false;
    this.reopen();
  }
}

export interface SoakNode {
  /** The daemon now serving; a daemon kill replaces it with one on the same root. */
  d: TestDaemon;
  /** Counts daemon kills: a call that saw it change was interrupted, not failed. */
  epoch: number;
  gate: Gate;
  image: string;
  /** An image no container uses, pulled and removed by the image operations. */
  spareImage: string;
  /** Every pod and container seen (checkNodeTruth's known). */
  known: { pods: Set<string>; containers: Set<string> };
  /** Containers whose monitor the chaos killed, and when (performance.now()). */
  monitorKills: Map<string, number>;
}

/** A seeded PRNG (mulberry32), so a run's choices can be replayed with SOAK_SEED. */
export function randomSource(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

export const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** "code N: details" of a gRPC error (or its message). */
export function describeError(err: unknown): string {
  const e = err as { code?: number; details?: string; message?: string };
  return e.code !== undefined ? `code ${e.code}: ${e.details ?? e.message}` : String(e.message ?? err);
}
