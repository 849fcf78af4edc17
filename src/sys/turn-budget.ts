// A share of one turn of the event loop for work that arrives in bursts. A pull's network reads
// are such work: libuv reads up to 32 chunks per socket each time the loop polls, and every
// chunk's handling (HTTP parsing, the blob stream, the hand-off to an unpack thread) runs before
// the loop gets back to its timers and to other calls' I/O. Measured in bench:pull (100 MB,
// three layers at once): the daemon's own work held its loop for up to 55-59 ms at a time.
// Work that asks its budget between pieces stops once the turn's share is spent and goes on
// once the loop has finished this turn's I/O; the reads it then resumes wait for the next poll,
// after the timers due by then.
//
// stats/each-bounded.ts mapInTurns slices a listing the same way but counts its slice from when
// a turn is granted (and yields once more after the last call if that much wall time has
// passed): right for a batch that waits for its first turn, while a download, whose chunks
// arrive over many turns, must count only the work done in the turn at hand.

export class TurnBudget {
  /** When this turn's work began (performance.now()), or -1 before any. */
  private started = -1;
  private nextTurn: Promise<void> | undefined;

  constructor(private readonly sliceMs: number) {}

  /**
   * Called between pieces of work (the first call in a turn starts its share): undefined while
   * this turn's share lasts, else a promise resolved in the loop's check phase, after this
   * turn's I/O, shared by everyone waiting.
   */
  spend(): Promise<void> | undefined {
    const now = performance.now();
    if (this.started < 0) {
      this.started = now;
      // A turn ends at the loop's check phase.
      setImmediate(() => (this.started = -1));
      return undefined;
    }
    if (now - this.started < this.sliceMs) return undefined;
    this.nextTurn ??= new Promise<void>((resolve) => setImmediate(() => {
      this.nextTurn = undefined;
      resolve();
    }));
    return this.nextTurn;
  }
}
