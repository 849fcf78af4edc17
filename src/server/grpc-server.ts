// crib's gRPC server: the part of the gRPC-over-HTTP/2 protocol the CRI needs (unary and
// server-streaming calls, identity encoding), written on node:http2. @grpc/grpc-js cost the daemon
// about 0.8 ms of CPU per call above nghttp2 (its call objects, interceptors, metadata, filters and
// several stream layers) and ~11 MiB of resident memory; this costs a fraction of that and loads
// nothing but Node's own HTTP/2.
//
// The protocol (https://github.com/grpc/grpc/blob/master/doc/PROTOCOL-HTTP2.md), as grpc-go
// clients (kubelet, crictl, critest) and grpc-js clients expect it:
//   - a call is a POST to /<service>/<method> with content-type application/grpc[+proto|;...];
//     another method or content type is answered with HTTP 405/415 and a gRPC status, as grpc-go's
//     server does; an unknown path with UNIMPLEMENTED;
//   - messages are length-prefixed (1 flag byte, 4 length bytes). crib implements no compression:
//     a grpc-encoding other than identity is UNIMPLEMENTED, and a message with the compressed flag
//     set is INTERNAL (the client broke the protocol: it never said which encoding);
//   - a request message larger than the bound is refused from its 5-byte prefix, before any of it
//     is held: RESOURCE_EXHAUSTED, and the rest of the stream is not read;
//   - unary and server-streaming calls carry exactly one request message;
//   - grpc-timeout (every unit) sets the call's deadline: when it passes the call ends with
//     DEADLINE_EXCEEDED and the handler's signal is aborted; the client's RST_STREAM (or its
//     connection closing) aborts it too;
//   - a response is HEADERS (:status 200, content-type), the messages, then trailers with
//     grpc-status and a percent-encoded grpc-message; a call that fails before any message
//     answers "trailers-only" (one HEADERS frame with END_STREAM).
import http2, { type Http2Server, type Http2Session, type IncomingHttpHeaders, type ServerHttp2Stream } from 'node:http2';
import type { Duplex } from 'node:stream';
import { Status } from '../grpc-status.js';
import { log } from '../log.js';

const {
  HTTP2_HEADER_STATUS,
  HTTP2_HEADER_CONTENT_TYPE,
  HTTP2_HEADER_METHOD,
  HTTP2_HEADER_PATH,
  NGHTTP2_NO_ERROR,
  NGHTTP2_CANCEL,
  NGHTTP2_FLAG_END_STREAM,
} = http2.constants;

/** One method, as protobufjs-generated definitions and crib's Admin service describe it. */
export interface MethodDefinition<Req = any, Res = any> {
  path: string;
  requestStream: boolean;
  responseStream: boolean;
  requestDeserialize: (bytes: Buffer) => Req;
  responseSerialize: (value: Res) => Buffer;
  // A client's halves, which the same definitions carry (grpc-js clients use them); unused here.
  requestSerialize?: (value: Req) => Buffer;
  responseDeserialize?: (bytes: Buffer) => Res;
  originalName?: string;
}

export type ServiceDefinition = { readonly [method: string]: MethodDefinition };

/** A method's server side: called once the request message has arrived whole. */
export type MethodImplementation = (call: ServerCall) => void;

export interface GrpcServerOptions {
  /** Largest request message read, and largest response message sent. */
  maxMessageBytes: number;
  /** Bytes of a server stream's messages held for a client that does not read (default MAX_STREAM_BUFFERED_BYTES). */
  maxStreamBufferedBytes?: number;
}

/** The prefix of every gRPC message: compressed flag (1 byte), length (4 bytes, big endian). */
const PREFIX = 5;
/** setTimeout takes at most 2^31-1 ms (~24.8 days); a later deadline needs no timer. */
const MAX_TIMER_MS = 2 ** 31 - 1;

