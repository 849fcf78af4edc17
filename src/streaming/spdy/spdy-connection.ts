// A SPDY/3.1 session over a socket, speaking the subset moby/spdystream (and so kubelet,
// kubectl, crictl) uses: SYN_STREAM / SYN_REPLY / RST_STREAM / SETTINGS / PING / GOAWAY /
// HEADERS / WINDOW_UPDATE / DATA.
//
// Flow control: spdystream neither sends nor honours WINDOW_UPDATE, so a sender that waited for
// window credit would stall after 64 KiB against a Go peer. We therefore never block sending on
// the peer's window (TCP backpressure paces us), while we do send WINDOW_UPDATE as our side
// consumes data so a spec-following peer never stalls either. Receive backpressure is
// connection-wide, as in spdystream: when a stream's buffer is full we stop reading the socket.
//
// Any malformed input ends the connection with GOAWAY(PROTOCOL_ERROR): the header zlib stream
// is shared, so after one bad frame nothing later on the wire can be trusted.
import { EventEmitter } from 'node:events';
import type { Duplex } from 'node:stream';
import { FrameReader } from './frame-reader.js';
import {
  FLAG_FIN,
  FLAG_UNIDIRECTIONAL,
  GoAwayStatus,
  RstStatus,
  SettingsId,
  encodeDataHeader,
  encodeFrame,
  type SpdyFrame,
} from './frames.js';
import { decodeHeaderBlock, encodeHeaderBlock, type SpdyHeaderInput, type SpdyHeaders } from './header-block.js';
import { HeaderCompressor, HeaderDecompressor } from './header-compression.js';
import { OutboundQueue } from './outbound-queue.js';
import { PingTracker } from './ping-tracker.js';
import { CONNECTION_DEFAULTS, type ResolvedConnectionOptions, type SpdyConnectionOptions } from './connection-options.js';

export type { SpdyConnectionOptions } from './connection-options.js';
import { SpdyConnectionClosedError, SpdyLimitError, SpdyProtocolError } from './spdy-errors.js';
import { SpdyStream, type StreamOwner } from './spdy-stream.js';
import { log } from '../../log.js';

/** The SPDY/3 default initial window; spdystream never changes it. */
const DEFAULT_WINDOW = 64 * 1024;

type HeaderFrame = Extract<SpdyFrame, { type: 'syn_stream' | 'syn_reply' | 'headers' }>;

export interface SpdyConnectionEvents {
  stream: [stream: SpdyStream];
  goaway: [lastGoodStreamId: number, status: number];
  close: [err: Error | undefined];
}

export class SpdyConnection extends EventEmitter<SpdyConnectionEvents> implements StreamOwner {
  private readonly opts: ResolvedConnectionOptions;
  private readonly reader: FrameReader;
  private readonly compressor = new HeaderCompressor();
  private readonly decompressor: HeaderDecompressor;
  private readonly streams = new Map<number, SpdyStream>();
  private nextStreamId: number;
  private lastPeerStreamId = 0;
  private readonly pings: PingTracker;
  private readonly out: OutboundQueue;
  private readonly blocked = new Set<SpdyStream>();
  private decoding = false;
  private peerEnded = false;
  private goAwaySent = false;
  private goAwayReceived = false;
  private peerGoAwayError: Error | undefined;
  private closing = false;
  private closeTimer: NodeJS.Timeout | undefined;
  private finished = false;
  private initialWindow = DEFAULT_WINDOW;
  private idleTimer: NodeJS.Timeout | undefined;
  private lastActivity = Date.now();
  /** Settles when the connection is gone, with the error that ended it (undefined if clean). */
  readonly closed: Promise<Error | undefined>;
  private resolveClosed!: (err: Error | undefined) => void;

