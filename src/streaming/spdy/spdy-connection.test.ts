import { createHash } from 'node:crypto';
import { createServer, connect, type Server, type Socket } from 'node:net';
import type { AddressInfo } from 'node:net';
import { once } from 'node:events';
import { afterEach, describe, expect, it } from 'vitest';
import { SpdyConnection, type SpdyConnectionOptions } from './spdy-connection.js';
import type { SpdyStream } from './spdy-stream.js';
import { FrameReader as FrameReaderForTest } from './frame-reader.js';
import { encodeFrame, GoAwayStatus, RstStatus } from './frames.js';
import { encodeHeaderBlock } from './header-block.js';
import { HeaderCompressor } from './header-compression.js';
import { SpdyLimitError, SpdyProtocolError, SpdyStreamResetError } from './spdy-errors.js';

type ServerOpts = Omit<SpdyConnectionOptions, 'server'>;

const cleanups: Array<() => unknown> = [];
afterEach(async () => {
  while (cleanups.length) await cleanups.pop()!();
});

/** A TCP server on loopback whose every accepted socket becomes a server SpdyConnection. */
async function startServer(onConnection: (c: SpdyConnection) => void, opts: ServerOpts = {}): Promise<{ server: Server; port: number; conns: SpdyConnection[] }> {
  const conns: SpdyConnection[] = [];
  const sockets = new Set<Socket>();
  const server = createServer((socket) => {
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
    const c = new SpdyConnection(socket, { ...opts, server: true });
    conns.push(c);
    onConnection(c);
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  cleanups.push(async () => {
    for (const c of conns) c.destroy();
    for (const s of sockets) s.destroy();
    await new Promise((r) => server.close(r));
  });
  return { server, port: (server.address() as AddressInfo).port, conns };
}

async function rawSocket(port: number): Promise<Socket> {
  const s = connect(port, '127.0.0.1');
  await once(s, 'connect');
  cleanups.push(() => s.destroy());
  return s;
}

async function client(port: number, opts: ServerOpts = {}): Promise<SpdyConnection> {
  const c = new SpdyConnection(await rawSocket(port), { ...opts, server: false });
  cleanups.push(() => c.destroy());
  return c;
}

function collect(stream: SpdyStream): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    stream.on('data', (c: Buffer) => chunks.push(c));
    stream.once('end', () => resolve(Buffer.concat(chunks)));
    stream.once('error', reject);
  });
}

function nextStream(c: SpdyConnection): Promise<SpdyStream> {
  return new Promise((resolve) => c.once('stream', resolve));
}

/** Reads whole frames from a raw socket, for checking what a server put on the wire. */
function frameLog(socket: Socket): { frames: ReturnType<FrameReaderForTest['next']>[]; ended: Promise<void> } {
  const reader = new FrameReaderForTest({ maxDataFrameLength: 0xffffff, maxControlFrameLength: 1 << 20 });
  const frames: ReturnType<FrameReaderForTest['next']>[] = [];
  socket.on('data', (chunk: Buffer) => {
    reader.push(chunk);
    for (let f = reader.next(); f; f = reader.next()) frames.push(f);
  });
  const ended = new Promise<void>((resolve) => {
    socket.once('end', resolve);
    socket.once('close', resolve);
  });
  return { frames, ended };
}