/**
 * The HTTP/2 settings crib's server runs with, each chosen for a reason:
 * - maxConcurrentStreams 1000: grpc-js's default was unbounded. kubelet multiplexes every CRI
 *   call of a node on one connection (probes' ExecSync, stats, one GetContainerEvents stream that
 *   lives as long as kubelet); 110 pods never need near a thousand at once, and grpc-go clients
 *   queue calls over the limit rather than fail them.
 * - maxHeaderListSize 65535 and headerTableSize 4096: Node's defaults, restated because the
 *   :authority filter in front (daemon/authority-rewrite.ts) is built on exactly these bounds.
 * - enablePush false: a gRPC server never pushes.
 * - maxSessionMemory 64 (MB): nghttp2's credit for one connection (buffered frames, header
 *   tables, responses waiting for the client's window); over it, new streams are refused with
 *   ENHANCE_YOUR_CALM until it drains. Node's default of 10 MB is below one 16 MiB response; 64
 *   holds a few of the largest messages in flight. grpc-js disabled the check entirely.
 * - maxHeaderListPairs 128: Node's default (gRPC metadata is a handful of headers).
 */
export const HTTP2_SERVER_OPTIONS: http2.ServerOptions = {
  settings: {
    maxConcurrentStreams: 1000,
    maxHeaderListSize: 65535,
    headerTableSize: 4096,
    enablePush: false,
  },
  maxSessionMemory: 64,
  maxHeaderListPairs: 128,
};

/**
 * How many bytes of a server stream's messages may wait for a client that does not read them
 * (its flow-control window closed): two of the largest messages. A Stream* list sends all its
 * batches at once (bounded together by the listed-size limit, under one message's worth); an event
 * stream only grows when the client stops reading, and is then cut rather than held forever.
 */
export const MAX_STREAM_BUFFERED_BYTES = 2 * 16 * 1024 * 1024;

/** RFC: grpc-message is percent-encoded UTF-8; printable ASCII other than % goes as it is. */
export function encodeGrpcMessage(message: string): string {
  if (/^[\x20-\x24\x26-\x7e]*$/.test(message)) return message;
  let out = '';
  for (const byte of Buffer.from(message, 'utf8')) {
    out += byte >= 0x20 && byte <= 0x7e && byte !== 0x25 ? String.fromCharCode(byte) : `%${byte.toString(16).toUpperCase().padStart(2, '0')}`;
  }
  return out;
}

const TIMEOUT_UNIT_MS: Record<string, number> = { H: 3_600_000, M: 60_000, S: 1000, m: 1, u: 1e-3, n: 1e-6 };

/** grpc-timeout (at most 8 digits and a unit, PROTOCOL-HTTP2.md) in milliseconds; undefined if malformed. */
export function parseGrpcTimeout(value: string): number | undefined {
  const m = /^(\d{1,8})([HMSmun])$/.exec(value);
  if (!m) return undefined;
  return Number(m[1]) * TIMEOUT_UNIT_MS[m[2]!]!;
}

function isGrpcContentType(value: string): boolean {
  return value === 'application/grpc' || value.startsWith('application/grpc+') || value.startsWith('application/grpc;');
}

function messageFrame(body: Buffer): Buffer {
  const frame = Buffer.allocUnsafe(PREFIX + body.length);
  frame[0] = 0;
  frame.writeUInt32BE(body.length, 1);
  body.copy(frame, PREFIX);
  return frame;
}

function statusHeaders(code: Status, message: string): Record<string, string> {
  const h: Record<string, string> = { 'grpc-status': String(code) };
  if (message) h['grpc-message'] = encodeGrpcMessage(message);
  return h;
}

/** Why a call's handler is asked to stop. */
export type CancelReason = 'cancelled' | 'deadline' | 'overflow' | 'unsendable';

/**
 * One call on the server: its request, its deadline, and the ways to answer it. Every answer
 * after the first end (or after the client went away) is dropped: the handler may still be
 * running when the deadline or a cancel ended the call.
 */
export class ServerCall {
  /** The decoded request; set before the implementation is called. */
  request: unknown;
  /** When the client's deadline passes (ms since the epoch), if it set one. */
  readonly deadlineAt: number | undefined;
  /** The client has sent all of its request (END_STREAM). */
  requestEnded = false;
  private headersSent = false;
  private ended = false;
  private cancelReason: CancelReason | undefined;
  private cancelListener: ((reason: CancelReason) => void) | undefined;
  private timer: NodeJS.Timeout | undefined;

