// One HTTP/2 connection (RFC 9113) on the server's side, with exactly what a gRPC server needs:
// client-initiated streams, a request's headers and DATA, a response's HEADERS, DATA and trailers,
// both directions' flow control, PING, SETTINGS, RST_STREAM and GOAWAY. No push, no priorities,
// no HTTP/1.1 upgrade.
//
// Why not node:http2: its per-stream JavaScript (a Duplex per stream, its events, respond() and
// trailers through nghttp2's callbacks) cost a unary call about 0.5 ms of the daemon's CPU and
// 0.5 ms of latency under the daemon's V8 settings, three times what crib's whole call path costs
// and more than containerd takes for the same call (bench/rpc-ab.ts; issue 14). Here a unary
// call is a few frames parsed from the socket's buffer and one buffer written back.
//
// Everything a client sends is bounded before it is held:
//   - a frame larger than SETTINGS_MAX_FRAME_SIZE is refused from its 9-byte header;
//   - a header block (HEADERS and its CONTINUATION frames) larger than MAX_HEADER_BLOCK_BYTES
//     compressed, or spread over more than MAX_CONTINUATIONS frames, or decoding to more than
//     MAX_HEADER_LIST_BYTES (hpack.ts), ends the connection; so does any other frame inside one;
//   - request DATA is held only within the receive windows this side announces: a stream's
//     window is one message of the largest size and is never reopened, and the connection's
//     window (two such messages, or HTTP/2's initial 64 KiB if that is more) reopens only as
//     requests end, so a connection holds no more than that however many streams it opens;
//   - open streams are capped at MAX_CONCURRENT_STREAMS (more are refused with REFUSED_STREAM),
//     and streams the client resets are rate-limited (the "rapid reset" attack, CVE-2023-44487);
//   - what this side writes is bounded too: response DATA waits in its stream (which the gRPC
//     layer bounds) while the socket holds more than SOCKET_HIGH_WATER; while the streams of a
//     connection hold more than MAX_QUEUED_RESPONSE_BYTES for it, its new streams are refused
//     with REFUSED_STREAM; and a client that makes this side queue more than
//     MAX_QUEUED_CONTROL_BYTES of control frames (PING and SETTINGS acknowledgements) without
//     reading them is disconnected.
// A broken rule ends the connection with a GOAWAY naming it; the socket is closed once the client
// has had a moment to read it.
import type { Socket } from 'node:net';
import { log } from '../../log.js';
import { H2_COMPRESSION_ERROR, H2_ENHANCE_YOUR_CALM, HpackDecoder, HpackError } from './hpack.js';

export const PREFACE = Buffer.from('PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n');
const FRAME_HEADER = 9;

export const FRAME = {
  DATA: 0x0, HEADERS: 0x1, PRIORITY: 0x2, RST_STREAM: 0x3, SETTINGS: 0x4, PUSH_PROMISE: 0x5,
  PING: 0x6, GOAWAY: 0x7, WINDOW_UPDATE: 0x8, CONTINUATION: 0x9,
} as const;
const FLAG_END_STREAM = 0x1;
const FLAG_ACK = 0x1;
const FLAG_END_HEADERS = 0x4;
const FLAG_PADDED = 0x8;
const FLAG_PRIORITY = 0x20;

/** RFC 9113 §7 error codes. */
export const H2 = {
  NO_ERROR: 0x0, PROTOCOL_ERROR: 0x1, INTERNAL_ERROR: 0x2, FLOW_CONTROL_ERROR: 0x3, STREAM_CLOSED: 0x5,
  FRAME_SIZE_ERROR: 0x6, REFUSED_STREAM: 0x7, CANCEL: 0x8, COMPRESSION_ERROR: H2_COMPRESSION_ERROR,
  ENHANCE_YOUR_CALM: H2_ENHANCE_YOUR_CALM,
} as const;

const SETTINGS_HEADER_TABLE_SIZE = 0x1;
const SETTINGS_ENABLE_PUSH = 0x2;
const SETTINGS_MAX_CONCURRENT_STREAMS = 0x3;
const SETTINGS_INITIAL_WINDOW_SIZE = 0x4;
const SETTINGS_MAX_FRAME_SIZE = 0x5;
const SETTINGS_MAX_HEADER_LIST_SIZE = 0x6;

/** The largest frame either side may send until told otherwise; this side never raises it. */
export const MAX_FRAME_SIZE = 16384;
/** The largest window RFC 9113 allows. */
const MAX_WINDOW = 2 ** 31 - 1;
/** The window every stream and the connection start with (RFC 9113 §6.9.2). */
const DEFAULT_WINDOW = 65535;
/** HPACK's table size, which this side announces and clients never raise. */
export const HPACK_TABLE_BYTES = 4096;
/**
 * The largest decoded header list taken (RFC 7541 entry sizes), announced as
 * SETTINGS_MAX_HEADER_LIST_SIZE. gRPC metadata is a few hundred bytes; grpc-go clients cap what
 * they send at 16 KiB.
 */
export const MAX_HEADER_LIST_BYTES = 65536;
/** The largest header block taken as it arrives (compressed). */
export const MAX_HEADER_BLOCK_BYTES = 65536;
/** CONTINUATION frames after one HEADERS (nghttp2 allows 8, and no client needs more). */
export const MAX_CONTINUATIONS = 8;
/**
 * Streams open at once on one connection. kubelet multiplexes a node's CRI calls on one
 * connection (probes' ExecSync, stats, one long GetContainerEvents stream); 110 pods never need
 * near a thousand at once, and grpc-go clients queue calls over the limit rather than fail them.
 */
