// An HTTP/1.1 response parser for blob downloads (blob-http.ts), fed the socket's reads as they
// come. Node's http client copies every body chunk out of the socket's read into a buffer of its
// own, on the event loop: for a 100 MB pull that copy, its allocations and their garbage were
// the largest share of the daemon's main-thread CPU. Here the body is handed on as views of the
// read buffers themselves: at most one view per read, so a read buffer, once handed on, belongs
// to the body's reader alone (the unpack pool moves it to its thread without a copy).
//
// Everything in a response is the registry's, so everything is bounded: the head (status line and
// headers, interim 1xx answers included) to MAX_HEAD_BYTES like Node's default, a chunk-size line
// to MAX_LINE_BYTES, trailers to MAX_HEAD_BYTES; a malformed head, length or chunk is an error,
// never a guess.
import { BAD_RESPONSE, BODY_TRUNCATED, codedError } from './http-failures.js';

/** Node's default --max-http-header-size. */
export const MAX_HEAD_BYTES = 16 << 10;
const MAX_LINE_BYTES = 1024;
/** Chunk sizes past 2^48 bytes are no blob's. */
const MAX_CHUNK_HEX_DIGITS = 12;

export interface ResponseHead {
  statusCode: number;
  /** Lower-case names; a header sent more than once is an array. */
  headers: Record<string, string | string[] | undefined>;
}

export interface ResponseSink {
  head(head: ResponseHead): void;
  /** Body bytes: a view of the buffer given to feed(), never shared with another view. */
  body(chunk: Uint8Array): void;
  end(): void;
}

/** An HTTP header name (RFC 9110's token). */
export const HEADER_NAME = /^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/;
const STATUS_LINE = /^HTTP\/1\.[01] ([1-9]\d\d)(?: [^\r\n]*)?$/;

type BodyState =
  | { kind: 'length'; left: number }
  | { kind: 'chunked'; step: 'size' | 'data' | 'data-end' | 'trailer'; left: number; line: string; trailerBytes: number }
  | { kind: 'close' }
  | { kind: 'done' };

/**
 * Parses one response to a GET: head first, then the body framed by
 * Content-Length, chunked transfer coding, or the connection's end.
 */
export class Http1ResponseParser {
  private headBytes: number[] | undefined = [];
  /** Bytes of interim (1xx) answers so far: they share the head's bound. */
  private interimBytes = 0;
  private body: BodyState | undefined;
  private ended = false;

  constructor(private readonly sink: ResponseSink) {}

  /** The body was read to its framed end (nothing more is wanted from the connection). */
  get complete(): boolean {
    return this.body?.kind === 'done';
  }

  /** Parse buf[0, n). Throws an Error with code BAD_RESPONSE on a malformed response. */
  feed(buf: Uint8Array, n: number): void {
    let at = 0;
    while (this.body === undefined && at < n) at = this.feedHead(buf, at, n);
    if (this.body === undefined || at >= n) return;
    // The body bytes of this read, moved together (chunk framing dropped) into one view.
    let out = at;
    let outStart = -1;
    const take = (from: number, len: number) => {
      if (len === 0) return;
      if (outStart < 0) {
        outStart = from;
        out = from;
      }
      if (from !== out) buf.copyWithin(out, from, from + len);
      out += len;
    };
    const b = this.body;
    switch (b.kind) {
      case 'length': {
        const len = Math.min(b.left, n - at);
        take(at, len);
        b.left -= len;
        if (b.left === 0) this.body = { kind: 'done' };
        break;
      }
      case 'close':
        take(at, n - at);
        break;
      case 'chunked':
        this.feedChunked(b, buf, at, n, take);
        break;
      case 'done':
        break;
    }
    if (outStart >= 0) this.sink.body(buf.subarray(outStart, out));
    if (this.body.kind === 'done') this.end();
  }

  private end(): void {
    if (this.ended) return;
    this.ended = true;
    this.sink.end();
  }

  /** The connection ended: ends a body framed by it, and is an error for any other unfinished one. */
  finish(): void {
    if (this.body?.kind === 'close') {
      this.body = { kind: 'done' };
      this.end();
      return;
    }
    if (this.body?.kind === 'done') return;
    const where = this.body === undefined ? 'before the end of its headers' : 'before the end of the body';
    throw codedError(`the registry closed the connection ${where}`, BODY_TRUNCATED);
  }

  private feedHead(buf: Uint8Array, at: number, n: number): number {
    const head = this.headBytes!;
    for (let i = at; i < n; i++) {
      head.push(buf[i]!);
      if (head.length > MAX_HEAD_BYTES) throw codedError(`the registry's response headers are over ${MAX_HEAD_BYTES} bytes`, BAD_RESPONSE);
      const l = head.length;
      if (l >= 4 && head[l - 1] === 0x0a && head[l - 2] === 0x0d && head[l - 3] === 0x0a && head[l - 4] === 0x0d) {
        this.parseHead(Buffer.from(head.slice(0, l - 4)).toString('latin1'), l);
        return i + 1;
      }
    }
    return n;
  }