  constructor(
    private readonly socket: Duplex,
    options: SpdyConnectionOptions,
  ) {
    super();
    this.opts = { ...CONNECTION_DEFAULTS, ...stripUndefined(options) };
    this.server = options.server;
    this.nextStreamId = options.server ? 2 : 1;
    this.pings = new PingTracker(options.server);
    this.reader = new FrameReader(this.opts);
    this.decompressor = new HeaderDecompressor(this.opts.maxHeaderBlockSize);
    this.closed = new Promise((resolve) => (this.resolveClosed = resolve));
    this.out = new OutboundQueue(socket, () => (this.lastActivity = Date.now()));
    socket.on('data', (chunk: Buffer) => this.onSocketData(chunk));
    // The socket can report its end while frames it delivered are still waiting behind a header
    // block being inflated; those frames (a SYN_REPLY, the final DATA, GOAWAY) are processed
    // first, and only then is the connection torn down.
    socket.on('end', () => this.onPeerEnded());
    socket.on('close', () => this.onPeerEnded());
    socket.on('error', (err: Error) => this.teardown(new SpdyConnectionClosedError(`SPDY connection socket failed: ${err.message}`, { cause: err })));
    if (this.opts.idleTimeoutMs > 0) this.armIdleTimer(this.opts.idleTimeoutMs);
    if (options.initialData && options.initialData.length > 0) {
      const head = options.initialData;
      queueMicrotask(() => this.onSocketData(head));
    }
  }

  readonly server: boolean;

  /** The peer's SETTINGS_INITIAL_WINDOW_SIZE (informational: we never block on windows). */
  get peerInitialWindowSize(): number {
    return this.initialWindow;
  }

  get isClosed(): boolean {
    return this.finished;
  }

  /** Streams currently open (not yet closed in both directions). */
  get openStreamCount(): number {
    return this.streams.size;
  }

  /**
   * Opens a stream (SYN_STREAM). Data may be written at once: frames keep their order on the
   * wire. Use stream.waitForReply() to wait for the peer's SYN_REPLY, as spdystream clients do.
   */
  openStream(headers: SpdyHeaderInput, opts: { fin?: boolean; priority?: number } = {}): SpdyStream {
    if (this.finished || this.closing || this.goAwayReceived) {
      throw new SpdyConnectionClosedError('cannot open a SPDY stream: the connection is closing');
    }
    const id = this.nextStreamId;
    if (id > 0x7fffffff) throw new SpdyConnectionClosedError('SPDY stream ids exhausted on this connection');
    // Encoded before anything is registered, so bad headers leave the connection untouched.
    const rawHeaders = encodeHeaderBlock(headers);
    this.nextStreamId += 2;
    const stream = this.makeStream(id, normalizeHeaders(headers));
    this.streams.set(id, stream);
    const fin = opts.fin === true;
    this.sendHeaderFrame(rawHeaders, (block) => ({
      type: 'syn_stream',
      streamId: id,
      associatedStreamId: 0,
      priority: opts.priority ?? 0,
      slot: 0,
      flags: fin ? FLAG_FIN : 0,
      headerBlock: block,
    }));
    if (fin) {
      stream.markLocalFinished();
      stream.end();
    }
    return stream;
  }

  /** Round-trip time of a PING, in milliseconds. */
  ping(timeoutMs = 10_000): Promise<number> {
    if (this.finished) return Promise.reject(new SpdyConnectionClosedError('SPDY connection is closed'));
    return this.pings.start(timeoutMs, (id) => this.enqueue([encodeFrame({ type: 'ping', id })]));
  }

  /**
   * Ends the connection the way Kubernetes' httpstream connection does: every stream still
   * open is reset, GOAWAY goes out, and the socket is ended once everything queued is written.
   * Resolves when the socket is closed (destroyed after closeTimeoutMs if the peer lingers).
   */
  async close(): Promise<void> {
    if (!this.finished && !this.closing) {
      this.closing = true;
      for (const stream of [...this.streams.values()]) stream.reset(RstStatus.CANCEL);
      this.sendGoAway(GoAwayStatus.OK);
      this.out.afterFlushed(() => this.socket.end());
      this.closeTimer = setTimeout(() => this.teardown(undefined), this.opts.closeTimeoutMs);
      this.closeTimer.unref();
    }
    await this.closed;
  }

  /** Ends the connection at once; open streams fail with the given error. */
  destroy(err?: Error): void {
    this.teardown(err);
  }

  // ---- StreamOwner ----------------------------------------------------------------------------

  sendStreamData(stream: SpdyStream, chunk: Buffer, fin: boolean, onFlushed?: () => void): void {
    if (this.finished) return;
    const max = this.opts.maxSendFrameLength;
    if (chunk.length === 0) {
      this.enqueue([encodeDataHeader(stream.id, fin ? FLAG_FIN : 0, 0)]);
      return;
    }
    const bufs: Buffer[] = [];
    for (let off = 0; off < chunk.length; off += max) {
      const piece = chunk.subarray(off, Math.min(off + max, chunk.length));
      const last = off + max >= chunk.length;
      bufs.push(encodeDataHeader(stream.id, fin && last ? FLAG_FIN : 0, piece.length), piece);
    }
    this.enqueue(bufs, onFlushed);
  }