export const MAX_CONCURRENT_STREAMS = 1000;
/** Bytes queued in the socket above which response DATA waits in its stream. */
const SOCKET_HIGH_WATER = 1024 * 1024;
/**
 * Response bytes waiting in a connection's streams for the client's windows (or the socket) above
 * which new streams are refused: a client that opens calls and never reads their answers makes
 * the daemon hold them. Two of the largest messages and some; grpc-go clients retry a refused
 * stream.
 */
export const MAX_QUEUED_RESPONSE_BYTES = 40 * 1024 * 1024;
/** Control frames (acknowledgements) queued for a client that does not read, before it is cut off. */
const MAX_QUEUED_CONTROL_BYTES = 16 * 1024 * 1024;
/**
 * Streams a client may reset while this side still had them open: a burst, then a steady rate.
 * kubelet cancels a call when its deadline passes, a few a minute; a client opening and
 * resetting streams as fast as it can would keep handlers starting for nothing.
 */
const RESET_BURST = 1000;
const RESETS_PER_SECOND = 100;
/** Streams reset by this side whose late frames are still ignored rather than an error. */
const RESETS_REMEMBERED = 128;
/** How long a client refused with GOAWAY has to read it before the socket is closed regardless. */
export const GOAWAY_LINGER_MS = 2000;

/** A broken rule that ends the connection: GOAWAY(code, message). */
export class H2ConnectionError extends Error {
  constructor(readonly code: number, message: string) {
    super(message);
  }
}

export function frameHeader(out: Buffer, at: number, length: number, type: number, flags: number, streamId: number): void {
  out[at] = length >>> 16;
  out[at + 1] = (length >>> 8) & 0xff;
  out[at + 2] = length & 0xff;
  out[at + 3] = type;
  out[at + 4] = flags;
  out.writeUInt32BE(streamId, at + 5);
}

export function frame(type: number, flags: number, streamId: number, payload: Buffer): Buffer {
  const out = Buffer.allocUnsafe(FRAME_HEADER + payload.length);
  frameHeader(out, 0, payload.length, type, flags, streamId);
  payload.copy(out, FRAME_HEADER);
  return out;
}

function u32(value: number): Buffer {
  const b = Buffer.allocUnsafe(4);
  b.writeUInt32BE(value, 0);
  return b;
}

export function goAwayFrame(lastStreamId: number, code: number, message: string): Buffer {
  const debug = Buffer.from(message.slice(0, 256), 'utf8');
  const payload = Buffer.allocUnsafe(8 + debug.length);
  payload.writeUInt32BE(lastStreamId, 0);
  payload.writeUInt32BE(code, 4);
  debug.copy(payload, 8);
  return frame(FRAME.GOAWAY, 0, 0, payload);
}

/** What a connection's owner (the gRPC server) is told. */
export interface H2ConnectionHandler {
  /**
   * A client opened a stream: its decoded header fields (name, value, name, value, ...). The
   * handler sets the stream's onData/onEnd/onClose (onEnd follows at once when the request
   * ended with its headers).
   */
  onStream(stream: H2Stream, fields: string[]): void;
}

export interface H2ConnectionOptions {
  /**
   * The largest request message the server reads: each stream's receive window is this plus room
   * for gRPC's 5-byte prefix, and the connection's twice that (two largest requests in flight).
   */
  maxRequestBytes: number;
}

/**
 * One stream on the server's side. The request side is told through onData/onEnd; onClose comes
 * once, when the stream is over for any reason (answered and ended both ways, reset by either
 * side, or the connection gone). The response is respond() (HEADERS), write() (DATA, queued
 * under flow control), then end() (trailers) or reset().
 */
export class H2Stream {
  onData: ((chunk: Buffer) => void) | undefined;
  onEnd: (() => void) | undefined;
  onClose: (() => void) | undefined;
  /** The client has ended its side (END_STREAM). */
  remoteEnded = false;
  /** This side has ended its side, or reset the stream. */
  localEnded = false;
  closed = false;
  headersSent = false;
  /** The client's window for this stream's DATA to it. */
  sendWindow: number;
  /** This side's window for the client's DATA on this stream. */
  recvWindow: number;
  /** Request bytes received and not yet credited back to the connection's window. */
  held = 0;
  private readonly queue: Buffer[] = [];
  private queued = 0;
  private trailers: Buffer | undefined;

  constructor(readonly id: number, private readonly conn: H2Connection, sendWindow: number, recvWindow: number) {
    this.sendWindow = sendWindow;
    this.recvWindow = recvWindow;
  }

  /** Response bytes waiting for the client's window or the socket. */
  get bufferedBytes(): number {
    return this.queued;
  }

  /** A unary answer in one write when the windows allow it: HEADERS, one DATA frame, trailers. */
  respondWhole(headers: Buffer, data: Buffer, trailers: Buffer): void {
    if (this.localEnded || this.headersSent) return;
    if (data.length > this.sendWindow || !this.conn.canSendNow(data.length)) {
      this.respond(headers, false);
      this.write(data);
      this.end(trailers);
      return;
    }
    this.headersSent = true;
    this.localEnded = true;
    this.sendWindow -= data.length;
    this.conn.sendWhole(this.id, headers, data, trailers);
    this.conn.localEnded(this);
  }

