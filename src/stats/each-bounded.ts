// Runs a function over a list with at most a few calls in flight: the stats read-ahead's way of
// keeping its hundreds of reads from being pending (and alive) all at once, and the listings' way
// of not holding the event loop while they build hundreds of entries.

/** `fn` over `items`, at most `limit` at a time, in order; resolves when all have settled
 * (`fn` handles its own failures: a rejection stops that worker's share and rejects the whole). */
export async function eachBounded<T>(items: readonly T[], limit: number, fn: (item: T) => Promise<unknown>): Promise<void> {
  let next = 0;
  const worker = async () => {
    while (next < items.length) await fn(items[next++]!);
  };
  await Promise.all(Array.from({ length: Math.min(Math.max(1, limit), items.length) }, worker));
}

/**
 * `fn` over `items`, at most `limit` at a time, its results in the items' order, in turns of the
 * event loop of about `sliceMs` each (setImmediate between them), so that I/O and timers run in
 * between. A stats listing answered from cached readings resolves everything in microtasks: with
 * Promise.all its 100-250 entries were built in one task of 7-14 ms, which every other call and
 * timer waited behind. The first call starts on the next turn (this one has done its caller's
 * work: a listing's subjects), and when the last call ends past its turn's slice, the result
 * comes in a turn of its own too (what the caller does with it, encoding an answer, is not added
 * to a full slice). The time is checked between calls: a turn overruns its slice by at most the
 * `limit` calls in flight. A rejection rejects the whole (the calls in flight run on).
 */
export async function mapInTurns<T, R>(items: readonly T[], limit: number, sliceMs: number, fn: (item: T) => Promise<R>): Promise<R[]> {
  const out = new Array<R>(items.length);
  if (items.length === 0) return out;
  let next = 0;
  let sliceEnd = 0;
  // One turn all the workers wait for: each waiting on its own setImmediate would give every
  // one of them a slice of its own in the same turn.
  let turn: Promise<void> | undefined;
  const nextTurn = () => (turn ??= new Promise<void>((resolve) => setImmediate(() => {
    turn = undefined;
    sliceEnd = performance.now() + sliceMs;
    resolve();
  })));
  const worker = async () => {
    while (next < items.length) {
      if (performance.now() >= sliceEnd) {
        await nextTurn();
        continue; // another worker may have taken the rest meanwhile
      }
      const i = next++;
      out[i] = await fn(items[i]!);
    }
  };
  await Promise.all(Array.from({ length: Math.min(Math.max(1, limit), items.length) }, worker));
  if (performance.now() >= sliceEnd) await nextTurn();
  return out;
}