  sendStreamHeaders(stream: SpdyStream, headers: SpdyHeaderInput, fin: boolean): void {
    this.sendHeaderFrame(encodeHeaderBlock(headers), (block) => ({
      type: 'headers', streamId: stream.id, flags: fin ? FLAG_FIN : 0, headerBlock: block,
    }));
  }

  sendStreamReset(stream: SpdyStream, status: number): void {
    if (this.finished) return;
    this.enqueue([encodeFrame({ type: 'rst_stream', streamId: stream.id, status })]);
  }

  sendWindowUpdate(stream: SpdyStream, delta: number): void {
    if (this.finished) return;
    this.enqueue([encodeFrame({ type: 'window_update', streamId: stream.id, delta: Math.min(delta, 0x7fffffff) })]);
  }

  whenWritable(cb: (err?: Error | null) => void): void {
    this.out.whenWritable(cb);
  }

  canSendNow(): boolean {
    return !this.finished && this.out.canWrite();
  }

  streamBlocked(stream: SpdyStream): void {
    this.blocked.add(stream);
    this.socket.pause();
  }

  streamReadResumed(stream: SpdyStream): void {
    if (!this.blocked.delete(stream)) return;
    this.resumeIfUnblocked();
  }

  streamSettled(stream: SpdyStream): void {
    if (stream.fullyClosed || stream.destroyed) {
      if (this.streams.get(stream.id) === stream) this.streams.delete(stream.id);
      if (this.blocked.delete(stream)) this.resumeIfUnblocked();
      this.maybeFinishAfterGoAway();
    }
  }

  // ---- input ----------------------------------------------------------------------------------

  private onSocketData(chunk: Buffer): void {
    if (this.finished) return;
    this.lastActivity = Date.now();
    this.reader.push(chunk);
    this.processFrames();
  }

  private processFrames(): void {
    try {
      while (!this.decoding && !this.finished) {
        const frame = this.reader.next();
        if (!frame) {
          if (this.peerEnded) this.teardown(this.closing ? undefined : new SpdyConnectionClosedError('SPDY peer closed the connection'));
          return;
        }
        this.handleFrame(frame);
      }
    } catch (err) {
      this.fail(err as Error);
    }
  }

  private onPeerEnded(): void {
    if (this.peerEnded) return;
    this.peerEnded = true;
    this.processFrames();
  }

  private handleFrame(frame: SpdyFrame): void {
    switch (frame.type) {
      case 'data':
        return this.onData(frame.streamId, frame.flags, frame.data);
      case 'syn_stream':
      case 'syn_reply':
      case 'headers': {
        const headerFrame = frame;
        // Header blocks must be inflated in wire order through the shared context, and frames
        // after this one may depend on it (DATA on a new stream), so input pauses meanwhile.
        this.decoding = true;
        this.socket.pause();
        this.decompressor.decompress(frame.headerBlock).then(
          (raw) => {
            this.decoding = false;
            if (this.finished) return;
            try {
              this.onHeaderFrame(headerFrame, decodeHeaderBlock(raw));
            } catch (err) {
              this.fail(err as Error);
              return;
            }
            this.resumeIfUnblocked();
            this.processFrames();
          },
          (err: Error) => {
            this.decoding = false;
            this.fail(err);
          },
        );
        return;
      }
      case 'rst_stream':
        this.streams.get(frame.streamId)?.deliverReset(frame.status);
        return;
      case 'settings':
        for (const e of frame.entries) {
          if (e.id === SettingsId.INITIAL_WINDOW_SIZE) this.initialWindow = e.value;
        }
        return;
      case 'ping':
        return this.onPing(frame.id);
      case 'goaway':
        return this.onGoAway(frame.lastGoodStreamId, frame.status);
      case 'window_update':
        // Deliberately ignored: see the flow-control note at the top of this file.
        return;
    }
  }