  /** HEADERS; `endStream` for a trailers-only answer. */
  respond(headers: Buffer, endStream: boolean): void {
    if (this.localEnded || this.headersSent) return;
    this.headersSent = true;
    this.conn.sendHeaders(this.id, headers, endStream);
    if (endStream) {
      this.localEnded = true;
      this.conn.localEnded(this);
    }
  }

  /** DATA, sent as the client's windows and the socket allow. */
  write(data: Buffer): void {
    if (this.localEnded || data.length === 0) return;
    this.queue.push(data);
    this.queued += data.length;
    this.conn.queuedResponseBytes += data.length;
    this.conn.flushStream(this);
  }

  /** The trailers, after every queued DATA. */
  end(trailers: Buffer): void {
    if (this.localEnded || this.trailers) return;
    this.trailers = trailers;
    this.conn.flushStream(this);
  }

  /** RST_STREAM: the stream is over; what was queued is dropped. */
  reset(code: number): void {
    if (this.closed) return;
    this.dropQueue();
    this.localEnded = true;
    this.conn.resetStream(this, code, true);
  }

  /** @internal Send what the windows allow; the trailers once nothing is left. */
  flush(maxFrame: number, budget: { conn: number; socket: boolean }): void {
    while (this.queue.length > 0 && this.sendWindow > 0 && budget.conn > 0 && budget.socket) {
      const head = this.queue[0]!;
      const n = Math.min(head.length, this.sendWindow, budget.conn, maxFrame);
      const chunk = n === head.length ? head : head.subarray(0, n);
      if (n === head.length) this.queue.shift();
      else this.queue[0] = head.subarray(n);
      this.queued -= n;
      this.conn.queuedResponseBytes -= n;
      this.sendWindow -= n;
      budget.conn -= n;
      budget.socket = this.conn.sendData(this.id, chunk);
    }
    if (this.queue.length === 0 && this.trailers && !this.localEnded) {
      const trailers = this.trailers;
      this.trailers = undefined;
      this.conn.sendHeaders(this.id, trailers, true);
      this.localEnded = true;
      this.conn.localEnded(this);
    }
  }

  /** @internal What waits to be sent is dropped (the stream is over). */
  dropQueue(): void {
    this.conn.queuedResponseBytes -= this.queued;
    this.queue.length = 0;
    this.queued = 0;
  }

  /** @internal Whether this stream waits for window or socket to send. */
  get waiting(): boolean {
    return !this.localEnded && (this.queue.length > 0 || this.trailers !== undefined);
  }
}

/** The receive windows of a server reading requests of up to `maxRequestBytes`. */
function windowsFor(maxRequestBytes: number): { stream: number; connection: number } {
  const stream = Math.min(MAX_WINDOW, maxRequestBytes + 5 + 1024);
  return { stream, connection: Math.min(MAX_WINDOW, 2 * stream) };
}

/**
 * The SETTINGS this side announces, each for a reason (see the constants): no push, the
 * concurrency cap, each stream's receive window, HPACK's table size and the header list bound.
 */
export function serverSettings(maxRequestBytes: number): Buffer {
  const entries: [number, number][] = [
    [SETTINGS_ENABLE_PUSH, 0],
    [SETTINGS_MAX_CONCURRENT_STREAMS, MAX_CONCURRENT_STREAMS],
    [SETTINGS_INITIAL_WINDOW_SIZE, windowsFor(maxRequestBytes).stream],
    [SETTINGS_HEADER_TABLE_SIZE, HPACK_TABLE_BYTES],
    [SETTINGS_MAX_HEADER_LIST_SIZE, MAX_HEADER_LIST_BYTES],
  ];
  const payload = Buffer.allocUnsafe(6 * entries.length);
  entries.forEach(([id, value], i) => {
    payload.writeUInt16BE(id, 6 * i);
    payload.writeUInt32BE(value, 6 * i + 2);
  });
  return frame(FRAME.SETTINGS, 0, 0, payload);
}

export class H2Connection {
  private readonly decoder = new HpackDecoder({ maxTableBytes: HPACK_TABLE_BYTES, maxHeaderListBytes: MAX_HEADER_LIST_BYTES });
  private readonly streams = new Map<number, H2Stream>();
  private readonly streamWindow: number;
  private readonly connectionWindow: number;
  /** Bytes read and not yet parsed (less than a frame). */
  private rest: Buffer | undefined;
  private prefaceRead = false;
  private settingsSeen = false;
  /** The header block being read: its stream, END_STREAM, its fragments and count. */
  private block: { streamId: number; endStream: boolean; parts: Buffer[]; bytes: number; continuations: number } | undefined;
  /** The highest stream the client opened. */
  private lastStreamId = 0;
  private peerInitialWindow = DEFAULT_WINDOW;
  private peerMaxFrame = MAX_FRAME_SIZE;
  private sendWindow = DEFAULT_WINDOW;
  private recvWindow = DEFAULT_WINDOW;
  /** Request bytes credited back and not yet announced in a WINDOW_UPDATE. */
  private uncredited = 0;
  private resetTokens = RESET_BURST;
  private resetRefilledAt = Date.now();
  /** Streams this side reset while the client was still sending on them (the latest RESETS_REMEMBERED). */
  private readonly resetWhileOpen = new Set<number>();
  /** Streams with response DATA or trailers waiting for window or socket, in arrival order. */
  private readonly waiting = new Set<H2Stream>();
  /** Frames to write, gathered until the current task's microtasks are done. */
  private out: Buffer[] = [];
  private outBytes = 0;
  private flushQueued = false;
  private goingAway = false;
  /** @internal Response DATA waiting in this connection's streams (MAX_QUEUED_RESPONSE_BYTES). */
  queuedResponseBytes = 0;
  /** The client has ended its side of the socket. */
  private remoteClosed = false;
  /** The socket's end is due once what is queued is written. */
  private ending = false;
  /** Nothing more is read or written: the connection failed or its socket closed. */
  private dead = false;
  /** Why the connection was ended by this side, if it was. */
  failedWith: { code: number; message: string } | undefined;

