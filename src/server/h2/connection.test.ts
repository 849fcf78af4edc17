// H2Connection, crib's server side of HTTP/2, against a client that writes raw frames on a real
// unix socket: the preface and SETTINGS exchange, PING, every bound on what a client may make the
// server hold (frame size, header block size and CONTINUATION count, HPACK bombs, concurrent
// streams, rapid reset, receive windows, unread acknowledgements), send-side flow control,
// protocol errors, graceful close and how a stream ends when it is answered early.
import { mkdtemp, rm } from 'node:fs/promises';
import { connect, createServer, type Server, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it, vi } from 'vitest';
import { H2_PREFACE, grpcMessage, grpcRequestHeaders, h2Frame } from '../../../test-support/h2-frames.js';
import { FRAME, H2, H2Connection, MAX_CONCURRENT_STREAMS, MAX_CONTINUATIONS, MAX_HEADER_BLOCK_BYTES, MAX_QUEUED_RESPONSE_BYTES, type H2Stream } from './connection.js';
import { encodeLiterals } from './hpack.js';

/** Small, so that 150 requests overrun the connection's 65535-byte window many times over. */

/** Resolves when `socket` can be written again, or has closed. */
function drainOrClose(socket: Socket): Promise<void> {
  return new Promise<void>((resolve) => {
    const go = (): void => {
      socket.off('drain', go);
      socket.off('close', go);
      resolve();
    };
    socket.on('drain', go);
    socket.on('close', go);
  });
}
const MAX_REQUEST_BYTES = 1000;
/** The stream window the server announces for MAX_REQUEST_BYTES. */
const STREAM_WINDOW = MAX_REQUEST_BYTES + 5 + 1024;

const END_STREAM = 0x1;
const ACK = 0x1;
const END_HEADERS = 0x4;
const SETTINGS_MAX_CONCURRENT_STREAMS = 0x3;
const SETTINGS_INITIAL_WINDOW_SIZE = 0x4;

const RESPONSE_HEADERS = encodeLiterals([[':status', '200'], ['content-type', 'application/grpc']]);
const TRAILERS = encodeLiterals([['grpc-status', '0']]);
const TRAILERS_ONLY = encodeLiterals([[':status', '200'], ['content-type', 'application/grpc'], ['grpc-status', '5']]);

interface Frame {
  type: number;
  flags: number;
  streamId: number;
  payload: Buffer;
}

function u32(value: number): Buffer {
  const b = Buffer.alloc(4);
  b.writeUInt32BE(value, 0);
  return b;
}

function settingsFrame(entries: [number, number][] = []): Buffer {
  const payload = Buffer.alloc(6 * entries.length);
  entries.forEach(([id, value], i) => {
    payload.writeUInt16BE(id, 6 * i);
    payload.writeUInt32BE(value, 6 * i + 2);
  });
  return h2Frame(FRAME.SETTINGS, 0, 0, payload);
}

/** The preface and an empty SETTINGS frame: what every client sends first. */
const HELLO = Buffer.concat([H2_PREFACE, settingsFrame()]);

function headers(streamId: number, path: string, flags = END_HEADERS | END_STREAM): Buffer {
  return h2Frame(FRAME.HEADERS, flags, streamId, grpcRequestHeaders(path));
}

function rst(streamId: number, code: number): Buffer {
  return h2Frame(FRAME.RST_STREAM, 0, streamId, u32(code));
}

function windowUpdate(streamId: number, increment: number): Buffer {
  return h2Frame(FRAME.WINDOW_UPDATE, 0, streamId, u32(increment));
}

/** Bytes that differ from their neighbours, so a reordered or repeated chunk shows. */
function pattern(n: number): Buffer {
  const b = Buffer.alloc(n);
  for (let i = 0; i < n; i++) b[i] = (i * 7 + (i >> 8)) % 251;
  return b;
}

/** An HPACK integer with a 7-bit prefix (RFC 7541 §5.1), the prefix byte's other bit 0. */
function hpackInt7(value: number): Buffer {
  if (value < 0x7f) return Buffer.from([value]);
  const out = [0x7f];
  let rest = value - 0x7f;
  for (; rest >= 0x80; rest >>>= 7) out.push((rest & 0x7f) | 0x80);
  out.push(rest);
  return Buffer.from(out);
}

function fieldValue(fields: string[], name: string): string | undefined {
  for (let i = 0; i < fields.length; i += 2) if (fields[i] === name) return fields[i + 1];
  return undefined;
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/** `promise`, or a rejection naming `what` after `ms`. */
async function within<T>(promise: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`timed out waiting for ${what}`)), ms);
  });
  try {
    return await Promise.race([promise, timeout]);
  } finally {
    clearTimeout(timer);
  }
}

