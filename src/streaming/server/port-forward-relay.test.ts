// crib-pinns port-forward through relayPort, against real TCP servers in this process's own
// network namespace (the relay joins it like a pod's pinned one).
import { createServer, type Server } from 'node:net';
import { Duplex, PassThrough } from 'node:stream';
import { afterEach, describe, expect, it } from 'vitest';
import { HOST_NETNS, relayPort } from './port-forward-relay.js';

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

describe('relayPort (crib-pinns port-forward)', () => {
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

  it('reports a refused port with both address families', async () => {
    const port = await listen(() => undefined);
    await new Promise((r) => servers.pop()!.close(r));
    const c = clientPipe();
    const err = await relayPort(HOST_NETNS, port, c.data);
    expect(err).toMatch(new RegExp(`failed to connect to localhost:${port} .*IPv4: connect 127\\.0\\.0\\.1:${port}: Connection refused; IPv6: connect \\[::1\\]:${port}`));
  });

  it('kills the relay when the client stream goes away', async () => {
    let closed!: () => void;
    const serverSawClose = new Promise<void>((r) => (closed = r));
    const port = await listen((sock) => {
      sock.on('data', () => undefined);
      // allowHalfOpen: the relay's death shows as the end of its input.
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
    expect(await result).toMatch(/SIGKILL/);
    await serverSawClose;
  });

  it('rejects a file that is not a network namespace', async () => {
    const c = clientPipe();
    const err = await relayPort('/etc/hostname', 80, c.data);
    expect(err).toMatch(/setns `\/etc\/hostname`/);
  });
});