  constructor(
    readonly socket: Socket,
    private readonly handler: H2ConnectionHandler,
    options: H2ConnectionOptions,
  ) {
    const windows = windowsFor(options.maxRequestBytes);
    this.streamWindow = windows.stream;
    this.connectionWindow = windows.connection;
    socket.setNoDelay(true);
    this.queue(serverSettings(options.maxRequestBytes));
    if (this.connectionWindow > DEFAULT_WINDOW) {
      this.queue(frame(FRAME.WINDOW_UPDATE, 0, 0, u32(this.connectionWindow - DEFAULT_WINDOW)));
      this.recvWindow = this.connectionWindow;
    }
    socket.on('data', (chunk: Buffer) => this.onBytes(chunk));
    socket.on('drain', () => this.flushWaiting());
    socket.on('error', () => undefined);
    socket.on('end', () => this.onRemoteEnd());
    socket.on('close', () => this.onSocketClose());
  }

  /**
   * Graceful close: GOAWAY(NO_ERROR) with the last stream taken; calls in flight finish, then the
   * socket ends. `done` once it has closed.
   */
  close(done?: () => void): void {
    if (done) {
      if (this.socket.destroyed) done();
      else this.socket.once('close', done);
    }
    if (this.dead) return;
    if (!this.goingAway) {
      this.goingAway = true;
      this.queue(goAwayFrame(this.lastStreamId, H2.NO_ERROR, ''));
    }
    this.endIfIdle();
  }

  /** Close now; calls in flight are cut (their streams close). */
  destroy(): void {
    this.socket.destroy();
  }

  // ---- reading ----

  private onBytes(chunk: Buffer): void {
    if (this.dead) return;
    try {
      this.parse(chunk);
    } catch (err) {
      if (err instanceof H2ConnectionError || err instanceof HpackError) return this.fail(err.code, err.message);
      // A bug, here or in a handler called from here: it ends this connection, logged with its
      // stack, not the daemon (rethrown from a socket's data event it would be uncaught, and
      // one client's bytes could stop every pod's runtime).
      log.error({ err }, 'HTTP/2: an unexpected error while serving a connection; it is closed');
      this.fail(H2.INTERNAL_ERROR, 'internal error');
    }
  }

  private parse(chunk: Buffer): void {
    let buf = this.rest ? Buffer.concat([this.rest, chunk]) : chunk;
    this.rest = undefined;
    let off = 0;
    if (!this.prefaceRead) {
      const n = Math.min(buf.length, PREFACE.length);
      if (!buf.subarray(0, n).equals(PREFACE.subarray(0, n))) throw new H2ConnectionError(H2.PROTOCOL_ERROR, 'not an HTTP/2 client connection preface (crib serves gRPC over HTTP/2 only)');
      if (n < PREFACE.length) {
        this.rest = buf;
        return;
      }
      this.prefaceRead = true;
      off = PREFACE.length;
    }
    while (buf.length - off >= FRAME_HEADER) {
      const length = (buf[off]! << 16) | (buf[off + 1]! << 8) | buf[off + 2]!;
      if (length > MAX_FRAME_SIZE) {
        throw new H2ConnectionError(H2.FRAME_SIZE_ERROR, `a frame of ${length} bytes is over SETTINGS_MAX_FRAME_SIZE (${MAX_FRAME_SIZE})`);
      }
      if (buf.length - off < FRAME_HEADER + length) break;
      const type = buf[off + 3]!;
      const flags = buf[off + 4]!;
      const streamId = buf.readUInt32BE(off + 5) & 0x7fffffff;
      const payload = buf.subarray(off + FRAME_HEADER, off + FRAME_HEADER + length);
      off += FRAME_HEADER + length;
      this.onFrame(type, flags, streamId, payload);
      if (this.dead) return;
    }
    if (off < buf.length) this.rest = buf.subarray(off);
    this.endIfIdle();
  }

