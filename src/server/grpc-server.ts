// crib's gRPC server: the part of the gRPC-over-HTTP/2 protocol the CRI needs (unary and
// server-streaming calls, identity encoding), on crib's own HTTP/2 connection (h2/connection.ts).
// @grpc/grpc-js cost the daemon about 0.8 ms of CPU per call (its call objects, interceptors,
// metadata, filters and stream layers) and ~11 MiB of resident memory; node:http2 under it still
// cost a unary call 0.5 ms of CPU and as much latency. This costs a fraction of either.
//
// The protocol (https://github.com/grpc/grpc/blob/master/doc/PROTOCOL-HTTP2.md), as grpc-go
// clients (kubelet, crictl, critest) and grpc-js clients expect it:
//   - a call is a POST to /<service>/<method> with content-type application/grpc[+proto|;...];
//     another method or content type is answered with HTTP 405/415 and a gRPC status, as grpc-go's
//     server does; an unknown path with UNIMPLEMENTED. :authority is not checked: clients built
//     before Kubernetes 1.31 send the socket's path there, which grpc-go's server takes too;
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
import type { Socket } from 'node:net';
import { Status } from '../grpc-status.js';
import { log } from '../log.js';
import { H2, H2Connection, type H2Stream } from './h2/connection.js';
import { encodeLiterals } from './h2/hpack.js';

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

/**
 * The response's HEADERS block: :status 200 (static table entry 8, indexed) and content-type
 * application/grpc (a literal without indexing, its name static entry 31), so neither side's
 * dynamic table is touched.
 */
const RESPONSE_HEADERS = Buffer.concat([Buffer.from([0x88, 0x0f, 0x10, 0x10]), Buffer.from('application/grpc', 'latin1')]);
const OK_TRAILERS = encodeLiterals([['grpc-status', '0']]);

function statusFields(code: Status, message: string): [string, string][] {
  const fields: [string, string][] = [['grpc-status', String(code)]];
  if (message) fields.push(['grpc-message', encodeGrpcMessage(message)]);
  return fields;
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
  private ended = false;
  private cancelReason: CancelReason | undefined;
  private cancelListener: ((reason: CancelReason) => void) | undefined;
  private timer: NodeJS.Timeout | undefined;

  constructor(
    private readonly stream: H2Stream,
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
    stream.onClose = () => {
      this.finishTimer();
      // The stream closed before the call answered: the client reset it or went away.
      if (!this.ended) {
        this.ended = true;
        this.cancel('cancelled');
      }
    };
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
    this.stream.respondWhole(RESPONSE_HEADERS, frame, OK_TRAILERS);
  }

  /** One message of a server-streaming call. */
  write(res: unknown): void {
    if (this.ended) return;
    const frame = this.serialize(res);
    if (!frame) return;
    const stream = this.stream;
    stream.respond(RESPONSE_HEADERS, false);
    stream.write(frame);
    if (stream.bufferedBytes > this.maxBufferedBytes) {
      // The client stopped reading: its messages are not held for it without end. The trailers
      // would queue behind the unread data, so the stream is reset instead.
      log.warn({ path: this.method.path, buffered: stream.bufferedBytes, limit: this.maxBufferedBytes }, 'a server stream was cut: its client stopped reading');
      this.ended = true;
      this.finishTimer();
      stream.reset(H2.CANCEL);
      this.cancel('overflow');
    }
  }

  /**
   * End the call with a status: trailers after messages, or trailers-only before any. A client
   * still sending its request is then told to stop (the connection resets the stream with
   * NO_ERROR after the answer).
   */
  end(code: Status, message = ''): void {
    if (this.ended) return;
    this.ended = true;
    this.finishTimer();
    if (this.stream.headersSent) this.stream.end(encodeLiterals(statusFields(code, message)));
    else respondTrailersOnly(this.stream, 200, code, message);
  }

  private finishTimer(): void {
    if (this.timer) clearTimeout(this.timer);
    this.timer = undefined;
  }
}

/** A status with no messages: one HEADERS frame with END_STREAM. */
function respondTrailersOnly(stream: H2Stream, httpStatus: number, code: Status, message: string): void {
  stream.respond(encodeLiterals([[':status', String(httpStatus)], ['content-type', 'application/grpc'], ...statusFields(code, message)]), true);
}

/** The request headers a call is dispatched on. */
interface CallHeaders {
  method: string | undefined;
  path: string | undefined;
  contentType: string | undefined;
  encoding: string | undefined;
  timeout: string | undefined;
}