/** A client that writes raw bytes and parses every frame the server sends. */
class RawClient {
  readonly frames: Frame[] = [];
  closed = false;
  ended = false;
  private buf: Buffer = Buffer.alloc(0);
  private readonly checks = new Set<() => void>();

  constructor(readonly socket: Socket, read: boolean) {
    socket.on('error', () => undefined);
    socket.on('end', () => { this.ended = true; this.poke(); });
    socket.on('close', () => { this.closed = true; this.poke(); });
    if (read) socket.on('data', (chunk: Buffer) => this.onData(chunk));
    else socket.pause();
  }

  write(...bufs: Buffer[]): void {
    this.socket.write(bufs.length === 1 ? bufs[0]! : Buffer.concat(bufs));
  }

  private onData(chunk: Buffer): void {
    this.buf = this.buf.length === 0 ? chunk : Buffer.concat([this.buf, chunk]);
    let off = 0;
    while (this.buf.length - off >= 9) {
      const length = this.buf.readUIntBE(off, 3);
      if (this.buf.length - off < 9 + length) break;
      this.frames.push({
        type: this.buf[off + 3]!,
        flags: this.buf[off + 4]!,
        streamId: this.buf.readUInt32BE(off + 5) & 0x7fffffff,
        payload: Buffer.from(this.buf.subarray(off + 9, off + 9 + length)),
      });
      off += 9 + length;
    }
    this.buf = this.buf.subarray(off);
    this.poke();
  }

  private poke(): void {
    for (const check of [...this.checks]) check();
  }

  /**
   * Resolves with cond()'s first defined value, checked on every read, on close and every few
   * milliseconds (for conditions on server state); rejects at the timeout or if the socket closes
   * first.
   */
  until<T>(cond: () => T | undefined | false, what: string, ms = 5000): Promise<T> {
    return new Promise<T>((resolve, reject) => {
      const timer = setInterval(() => check(), 5);
      const deadline = setTimeout(() => done(new Error(`timed out waiting for ${what}; got ${this.describe()}`)), ms);
      const done = (err: Error | undefined, value?: T): void => {
        clearInterval(timer);
        clearTimeout(deadline);
        this.checks.delete(check);
        if (err) reject(err);
        else resolve(value as T);
      };
      const check = (): void => {
        const value = cond();
        if (value !== undefined && value !== false) return done(undefined, value);
        if (this.closed) done(new Error(`the socket closed while waiting for ${what}; got ${this.describe()}`));
      };
      this.checks.add(check);
      check();
    });
  }

  frame(pred: (f: Frame) => boolean, what: string, ms?: number): Promise<Frame> {
    return this.until(() => this.frames.find(pred), what, ms);
  }

  async goAway(ms?: number): Promise<{ lastStreamId: number; code: number; message: string }> {
    const f = await this.frame((x) => x.type === FRAME.GOAWAY, 'GOAWAY', ms);
    return { lastStreamId: f.payload.readUInt32BE(0) & 0x7fffffff, code: f.payload.readUInt32BE(4), message: f.payload.subarray(8).toString('utf8') };
  }

  /** The socket has closed (after the server ended it). */
  whenClosed(ms = 5000): Promise<void> {
    return new Promise((resolve, reject) => {
      if (this.closed) return resolve();
      const timer = setTimeout(() => reject(new Error(`the socket did not close; got ${this.describe()}`)), ms);
      this.socket.once('close', () => { clearTimeout(timer); resolve(); });
    });
  }

  /** A PING round trip: every frame the server queued before the ACK has been read. */
  async sync(tag = 'syncsync'): Promise<void> {
    const data = Buffer.from(tag.padEnd(8).slice(0, 8));
    this.write(h2Frame(FRAME.PING, 0, 0, data));
    await this.frame((f) => f.type === FRAME.PING && (f.flags & ACK) !== 0 && f.payload.equals(data), 'the PING ACK');
  }

  of(streamId: number): Frame[] {
    return this.frames.filter((f) => f.streamId === streamId);
  }

  rstOf(streamId: number): number | undefined {
    const f = this.frames.find((x) => x.type === FRAME.RST_STREAM && x.streamId === streamId);
    return f?.payload.readUInt32BE(0);
  }

  /** Whether `streamId`'s response has ended (HEADERS with END_STREAM). */
  answered(streamId: number): boolean {
    return this.frames.some((f) => f.streamId === streamId && f.type === FRAME.HEADERS && (f.flags & END_STREAM) !== 0);
  }

  dataOf(streamId: number): Buffer {
    return Buffer.concat(this.frames.filter((f) => f.streamId === streamId && f.type === FRAME.DATA).map((f) => f.payload));
  }