  private parseHead(text: string, size: number): void {
    const [statusLine, ...lines] = text.split('\r\n');
    const status = STATUS_LINE.exec(statusLine!);
    if (!status) throw codedError(`the registry answered with a malformed status line ${JSON.stringify(statusLine!.slice(0, 80))}`, BAD_RESPONSE);
    const statusCode = Number(status[1]);
    const headers: ResponseHead['headers'] = {};
    for (const line of lines) {
      const colon = line.indexOf(':');
      const name = colon > 0 ? line.slice(0, colon) : '';
      const value = line.slice(colon + 1).replace(/^[ \t]+|[ \t]+$/g, '');
      if (!HEADER_NAME.test(name) || /[\0\r\n]/.test(value)) {
        throw codedError(`the registry answered with a malformed header line ${JSON.stringify(line.slice(0, 80))}`, BAD_RESPONSE);
      }
      const key = name.toLowerCase();
      const have = headers[key];
      headers[key] = have === undefined ? value : [...(Array.isArray(have) ? have : [have]), value];
    }
    if (statusCode < 200) {
      // An interim answer (100 Continue, 103 Early Hints): the real one follows, within the same bound.
      if (statusCode === 101) throw codedError('the registry switched protocols on a blob request', BAD_RESPONSE);
      this.headBytes = [];
      this.interimBytes += size;
      if (this.interimBytes > MAX_HEAD_BYTES) throw codedError(`the registry's interim responses are over ${MAX_HEAD_BYTES} bytes`, BAD_RESPONSE);
      return;
    }
    this.headBytes = undefined;
    this.body = this.framing(statusCode, headers);
    this.sink.head({ statusCode, headers });
    if (this.body.kind === 'done') this.end();
  }

  private framing(statusCode: number, headers: ResponseHead['headers']): BodyState {
    if (statusCode === 204 || statusCode === 304) return { kind: 'done' };
    const te = headers['transfer-encoding'];
    if (te !== undefined) {
      const codings = (Array.isArray(te) ? te.join(',') : te).split(',').map((c) => c.trim().toLowerCase()).filter(Boolean);
      // RFC 9112 6.3: chunked last frames the body; any other coding last, the connection's end does.
      if (codings.at(-1) === 'chunked') return { kind: 'chunked', step: 'size', left: 0, line: '', trailerBytes: 0 };
      return { kind: 'close' };
    }
    const cl = headers['content-length'];
    if (cl === undefined) return { kind: 'close' };
    const values = (Array.isArray(cl) ? cl.join(',') : cl).split(',').map((v) => v.trim());
    if (!values.every((v) => /^\d{1,15}$/.test(v) && v === values[0])) {
      throw codedError(`the registry answered with an invalid Content-Length ${JSON.stringify(String(cl).slice(0, 80))}`, BAD_RESPONSE);
    }
    const left = Number(values[0]);
    return left === 0 ? { kind: 'done' } : { kind: 'length', left };
  }

  private feedChunked(b: Extract<BodyState, { kind: 'chunked' }>, buf: Uint8Array, at: number, n: number,
    take: (from: number, len: number) => void): void {
    let i = at;
    while (i < n && this.body === b) {
      switch (b.step) {
        case 'data': {
          const len = Math.min(b.left, n - i);
          take(i, len);
          i += len;
          b.left -= len;
          if (b.left === 0) {
            b.step = 'data-end';
            b.line = '';
          }
          break;
        }
        case 'size':
        case 'data-end':
        case 'trailer': {
          const c = buf[i++]!;
          if (b.step === 'trailer' && ++b.trailerBytes > MAX_HEAD_BYTES) {
            throw codedError(`the registry sent trailers over ${MAX_HEAD_BYTES} bytes`, BAD_RESPONSE);
          }
          if (c !== 0x0a) {
            b.line += String.fromCharCode(c);
            if (b.line.length > MAX_LINE_BYTES) throw codedError(`the registry sent a chunk line over ${MAX_LINE_BYTES} bytes`, BAD_RESPONSE);
            break;
          }
          if (!b.line.endsWith('\r')) throw codedError('the registry sent a chunk line not ended by CRLF', BAD_RESPONSE);
          const line = b.line.slice(0, -1);
          b.line = '';
          if (b.step === 'data-end') {
            if (line !== '') throw codedError('the registry sent more chunk data than the chunk size said', BAD_RESPONSE);
            b.step = 'size';
          } else if (b.step === 'size') {
            const hex = /^([0-9A-Fa-f]+)[ \t]*(?:;.*)?$/.exec(line)?.[1];
            if (hex === undefined || hex.length > MAX_CHUNK_HEX_DIGITS) {
              throw codedError(`the registry sent a malformed chunk size ${JSON.stringify(line.slice(0, 40))}`, BAD_RESPONSE);
            }
            b.left = parseInt(hex, 16);
            b.step = b.left === 0 ? 'trailer' : 'data';
          } else if (line === '') {
            this.body = { kind: 'done' };
          }
          break;
        }
      }
    }
  }
}