function callHeaders(fields: string[]): CallHeaders {
  const h: CallHeaders = { method: undefined, path: undefined, contentType: undefined, encoding: undefined, timeout: undefined };
  for (let i = 0; i < fields.length; i += 2) {
    switch (fields[i]) {
      case ':method': h.method = fields[i + 1]; break;
      case ':path': h.path = fields[i + 1]; break;
      case 'content-type': h.contentType = fields[i + 1]; break;
      case 'grpc-encoding': h.encoding = fields[i + 1]; break;
      case 'grpc-timeout': h.timeout = fields[i + 1]; break;
    }
  }
  return h;
}

export class GrpcServer {
  private readonly methods = new Map<string, { def: MethodDefinition; impl: MethodImplementation }>();
  private readonly connections = new Set<H2Connection>();
  private shuttingDown = false;

  constructor(private readonly options: GrpcServerOptions) {}

  /** Serve every method of a service; `impl` has one entry per method of `definition`. */
  addService(definition: ServiceDefinition, impl: Record<string, MethodImplementation>): void {
    for (const [name, def] of Object.entries(definition)) {
      if (def.requestStream) throw new Error(`${def.path}: client-streaming methods are not supported`);
      const fn = impl[name];
      if (!fn) throw new Error(`${def.path}: no implementation`);
      this.methods.set(def.path, { def, impl: fn });
    }
  }

  /** Serve one accepted connection, until either side ends it. */
  serveConnection(socket: Socket): void {
    const conn = new H2Connection(socket, { onStream: (stream, fields) => this.onStream(stream, fields) }, {
      maxRequestBytes: this.options.maxMessageBytes,
    });
    this.connections.add(conn);
    socket.once('close', () => this.connections.delete(conn));
    if (this.shuttingDown) conn.close();
  }

  /** GOAWAY to every client; calls in flight finish; `done` once every connection has closed. */
  tryShutdown(done: () => void): void {
    this.shuttingDown = true;
    if (this.connections.size === 0) return done();
    let left = this.connections.size;
    for (const c of this.connections) {
      c.close(() => {
        if (--left === 0) done();
      });
    }
  }

  /** Close every connection now; calls in flight are cut. */
  forceShutdown(): void {
    this.shuttingDown = true;
    for (const c of this.connections) c.destroy();
  }

  private onStream(stream: H2Stream, fields: string[]): void {
    const h = callHeaders(fields);
    if (h.method !== 'POST') {
      return respondTrailersOnly(stream, 405, Status.INTERNAL, `gRPC requires POST, not ${String(h.method).slice(0, 64)}`);
    }
    const contentType = h.contentType;
    if (contentType === undefined || !isGrpcContentType(contentType)) {
      return respondTrailersOnly(stream, 415, Status.INVALID_ARGUMENT, `invalid gRPC request content-type "${(contentType ?? '').slice(0, 128)}"`);
    }
    const path = h.path ?? '';
    const method = this.methods.get(path);
    if (!method) return respondTrailersOnly(stream, 200, Status.UNIMPLEMENTED, `unknown method ${path.slice(0, 256)}`);
    if (h.encoding !== undefined && h.encoding !== 'identity') {
      return respondTrailersOnly(stream, 200, Status.UNIMPLEMENTED, `grpc-encoding "${h.encoding.slice(0, 64)}" is not supported (crib accepts identity only)`);
    }
    let timeoutMs: number | undefined;
    if (h.timeout !== undefined) {
      timeoutMs = parseGrpcTimeout(h.timeout);
      if (timeoutMs === undefined) return respondTrailersOnly(stream, 200, Status.INTERNAL, `malformed grpc-timeout "${h.timeout.slice(0, 64)}"`);
    }
    const call = new ServerCall(stream, method.def, this.options.maxMessageBytes, this.options.maxStreamBufferedBytes ?? MAX_STREAM_BUFFERED_BYTES, timeoutMs);
    this.readRequest(stream, call, method);
  }

  /** Collect the one request message, checking each bound as soon as it can be, then dispatch. */
  private readRequest(stream: H2Stream, call: ServerCall, method: { def: MethodDefinition; impl: MethodImplementation }): void {
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
      stream.onData = undefined;
      // The request is still open: end() tells the client to stop sending it.
      call.end(code, text);
    };
    stream.onData = (chunk: Buffer): void => {
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
    stream.onEnd = (): void => {
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
  }
}
