// Frames on their way to the socket, in order. Most frames are ready at once, but a frame with
// a header block waits for the shared zlib context, and nothing queued after it may overtake
// it (spdystream drops DATA for a stream whose SYN_REPLY it has not seen). So a header frame
// reserves its place, later frames queue behind it, and the queue writes through as soon as
// the head is ready. Writers are paced by whenWritable: the queue empty and the socket drained.
import type { Duplex } from 'node:stream';

/**
 * Writers keep going while the socket holds less than this. Waiting for a full drain after
 * every 64 KiB frame (a net.Socket's high-water mark is 16 KiB) made each stream stop-and-wait
 * and halved port-forward throughput.
 */
const SOCKET_BUFFER_LIMIT = 1024 * 1024;

/** A reserved place in the queue, filled once its bytes exist. */
export interface OutSlot {
  fill(bufs: Buffer[]): void;
}

interface Entry {
  bufs: Buffer[] | null;
  action?: () => void;
  /** Called once these bytes are in the kernel (see push). */
  onFlushed?: () => void;
}

export class OutboundQueue {
  private entries: Entry[] = [];
  private waiters: Array<(err?: Error | null) => void> = [];
  private closedWith: Error | undefined;

  constructor(
    private readonly socket: Duplex,
    /** Called whenever bytes go out (for idle tracking). */
    private readonly onWrite: () => void,
  ) {
    socket.on('drain', () => this.notify());
  }

  /**
   * Queues ready bytes (written at once when nothing is waiting ahead of them). `onFlushed`, if
   * given, runs once the socket has handed them to the kernel, after which the caller may reuse
   * their memory; it never runs if the connection closes first (the memory is simply dropped).
   */
  push(bufs: Buffer[], onFlushed?: () => void): void {
    if (this.closedWith || this.socket.writableEnded) return;
    if (this.entries.length === 0) {
      this.write(bufs, onFlushed);
      return;
    }
    this.entries.push({ bufs, onFlushed });
  }

  reserve(): OutSlot {
    const entry: Entry = { bufs: null };
    this.entries.push(entry);
    return {
      fill: (bufs) => {
        entry.bufs = bufs;
        this.flush();
      },
    };
  }

  /** Runs fn once everything queued before this call has been handed to the socket. */
  afterFlushed(fn: () => void): void {
    if (this.entries.length === 0) return fn();
    this.entries.push({ bufs: [], action: fn });
  }

  /** Calls cb when the queue is empty and the socket wants more; with an error once closed. */
  whenWritable(cb: (err?: Error | null) => void): void {
    if (this.closedWith) return cb(this.closedWith);
    if (this.canWrite()) return cb();
    this.waiters.push(cb);
  }

  /** True while writers may go on (nothing queued, the socket below its buffer limit). */
  canWrite(): boolean {
    return !this.closedWith && this.entries.length === 0 && this.socket.writableLength < SOCKET_BUFFER_LIMIT;
  }

  /** Drops whatever is queued and fails every waiting writer. */
  close(err: Error): void {
    if (this.closedWith) return;
    this.closedWith = err;
    this.entries = [];
    const waiters = this.waiters;
    this.waiters = [];
    for (const w of waiters) w(err);
  }

  private flush(): void {
    if (this.closedWith) return;
    while (this.entries.length > 0 && this.entries[0]!.bufs) {
      const entry = this.entries.shift()!;
      if (!this.socket.writableEnded) this.write(entry.bufs!, entry.onFlushed);
      entry.action?.();
    }
    this.notify();
  }

  private write(bufs: Buffer[], onFlushed?: () => void): void {
    if (bufs.length === 0) return;
    // A frame is a header and a payload: corked, they leave in one writev, not two syscalls.
    if (bufs.length > 1) this.socket.cork();
    const last = bufs.length - 1;
    for (let i = 0; i < last; i++) this.socket.write(bufs[i]);
    // Writes complete in order, so the last one's callback covers them all. An error is the
    // connection's to report; the bytes are only released on success.
    this.socket.write(bufs[last], onFlushed ? (err) => { if (!err) onFlushed(); } : undefined);
    if (bufs.length > 1) this.socket.uncork();
    this.onWrite();
  }

  private notify(): void {
    if (this.closedWith || this.entries.length > 0 || this.socket.writableLength >= SOCKET_BUFFER_LIMIT) return;
    const waiters = this.waiters;
    this.waiters = [];
    for (const w of waiters) w();
  }
}
