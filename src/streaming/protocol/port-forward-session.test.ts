import { createServer as createHttpServer, type IncomingMessage } from 'node:http';
import { createServer as createTcpServer, connect, type AddressInfo, type Socket } from 'node:net';
import { once } from 'node:events';
import { randomBytes } from 'node:crypto';
import { afterEach, describe, expect, it } from 'vitest';
import type { SpdyConnection } from '../spdy/spdy-connection.js';
import { SUPPORTED_PORT_FORWARD_PROTOCOLS, PORT_FORWARD_PROTOCOL_V1 } from './constants.js';
import { PortForwardSession, type PortForwardRequest } from './port-forward-session.js';
import { UpgradeRefusedError } from './negotiate.js';
import { acceptSpdyUpgrade } from './spdy-upgrade.js';
import { openPortForwardStreams, readAll, spdyUpgrade } from '../../../test-support/spdy-client.js';

const cleanups: Array<() => unknown> = [];
afterEach(async () => {
  while (cleanups.length) await cleanups.pop()!();
});

/** A TCP echo server on loopback: the "container port" being forwarded to. */
async function startEchoServer(): Promise<number> {
  const sockets = new Set<Socket>();
  const server = createTcpServer((s) => {
    sockets.add(s);
    s.on('close', () => sockets.delete(s));
    s.on('error', () => undefined);
    s.pipe(s);
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  cleanups.push(async () => {
    for (const s of sockets) s.destroy();
    await new Promise((r) => server.close(r));
  });
  return (server.address() as AddressInfo).port;
}

/** Port-forward server: each complete pair is connected to 127.0.0.1:<port>, as a forwarder would. */
async function startPortForwardServer(streamCreationTimeoutMs = 10_000): Promise<{ url: string; forwards: PortForwardRequest[] }> {
  const forwards: PortForwardRequest[] = [];
  const sockets = new Set<Socket>();
  const conns: SpdyConnection[] = [];
  const server = createHttpServer((_req, res) => res.writeHead(404).end());
  server.on('upgrade', (req: IncomingMessage, socket: Socket, head: Buffer) => {
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
    let upgraded;
    try {
      upgraded = acceptSpdyUpgrade(req, socket, head, SUPPORTED_PORT_FORWARD_PROTOCOLS);
    } catch (err) {
      if (err instanceof UpgradeRefusedError) return;
      throw err;
    }
    conns.push(upgraded.connection);
    const session = new PortForwardSession(upgraded.connection, { podSandboxId: 'sandbox-1', streamCreationTimeoutMs });
    session.on('forward', (_port, _data, _error, fwd) => {
      forwards.push(fwd);
      const target = connect(fwd.port, '127.0.0.1');
      sockets.add(target);
      target.on('error', (err) => fwd.finish(err));
      target.on('connect', () => {
        fwd.data.pipe(target);
        target.pipe(fwd.data, { end: false });
        target.on('end', () => fwd.finish());
      });
    });
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  cleanups.push(async () => {
    for (const c of conns) c.destroy();
    for (const s of sockets) s.destroy();
    await new Promise((r) => server.close(r));
  });
  return { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}/portforward/token`, forwards };
}

async function clientConnection(url: string): Promise<SpdyConnection> {
  const s = await spdyUpgrade(url, [PORT_FORWARD_PROTOCOL_V1]);
  expect(s.protocol).toBe(PORT_FORWARD_PROTOCOL_V1);
  cleanups.push(() => s.connection.destroy());
  return s.connection;
}

describe('PortForwardSession', () => {
  it('pairs 20 concurrent request ids and echoes each one through a real TCP server', async () => {
    const echoPort = await startEchoServer();
    const { url, forwards } = await startPortForwardServer();
    const conn = await clientConnection(url);
    const results = await Promise.all(Array.from({ length: 20 }, async (_v, i) => {
      const { data, error } = await openPortForwardStreams(conn, echoPort, String(i));
      const payload = Buffer.concat([Buffer.from(`request ${i}:`), randomBytes(64 * 1024 + i * 997)]);
      const echoed = readAll(data);
      const errText = readAll(error);
      data.end(payload);
      return { payload, echoed: await echoed, errText: (await errText).toString() };
    }));
    for (const r of results) {
      expect(r.errText).toBe('');
      expect(r.echoed.equals(r.payload)).toBe(true);
    }
    expect(forwards.map((f) => f.requestId).sort((a, b) => Number(a) - Number(b))).toEqual(Array.from({ length: 20 }, (_v, i) => String(i)));
    expect(new Set(forwards.map((f) => f.port))).toEqual(new Set([echoPort]));
  });

  it('writes kubelet\'s error message on the error stream when forwarding fails', async () => {
    // A port nobody listens on: bind, learn the port, close.
    const probe = createTcpServer();
    probe.listen(0, '127.0.0.1');
    await once(probe, 'listening');
    const deadPort = (probe.address() as AddressInfo).port;
    await new Promise((r) => probe.close(r));

    const { url } = await startPortForwardServer();
    const conn = await clientConnection(url);
    const { data, error } = await openPortForwardStreams(conn, deadPort, '7');
    const text = (await readAll(error)).toString();
    expect(text).toMatch(new RegExp(`^error forwarding port ${deadPort} to pod sandbox-1, uid : connect ECONNREFUSED`));
    expect((await readAll(data)).length).toBe(0);
  });

  it('resets streams without a valid port or stream type, keeping the connection usable', async () => {
    const echoPort = await startEchoServer();
    const { url } = await startPortForwardServer();
    const conn = await clientConnection(url);
    const cases: Array<Record<string, string>> = [
      { streamType: 'data', requestID: '1' },
      { streamType: 'data', requestID: '1', port: '0' },
      { streamType: 'data', requestID: '1', port: 'http' },
      { streamType: 'data', requestID: '1', port: '70000' },
      { streamType: 'stdout', requestID: '1', port: '80' },
      { requestID: '1', port: '80' },
    ];
    for (const headers of cases) {
      const s = conn.openStream(headers);
      await expect(s.waitForReply(5000)).rejects.toMatchObject({ status: 5 });
    }
    const { data } = await openPortForwardStreams(conn, echoPort, '2');
    const echoed = readAll(data);
    data.end('still works');
    expect((await echoed).toString()).toBe('still works');
  });

  it('reports a pair whose second stream never comes, and a second stream of the same type', async () => {
    const { url } = await startPortForwardServer(300);
    const conn = await clientConnection(url);
    const error = conn.openStream({ streamType: 'error', port: '80', requestID: 'lonely' });
    await error.waitForReply(5000);
    const dup = conn.openStream({ streamType: 'error', port: '80', requestID: 'lonely' });
    await expect(dup.waitForReply(5000)).rejects.toMatchObject({ status: 5 });
    const text = (await readAll(error)).toString();
    expect(text).toContain('error processing stream for request lonely: error stream already assigned');
    expect(text).toContain('request=lonely) timed out waiting for streams');
  });

  it('pairs streams of old clients without a requestID by stream id', async () => {
    const echoPort = await startEchoServer();
    const { url, forwards } = await startPortForwardServer();
    const conn = await clientConnection(url);
    const error = conn.openStream({ streamType: 'error', port: String(echoPort) });
    await error.waitForReply(5000);
    const data = conn.openStream({ streamType: 'data', port: String(echoPort) });
    await data.waitForReply(5000);
    const echoed = readAll(data);
    data.end('old client');
    expect((await echoed).toString()).toBe('old client');
    expect(forwards[0]!.requestId).toBe(String(error.id));
  });
});
