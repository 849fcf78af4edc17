// Socket read buffers for blob downloads (image/registry/blob-http.ts), handed back by the unpack
// threads once they have inflated what was read into them (image/unpack/unpack-pool.ts). A pull
// then reads into the same few megabytes over and over instead of into one fresh buffer per read
// (105 MB of new memory for a 100 MB pull, each page faulted in, later collected): read alone,
// 100 MB cost 93-118 ms of CPU with a new 64 KiB buffer per read, 36-59 ms reusing them.
// Bounded per size, and emptied LINGER_MS after the last download ends: an idle daemon keeps none,
// but the next layer of a pull (which starts once an earlier one is done, tens of ms later) and
// the next pull of a batch reuse them. Emptied at once, they were: a bench:pull image's fourth
// and fifth layers read into 15-30 MB of new buffers, a third of the pull's reads.

/** Free buffers kept per size: 16 MiB of 64 KiB buffers, 4 MiB of 16 KiB ones. */
const MAX_FREE = 256;
/** How long the free buffers outlive the last reader. */
const LINGER_MS = 2000;
/** Free buffers by byte length; a length is listed once a reader has asked for it. */
const free = new Map<number, ArrayBuffer[]>();
let readers = 0;
let emptyTimer: NodeJS.Timeout | undefined;

/** A download starts reading; the function returned says it has ended (once). */
export function openReader(): () => void {
  readers++;
  clearTimeout(emptyTimer);
  emptyTimer = undefined;
  let open = true;
  return () => {
    if (!open) return;
    open = false;
    if (--readers > 0) return;
    emptyTimer = setTimeout(emptyReadBuffers, LINGER_MS);
    emptyTimer.unref();
  };
}

/** Let go of every free buffer (no reader for LINGER_MS; tests). */
export function emptyReadBuffers(): void {
  clearTimeout(emptyTimer);
  emptyTimer = undefined;
  free.clear();
}

/**
 * A buffer of `size` bytes to read into: a returned one, or a new one. Not zeroed: the reader
 * hands on only the bytes a read wrote.
 */
export function takeReadBuffer(size: number): Buffer {
  let list = free.get(size);
  if (!list) {
    list = [];
    if (readers > 0) free.set(size, list);
  }
  const reused = list.pop();
  return reused ? Buffer.from(reused) : Buffer.allocUnsafeSlow(size);
}

/**
 * Buffers whose bytes nobody reads any more, moved here from the thread that read them: kept
 * while their size is listed (a reader open, or the last one ended under LINGER_MS ago).
 */
export function returnReadBuffers(buffers: readonly ArrayBuffer[]): void {
  for (const b of buffers) {
    const list = free.get(b.byteLength);
    if (list && list.length < MAX_FREE) list.push(b);
  }
}

/** Free buffers of `size` bytes held now (tests, metrics). */
export function freeReadBuffers(size: number): number {
  return free.get(size)?.length ?? 0;
}
