// Runs a function over a list with at most a few calls in flight: the stats read-ahead's way of
// keeping its hundreds of reads from being pending (and alive) all at once.

/** `fn` over `items`, at most `limit` at a time, in order; resolves when all have settled
 * (`fn` handles its own failures: a rejection stops that worker's share and rejects the whole). */
export async function eachBounded<T>(items: readonly T[], limit: number, fn: (item: T) => Promise<unknown>): Promise<void> {
  let next = 0;
  const worker = async () => {
    while (next < items.length) await fn(items[next++]!);
  };
  await Promise.all(Array.from({ length: Math.min(Math.max(1, limit), items.length) }, worker));
}