  constructor(
    private readonly stream: ServerHttp2Stream,
    private readonly method: MethodDefinition,
    private readonly maxMessageBytes: number,
    private readonly maxBufferedBytes: number,
    timeoutMs: number | undefined,
  ) {
    if (timeoutMs !== undefined) {
      this.deadlineAt = Date.now() + timeoutMs;
      if (timeoutMs <= MAX_TIMER_MS) {
        this.timer = setTimeout(() => {
          this.end(Status.DEADLINE_EXCEEDED, 'Deadline exceeded');
          this.cancel('deadline');
        }, timeoutMs);
      }
    }
    stream.once('close', () => {
      if (this.timer) clearTimeout(this.timer);
      // The stream closed before the call answered: the client reset it or went away.
      if (!this.ended) {
        this.ended = true;
        this.cancel('cancelled');
      }
    });
  }

  /** Whether the call has answered, or can no longer. */
  get isEnded(): boolean {
    return this.ended;
  }

  /** Why the call was cancelled, if it was. */
  get cancelled(): CancelReason | undefined {
    return this.cancelReason;
  }

  /** Told once, when the client cancels, the deadline passes, or a stream overflows. */
  onCancel(listener: (reason: CancelReason) => void): void {
    this.cancelListener = listener;
    if (this.cancelReason) listener(this.cancelReason);
  }

  private cancel(reason: CancelReason): void {
    if (this.cancelReason) return;
    this.cancelReason = reason;
    this.cancelListener?.(reason);
  }

  private serialize(res: unknown): Buffer | undefined {
    let body: Buffer;
    try {
      body = this.method.responseSerialize(res);
    } catch (err) {
      log.error({ path: this.method.path, err }, 'a response did not serialize');
      this.end(Status.INTERNAL, `the server could not serialize its response: ${(err as Error).message}`);
      // A streaming handler still running would otherwise go on until the client leaves.
      this.cancel('unsendable');
      return undefined;
    }
    if (body.length > this.maxMessageBytes) {
      this.end(Status.RESOURCE_EXHAUSTED, `Sent message larger than max (${body.length} vs. ${this.maxMessageBytes})`);
      this.cancel('unsendable');
      return undefined;
    }
    return messageFrame(body);
  }

  /** A unary call's answer: headers, the message and the OK trailers, in one write. */
  sendUnary(res: unknown): void {
    if (this.ended) return;
    const frame = this.serialize(res);
    if (!frame) return;
    this.ended = true;
    this.finishTimer();
    const stream = this.stream;
    if (stream.destroyed) return;
    stream.respond({ [HTTP2_HEADER_STATUS]: 200, [HTTP2_HEADER_CONTENT_TYPE]: 'application/grpc' }, { waitForTrailers: true });
    stream.once('wantTrailers', () => stream.sendTrailers({ 'grpc-status': '0' }));
    stream.end(frame);
  }

  /** One message of a server-streaming call. */
  write(res: unknown): void {
    if (this.ended) return;
    const frame = this.serialize(res);
    if (!frame) return;
    const stream = this.stream;
    if (stream.destroyed) return;
    if (!this.headersSent) {
      this.headersSent = true;
      stream.respond({ [HTTP2_HEADER_STATUS]: 200, [HTTP2_HEADER_CONTENT_TYPE]: 'application/grpc' }, { waitForTrailers: true });
    }
    stream.write(frame);
    if (stream.writableLength > this.maxBufferedBytes) {
      // The client stopped reading: its messages are not held for it without end. The trailers
      // would queue behind the unread data, so the stream is reset instead.
      log.warn({ path: this.method.path, buffered: stream.writableLength, limit: this.maxBufferedBytes }, 'a server stream was cut: its client stopped reading');
      this.ended = true;
      this.finishTimer();
      stream.close(NGHTTP2_CANCEL);
      this.cancel('overflow');
    }
  }

