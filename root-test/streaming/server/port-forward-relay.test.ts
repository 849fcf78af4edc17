// crib-pinns port-forward through relayPort, against real TCP servers in this process's own
// network namespace (the connector joins it like a pod's pinned one and hands the connection
// back to this process).
import { createHash, randomBytes } from 'node:crypto';
import { readdirSync } from 'node:fs';
import { connect, createServer, type Server } from 'node:net';
import { Duplex, PassThrough } from 'node:stream';
import { afterEach, describe, expect, it } from 'vitest';
import { HOST_NETNS, relayPort } from '../../../src/streaming/server/port-forward-relay.js';
import { SpdyConnection } from '../../../src/streaming/spdy/spdy-connection.js';

/** A client side for the relay: what we write goes to the pod, what the pod sends is collected. */
function clientPipe(): { data: Duplex; toPod: PassThrough; fromPod: () => Buffer } {
  const toPod = new PassThrough();
  const chunks: Buffer[] = [];
  const data = new Duplex({
    read() {},
    write(c: Buffer, _e, cb) { chunks.push(c); cb(); },
  });
  toPod.on('data', (c: Buffer) => data.push(c));
  toPod.on('end', () => data.push(null));
  return { data, toPod, fromPod: () => Buffer.concat(chunks) };
}

describe('relayPort (crib-pinns port-forward + fd handoff)', () => {
  const servers: Server[] = [];
  afterEach(async () => {
    for (const s of servers.splice(0)) await new Promise((r) => s.close(r));
  });
  const listen = async (handler: Parameters<typeof createServer>[1]) => {
    const s = createServer({ allowHalfOpen: true }, handler);
    servers.push(s);
    await new Promise<void>((resolve) => s.listen(0, '127.0.0.1', resolve));
    return (s.address() as { port: number }).port;
  };

  it('relays both ways and half-closes: the server answers after the client finished sending', async () => {
    const port = await listen((sock) => {
      let n = 0;
      sock.on('data', (c: Buffer) => (n += c.length));
      sock.on('end', () => sock.end(`received ${n} bytes\n`));
    });
    const c = clientPipe();
    const result = relayPort(HOST_NETNS, port, c.data);
    c.toPod.end(Buffer.alloc(5 * 1024 * 1024, 7));
    expect(await result).toBeUndefined();
    expect(c.fromPod().toString()).toBe(`received ${5 * 1024 * 1024} bytes\n`);
  });

  it('carries a large download while the client keeps sending (no full-duplex deadlock)', async () => {
    const size = 8 * 1024 * 1024;
    const port = await listen((sock) => {
      sock.on('data', () => undefined);
      sock.end(Buffer.alloc(size, 1));
    });
    const c = clientPipe();
    const result = relayPort(HOST_NETNS, port, c.data);
    c.toPod.write(Buffer.alloc(4 * 1024 * 1024, 2));
    // The pod closed its side; the client never half-closes, so the relay ends after its grace.
    expect(await result).toBeUndefined();
    expect(c.fromPod().length).toBe(size);
  });

  it('over SPDY, a slow client gets every byte of a large download intact (reused read buffers)', async () => {
    // The pod-to-client direction reads into a few reused buffers handed to the SPDY stream
    // without copying; a buffer reused before its bytes left would corrupt the stream. Random
    // content and a reader that keeps pausing make any such reuse show in the digest.
    const content = randomBytes(24 * 1024 * 1024);
    const podPort = await listen((sock) => {
      sock.on('data', () => undefined);
      sock.end(content);
    });
    const results: Promise<string | undefined>[] = [];
    const front = createServer((sock) => {
      const server = new SpdyConnection(sock, { server: true });
      server.on('stream', (stream) => {
        results.push(relayPort(HOST_NETNS, podPort, stream));
      });
    });
    servers.push(front);
    await new Promise<void>((resolve) => front.listen(0, '127.0.0.1', resolve));
    const sock = connect((front.address() as { port: number }).port, '127.0.0.1');
    await new Promise((resolve) => sock.once('connect', resolve));
    const client = new SpdyConnection(sock, { server: false });
    try {
      const stream = client.openStream({ streamType: 'data' });
      const hash = createHash('sha256');
      let received = 0;
      let chunks = 0;
      await new Promise<void>((resolve, reject) => {
        stream.on('data', (c: Buffer) => {
          hash.update(c);
          received += c.length;
          if (++chunks % 16 === 0) {
            stream.pause();
            setTimeout(() => stream.resume(), 5);
          }
        });
        stream.once('end', resolve);
        stream.once('error', reject);
        stream.end();
      });
      expect(received).toBe(content.length);
      expect(hash.digest('hex')).toBe(createHash('sha256').update(content).digest('hex'));
      expect(await results[0]).toBeUndefined();
    } finally {
      await client.close();
    }
  });

  it('reports a refused port with both address families', async () => {
    const port = await listen(() => undefined);
    await new Promise((r) => servers.pop()!.close(r));
    const c = clientPipe();
    const err = await relayPort(HOST_NETNS, port, c.data);
    expect(err).toMatch(new RegExp(`failed to connect to localhost:${port} .*IPv4: connect 127\\.0\\.0\\.1:${port}: Connection refused; IPv6: connect \\[::1\\]:${port}`));
  });

  it('closes the pod connection when the client stream goes away', async () => {
    let closed!: () => void;
    const serverSawClose = new Promise<void>((r) => (closed = r));
    const port = await listen((sock) => {
      sock.on('data', () => undefined);
      // allowHalfOpen: the daemon closing its end shows as the end of the server's input.
      sock.on('end', () => {
        closed();
        sock.end();
      });
    });
    const c = clientPipe();
    const result = relayPort(HOST_NETNS, port, c.data);
    c.toPod.write('hello');
    await new Promise((r) => setTimeout(r, 50));
    c.data.destroy();
    // Not a failure to report: client-go resets streams it is done with, and a message on the
    // error stream would make it drop the whole port-forward session.
    expect(await result).toBeUndefined();
    await serverSawClose;
  });

  it('leaves no descriptors behind, after clean ends and after failures', async () => {
    const port = await listen((sock) => {
      sock.on('data', () => undefined);
      sock.on('end', () => sock.end('bye'));
    });
    const openFds = () => readdirSync('/proc/self/fd').length;
    // One round first: lazily opened descriptors (libuv's, the libc addon's) are not leaks.
    const warm = clientPipe();
    const warmDone = relayPort(HOST_NETNS, port, warm.data);
    warm.toPod.end('x');
    await warmDone;
    const before = openFds();
    for (let i = 0; i < 20; i++) {
      const c = clientPipe();
      const done = relayPort(HOST_NETNS, port, c.data);
      c.toPod.end(`request ${i}`);
      expect(await done).toBeUndefined();
      expect(c.fromPod().toString()).toBe('bye');
      expect(await relayPort('/etc/hostname', port, clientPipe().data)).toMatch(/setns/);
    }
    expect(openFds()).toBe(before);
  });

  it('rejects a file that is not a network namespace', async () => {
    const c = clientPipe();
    const err = await relayPort('/etc/hostname', 80, c.data);
    expect(err).toMatch(/setns `\/etc\/hostname`/);
  });
});