  private onData(streamId: number, flags: number, data: Buffer): void {
    const stream = this.streams.get(streamId);
    if (!stream) {
      if (!this.wasEverOpened(streamId)) {
        throw new SpdyProtocolError(`SPDY DATA frame for stream ${streamId}, which was never opened`);
      }
      return; // a stream already closed or reset: late data is dropped, as spdystream does
    }
    if (stream.remoteFinished) {
      // Data after the peer's own FIN: a stream error (spec 2.4.2), not a connection one.
      if (stream.resetStatus === undefined) stream.reset(RstStatus.STREAM_ALREADY_CLOSED);
      return;
    }
    if (data.length > 0) stream.deliverData(data);
    if (flags & FLAG_FIN) stream.deliverFin();
  }

  private onHeaderFrame(frame: HeaderFrame, headers: SpdyHeaders): void {
    if (frame.type === 'syn_stream') {
      const peerParity = this.server ? 1 : 0;
      if (frame.streamId % 2 !== peerParity) {
        throw new SpdyProtocolError(`SPDY SYN_STREAM with stream id ${frame.streamId}, which belongs to our side`);
      }
      if (frame.streamId <= this.lastPeerStreamId) {
        throw new SpdyProtocolError(
          `SPDY SYN_STREAM id ${frame.streamId} is not above the previous one (${this.lastPeerStreamId})`);
      }
      this.lastPeerStreamId = frame.streamId;
      return this.acceptStream(frame.streamId, frame.flags, headers);
    }
    const stream = this.streams.get(frame.streamId);
    if (!stream) {
      if (!this.wasEverOpened(frame.streamId)) {
        throw new SpdyProtocolError(`SPDY ${frame.type.toUpperCase()} for stream ${frame.streamId}, which was never opened`);
      }
      return;
    }
    if (frame.type === 'syn_reply') {
      if (stream.replyHeaders) {
        this.enqueue([encodeFrame({ type: 'rst_stream', streamId: stream.id, status: RstStatus.STREAM_IN_USE })]);
        return;
      }
      stream.deliverReply(headers);
    } else if (frame.type === 'headers') {
      stream.emit('headers', headers);
    }
    if (frame.flags & FLAG_FIN) stream.deliverFin();
  }

  private acceptStream(id: number, flags: number, headers: SpdyHeaders): void {
    if (this.goAwaySent || this.closing || this.listenerCount('stream') === 0) {
      this.enqueue([encodeFrame({ type: 'rst_stream', streamId: id, status: RstStatus.REFUSED_STREAM })]);
      return;
    }
    const stream = this.makeStream(id, headers);
    this.streams.set(id, stream);
    // The reply's place on the wire is taken now, so anything the 'stream' listener writes
    // follows the SYN_REPLY: spdystream drops DATA that arrives before a stream's reply.
    const replySlot = this.out.reserve();
    if (flags & FLAG_UNIDIRECTIONAL) stream.markLocalFinished();
    if (flags & FLAG_FIN) stream.deliverFin();
    try {
      this.emit('stream', stream);
    } catch (err) {
      log.warn({ stream: id, err: (err as Error).message }, 'spdy stream handler threw; resetting the stream');
      stream.reset(RstStatus.INTERNAL_ERROR);
    }
    if (stream.resetStatus !== undefined) {
      // Rejected by the listener: its RST_STREAM is already queued behind the empty slot.
      replySlot.fill([]);
      return;
    }
    this.compressor.compress(encodeHeaderBlock({})).then(
      (block) => {
        replySlot.fill([encodeFrame({ type: 'syn_reply', streamId: id, flags: 0, headerBlock: block })]);
      },
      (err: Error) => this.fail(err),
    );
  }

  private onPing(id: number): void {
    if (this.pings.isOurs(id)) this.pings.answered(id);
    else this.enqueue([encodeFrame({ type: 'ping', id })]);
  }

  private onGoAway(lastGood: number, status: number): void {
    this.goAwayReceived = true;
    if (status !== GoAwayStatus.OK) {
      this.peerGoAwayError = new SpdyConnectionClosedError(
        `SPDY peer ended the connection with GOAWAY status ${status === GoAwayStatus.PROTOCOL_ERROR ? 'PROTOCOL_ERROR' : status === GoAwayStatus.INTERNAL_ERROR ? 'INTERNAL_ERROR' : status}`);
    }
    // Streams we opened that the peer never processed will not be answered.
    const ourParity = this.server ? 0 : 1;
    for (const stream of [...this.streams.values()]) {
      if (stream.id % 2 === ourParity && stream.id > lastGood) {
        stream.deliverReset(RstStatus.REFUSED_STREAM);
      }
    }
    this.emit('goaway', lastGood, status);
    this.maybeFinishAfterGoAway();
  }