  private onFrame(type: number, flags: number, streamId: number, payload: Buffer): void {
    if (!this.settingsSeen) {
      if (type !== FRAME.SETTINGS || (flags & FLAG_ACK)) throw new H2ConnectionError(H2.PROTOCOL_ERROR, 'the client preface must end with a SETTINGS frame');
      this.settingsSeen = true;
    }
    if (this.block && type !== FRAME.CONTINUATION) {
      throw new H2ConnectionError(H2.PROTOCOL_ERROR, `a frame of type ${type} inside a header block`);
    }
    switch (type) {
      case FRAME.DATA: return this.onDataFrame(flags, streamId, payload);
      case FRAME.HEADERS: return this.onHeadersFrame(flags, streamId, payload);
      case FRAME.CONTINUATION: return this.onContinuation(flags, streamId, payload);
      case FRAME.PRIORITY:
        if (streamId === 0) throw new H2ConnectionError(H2.PROTOCOL_ERROR, 'PRIORITY on stream 0');
        if (payload.length !== 5) throw new H2ConnectionError(H2.FRAME_SIZE_ERROR, 'a PRIORITY frame is 5 bytes');
        return;
      case FRAME.RST_STREAM: return this.onRstStream(streamId, payload);
      case FRAME.SETTINGS: return this.onSettings(flags, streamId, payload);
      case FRAME.PUSH_PROMISE: throw new H2ConnectionError(H2.PROTOCOL_ERROR, 'a client cannot send PUSH_PROMISE');
      case FRAME.PING:
        if (streamId !== 0) throw new H2ConnectionError(H2.PROTOCOL_ERROR, 'PING on a stream');
        if (payload.length !== 8) throw new H2ConnectionError(H2.FRAME_SIZE_ERROR, 'a PING frame is 8 bytes');
        if (!(flags & FLAG_ACK)) this.queueControl(frame(FRAME.PING, FLAG_ACK, 0, payload));
        return;
      case FRAME.GOAWAY:
        if (streamId !== 0) throw new H2ConnectionError(H2.PROTOCOL_ERROR, 'GOAWAY on a stream');
        // The client opens no more streams; those it opened finish.
        return;
      case FRAME.WINDOW_UPDATE: return this.onWindowUpdate(streamId, payload);
      default:
        // RFC 9113 §5.5: frames of unknown types are ignored.
        return;
    }
  }

  /** The payload without its padding (PADDED flag: a pad-length byte, then padding at the end). */
  private unpad(flags: number, payload: Buffer, what: string): Buffer {
    if (!(flags & FLAG_PADDED)) return payload;
    if (payload.length < 1) throw new H2ConnectionError(H2.PROTOCOL_ERROR, `a padded ${what} frame without its pad length`);
    const pad = payload[0]!;
    if (pad >= payload.length) throw new H2ConnectionError(H2.PROTOCOL_ERROR, `a ${what} frame's padding is longer than its payload`);
    return payload.subarray(1, payload.length - pad);
  }

  private onDataFrame(flags: number, streamId: number, payload: Buffer): void {
    if (streamId === 0) throw new H2ConnectionError(H2.PROTOCOL_ERROR, 'DATA on stream 0');
    // The whole frame counts against the windows, padding included (RFC 9113 §6.9.1).
    if (payload.length > this.recvWindow) throw new H2ConnectionError(H2.FLOW_CONTROL_ERROR, 'DATA beyond the connection\'s flow-control window');
    this.recvWindow -= payload.length;
    const stream = this.streams.get(streamId);
    if (!stream || stream.remoteEnded) {
      if (streamId > this.lastStreamId) throw new H2ConnectionError(H2.PROTOCOL_ERROR, `DATA on stream ${streamId}, which was never opened`);
      // A stream this side has closed or refused (the client may not know yet): dropped, its
      // bytes credited back at once. Sent after END_STREAM it is a stream error (§5.1).
      this.credit(payload.length);
      if (stream) this.resetStream(stream, H2.STREAM_CLOSED, true);
      return;
    }
    if (payload.length > stream.recvWindow) {
      this.credit(payload.length);
      return this.resetStream(stream, H2.FLOW_CONTROL_ERROR, true);
    }
    stream.recvWindow -= payload.length;
    stream.held += payload.length;
    const data = this.unpad(flags, payload, 'DATA');
    // Copied out of the socket's read buffer: a held request must not hold the rest of it.
    if (data.length > 0) stream.onData?.(Buffer.from(data));
    if (flags & FLAG_END_STREAM) this.remoteEnd(stream);
  }

  private onHeadersFrame(flags: number, streamId: number, payload: Buffer): void {
    if (streamId === 0) throw new H2ConnectionError(H2.PROTOCOL_ERROR, 'HEADERS on stream 0');
    let fragment = this.unpad(flags, payload, 'HEADERS');
    if (flags & FLAG_PRIORITY) {
      if (fragment.length < 5) throw new H2ConnectionError(H2.PROTOCOL_ERROR, 'a HEADERS frame too short for its priority');
      fragment = fragment.subarray(5);
    }
    this.block = { streamId, endStream: (flags & FLAG_END_STREAM) !== 0, parts: [fragment], bytes: fragment.length, continuations: 0 };
    this.checkBlockSize();
    if (flags & FLAG_END_HEADERS) this.onHeaderBlock();
  }

  private onContinuation(flags: number, streamId: number, payload: Buffer): void {
    const block = this.block;
    if (!block || block.streamId !== streamId) throw new H2ConnectionError(H2.PROTOCOL_ERROR, 'a CONTINUATION frame outside its header block');
    if (++block.continuations > MAX_CONTINUATIONS) {
      throw new H2ConnectionError(H2.ENHANCE_YOUR_CALM, `the header block of stream ${streamId} runs over more than ${MAX_CONTINUATIONS} CONTINUATION frames`);
    }
    block.parts.push(payload);
    block.bytes += payload.length;
    this.checkBlockSize();
    if (flags & FLAG_END_HEADERS) this.onHeaderBlock();
  }