  /** End the call with a status: trailers after messages, or trailers-only before any. */
  end(code: Status, message = ''): void {
    if (this.ended) return;
    this.ended = true;
    this.finishTimer();
    const stream = this.stream;
    if (stream.destroyed) return;
    if (this.headersSent) {
      stream.once('wantTrailers', () => stream.sendTrailers(statusHeaders(code, message)));
      stream.end();
      if (!this.requestEnded) stream.close(NGHTTP2_NO_ERROR);
    } else {
      respondTrailersOnly(stream, 200, code, message, !this.requestEnded);
    }
  }

  private finishTimer(): void {
    if (this.timer) clearTimeout(this.timer);
    this.timer = undefined;
  }
}

/**
 * A status with no messages: one HEADERS frame. When the client is still sending (requestOpen),
 * the rest of its request is not read: it is told with RST_STREAM NO_ERROR after the status
 * (RFC 9113 §8.1), which Node sends once the response is out.
 */
function respondTrailersOnly(stream: ServerHttp2Stream, httpStatus: number, code: Status, message: string, requestOpen: boolean): void {
  if (stream.destroyed || stream.headersSent) return;
  stream.respond({ [HTTP2_HEADER_STATUS]: httpStatus, [HTTP2_HEADER_CONTENT_TYPE]: 'application/grpc', ...statusHeaders(code, message) }, { endStream: true });
  if (requestOpen) stream.close(NGHTTP2_NO_ERROR);
}

export class GrpcServer {
  readonly http2: Http2Server;
  private readonly methods = new Map<string, { def: MethodDefinition; impl: MethodImplementation }>();
  private readonly sessions = new Set<Http2Session>();
  private shuttingDown = false;

  constructor(private readonly options: GrpcServerOptions) {
    this.http2 = http2.createServer(HTTP2_SERVER_OPTIONS);
    this.http2.on('session', (session: Http2Session) => {
      this.sessions.add(session);
      session.once('close', () => this.sessions.delete(session));
      // A session's protocol error ends that connection only; nghttp2 has sent the GOAWAY.
      session.on('error', (err) => log.debug({ err }, 'HTTP/2 session error'));
      if (this.shuttingDown) session.close();
    });
    this.http2.on('stream', (stream, headers, flags) => this.onStream(stream, headers, flags));
  }

  /** Serve every method of a service; `impl` has one entry per method of `definition`. */
  addService(definition: ServiceDefinition, impl: Record<string, MethodImplementation>): void {
    for (const [name, def] of Object.entries(definition)) {
      if (def.requestStream) throw new Error(`${def.path}: client-streaming methods are not supported`);
      const fn = impl[name];
      if (!fn) throw new Error(`${def.path}: no implementation`);
      this.methods.set(def.path, { def, impl: fn });
    }
  }

  /** Serve one accepted connection (a socket, or the :authority filter's duplex in front of one). */
  injectConnection(connection: Duplex): void {
    this.http2.emit('connection', connection);
  }

  /** GOAWAY to every client; calls in flight finish; `done` once every connection has closed. */
  tryShutdown(done: () => void): void {
    this.shuttingDown = true;
    if (this.sessions.size === 0) return done();
    let left = this.sessions.size;
    for (const s of this.sessions) {
      s.close(() => {
        if (--left === 0) done();
      });
    }
  }

  /** Close every connection now; calls in flight are cut. */
  forceShutdown(): void {
    this.shuttingDown = true;
    for (const s of this.sessions) s.destroy();
  }

