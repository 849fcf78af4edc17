// A share of one turn of the event loop for work that arrives in bursts. A pull's network reads
// are such work: libuv reads up to 32 chunks per socket each time the loop polls, and every
// chunk's handling (HTTP parsing, the blob stream, the hand-off to an unpack thread) runs before
// the loop gets back to its timers and to other calls' I/O. Measured in bench:pull (100 MB,
// three layers at once): the daemon's own work held its loop for up to 55-59 ms at a time.
// Work that asks its budget before each piece stops once the turn's share is spent and goes on
// in the next turn, after the loop has run everything else that was due.

export class TurnBudget {
  /** When this turn's work began (performance.now()), or -1 before any. */
  private started = -1;
  private nextTurn: Promise<void> | undefined;

  constructor(private readonly sliceMs: number) {}

  /**
   * Called before each piece of work: undefined while this turn's share lasts, else a promise
   * of the next turn (after the loop's poll and timers), shared by everyone waiting.
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