describe('SpdyConnection over TCP', () => {
  it('opens a stream with headers, gets the reply, and echoes data both ways with half-close', async () => {
    const { port } = await startServer((c) => {
      c.on('stream', (s) => {
        // Echo back, upper-cased, and half-close once the client has half-closed.
        s.on('data', (d: Buffer) => s.write(Buffer.from(d.toString().toUpperCase())));
        s.on('end', () => s.end('|server-done'));
      });
    });
    const c = await client(port);
    const s = c.openStream({ streamType: 'stdin', port: '80' });
    expect(s.id).toBe(1);
    expect(await s.waitForReply(5000)).toEqual({});
    const body = collect(s);
    s.write('hello ');
    s.end('world');
    expect((await body).toString()).toBe('HELLO WORLD|server-done');
    expect(s.fullyClosed).toBe(true);
    expect(c.openStreamCount).toBe(0);
  });

  it('exposes the opening headers to the server and uses odd client / even server ids', async () => {
    let serverConn!: SpdyConnection;
    const got: Array<{ id: number; type?: string; multi?: string[] }> = [];
    const { port } = await startServer((sc) => {
      serverConn = sc;
      sc.on('stream', (s) => {
        got.push({ id: s.id, type: s.header('STREAMTYPE'), multi: s.headers['multi'] });
        s.end();
      });
    });
    const c = await client(port);
    const a = c.openStream({ streamType: 'error', multi: ['x', 'y'] });
    await a.waitForReply(5000);
    const b = c.openStream({ streamType: 'stdout' });
    await b.waitForReply(5000);
    expect(got).toEqual([{ id: 1, type: 'error', multi: ['x', 'y'] }, { id: 3, type: 'stdout', multi: undefined }]);
    // The server can open streams too (even ids), and the client accepts them.
    const incoming = nextStream(c);
    const fromServer = serverConn.openStream({ streamtype: 'push' });
    expect(fromServer.id).toBe(2);
    const cs = await incoming;
    expect(cs.header('streamtype')).toBe('push');
    await fromServer.waitForReply(5000);
  });

  it('ends the readable side at once for a SYN_STREAM carrying FIN, while the other way stays open', async () => {
    const { port } = await startServer((c) => {
      c.on('stream', (s) => {
        s.on('end', () => s.end('reply-after-your-fin'));
        s.resume();
      });
    });
    const c = await client(port);
    const s = c.openStream({ streamType: 'error' }, { fin: true });
    await s.waitForReply(5000);
    expect((await collect(s)).toString()).toBe('reply-after-your-fin');
  });

  it('moves 100 MB through one stream without stalling, intact', async () => {
    const total = 100 * 1024 * 1024;
    const chunk = Buffer.alloc(256 * 1024);
    for (let i = 0; i < chunk.length; i++) chunk[i] = (i * 31 + 7) & 0xff;
    const sent = createHash('sha256');
    const { port } = await startServer((c) => {
      c.on('stream', (s) => {
        let written = 0;
        const pump = (): void => {
          while (written < total) {
            written += chunk.length;
            sent.update(chunk);
            if (!s.write(chunk)) {
              s.once('drain', pump);
              return;
            }
          }
          s.end();
        };
        pump();
      });
    });
    const c = await client(port);
    const s = c.openStream({ streamType: 'stdout' });
    await s.waitForReply(5000);
    const got = createHash('sha256');
    let bytes = 0;
    const start = Date.now();
    s.on('data', (d: Buffer) => {
      bytes += d.length;
      got.update(d);
    });
    await once(s, 'end');
    const seconds = (Date.now() - start) / 1000;
    expect(bytes).toBe(total);
    expect(got.digest('hex')).toBe(sent.digest('hex'));
    console.log(`spdy: 100 MiB in ${seconds.toFixed(2)} s (${(100 / seconds).toFixed(0)} MiB/s)`);
  });

  it('applies backpressure to a sender whose data is not being read, then delivers it all', async () => {
    let gotStream!: (s: SpdyStream) => void;
    const arrived = new Promise<SpdyStream>((resolve) => (gotStream = resolve));
    const { port } = await startServer((c) => c.on('stream', gotStream), { streamHighWaterMark: 64 * 1024 });
    const clientConn = await client(port);
    const s = clientConn.openStream({ streamType: 'stdin' });
    await s.waitForReply(5000);
    const serverStream = await arrived;
    const total = 32 * 1024 * 1024;
    const piece = Buffer.alloc(64 * 1024, 0x5a);
    let writes = 0;
    let blocked = false;
    while (writes * piece.length < total) {
      writes++;
      if (!s.write(piece)) {
        blocked = true;
        break;
      }
    }
    // The server reads nothing yet: the client's writes must stop being accepted (TCP fills up)
    // instead of the server buffering everything in memory.
    const drained = await Promise.race([once(s, 'drain').then(() => true), new Promise((r) => setTimeout(() => r(false), 1000))]);
    expect(blocked && !drained).toBe(true);
    expect(serverStream.readableLength).toBeLessThan(4 * 1024 * 1024);
    // Now read: everything flows.
    const rest = (async () => {
      while (writes * piece.length < total) {
        writes++;
        if (!s.write(piece)) await once(s, 'drain');
      }
      s.end();
    })();
    const got = await collect(serverStream);
    await rest;
    expect(got.length).toBe(total);
  });

  it('delivers a peer RST_STREAM as a reset error and refuses further writes', async () => {
    let gotStream!: (s: SpdyStream) => void;
    const arrived = new Promise<SpdyStream>((resolve) => (gotStream = resolve));
    const { port } = await startServer((c) => c.on('stream', gotStream));
    const clientConn = await client(port);
    const clientStream = clientConn.openStream({ streamType: 'data' });
    await clientStream.waitForReply(5000);
    const serverStream = await arrived;
    const errored = once(serverStream, 'error');
    clientStream.reset();
    const [err] = await errored;
    expect(err).toBeInstanceOf(SpdyStreamResetError);
    expect((err as SpdyStreamResetError).status).toBe(RstStatus.CANCEL);
    expect(serverStream.resetStatus).toBe(RstStatus.CANCEL);
    expect(clientConn.openStreamCount).toBe(0);
    const late = await new Promise<Error | null | undefined>((resolve) => serverStream.write('late', resolve));
    expect(late).toBeInstanceOf(Error);
  });

  it('lets the stream listener reject a stream: the opener sees a reset instead of a reply', async () => {
    const { port } = await startServer((c) => c.on('stream', (s) => s.reset(RstStatus.REFUSED_STREAM)));
    const c = await client(port);
    const s = c.openStream({ streamType: 'bogus' });
    await expect(s.waitForReply(5000)).rejects.toMatchObject({ status: RstStatus.REFUSED_STREAM });
  });

  it('refuses streams when nobody listens for them', async () => {
    const { port } = await startServer(() => undefined);
    const c = await client(port);
    const s = c.openStream({ streamType: 'x' });
    await expect(s.waitForReply(5000)).rejects.toBeInstanceOf(SpdyStreamResetError);
  });

  it('answers PINGs in both directions', async () => {
    let serverConn!: SpdyConnection;
    const { port } = await startServer((c) => { serverConn = c; });
    const c = await client(port);
    expect(await c.ping(5000)).toBeGreaterThanOrEqual(0);
    expect(await serverConn.ping(5000)).toBeGreaterThanOrEqual(0);
    expect(await c.ping(5000)).toBeGreaterThanOrEqual(0);
  });

  it('closes gracefully: open streams reset, GOAWAY sent, both ends see a clean close', async () => {
    let serverConn!: SpdyConnection;
    const { port } = await startServer((c) => {
      serverConn = c;
      c.on('stream', (s) => s.resume());
    });
    const c = await client(port);
    const s = c.openStream({ streamType: 'stdin' });
    await s.waitForReply(5000);
    const goaway = once(serverConn, 'goaway');
    const serverClosed = serverConn.closed;
    await c.close();
    expect(await c.closed).toBeUndefined();
    expect((await goaway)[1]).toBe(GoAwayStatus.OK);
    expect(await serverClosed).toBeUndefined();
    expect(s.destroyed).toBe(true);
    expect(() => c.openStream({ a: 'b' })).toThrow(/closing/);
  });

  it('closes a connection that sends garbage, with GOAWAY(PROTOCOL_ERROR), while another connection keeps working', async () => {
    const { port, conns } = await startServer((c) => c.on('stream', (s) => s.on('data', (d) => s.write(d))));
    const good = await client(port);
    const goodStream = good.openStream({ streamType: 'data' });
    await goodStream.waitForReply(5000);

    const bad = await rawSocket(port);
    const seen = frameLog(bad);
    bad.write('hello, this is not SPDY at all\r\n\r\n');
    await seen.ended;
    expect(seen.frames.at(-1)).toMatchObject({ type: 'goaway', status: GoAwayStatus.PROTOCOL_ERROR });
    const badServerSide = conns[1]!;
    expect(await badServerSide.closed).toBeInstanceOf(SpdyProtocolError);

    goodStream.write('still alive');
    const [echo] = await once(goodStream, 'data');
    expect(echo.toString()).toBe('still alive');
    expect(await good.ping(5000)).toBeGreaterThanOrEqual(0);
  });

  it.each([
    ['a DATA frame for a never-opened stream', () => encodeFrame({ type: 'data', streamId: 41, flags: 0, data: Buffer.from('x') })],
    ['a SYN_STREAM whose header block is not zlib', () => encodeFrame({ type: 'syn_stream', streamId: 1, associatedStreamId: 0, priority: 0, slot: 0, flags: 0, headerBlock: Buffer.from('definitely not deflate') })],
    ['a control frame of SPDY version 2', () => Buffer.from([0x80, 0x02, 0x00, 0x06, 0, 0, 0, 4, 0, 0, 0, 1])],
  ])('closes the connection on %s', async (_name, bytes) => {
    const { port, conns } = await startServer((c) => c.on('stream', () => undefined));
    const s = await rawSocket(port);
    const seen = frameLog(s);
    s.write(bytes());
    await seen.ended;
    expect(await conns[0]!.closed).toBeInstanceOf(SpdyProtocolError);
    expect(seen.frames.at(-1)).toMatchObject({ type: 'goaway', status: GoAwayStatus.PROTOCOL_ERROR });
  });

  it('closes the connection on a SYN_STREAM whose id goes backwards', async () => {
    const { port, conns } = await startServer((c) => c.on('stream', (st) => st.resume()));
    const c = await client(port);
    const a = c.openStream({ a: '1' });
    await a.waitForReply(5000);
    // Hand-made second SYN_STREAM reusing id 1, compressed with a context that shares history
    // with nothing: the server must fail the connection either way, never crash.
    const s = await rawSocket(port);
    const comp = new HeaderCompressor();
    cleanups.push(() => comp.close());
    const block1 = await comp.compress(encodeHeaderBlock({ a: '1' }));
    const block2 = await comp.compress(encodeHeaderBlock({ a: '2' }));
    s.write(encodeFrame({ type: 'syn_stream', streamId: 3, associatedStreamId: 0, priority: 0, slot: 0, flags: 0, headerBlock: block1 }));
    s.write(encodeFrame({ type: 'syn_stream', streamId: 1, associatedStreamId: 0, priority: 0, slot: 0, flags: 0, headerBlock: block2 }));
    const err = await conns[1]!.closed;
    expect(err).toBeInstanceOf(SpdyProtocolError);
    expect(err!.message).toMatch(/not above the previous one/);
    expect(await c.ping(5000)).toBeGreaterThanOrEqual(0);
  });

  it('closes the connection on an oversized header block, and on an oversized control frame', async () => {
    const { port, conns } = await startServer((c) => c.on('stream', (st) => st.resume()), { maxHeaderBlockSize: 4096, maxControlFrameLength: 8192 });
    // Highly compressible: tiny on the wire, 1 MiB once inflated.
    const big = await client(port);
    big.openStream({ streamType: 'stdout', filler: 'a'.repeat(1024 * 1024) });
    expect(await conns[0]!.closed).toBeInstanceOf(SpdyLimitError);
    expect(await big.closed).toBeDefined();

    const raw = await rawSocket(port);
    const seen = frameLog(raw);
    raw.write(Buffer.from([0x80, 0x03, 0x00, 0x01, 0, 0, 0x40, 0x00]));
    await seen.ended;
    expect(await conns[1]!.closed).toBeInstanceOf(SpdyLimitError);
    expect(seen.frames.at(-1)).toMatchObject({ type: 'goaway', status: GoAwayStatus.PROTOCOL_ERROR });

    // The server as a whole is unaffected.
    const ok = await client(port);
    const s = ok.openStream({ streamType: 'stdout' });
    await s.waitForReply(5000);
  });

  it('fails open streams with a connection error when the peer vanishes', async () => {
    let serverStream!: SpdyStream;
    let serverConn!: SpdyConnection;
    const ready = new Promise<void>((resolve) => {
      void startServer((c) => { serverConn = c; c.on('stream', (s) => { serverStream = s; resolve(); }); }).then(async ({ port }) => {
        clientSocket = await rawSocket(port);
        const cc = new SpdyConnection(clientSocket, { server: false });
        cc.openStream({ streamType: 'stdout' });
      });
    });
    let clientSocket!: Socket;
    await ready;
    const errored = once(serverStream, 'error');
    clientSocket.destroy();
    const [err] = await errored;
    expect((err as Error).message).toMatch(/closed/);
    expect(await serverConn.closed).toBeDefined();
  });

  it('closes a connection idle past its idle timeout, but not one with traffic', async () => {
    let serverConn!: SpdyConnection;
    const { port } = await startServer((c) => { serverConn = c; c.on('stream', (st) => st.resume()); }, { idleTimeoutMs: 1500 });
    const c = await client(port);
    const s = c.openStream({ streamType: 'stdin' });
    await s.waitForReply(5000);
    // Traffic every 100 ms for a second keeps it open...
    for (let i = 0; i < 10; i++) {
      s.write('tick');
      await new Promise((r) => setTimeout(r, 100));
    }
    expect(serverConn.isClosed).toBe(false);
    // ...silence closes it, cleanly (GOAWAY OK, streams reset).
    expect(await serverConn.closed).toBeUndefined();
    expect(await c.closed).toBeUndefined();
  });

  it('survives mutated frame sequences: every bad connection ends, none takes the process down', async () => {
    const { port, conns } = await startServer((c) => c.on('stream', (st) => { st.resume(); st.on('data', (d) => st.write(d)); }));
    // A valid client conversation, captured as bytes, then corrupted deterministically.
    const comp = new HeaderCompressor();
    cleanups.push(() => comp.close());
    const valid = Buffer.concat([
      encodeFrame({ type: 'syn_stream', streamId: 1, associatedStreamId: 0, priority: 0, slot: 0, flags: 0, headerBlock: await comp.compress(encodeHeaderBlock({ streamtype: 'stdin' })) }),
      encodeFrame({ type: 'data', streamId: 1, flags: 0, data: Buffer.from('some payload bytes') }),
      encodeFrame({ type: 'ping', id: 1 }),
      encodeFrame({ type: 'syn_stream', streamId: 3, associatedStreamId: 0, priority: 0, slot: 0, flags: 1, headerBlock: await comp.compress(encodeHeaderBlock({ streamtype: 'stdout', port: '80' })) }),
      encodeFrame({ type: 'window_update', streamId: 1, delta: 100 }),
      encodeFrame({ type: 'data', streamId: 1, flags: 1, data: Buffer.alloc(0) }),
      encodeFrame({ type: 'goaway', lastGoodStreamId: 0, status: 0 }),
    ]);
    let seed = 12345;
    const rand = (n: number): number => {
      seed = (seed * 1103515245 + 12345) & 0x7fffffff;
      return seed % n;
    };
    const rounds = 60;
    for (let i = 0; i < rounds; i++) {
      const bytes = Buffer.from(valid);
      for (let flips = 1 + rand(4); flips > 0; flips--) bytes[rand(bytes.length)] ^= 1 << rand(8);
      const s = await rawSocket(port);
      s.on('error', () => undefined);
      s.resume();
      s.end(bytes.subarray(0, bytes.length - rand(3)));
      await once(s, 'close');
    }
    await Promise.all(conns.map((c) => c.closed));
    expect(conns.length).toBe(rounds);
    // Still serving.
    const c = await client(port);
    expect(await c.ping(5000)).toBeGreaterThanOrEqual(0);
  });
});
