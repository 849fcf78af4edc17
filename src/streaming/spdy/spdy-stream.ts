// One SPDY stream as a Node Duplex. Writing sends DATA frames, end() sends the FIN that
// half-closes our side (what spdystream's Stream.Close does), and the readable side ends when
// the peer's FIN arrives. reset() aborts both directions with RST_STREAM, like Stream.Reset.
//
// Errors from the peer (RST_STREAM, connection loss) are expected events of a network protocol,
// so every stream carries a quiet default 'error' listener: a client hanging up must never take
// the daemon down because one consumer forgot to listen.
import { Duplex } from 'node:stream';
import { RstStatus } from './frames.js';
import { headerValue, type SpdyHeaderInput, type SpdyHeaders } from './header-block.js';
import { SpdyConnectionClosedError, SpdyStreamResetError } from './spdy-errors.js';
import { log } from '../../log.js';

/** What a stream needs from its connection; implemented by SpdyConnection. */
export interface StreamOwner {
  sendStreamData(stream: SpdyStream, chunk: Buffer, fin: boolean, onFlushed?: () => void): void;
  sendStreamHeaders(stream: SpdyStream, headers: SpdyHeaderInput, fin: boolean): void;
  sendStreamReset(stream: SpdyStream, status: number): void;
  sendWindowUpdate(stream: SpdyStream, delta: number): void;
  whenWritable(cb: (err?: Error | null) => void): void;
  /** True when whenWritable would call back at once. */
  canSendNow(): boolean;
  streamReadResumed(stream: SpdyStream): void;
  streamBlocked(stream: SpdyStream): void;
  streamSettled(stream: SpdyStream): void;
}

export interface SpdyStreamOptions {
  highWaterMark: number;
  /** Receive window we advertise implicitly (SPDY default 64 KiB); WINDOW_UPDATE refills it. */
  receiveWindow: number;
}

const RST_NAMES = Object.fromEntries(Object.entries(RstStatus).map(([k, v]) => [v, k])) as Record<number, string>;

export class SpdyStream extends Duplex {
  /** Set when we received the peer's FIN (or its SYN carried FIN). */
  remoteFinished = false;
  /** Set when our FIN went out (end() completed) or the stream was unidirectional toward us. */
  localFinished = false;
  /** The RST_STREAM status that ended the stream, if one did. */
  resetStatus: number | undefined;
  /** Headers of the peer's SYN_REPLY, for streams we opened. */
  replyHeaders: SpdyHeaders | undefined;

  private unacknowledged = 0;
  private replyWaiters: Array<{ resolve: (h: SpdyHeaders) => void; reject: (e: Error) => void }> = [];
  private replyError: Error | undefined;

  constructor(
    private readonly owner: StreamOwner,
    readonly id: number,
    /** The headers of the SYN_STREAM that opened this stream. */
    readonly headers: SpdyHeaders,
    private readonly opts: SpdyStreamOptions,
  ) {
    super({ allowHalfOpen: true, highWaterMark: opts.highWaterMark, decodeStrings: true });
    this.on('error', (err) => log.debug({ stream: id, err: err.message }, 'spdy stream error'));
  }

  /** The first value of one of the opening headers (case-insensitive), like http.Header.Get. */
  header(name: string): string | undefined {
    return headerValue(this.headers, name);
  }

