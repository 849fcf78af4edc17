// Names kubelet gives pods and containers, reserved per id. kubelet retries a create that passed
// its deadline with the same name; a create that finished after its caller gave up is handed to
// that retry (as CRI-O does) instead of answering "name is reserved" forever, and a create that
// failed releases its name so the retry starts clean.
import { AlreadyExistsError } from '../errors.js';

interface Reservation {
  id: string;
  /** Set while the create runs; resolves to the id when it succeeds. */
  pending?: Promise<string>;
  /** The create finished but its caller had already gone: the next request with the name gets it. */
  orphaned: boolean;
  /** A retry came while the create ran and waits for it: the create is handed over already. */
  awaited?: boolean;
}

export class NameReservations {
  private readonly byName = new Map<string, Reservation>();

  constructor(private readonly what: string) {}

  /**
   * Run `create` under `name`. Returns `{ id, adopted: true }` when an earlier, abandoned create
   * of the same name is handed over instead.
   */
  async run(name: string, newId: string, signal: AbortSignal, create: () => Promise<void>): Promise<{ id: string; adopted: boolean }> {
    const existing = this.byName.get(name);
    if (existing) {
      if (existing.pending) {
        // The same request again while the first still runs: wait for its outcome, which is
        // this request's from now on (once handed over, the name is taken as usual).
        existing.awaited = true;
        const id = await existing.pending;
        return { id, adopted: true };
      }
      if (existing.orphaned) {
        existing.orphaned = false;
        return { id: existing.id, adopted: true };
      }
      throw new AlreadyExistsError(`${this.what} name "${name}" is already in use by ${existing.id}`);
    }
    const res: Reservation = { id: newId, orphaned: false };
    this.byName.set(name, res);
    res.pending = create().then(
      () => newId,
      (err: unknown) => {
        this.byName.delete(name);
        throw err;
      },
    );
    res.pending.catch(() => undefined);
    try {
      await res.pending;
    } finally {
      res.pending = undefined;
    }
    if (signal.aborted && !res.awaited) res.orphaned = true;
    return { id: newId, adopted: false };
  }

  /** Record a name for an object loaded from disk. */
  claim(name: string, id: string): void {
    this.byName.set(name, { id, orphaned: false });
  }

  release(name: string, id: string): void {
    if (this.byName.get(name)?.id === id) this.byName.delete(name);
  }
}