  private checkBlockSize(): void {
    const block = this.block!;
    if (block.bytes > MAX_HEADER_BLOCK_BYTES) {
      throw new H2ConnectionError(H2.ENHANCE_YOUR_CALM, `the header block of stream ${block.streamId} is larger than ${MAX_HEADER_BLOCK_BYTES} bytes`);
    }
  }

  private onHeaderBlock(): void {
    const { streamId, endStream, parts } = this.block!;
    this.block = undefined;
    // Every block is decoded, refused streams' too: HPACK's table follows the client's encoder.
    const fields = this.decoder.decode(parts.length === 1 ? parts[0]! : Buffer.concat(parts));
    const existing = this.streams.get(streamId);
    if (existing) {
      // Trailers from the client: they must end its request. gRPC clients send none.
      if (existing.remoteEnded || !endStream) throw new H2ConnectionError(H2.PROTOCOL_ERROR, `a second header block on stream ${streamId} without END_STREAM`);
      return this.remoteEnd(existing);
    }
    if (streamId <= this.lastStreamId) {
      // A stream this side reset while the client was still sending: what the client sent before
      // it saw the reset is ignored (RFC 9113 §5.4.2). Any other closed stream is an error.
      if (this.resetWhileOpen.has(streamId)) return;
      throw new H2ConnectionError(H2.STREAM_CLOSED, `HEADERS on stream ${streamId}, which is closed`);
    }
    if (streamId % 2 === 0) throw new H2ConnectionError(H2.PROTOCOL_ERROR, `a client opened stream ${streamId}, an even (server) stream`);
    this.lastStreamId = streamId;
    // Refused: going away, at the concurrency cap, or answers already wait for this client beyond
    // their bound (no more calls until it reads them).
    if (this.goingAway || this.streams.size >= MAX_CONCURRENT_STREAMS || this.queuedResponseBytes > MAX_QUEUED_RESPONSE_BYTES) {
      return this.queueControl(frame(FRAME.RST_STREAM, 0, streamId, u32(H2.REFUSED_STREAM)));
    }
    const stream = new H2Stream(streamId, this, this.peerInitialWindow, this.streamWindow);
    this.streams.set(streamId, stream);
    // A request whole in its HEADERS is ended before the handler sees it, so an answer the
    // handler gives at once does not also reset the stream (localEnded).
    stream.remoteEnded = endStream;
    this.handler.onStream(stream, fields);
    if (endStream && !stream.closed) {
      stream.onEnd?.();
      if (stream.localEnded) this.closeStream(stream);
    }
  }

  private onRstStream(streamId: number, payload: Buffer): void {
    if (streamId === 0) throw new H2ConnectionError(H2.PROTOCOL_ERROR, 'RST_STREAM on stream 0');
    if (payload.length !== 4) throw new H2ConnectionError(H2.FRAME_SIZE_ERROR, 'an RST_STREAM frame is 4 bytes');
    if (streamId > this.lastStreamId) throw new H2ConnectionError(H2.PROTOCOL_ERROR, `RST_STREAM on stream ${streamId}, which was never opened`);
    const stream = this.streams.get(streamId);
    if (!stream) return;
    if (!stream.localEnded) this.takeResetToken();
    this.resetStream(stream, payload.readUInt32BE(0), false);
  }

  /** The rapid-reset bound: a token per reset of a stream this side was still answering. */
  private takeResetToken(): void {
    const now = Date.now();
    this.resetTokens = Math.min(RESET_BURST, this.resetTokens + ((now - this.resetRefilledAt) / 1000) * RESETS_PER_SECOND);
    this.resetRefilledAt = now;
    if (this.resetTokens < 1) {
      throw new H2ConnectionError(H2.ENHANCE_YOUR_CALM, `more than ${RESET_BURST} streams reset at once, or more than ${RESETS_PER_SECOND} a second, by the client`);
    }
    this.resetTokens -= 1;
  }

  private onSettings(flags: number, streamId: number, payload: Buffer): void {
    if (streamId !== 0) throw new H2ConnectionError(H2.PROTOCOL_ERROR, 'SETTINGS on a stream');
    if (flags & FLAG_ACK) {
      if (payload.length !== 0) throw new H2ConnectionError(H2.FRAME_SIZE_ERROR, 'a SETTINGS acknowledgement with a payload');
      return;
    }
    if (payload.length % 6 !== 0) throw new H2ConnectionError(H2.FRAME_SIZE_ERROR, 'a SETTINGS frame\'s length is not a multiple of 6');
    for (let i = 0; i < payload.length; i += 6) {
      const id = payload.readUInt16BE(i);
      const value = payload.readUInt32BE(i + 2);
      switch (id) {
        case SETTINGS_ENABLE_PUSH:
          if (value > 1) throw new H2ConnectionError(H2.PROTOCOL_ERROR, `SETTINGS_ENABLE_PUSH ${value}`);
          break;
        case SETTINGS_INITIAL_WINDOW_SIZE: {
          if (value > MAX_WINDOW) throw new H2ConnectionError(H2.FLOW_CONTROL_ERROR, `SETTINGS_INITIAL_WINDOW_SIZE ${value} is over 2^31-1`);
          // Every open stream's window moves by the difference (RFC 9113 §6.9.2).
          const delta = value - this.peerInitialWindow;
          this.peerInitialWindow = value;
          for (const s of this.streams.values()) {
            s.sendWindow += delta;
            if (s.sendWindow > MAX_WINDOW) throw new H2ConnectionError(H2.FLOW_CONTROL_ERROR, 'a stream\'s window grew over 2^31-1');
          }
          break;
        }
        case SETTINGS_MAX_FRAME_SIZE:
          if (value < MAX_FRAME_SIZE || value > 0xffffff) throw new H2ConnectionError(H2.PROTOCOL_ERROR, `SETTINGS_MAX_FRAME_SIZE ${value}`);
          this.peerMaxFrame = value;
          break;
        // SETTINGS_HEADER_TABLE_SIZE: this side's responses use no dynamic table, so any size the
        // client's decoder has is fine. MAX_CONCURRENT_STREAMS limits pushes, which this side never
        // makes. MAX_HEADER_LIST_SIZE: this side's header blocks are a few fields.
        default:
          break;
      }
    }
    this.queueControl(frame(FRAME.SETTINGS, FLAG_ACK, 0, Buffer.alloc(0)));
    this.flushWaiting();
  }

