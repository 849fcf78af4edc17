// Socket read buffers for blob downloads (image/registry/blob-http.ts), handed back by the unpack
// threads once they have inflated what was read into them (image/unpack/unpack-pool.ts). A pull
// then reads into the same few megabytes over and over instead of into one fresh buffer per read
// (105 MB of new memory for a 100 MB pull, each page faulted in, later collected): read alone,
// 100 MB cost 93-118 ms of CPU with a new 64 KiB buffer per read, 36-59 ms reusing them.
// Bounded in bytes, and emptied LINGER_MS after the last download ends: an idle daemon keeps none,
// but the next layer of a pull (which starts once an earlier one is done, tens of ms later) and
// the next pull of a batch reuse them. Emptied at once, they were: a bench:pull image's fourth
// and fifth layers read into 15-30 MB of new buffers, a third of the pull's reads.
// A buffer let go of, emptied or over the bound, has its memory freed then (release), not at
// V8's next full collection, which an idle daemon may not run for minutes.

/** Bytes of free buffers kept, of every size together: the windows of three layers unpacking at
 * once (image/unpack/unpack-pool.ts, 2 MiB each) and the buffers between reads, with room. */
const MAX_FREE_BYTES = 16 << 20;
/** How long the free buffers outlive the last reader. */
const LINGER_MS = 2000;
/** Free buffers by byte length; a length is listed once a reader has asked for it. */
const free = new Map<number, ArrayBuffer[]>();
let freeBytes = 0;
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
  const all = [...free.values()].flat();
  free.clear();
  freeBytes = 0;
  release(all);
}

/**
 * Free the memory of buffers nobody views any more now. Dropped, a buffer waits for V8's next
 * full collection, and an idle daemon may run none for minutes: measured, a daemon idle 40 s after
 * its second 100 MB pull still held 14-15 MiB of emptied read buffers (process.memoryUsage()
 * .arrayBuffers), its RSS 75-79 MiB where it was 59 after the first pull. Moved into a message on
 * a port that is then closed, their memory is freed when the port closes, in the next turn of the
 * event loop. A buffer that cannot move is left to the collector.
 */
function release(buffers: readonly ArrayBuffer[]): void {
  // Called for every buffer handed back during a pull, almost always with none to free.
  if (buffers.length === 0) return;
  const movable = [...new Set(buffers)].filter((b) => b.byteLength > 0);
  if (movable.length === 0) return;
  const { port1, port2 } = new MessageChannel();
  try {
    port1.postMessage(null, movable);
  } catch {
    // Not transferable (DataCloneError): nothing moved, the collector frees them.
  }
  port1.close();
  port2.close();
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
  if (!reused) return Buffer.allocUnsafeSlow(size);
  freeBytes -= size;
  return Buffer.from(reused);
}

/**
 * Buffers whose bytes nobody reads any more, moved here from the thread that read them: kept
 * while their size is listed (a reader open, or the last one ended under LINGER_MS ago), else
 * freed. The caller keeps no view of them.
 */
export function returnReadBuffers(buffers: readonly ArrayBuffer[]): void {
  const dropped: ArrayBuffer[] = [];
  for (const b of buffers) {
    const list = free.get(b.byteLength);
    if (!list || freeBytes + b.byteLength > MAX_FREE_BYTES) {
      dropped.push(b);
      continue;
    }
    list.push(b);
    freeBytes += b.byteLength;
  }
  release(dropped);
}

/** Free buffers of `size` bytes held now (tests, metrics). */
export function freeReadBuffers(size: number): number {
  return free.get(size)?.length ?? 0;
}

/**
 * The size of a connection's next read buffer, after a read of `n` bytes into one of `size`:
 * doubled (up to `max`) when the read filled it, halved (down to `min`) when it filled less than
 * 1/`smallShare` of it, else the same. Over loopback or a fast link the socket holds a megabyte
 * or more each time the event loop reads it, and 64 KiB reads made a 100 MB pull ~1,600 passes
 * through the read path and the messages to the unpack threads. Growing to 1 MiB, bench/pull-ab.ts
 * (synthetic image, 8 rounds, medians): wall 670 -> 570 ms, the daemon's CPU 970 -> 800 ms, its
 * main thread's 290 -> 220 ms. Over a slow link each read is a few segments, a small buffer is
 * enough, and with a large one every read would be copied out (blob-http.ts).
 */
export function nextReadSize(size: number, n: number, opts: { min: number; max: number; smallShare: number }): number {
  if (n >= size) return Math.min(size * 2, opts.max);
  if (n * opts.smallShare < size) return Math.max(size / 2, opts.min);
  return size;
}
