// Port-forward over WebSocket has no per-channel flow control: a pod that does not read must not
// let a client make the daemon buffer everything it sends.
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Duplex } from 'node:stream';
import WebSocket, { WebSocketServer } from 'ws';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { encodeChannelMessage } from '../protocol/ws-channel.js';
import { serveWsPortForward } from './ws-port-forward.js';

const MiB = 1024 * 1024;

describe('serveWsPortForward', () => {
  let server: Server;
  let wss: WebSocketServer;
  let port = 0;
  let forwarded: (data: Duplex) => void;

  beforeAll(async () => {
    server = createServer();
    wss = new WebSocketServer({ server, perMessageDeflate: false });
    wss.on('connection', (ws) => {
      void serveWsPortForward(ws, 'v4.channel.k8s.io', [80], (_port, data) => new Promise((resolve) => {
        forwarded(data);
        data.on('end', () => resolve(undefined));
      }));
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    port = (server.address() as AddressInfo).port;
  });
  afterAll(async () => {
    wss?.close();
    await new Promise((r) => server?.close(r));
  });

  it('holds little of what a client sends while the pod side does not read, and delivers all of it once it does', async () => {
    const got = new Promise<Duplex>((resolve) => (forwarded = resolve));
    const client = new WebSocket(`ws://127.0.0.1:${port}/`, ['v4.channel.k8s.io']);
    await new Promise((resolve, reject) => client.once('open', resolve).once('error', reject));
    const data = await got;
    const chunk = encodeChannelMessage('v4.channel.k8s.io', 0, Buffer.alloc(64 * 1024, 'p'));
    const total = 128 * MiB;
    for (let sent = 0; sent < total; sent += 64 * 1024) client.send(chunk.data, { binary: true });
    await new Promise((r) => setTimeout(r, 1500));
    // The pod has read nothing: the daemon holds a buffer's worth, the rest waits in the client.
    expect(data.readableLength).toBeLessThan(2 * MiB);
    let received = 0;
    data.on('data', (b: Buffer) => (received += b.length));
    await new Promise<void>((resolve) => {
      const poll = setInterval(() => {
        if (received >= total) {
          clearInterval(poll);
          resolve();
        }
      }, 50);
    });
    expect(received).toBe(total);
    client.terminate();
  }, 60_000);
});