  private onStream(stream: ServerHttp2Stream, headers: IncomingHttpHeaders, flags: number): void {
    // Errors on one stream (a reset while writing) concern that call only; 'close' follows.
    stream.on('error', () => undefined);
    const open = (flags & NGHTTP2_FLAG_END_STREAM) === 0;
    if (headers[HTTP2_HEADER_METHOD] !== 'POST') {
      return respondTrailersOnly(stream, 405, Status.INTERNAL, `gRPC requires POST, not ${String(headers[HTTP2_HEADER_METHOD])}`, open);
    }
    const contentType = headers[HTTP2_HEADER_CONTENT_TYPE];
    if (typeof contentType !== 'string' || !isGrpcContentType(contentType)) {
      return respondTrailersOnly(stream, 415, Status.INVALID_ARGUMENT, `invalid gRPC request content-type "${String(contentType ?? '')}"`, open);
    }
    const path = String(headers[HTTP2_HEADER_PATH] ?? '');
    const method = this.methods.get(path);
    if (!method) return respondTrailersOnly(stream, 200, Status.UNIMPLEMENTED, `unknown method ${path.slice(0, 256)}`, open);
    const encoding = headers['grpc-encoding'];
    if (encoding !== undefined && encoding !== 'identity') {
      return respondTrailersOnly(stream, 200, Status.UNIMPLEMENTED, `grpc-encoding "${String(encoding).slice(0, 64)}" is not supported (crib accepts identity only)`, open);
    }
    let timeoutMs: number | undefined;
    const timeout = headers['grpc-timeout'];
    if (timeout !== undefined) {
      timeoutMs = typeof timeout === 'string' ? parseGrpcTimeout(timeout) : undefined;
      if (timeoutMs === undefined) return respondTrailersOnly(stream, 200, Status.INTERNAL, `malformed grpc-timeout "${String(timeout).slice(0, 64)}"`, open);
    }
    const call = new ServerCall(stream, method.def, this.options.maxMessageBytes, this.options.maxStreamBufferedBytes ?? MAX_STREAM_BUFFERED_BYTES, timeoutMs);
    this.readRequest(stream, call, method);
  }

  /** Collect the one request message, checking each bound as soon as it can be, then dispatch. */
  private readRequest(stream: ServerHttp2Stream, call: ServerCall, method: { def: MethodDefinition; impl: MethodImplementation }): void {
    const max = this.options.maxMessageBytes;
    let chunks: Buffer[] = [];
    let held = 0;
    /** The current message's length once its prefix is read. */
    let expected = -1;
    let message: Buffer | undefined;
    let failed = false;
    const fail = (code: Status, text: string): void => {
      failed = true;
      chunks = [];
      stream.off('data', onData);
      // The request is still open: end() tells the client to stop sending it.
      call.end(code, text);
    };
    const onData = (chunk: Buffer): void => {
      if (failed || call.isEnded) return;
      chunks.push(chunk);
      held += chunk.length;
      for (;;) {
        if (expected < 0) {
          if (held < PREFIX) return;
          const all = chunks.length === 1 ? chunks[0]! : Buffer.concat(chunks);
          const flag = all[0]!;
          const length = all.readUInt32BE(1);
          if (flag !== 0) {
            return fail(Status.INTERNAL, flag === 1
              ? 'a request message has the compressed flag set, but the call has no grpc-encoding (crib accepts identity only)'
              : `a request message has an invalid flag byte ${flag}`);
          }
          if (length > max) return fail(Status.RESOURCE_EXHAUSTED, `Received message larger than max (${length} vs. ${max})`);
          if (message !== undefined) return fail(Status.INTERNAL, `${method.def.path} takes one request message; the client sent more`);
          expected = length;
          chunks = [all.subarray(PREFIX)];
          held -= PREFIX;
        }
        if (held < expected) return;
        const all = chunks.length === 1 ? chunks[0]! : Buffer.concat(chunks);
        message = all.subarray(0, expected);
        const rest = all.subarray(expected);
        chunks = rest.length ? [rest] : [];
        held = rest.length;
        expected = -1;
        if (held === 0) return;
      }
    };
    const onEnd = (): void => {
      call.requestEnded = true;
      if (failed || call.isEnded) return;
      if (expected >= 0 || held > 0) return call.end(Status.INTERNAL, 'the request ended inside a message');
      if (message === undefined) return call.end(Status.INTERNAL, `${method.def.path} takes one request message; the client sent none`);
      try {
        call.request = method.def.requestDeserialize(message);
      } catch (err) {
        return call.end(Status.INTERNAL, `the request does not decode as ${method.def.path}'s message: ${(err as Error).message}`);
      }
      method.impl(call);
    };
    stream.on('data', onData);
    stream.once('end', onEnd);
  }
}