  private onWindowUpdate(streamId: number, payload: Buffer): void {
    if (payload.length !== 4) throw new H2ConnectionError(H2.FRAME_SIZE_ERROR, 'a WINDOW_UPDATE frame is 4 bytes');
    const increment = payload.readUInt32BE(0) & 0x7fffffff;
    if (streamId === 0) {
      if (increment === 0) throw new H2ConnectionError(H2.PROTOCOL_ERROR, 'a WINDOW_UPDATE of 0');
      this.sendWindow += increment;
      if (this.sendWindow > MAX_WINDOW) throw new H2ConnectionError(H2.FLOW_CONTROL_ERROR, 'the connection\'s window grew over 2^31-1');
      return this.flushWaiting();
    }
    if (streamId > this.lastStreamId) throw new H2ConnectionError(H2.PROTOCOL_ERROR, `WINDOW_UPDATE on stream ${streamId}, which was never opened`);
    const stream = this.streams.get(streamId);
    if (!stream) return;
    if (increment === 0) return this.resetStream(stream, H2.PROTOCOL_ERROR, true);
    stream.sendWindow += increment;
    if (stream.sendWindow > MAX_WINDOW) return this.resetStream(stream, H2.FLOW_CONTROL_ERROR, true);
    this.flushStream(stream);
  }

  // ---- stream state ----

  private remoteEnd(stream: H2Stream): void {
    stream.remoteEnded = true;
    // The request is whole: what it held is credited back to the connection's window.
    this.credit(stream.held);
    stream.held = 0;
    stream.onEnd?.();
    if (stream.localEnded) this.closeStream(stream);
  }

  /** @internal This side sent END_STREAM on `stream`. */
  localEnded(stream: H2Stream): void {
    this.waiting.delete(stream);
    if (stream.remoteEnded) return this.closeStream(stream);
    // Answered before the client finished its request: it is told to stop sending it with
    // RST_STREAM NO_ERROR after the answer (RFC 9113 §8.1).
    this.resetStream(stream, H2.NO_ERROR, true);
  }

  /** @internal A reset by this side (`send`) or by the client. */
  resetStream(stream: H2Stream, code: number, send: boolean): void {
    if (stream.closed) return;
    if (send) {
      this.queue(frame(FRAME.RST_STREAM, 0, stream.id, u32(code)));
      if (!stream.remoteEnded) {
        this.resetWhileOpen.add(stream.id);
        // Only the latest few are remembered: a client has long seen an older reset.
        if (this.resetWhileOpen.size > RESETS_REMEMBERED) this.resetWhileOpen.delete(this.resetWhileOpen.values().next().value!);
      }
    }
    stream.localEnded = true;
    this.closeStream(stream);
  }

  private closeStream(stream: H2Stream): void {
    if (stream.closed) return;
    stream.closed = true;
    stream.dropQueue();
    this.streams.delete(stream.id);
    this.waiting.delete(stream);
    this.credit(stream.held);
    stream.held = 0;
    stream.onClose?.();
    this.endIfIdle();
  }

  /** Request bytes are done with: the connection's window reopens by as much, in batches. */
  private credit(bytes: number): void {
    if (bytes === 0) return;
    this.uncredited += bytes;
    if (this.uncredited >= 64 * 1024 || this.recvWindow < this.connectionWindow / 2) {
      this.queue(frame(FRAME.WINDOW_UPDATE, 0, 0, u32(this.uncredited)));
      this.recvWindow += this.uncredited;
      this.uncredited = 0;
    }
  }

  // ---- writing ----

  /** @internal Whether `bytes` of DATA could go out now, within the connection's window and the socket. */
  canSendNow(bytes: number): boolean {
    return !this.dead && bytes <= this.sendWindow && bytes <= this.peerMaxFrame && this.socketRoom();
  }

  private socketRoom(): boolean {
    return this.socket.writableLength + this.outBytes < SOCKET_HIGH_WATER;
  }