  private wasEverOpened(id: number): boolean {
    const peerParity = this.server ? 1 : 0;
    return id % 2 === peerParity ? id <= this.lastPeerStreamId : id < this.nextStreamId;
  }

  private makeStream(id: number, headers: SpdyHeaders): SpdyStream {
    return new SpdyStream(this, id, headers, {
      highWaterMark: this.opts.streamHighWaterMark,
      receiveWindow: DEFAULT_WINDOW,
    });
  }

  private resumeIfUnblocked(): void {
    if (this.blocked.size === 0 && !this.decoding && !this.finished) this.socket.resume();
  }

  // ---- output ---------------------------------------------------------------------------------

  private sendHeaderFrame(raw: Buffer, build: (compressed: Buffer) => SpdyFrame): void {
    if (this.finished) return;
    const slot = this.out.reserve();
    this.compressor.compress(raw).then(
      (block) => slot.fill([encodeFrame(build(block))]),
      (err: Error) => this.fail(err),
    );
  }

  private sendGoAway(status: number): void {
    if (this.goAwaySent) return;
    this.goAwaySent = true;
    this.enqueue([encodeFrame({ type: 'goaway', lastGoodStreamId: this.lastPeerStreamId, status })]);
  }

  private enqueue(bufs: Buffer[], onFlushed?: () => void): void {
    if (this.finished) return;
    this.out.push(bufs, onFlushed);
  }

  /** One timer re-armed lazily: activity only stamps a time, so busy streams cost nothing. */
  private armIdleTimer(delayMs: number): void {
    this.idleTimer = setTimeout(() => {
      if (this.finished) return;
      const idle = Date.now() - this.lastActivity;
      if (idle >= this.opts.idleTimeoutMs) {
        log.info({ idleMs: idle }, 'spdy connection idle past its timeout; closing it');
        void this.close();
        return;
      }
      this.armIdleTimer(this.opts.idleTimeoutMs - idle);
    }, delayMs);
    this.idleTimer.unref();
  }

  private maybeFinishAfterGoAway(): void {
    if (this.goAwayReceived && this.streams.size === 0 && !this.closing && !this.finished) {
      void this.close();
    }
  }

  // ---- teardown -------------------------------------------------------------------------------

  private fail(err: Error): void {
    if (this.finished) return;
    const status = err instanceof SpdyProtocolError || err instanceof SpdyLimitError
      ? GoAwayStatus.PROTOCOL_ERROR
      : GoAwayStatus.INTERNAL_ERROR;
    log.warn({ err: err.message }, 'spdy connection failed; closing it');
    if (!this.goAwaySent) {
      this.goAwaySent = true;
      // Written straight to the socket: queued slots may never fill once we are failing.
      this.socket.write(encodeFrame({ type: 'goaway', lastGoodStreamId: this.lastPeerStreamId, status }));
    }
    this.socket.end();
    this.teardown(err);
  }

  private teardown(err: Error | undefined): void {
    if (this.finished) return;
    err ??= this.peerGoAwayError;
    this.finished = true;
    if (this.closeTimer) clearTimeout(this.closeTimer);
    if (this.idleTimer) clearTimeout(this.idleTimer);
    this.compressor.close();
    this.decompressor.close();
    const streamErr = err ?? new SpdyConnectionClosedError('SPDY connection closed');
    for (const stream of [...this.streams.values()]) stream.abort(streamErr);
    this.streams.clear();
    this.pings.failAll(streamErr);
    this.out.close(streamErr);
    // Give the GOAWAY a moment to leave, then make sure the socket is really gone.
    if (!this.socket.destroyed) {
      const sock = this.socket;
      setTimeout(() => sock.destroy(), err ? 100 : 0).unref();
    }
    this.emit('close', err);
    this.resolveClosed(err);
  }
}

function normalizeHeaders(input: SpdyHeaderInput): SpdyHeaders {
  const out: SpdyHeaders = Object.create(null) as SpdyHeaders;
  for (const [k, v] of Object.entries(input)) out[k.toLowerCase()] = typeof v === 'string' ? [v] : [...v];
  return out;
}

function stripUndefined<T extends object>(o: T): Partial<T> {
  return Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined)) as Partial<T>;
}