  private describe(): string {
    const tail = this.frames.slice(-8).map((f) => `${f.type}/${f.flags}/${f.streamId}/${f.payload.length}`);
    return `${this.frames.length} frames (last: ${tail.join(' ')}), closed=${this.closed}`;
  }
}

describe('H2Connection', () => {
  let dir: string;
  let sockPath: string;
  let server: Server;
  /** Every connection the server took, so a test can read failedWith or close one. */
  const conns: H2Connection[] = [];
  /** Every stream the handler was told of, with its :path. */
  const opened: { stream: H2Stream; path: string }[] = [];
  const clients: RawClient[] = [];

  // The handler answers by path:
  //   /hold           nothing (the test answers, or never);
  //   /throw          throws, as a handler with a bug would;
  //   /trailers-only  at once, in onStream, with HEADERS + END_STREAM;
  //   /early          at once, in onStream, a whole answer (before the request has ended);
  //   /big/N          at the request's end: respond(), write() N patterned bytes, end();
  //   /len            at the request's end: the request's length as 4 bytes;
  //   anything else   at the request's end: the request's bytes back.
  function onStream(stream: H2Stream, fields: string[]): void {
    const path = fieldValue(fields, ':path') ?? '';
    opened.push({ stream, path });
    const chunks: Buffer[] = [];
    stream.onData = (chunk) => chunks.push(chunk);
    if (path === '/hold') return;
    if (path === '/throw') throw new Error('a handler bug');
    if (path === '/trailers-only') return stream.respond(TRAILERS_ONLY, true);
    if (path === '/early') return stream.respondWhole(RESPONSE_HEADERS, grpcMessage(Buffer.from('early')), TRAILERS);
    stream.onEnd = () => {
      const body = Buffer.concat(chunks);
      if (path.startsWith('/big/')) {
        stream.respond(RESPONSE_HEADERS, false);
        stream.write(pattern(Number(path.slice(5))));
        stream.end(TRAILERS);
      } else if (path === '/len') {
        stream.respondWhole(RESPONSE_HEADERS, u32(body.length), TRAILERS);
      } else {
        stream.respondWhole(RESPONSE_HEADERS, body, TRAILERS);
      }
    };
  }

  /**
   * A connected raw client that has written `hello` (null: nothing). `read: false` never reads
   * what the server sends; `allowHalfOpen` keeps writing after the server has ended its side.
   */
  async function client(hello: Buffer | null = HELLO, opts: { read?: boolean; allowHalfOpen?: boolean } = {}): Promise<RawClient> {
    const socket = connect({ path: sockPath, allowHalfOpen: opts.allowHalfOpen ?? false });
    await new Promise<void>((resolve, reject) => {
      socket.once('connect', resolve);
      socket.once('error', reject);
    });
    const c = new RawClient(socket, opts.read ?? true);
    clients.push(c);
    if (hello) c.write(hello);
    return c;
  }

  /** The connection of the test's (only) client, once the server has taken it. */
  async function lastConn(c: RawClient): Promise<H2Connection> {
    return c.until(() => conns[conns.length - 1], 'the server to take the connection');
  }

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'crib-h2-'));
    sockPath = join(dir, 'sock');
    server = createServer({ allowHalfOpen: true }, (sock) => {
      conns.push(new H2Connection(sock, { onStream }, { maxRequestBytes: MAX_REQUEST_BYTES }));
    });
    await new Promise<void>((resolve) => server.listen(sockPath, resolve));
  });

  afterEach(async () => {
    for (const c of clients.splice(0)) c.socket.destroy();
    for (const conn of conns.splice(0)) conn.destroy();
    opened.length = 0;
  });

  afterAll(async () => {
    await new Promise<void>((resolve) => server.close(() => resolve()));
    await rm(dir, { recursive: true, force: true });
  });

  describe('the preface and SETTINGS', () => {
    it('refuses a connection that is not HTTP/2 with GOAWAY PROTOCOL_ERROR and closes it', async () => {
      const c = await client(Buffer.from('GET / HTTP/1.1\r\nHost: x\r\n\r\n'));
      const g = await c.goAway();
      expect(g.code).toBe(H2.PROTOCOL_ERROR);
      await c.whenClosed();
      expect(conns[0]!.failedWith?.code).toBe(H2.PROTOCOL_ERROR);
    });

    it('refuses a preface whose first frame is not SETTINGS', async () => {
      const c = await client(Buffer.concat([H2_PREFACE, h2Frame(FRAME.PING, 0, 0, Buffer.alloc(8))]));
      expect((await c.goAway()).code).toBe(H2.PROTOCOL_ERROR);
      await c.whenClosed();
    });

    it('sends its SETTINGS before the client sends anything, with the window and stream cap', async () => {
      // grpc-go waits for the server's SETTINGS before its first request.
      const c = await client(null);
      const s = await c.frame((f) => f.type === FRAME.SETTINGS, "the server's SETTINGS");
      expect(c.frames[0]).toBe(s);
      expect(s.flags & ACK).toBe(0);
      const values = new Map<number, number>();
      for (let i = 0; i < s.payload.length; i += 6) values.set(s.payload.readUInt16BE(i), s.payload.readUInt32BE(i + 2));
      expect(values.get(SETTINGS_INITIAL_WINDOW_SIZE)).toBe(STREAM_WINDOW);
      expect(values.get(SETTINGS_MAX_CONCURRENT_STREAMS)).toBe(1000);
    });

    it('acknowledges the client\'s SETTINGS and answers PING with the same 8 bytes', async () => {
      const c = await client();
      const ack = await c.frame((f) => f.type === FRAME.SETTINGS && (f.flags & ACK) !== 0, 'the SETTINGS ACK');
      expect(ack.payload.length).toBe(0);
      const data = Buffer.from([1, 2, 3, 4, 5, 6, 7, 8]);
      c.write(h2Frame(FRAME.PING, 0, 0, data));
      const pong = await c.frame((f) => f.type === FRAME.PING, 'the PING ACK');
      expect(pong.flags & ACK).toBe(ACK);
      expect(pong.payload).toEqual(data);
    });
  });

  describe('bounds on what a client sends', () => {
    it('refuses a frame over SETTINGS_MAX_FRAME_SIZE from its 9-byte header alone', async () => {
      // Only the header: a server that waited for the 16 MiB payload would never answer.
      const head = Buffer.from([0xff, 0xff, 0xff, FRAME.DATA, 0, 0, 0, 0, 1]);
      const c = await client(Buffer.concat([HELLO, head]));
      expect((await c.goAway()).code).toBe(H2.FRAME_SIZE_ERROR);
      await c.whenClosed();
    });

    it('refuses a header block spread over endless CONTINUATION frames', async () => {
      const c = await client();
      const flood = Buffer.concat([
        headers(1, '/echo', END_STREAM),
        Buffer.concat(Array.from({ length: 100_000 }, () => h2Frame(FRAME.CONTINUATION, 0, 1, Buffer.alloc(0)))),
      ]);
      c.write(flood);
      const g = await c.goAway();
      expect(g.code).toBe(H2.ENHANCE_YOUR_CALM);
      expect(g.message).toContain('CONTINUATION');
      expect(g.message).toContain(String(MAX_CONTINUATIONS));
      expect(opened).toHaveLength(0);
    });

    it(`takes a header block over HEADERS and ${MAX_CONTINUATIONS} CONTINUATION frames`, async () => {
      const c = await client();
      const block = grpcRequestHeaders('/echo');
      const parts = MAX_CONTINUATIONS + 1;
      const step = Math.ceil(block.length / parts);
      const frames = [h2Frame(FRAME.HEADERS, END_STREAM, 1, block.subarray(0, step))];
      for (let i = 1; i < parts; i++) {
        frames.push(h2Frame(FRAME.CONTINUATION, i === parts - 1 ? END_HEADERS : 0, 1, block.subarray(i * step, (i + 1) * step)));
      }
      c.write(...frames);
      await c.until(() => c.answered(1), 'the answer on stream 1');
      expect(opened.map((o) => o.path)).toEqual(['/echo']);
      expect(c.frames.some((f) => f.type === FRAME.GOAWAY)).toBe(false);
    });

    it('refuses a header block over MAX_HEADER_BLOCK_BYTES and stops reading the socket', async () => {
      // Half-open: this client goes on writing after the server's GOAWAY and end, as an attacker would.
      const c = await client(HELLO, { allowHalfOpen: true });
      const piece = Buffer.alloc(16384);
      c.write(h2Frame(FRAME.HEADERS, END_STREAM, 1, piece));
      // Endless 16 KiB CONTINUATIONs, written only as fast as the server takes them.
      const chunk = Buffer.concat(Array.from({ length: 16 }, () => h2Frame(FRAME.CONTINUATION, 0, 1, piece)));
      const limit = 64 * 1024 * 1024;
      let offered = 0;
      let accepted = 0;
      while (offered < limit && !c.socket.destroyed) {
        offered += chunk.length;
        const more = c.socket.write(chunk, (err) => { if (!err) accepted += chunk.length; });
        if (!more) {
          await drainOrClose(c.socket);
        }
      }
      const g = await c.goAway();
      expect(g.code).toBe(H2.ENHANCE_YOUR_CALM);
      expect(g.message).toBe(`the header block of stream 1 is larger than ${MAX_HEADER_BLOCK_BYTES} bytes`);
      // A server still reading (and dropping) would have taken all 64 MiB before its linger ran out.
      expect(accepted).toBeLessThan(8 * 1024 * 1024);
      expect(conns[0]!.failedWith?.code).toBe(H2.ENHANCE_YOUR_CALM);
    });

    it('refuses another frame inside a header block', async () => {
      const c = await client();
      // DATA on open stream 1, fine on its own, but sent inside stream 3's header block.
      c.write(headers(1, '/hold', END_HEADERS));
      await c.until(() => opened.length === 1, 'the handler to see stream 1');
      c.write(headers(3, '/echo', 0), h2Frame(FRAME.DATA, 0, 1, Buffer.from('x')));
      const g = await c.goAway();
      expect(g.code).toBe(H2.PROTOCOL_ERROR);
      expect(g.message).toContain('inside a header block');
      expect(opened).toHaveLength(1);
    });

    it('refuses a CONTINUATION frame outside a header block', async () => {
      const c = await client();
      c.write(h2Frame(FRAME.CONTINUATION, END_HEADERS, 1, grpcRequestHeaders('/echo')));
      expect((await c.goAway()).code).toBe(H2.PROTOCOL_ERROR);
      expect(opened).toHaveLength(0);
    });

    it('refuses an HPACK bomb: one large table entry referenced thousands of times', async () => {
      const c = await client();
      const name = Buffer.from('x');
      const value = Buffer.alloc(4000, 'a');
      // A literal with incremental indexing and a new name (0x40), then index 62 (that entry) again and again.
      const block = Buffer.concat([
        Buffer.from([0x40]), hpackInt7(name.length), name, hpackInt7(value.length), value,
        Buffer.alloc(5000, 0xbe),
      ]);
      c.write(h2Frame(FRAME.HEADERS, END_HEADERS | END_STREAM, 1, block));
      const g = await c.goAway();
      expect(g.code).toBe(H2.ENHANCE_YOUR_CALM);
      expect(opened).toHaveLength(0);
    });

    it('refuses a header block that does not decode with COMPRESSION_ERROR', async () => {
      const c = await client();
      c.write(h2Frame(FRAME.HEADERS, END_HEADERS | END_STREAM, 1, Buffer.from([0xff, 0xff, 0xff, 0xff, 0xff, 0x0f])));
      expect((await c.goAway()).code).toBe(H2.COMPRESSION_ERROR);
    });

    it(`refuses stream ${MAX_CONCURRENT_STREAMS + 1} with REFUSED_STREAM and takes a new one once one has ended`, async () => {
      const c = await client();
      const open = Array.from({ length: MAX_CONCURRENT_STREAMS + 1 }, (_, i) => headers(2 * i + 1, '/hold', END_HEADERS));
      c.write(...open);
      const over = 2 * MAX_CONCURRENT_STREAMS + 1;
      await c.until(() => c.rstOf(over) !== undefined, `RST_STREAM on stream ${over}`);
      expect(c.rstOf(over)).toBe(H2.REFUSED_STREAM);
      expect(opened).toHaveLength(MAX_CONCURRENT_STREAMS);
      expect(c.frames.some((f) => f.type === FRAME.RST_STREAM && f.streamId !== over)).toBe(false);

      // The client resets one: room for one more.
      c.write(rst(1, H2.CANCEL), headers(over + 2, '/hold', END_HEADERS));
      await c.until(() => opened.some((o) => o.stream.id === over + 2), `the handler to see stream ${over + 2}`);
      // The handler answers one (before the request ended: answer, then RST_STREAM NO_ERROR): room for one more.
      opened[1]!.stream.respondWhole(RESPONSE_HEADERS, Buffer.alloc(0), TRAILERS);
      await c.until(() => c.rstOf(3) !== undefined, 'RST_STREAM on stream 3');
      c.write(headers(over + 4, '/hold', END_HEADERS));
      await c.until(() => opened.some((o) => o.stream.id === over + 4), `the handler to see stream ${over + 4}`);
      await c.sync();
      expect(c.rstOf(over + 2)).toBeUndefined();
      expect(c.rstOf(over + 4)).toBeUndefined();
      // Once more at the cap, the next is refused again.
      c.write(headers(over + 6, '/hold', END_HEADERS));
      await c.until(() => c.rstOf(over + 6) !== undefined, `RST_STREAM on stream ${over + 6}`);
      expect(c.rstOf(over + 6)).toBe(H2.REFUSED_STREAM);
    });

    it('ends a connection that opens and resets unanswered streams faster than the bound (rapid reset)', async () => {
      const c = await client();
      const frames: Buffer[] = [];
      for (let i = 0; i < 1100; i++) frames.push(headers(2 * i + 1, '/hold', END_HEADERS), rst(2 * i + 1, H2.CANCEL));
      c.write(...frames);
      const g = await c.goAway();
      expect(g.code).toBe(H2.ENHANCE_YOUR_CALM);
      expect(conns[0]!.failedWith?.code).toBe(H2.ENHANCE_YOUR_CALM);
      // The bound is a burst of 1000: the connection ended before the last streams were opened.
      expect(opened.length).toBeGreaterThan(900);
      expect(opened.length).toBeLessThan(1100);
    });

    it('does not count resets of streams already answered', async () => {
      const c = await client();
      const frames: Buffer[] = [];
      for (let i = 0; i < 1100; i++) frames.push(headers(2 * i + 1, '/early', END_HEADERS), rst(2 * i + 1, H2.CANCEL));
      c.write(...frames);
      await c.until(() => c.frames.filter((f) => f.type === FRAME.RST_STREAM).length === 1100, '1100 answers, each then reset');
      c.write(headers(2201, '/len'));
      await c.until(() => c.answered(2201), 'the answer on stream 2201');
      expect(c.frames.some((f) => f.type === FRAME.GOAWAY)).toBe(false);
      expect(opened).toHaveLength(1101);
      expect(conns[0]!.failedWith).toBeUndefined();
    });

    it('refuses DATA beyond a stream\'s window with RST_STREAM FLOW_CONTROL_ERROR, and the connection goes on', async () => {
      const c = await client();
      // Within the window, then past it: the window is counted across frames.
      c.write(headers(1, '/echo', END_HEADERS), h2Frame(FRAME.DATA, 0, 1, Buffer.alloc(2000)), h2Frame(FRAME.DATA, 0, 1, Buffer.alloc(STREAM_WINDOW - 2000 + 1)));
      await c.until(() => c.rstOf(1) !== undefined, 'RST_STREAM on stream 1');
      expect(c.rstOf(1)).toBe(H2.FLOW_CONTROL_ERROR);
      const body = grpcMessage(Buffer.from('still here'));
      c.write(headers(3, '/echo', END_HEADERS), h2Frame(FRAME.DATA, END_STREAM, 3, body));
      await c.until(() => c.answered(3), 'the answer on stream 3');
      expect(c.dataOf(3)).toEqual(body);
      expect(c.frames.some((f) => f.type === FRAME.GOAWAY)).toBe(false);
    });

    it('reopens the connection\'s window as requests end: 150 requests of 900 bytes on one connection', async () => {
      const c = await client();
      const body = grpcMessage(Buffer.alloc(895, 'r'));
      expect(body.length).toBe(900);
      for (let i = 0; i < 150; i++) {
        const id = 2 * i + 1;
        c.write(headers(id, '/len', END_HEADERS), h2Frame(FRAME.DATA, END_STREAM, id, body));
        await c.until(() => c.answered(id), `the answer on stream ${id}`);
        expect(c.dataOf(id).readUInt32BE(0)).toBe(900);
      }
      expect(150 * 900).toBeGreaterThan(65535);
      expect(c.frames.some((f) => f.type === FRAME.WINDOW_UPDATE && f.streamId === 0)).toBe(true);
      expect(c.frames.some((f) => f.type === FRAME.GOAWAY || f.type === FRAME.RST_STREAM)).toBe(false);
    });

    it('disconnects a client that sends PINGs and never reads their acknowledgements', { timeout: 30_000 }, async () => {
      const c = await client(HELLO, { read: false });
      const conn = await lastConn(c);
      // Watched from the server's side: a client that never reads would not see the close.
      const serverClosed = new Promise<void>((resolve) => conn.socket.once('close', () => resolve()));
      const ping = h2Frame(FRAME.PING, 0, 0, Buffer.alloc(8, 0x70));
      const chunk = Buffer.concat(Array.from({ length: Math.floor((1024 * 1024) / ping.length) }, () => ping));
      const limit = 20 * 1024 * 1024;
      let written = 0;
      while (written < limit && !c.socket.destroyed) {
        written += chunk.length;
        if (!c.socket.write(chunk)) {
          await drainOrClose(c.socket);
        }
      }
      // Without the bound the server would hold every acknowledgement and keep the socket.
      await within(serverClosed, 20_000, "the server's socket to close");
      expect(conn.failedWith?.code).toBe(H2.ENHANCE_YOUR_CALM);
      expect(conn.failedWith?.message).toContain('acknowledgements');
    });
  });

  describe('send-side flow control', () => {
    it('sends a response only as the client\'s stream window opens, the trailers last', async () => {
      const c = await client(Buffer.concat([H2_PREFACE, settingsFrame([[SETTINGS_INITIAL_WINDOW_SIZE, 100]])]));
      c.write(headers(1, '/big/1000'));
      let granted = 100;
      await c.until(() => c.dataOf(1).length === 100 || undefined, 'the first 100 bytes');
      // A moment for anything sent past the window to arrive.
      await sleep(50);
      expect(c.dataOf(1).length).toBe(100);
      expect(c.answered(1)).toBe(false);
      while (granted < 1000) {
        c.write(windowUpdate(1, 100));
        granted += 100;
        await c.until(() => c.dataOf(1).length >= granted || undefined, `${granted} bytes`);
        expect(c.dataOf(1).length).toBe(granted);
        if (granted < 1000) expect(c.answered(1)).toBe(false);
      }
      await c.until(() => c.answered(1), 'the trailers');
      const data = c.of(1).filter((f) => f.type === FRAME.DATA);
      // No frame past the window, and no empty ones sent while the window is shut.
      expect(data.every((f) => f.payload.length > 0 && f.payload.length <= 100)).toBe(true);
      expect(c.dataOf(1)).toEqual(pattern(1000));
      // The trailers come after the last DATA, and nothing after them.
      const frames = c.of(1);
      expect(frames[0]!.type).toBe(FRAME.HEADERS);
      expect(frames[0]!.flags & END_STREAM).toBe(0);
      expect(frames[frames.length - 1]!.type).toBe(FRAME.HEADERS);
      expect(frames[frames.length - 1]!.flags & END_STREAM).toBe(END_STREAM);
      expect(frames.slice(1, -1).every((f) => f.type === FRAME.DATA)).toBe(true);
    });

    it('refuses new streams while answers waiting for the client hold more than MAX_QUEUED_RESPONSE_BYTES', async () => {
      // A client that never opens its windows: every answer waits in its stream.
      const c = await client(Buffer.concat([H2_PREFACE, settingsFrame([[SETTINGS_INITIAL_WINDOW_SIZE, 0]])]));
      c.write(headers(1, `/big/${MAX_QUEUED_RESPONSE_BYTES / 2}`));
      c.write(headers(3, '/echo'));
      await c.sync();
      expect(c.rstOf(3)).toBeUndefined(); // under the bound: taken (its answer waits too)
      c.write(headers(5, `/big/${MAX_QUEUED_RESPONSE_BYTES / 2 + 1}`));
      c.write(headers(7, '/echo'));
      await c.until(() => c.rstOf(7) !== undefined, 'RST_STREAM on stream 7');
      expect(c.rstOf(7)).toBe(H2.REFUSED_STREAM);
      // The client gives up on one waiting answer: what it held is let go, and calls are taken again.
      c.write(rst(5, H2.CANCEL));
      c.write(headers(9, '/echo'));
      await c.sync('second!!');
      expect(c.rstOf(9)).toBeUndefined();
      expect(opened.map((o) => o.stream.id)).toEqual([1, 3, 5, 9]);
    });

    it('moves open streams\' windows when the client changes INITIAL_WINDOW_SIZE', async () => {
      const c = await client(Buffer.concat([H2_PREFACE, settingsFrame([[SETTINGS_INITIAL_WINDOW_SIZE, 0]])]));
      c.write(headers(1, '/big/1000'));
      await c.until(() => c.of(1).length > 0 || undefined, 'the response headers');
      await sleep(30);
      expect(c.dataOf(1).length).toBe(0);
      // RFC 9113 §6.9.2: the new initial size applies to stream 1 too, already open.
      c.write(settingsFrame([[SETTINGS_INITIAL_WINDOW_SIZE, 1000]]));
      await c.until(() => c.answered(1), 'the trailers');
      expect(c.dataOf(1)).toEqual(pattern(1000));
    });

    it('stops at the connection\'s 65535-byte window until the client opens it', async () => {
      const c = await client(Buffer.concat([H2_PREFACE, settingsFrame([[SETTINGS_INITIAL_WINDOW_SIZE, 1 << 20]])]));
      c.write(headers(1, '/big/100000'));
      await c.until(() => c.dataOf(1).length >= 65535 || undefined, 'the first 65535 bytes');
      await sleep(50);
      expect(c.dataOf(1).length).toBe(65535);
      expect(c.answered(1)).toBe(false);
      c.write(windowUpdate(0, 100000 - 65535));
      await c.until(() => c.answered(1), 'the trailers');
      // Buffer.equals: toEqual walks 100 kB element by element, most of a second.
      expect(c.dataOf(1).equals(pattern(100000))).toBe(true);
      expect(c.of(1).filter((f) => f.type === FRAME.DATA).every((f) => f.payload.length <= 16384)).toBe(true);
    });
  });

  describe('stream ids', () => {
    it('refuses DATA on a stream never opened', async () => {
      const c = await client();
      c.write(h2Frame(FRAME.DATA, END_STREAM, 1, Buffer.from('x')));
      expect((await c.goAway()).code).toBe(H2.PROTOCOL_ERROR);
    });

    it('refuses HEADERS on an even stream', async () => {
      const c = await client();
      c.write(headers(2, '/echo'));
      expect((await c.goAway()).code).toBe(H2.PROTOCOL_ERROR);
      expect(opened).toHaveLength(0);
    });

    it('refuses HEADERS that reuse a lower, closed stream with STREAM_CLOSED', async () => {
      const c = await client();
      c.write(headers(1, '/echo'));
      await c.until(() => c.answered(1), 'the answer on stream 1');
      c.write(headers(3, '/echo'));
      await c.until(() => c.answered(3), 'the answer on stream 3');
      c.write(headers(1, '/echo'));
      const g = await c.goAway();
      expect(g.code).toBe(H2.STREAM_CLOSED);
      expect(g.lastStreamId).toBe(3);
      expect(opened).toHaveLength(2);
    });
  });

  describe('ending streams and the connection', () => {
    it('ends only the connection, with GOAWAY INTERNAL_ERROR, when serving it throws unexpectedly', async () => {
      const c = await client();
      c.write(headers(1, '/throw'));
      const g = await c.goAway();
      expect(g.code).toBe(H2.INTERNAL_ERROR);
      await c.whenClosed();
      // The server goes on: a new connection is served.
      const d = await client();
      d.write(headers(1, '/echo'));
      await d.until(() => d.answered(1), 'the answer on a new connection');
    });


    it('close(): GOAWAY NO_ERROR, the call in flight answered, new streams refused, then the socket ends', async () => {
      const c = await client();
      c.write(headers(1, '/hold'));
      const held = await c.until(() => opened.find((o) => o.stream.id === 1), 'the handler to see stream 1');
      const conn = await lastConn(c);
      let done = false;
      conn.close(() => { done = true; });
      const g = await c.goAway();
      expect(g).toEqual({ lastStreamId: 1, code: H2.NO_ERROR, message: '' });
      c.write(headers(3, '/echo'));
      await c.until(() => c.rstOf(3) !== undefined, 'RST_STREAM on stream 3');
      expect(c.rstOf(3)).toBe(H2.REFUSED_STREAM);
      expect(opened).toHaveLength(1);
      // Stream 1 is still open, so is the socket.
      await sleep(30);
      expect(c.ended).toBe(false);
      expect(done).toBe(false);
      const goAwayAt = c.frames.findIndex((f) => f.type === FRAME.GOAWAY);
      held.stream.respondWhole(RESPONSE_HEADERS, Buffer.from('late'), TRAILERS);
      await c.whenClosed();
      expect(c.answered(1)).toBe(true);
      expect(c.frames.findIndex((f) => f.streamId === 1 && f.type === FRAME.HEADERS)).toBeGreaterThan(goAwayAt);
      expect(c.dataOf(1).toString()).toBe('late');
      // The callback fires once the server's socket has closed too.
      await vi.waitFor(() => expect(done).toBe(true));
    });

    it('answers a request ended in its HEADERS with one trailers-only HEADERS frame and no RST_STREAM', async () => {
      const c = await client();
      c.write(headers(1, '/trailers-only'));
      await c.until(() => c.answered(1), 'the answer on stream 1');
      await c.sync();
      const frames = c.of(1);
      expect(frames).toHaveLength(1);
      expect(frames[0]!.type).toBe(FRAME.HEADERS);
      expect(frames[0]!.flags).toBe(END_HEADERS | END_STREAM);
      expect(frames[0]!.payload).toEqual(TRAILERS_ONLY);
    });

    it('follows an answer given before the request ended with RST_STREAM NO_ERROR', async () => {
      const c = await client();
      c.write(headers(1, '/early', END_HEADERS));
      await c.until(() => c.rstOf(1) !== undefined, 'RST_STREAM on stream 1');
      expect(c.of(1).map((f) => [f.type, f.flags & END_STREAM])).toEqual([
        [FRAME.HEADERS, 0], [FRAME.DATA, 0], [FRAME.HEADERS, END_STREAM], [FRAME.RST_STREAM, 0],
      ]);
      expect(c.rstOf(1)).toBe(H2.NO_ERROR);
      expect(c.dataOf(1)).toEqual(grpcMessage(Buffer.from('early')));
      // The rest of the request, already on its way, is dropped without harm: DATA, and request
      // trailers (a HEADERS frame) too (RFC 9113 §5.4.2).
      c.write(h2Frame(FRAME.DATA, 0, 1, grpcMessage(Buffer.from('late'))));
      c.write(h2Frame(FRAME.HEADERS, END_HEADERS | END_STREAM, 1, encodeLiterals([['x-trailer', '1']])));
      await c.sync();
      expect(c.frames.some((f) => f.type === FRAME.GOAWAY)).toBe(false);
      c.write(headers(3, '/echo'));
      await c.until(() => c.answered(3), 'the answer on stream 3');
    });
  });
});