  /** @internal HEADERS, DATA and trailers of one stream as one buffer (a unary answer). */
  sendWhole(streamId: number, headers: Buffer, data: Buffer, trailers: Buffer): void {
    this.sendWindow -= data.length;
    const out = Buffer.allocUnsafe(3 * FRAME_HEADER + headers.length + data.length + trailers.length);
    let at = 0;
    frameHeader(out, at, headers.length, FRAME.HEADERS, FLAG_END_HEADERS, streamId);
    at += FRAME_HEADER + headers.copy(out, at + FRAME_HEADER);
    frameHeader(out, at, data.length, FRAME.DATA, 0, streamId);
    at += FRAME_HEADER + data.copy(out, at + FRAME_HEADER);
    frameHeader(out, at, trailers.length, FRAME.HEADERS, FLAG_END_HEADERS | FLAG_END_STREAM, streamId);
    trailers.copy(out, at + FRAME_HEADER);
    this.queue(out);
  }

  /** @internal A header block as HEADERS (and CONTINUATION frames past the peer's frame size). */
  sendHeaders(streamId: number, block: Buffer, endStream: boolean): void {
    const max = this.peerMaxFrame;
    const endFlag = endStream ? FLAG_END_STREAM : 0;
    if (block.length <= max) return this.queue(frame(FRAME.HEADERS, FLAG_END_HEADERS | endFlag, streamId, block));
    for (let at = 0; at < block.length; at += max) {
      const last = at + max >= block.length;
      const type = at === 0 ? FRAME.HEADERS : FRAME.CONTINUATION;
      this.queue(frame(type, (at === 0 ? endFlag : 0) | (last ? FLAG_END_HEADERS : 0), streamId, block.subarray(at, at + max)));
    }
  }

  /** @internal One DATA frame; whether the socket has room for more. */
  sendData(streamId: number, chunk: Buffer): boolean {
    this.sendWindow -= chunk.length;
    const head = Buffer.allocUnsafe(FRAME_HEADER);
    frameHeader(head, 0, chunk.length, FRAME.DATA, 0, streamId);
    this.queue(head);
    this.queue(chunk);
    return this.socketRoom();
  }

  /** @internal Send what `stream` can; if it must wait, it waits for window or drain. */
  flushStream(stream: H2Stream): void {
    if (this.dead || stream.closed) return;
    const budget = { conn: this.sendWindow, socket: this.socketRoom() };
    stream.flush(this.peerMaxFrame, budget);
    if (stream.waiting) this.waiting.add(stream);
    else this.waiting.delete(stream);
  }

  private flushWaiting(): void {
    for (const s of [...this.waiting]) {
      if (this.sendWindow <= 0 || !this.socketRoom()) break;
      this.flushStream(s);
    }
  }

  private queue(buf: Buffer): void {
    if (this.dead) return;
    this.out.push(buf);
    this.outBytes += buf.length;
    if (!this.flushQueued) {
      this.flushQueued = true;
      queueMicrotask(() => this.flushOut());
    }
  }

  /** An acknowledgement or refusal the client must read: cut off a client that makes them pile up. */
  private queueControl(buf: Buffer): void {
    if (this.socket.writableLength + this.outBytes > MAX_QUEUED_CONTROL_BYTES) {
      throw new H2ConnectionError(H2.ENHANCE_YOUR_CALM, `more than ${MAX_QUEUED_CONTROL_BYTES} bytes of acknowledgements waiting for the client to read them`);
    }
    this.queue(buf);
  }

  /** What this task queued goes out in one write: a unary answer, or many, one syscall. */
  private flushOut(): void {
    this.flushQueued = false;
    const out = this.out;
    if (this.socket.destroyed) return;
    this.out = [];
    this.outBytes = 0;
    if (out.length === 1) this.socket.write(out[0]!);
    else if (out.length > 1) this.socket.write(Buffer.concat(out));
    if (this.ending) this.socket.end();
  }

  // ---- ending ----

  /** Going away, or the client has ended its side, and no stream left: end the socket. */
  private endIfIdle(): void {
    if ((this.goingAway || this.remoteClosed) && this.streams.size === 0 && !this.ending && !this.dead) {
      this.ending = true;
      if (!this.flushQueued) this.socket.end();
    }
  }

  private onRemoteEnd(): void {
    // The client will send nothing more; its calls are answered, then the socket ends.
    this.remoteClosed = true;
    this.endIfIdle();
  }

  /** A broken rule: GOAWAY naming it, nothing more read, the socket closed once the client has read it. */
  private fail(code: number, message: string): void {
    if (this.dead) return;
    log.warn({ err: message, code }, 'HTTP/2 client refused: connection closed with GOAWAY');
    this.out.push(goAwayFrame(this.lastStreamId, code, message));
    this.dead = true;
    this.socket.pause();
    const out = this.out;
    this.out = [];
    this.outBytes = 0;
    // Ended, not destroyed: closed at once, a client still writing gets EPIPE and drops the
    // socket before it reads the GOAWAY waiting for it.
    const linger = setTimeout(() => this.socket.destroy(), GOAWAY_LINGER_MS);
    linger.unref();
    this.socket.once('close', () => clearTimeout(linger));
    if (!this.socket.destroyed) this.socket.end(Buffer.concat(out));
    this.failedWith = { code, message };
    for (const s of [...this.streams.values()]) this.closeStream(s);
  }

  private onSocketClose(): void {
    this.dead = true;
    this.out = [];
    this.outBytes = 0;
    for (const s of [...this.streams.values()]) {
      s.localEnded = true;
      this.closeStream(s);
    }
  }
}