  /** Resolves with the SYN_REPLY headers; rejects if the stream is reset or times out first. */
  waitForReply(timeoutMs: number): Promise<SpdyHeaders> {
    if (this.replyHeaders) return Promise.resolve(this.replyHeaders);
    if (this.replyError) return Promise.reject(this.replyError);
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.replyWaiters = this.replyWaiters.filter((w) => w !== waiter);
        reject(new SpdyStreamResetError(`no SYN_REPLY for SPDY stream ${this.id} within ${timeoutMs} ms`, 0));
      }, timeoutMs);
      const waiter = {
        resolve: (h: SpdyHeaders) => { clearTimeout(timer); resolve(h); },
        reject: (e: Error) => { clearTimeout(timer); reject(e); },
      };
      this.replyWaiters.push(waiter);
    });
  }

  /** Sends a HEADERS frame on this stream (rarely used by Kubernetes, kept for completeness). */
  sendHeaders(headers: SpdyHeaderInput, fin = false): void {
    if (this.localFinished || this.destroyed) throw new SpdyConnectionClosedError(`SPDY stream ${this.id} is closed for writing`);
    this.owner.sendStreamHeaders(this, headers, fin);
    if (fin) this.markLocalFinished();
  }

  /**
   * Sends `chunk` as DATA frames without copying it and without Node's stream machinery: the
   * bulk path of port-forward, which reads into a few reused buffers instead of allocating one
   * per read. `release` runs once the bytes are in the kernel; only then may the caller reuse
   * the memory (it never runs if the connection dies first). Returns false when the connection's
   * send buffers are full: wait for whenWritable before sending more. Throws if the stream can no
   * longer be written, or if ordinary writes are still queued ahead (mixing would reorder bytes).
   */
  writeBorrowed(chunk: Buffer, release: () => void): boolean {
    const closed = this.writeClosedError() ?? (this.writableEnded || this.destroyed
      ? new SpdyConnectionClosedError(`write on SPDY stream ${this.id} after it ended`) : undefined);
    if (closed) throw closed;
    if (this.writableLength > 0) throw new Error(`SPDY stream ${this.id}: writeBorrowed while ordinary writes are queued`);
    if (chunk.length > 0) this.owner.sendStreamData(this, chunk, false, release);
    else release();
    return this.owner.canSendNow();
  }

  /** Calls cb once the connection can take more data (at once if it can now). */
  whenWritable(cb: (err?: Error | null) => void): void {
    this.owner.whenWritable(cb);
  }

  /** Aborts both directions with RST_STREAM (CANCEL unless told otherwise). */
  reset(status: number = RstStatus.CANCEL): void {
    if (this.resetStatus !== undefined || this.destroyed) return;
    this.resetStatus = status;
    if (!(this.localFinished && this.remoteFinished)) this.owner.sendStreamReset(this, status);
    this.failReply(new SpdyStreamResetError(`SPDY stream ${this.id} was reset locally`, status));
    this.owner.streamSettled(this);
    this.destroy();
  }

  get fullyClosed(): boolean {
    return (this.localFinished && this.remoteFinished) || this.resetStatus !== undefined;
  }

  override _read(): void {
    this.sendPendingWindowUpdate();
    this.owner.streamReadResumed(this);
  }

  override _write(chunk: Buffer, _enc: BufferEncoding, cb: (err?: Error | null) => void): void {
    const closed = this.writeClosedError();
    if (closed) return cb(closed);
    if (chunk.length > 0) this.owner.sendStreamData(this, chunk, false);
    this.owner.whenWritable(cb);
  }

  override _final(cb: (err?: Error | null) => void): void {
    if (this.localFinished) return cb();
    const closed = this.writeClosedError();
    if (closed) return cb(closed);
    this.owner.sendStreamData(this, Buffer.alloc(0), true);
    this.markLocalFinished();
    this.owner.whenWritable(cb);
  }

  override _destroy(err: Error | null, cb: (err?: Error | null) => void): void {
    // A local destroy of a stream still open on the wire is an abort: tell the peer.
    if (!this.fullyClosed) {
      this.resetStatus = RstStatus.CANCEL;
      this.owner.sendStreamReset(this, RstStatus.CANCEL);
    }
    this.failReply(err ?? new SpdyStreamResetError(`SPDY stream ${this.id} was destroyed`, RstStatus.CANCEL));
    this.owner.streamSettled(this);
    cb(err);
  }

  // ---- called by the connection -------------------------------------------------------------

  /** Payload of a DATA frame for this stream. */
  deliverData(data: Buffer): void {
    if (this.destroyed || this.remoteFinished) return;
    this.unacknowledged += data.length;
    if (this.push(data)) this.sendPendingWindowUpdate();
    else this.owner.streamBlocked(this);
  }

  /** The peer half-closed the stream. */
  deliverFin(): void {
    if (this.remoteFinished) return;
    this.remoteFinished = true;
    if (!this.destroyed) this.push(null);
    this.owner.streamSettled(this);
  }

  deliverReply(headers: SpdyHeaders): void {
    this.replyHeaders = headers;
    const waiters = this.replyWaiters;
    this.replyWaiters = [];
    for (const w of waiters) w.resolve(headers);
  }

  deliverReset(status: number): void {
    if (this.resetStatus !== undefined) return;
    this.resetStatus = status;
    if (this.remoteFinished) {
      // The peer already sent everything it will send (its FIN came first), so the reset only
      // closes our direction; data still buffered for the reader stays readable. Kubernetes
      // servers end a session exactly like this: FIN the output streams, then reset them all.
      this.owner.streamSettled(this);
      return;
    }
    const err = new SpdyStreamResetError(
      `SPDY stream ${this.id} was reset by the peer (${RST_NAMES[status] ?? `status ${status}`})`, status);
    this.failReply(err);
    this.owner.streamSettled(this);
    this.destroy(err);
  }

  /** The connection is gone; whatever was still open on this stream is lost. */
  abort(err: Error): void {
    if (this.destroyed) return;
    if (this.remoteFinished) {
      // Everything the peer sent is already buffered: leave it to be read to its end. Only our
      // direction is gone, so later writes fail.
      this.resetStatus ??= RstStatus.CANCEL;
      this.failReply(err);
      return;
    }
    this.resetStatus = RstStatus.CANCEL;
    this.failReply(err);
    this.destroy(err);
  }

  markLocalFinished(): void {
    if (this.localFinished) return;
    this.localFinished = true;
    this.owner.streamSettled(this);
  }

  private writeClosedError(): Error | undefined {
    if (this.resetStatus !== undefined) {
      return new SpdyStreamResetError(`write on SPDY stream ${this.id} after it was reset`, this.resetStatus);
    }
    if (this.localFinished) return new SpdyConnectionClosedError(`write on SPDY stream ${this.id} after its FIN`);
    return undefined;
  }

  private sendPendingWindowUpdate(): void {
    if (this.remoteFinished || this.resetStatus !== undefined) return;
    if (this.unacknowledged >= this.opts.receiveWindow / 2 && this.readableLength < this.readableHighWaterMark) {
      this.owner.sendWindowUpdate(this, this.unacknowledged);
      this.unacknowledged = 0;
    }
  }

  private failReply(err: Error): void {
    if (this.replyHeaders) return;
    this.replyError = err;
    const waiters = this.replyWaiters;
    this.replyWaiters = [];
    for (const w of waiters) w.reject(err);
  }
}
