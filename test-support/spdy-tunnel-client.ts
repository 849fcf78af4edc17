// A client for SPDY tunneled through WebSocket (what kubectl >= 1.31 and critest
// --websocket-portforward use for port-forward): a WebSocket upgrade offering
// "SPDY/3.1+portforward.k8s.io", then the SPDY byte stream in binary messages both ways.
// `ws`'s own client refuses that subprotocol name (a '/' is not an RFC 6455 token character, and
// client-go does not care), so the handshake is done here and `ws`'s frame Sender and Receiver
// carry the messages.
import { createHash, randomBytes } from 'node:crypto';
import { request as httpRequest } from 'node:http';
import type { Socket } from 'node:net';
import { Duplex } from 'node:stream';
import WebSocket from 'ws';
import { SpdyConnection } from '../src/streaming/spdy/spdy-connection.js';
import { UpgradeFailedError } from './spdy-client.js';

const WS_GUID = '258EAFA5-E914-47DA-95CA-C5AB0DC85B11';

interface FrameSender {
  send(data: Buffer, options: { binary: boolean; fin: boolean; mask: boolean; compress?: boolean }, cb?: (err?: Error) => void): void;
  close(code: number, reason: string, mask: boolean, cb?: (err?: Error) => void): void;
}
type SenderClass = new (socket: Socket) => FrameSender;
type ReceiverClass = new (options: { isServer: boolean; maxPayload: number }) => NodeJS.WritableStream & {
  on(event: 'message', fn: (data: Buffer, isBinary: boolean) => void): unknown;
  on(event: 'conclude', fn: (code: number) => void): unknown;
  on(event: 'error', fn: (err: Error) => void): unknown;
};
const { Sender, Receiver } = WebSocket as unknown as { Sender: SenderClass; Receiver: ReceiverClass };

export interface WebSocketTunnel {
  /** The messages as a byte stream: each write is one masked binary message. */
  stream: Duplex;
  /** The subprotocol the server echoed. */
  protocol: string;
  /** The status code of the server's close frame (undefined if it closed without one). */
  closeCode: Promise<number | undefined>;
}

export interface SpdyTunnelSession {
  connection: SpdyConnection;
  protocol: string;
  closeCode: Promise<number | undefined>;
}

/** Upgrades `url` (http) to a WebSocket offering `protocol` and runs a client SpdyConnection in it. */
export async function openSpdyTunnel(url: string, protocol = 'SPDY/3.1+portforward.k8s.io'): Promise<SpdyTunnelSession> {
  const tunnel = await openWebSocketTunnel(url, protocol);
  return { connection: new SpdyConnection(tunnel.stream, { server: false }), protocol: tunnel.protocol, closeCode: tunnel.closeCode };
}

/** The WebSocket handshake offering `protocol`, then the connection as a message byte stream. */
export function openWebSocketTunnel(url: string, protocol: string): Promise<WebSocketTunnel> {
  return new Promise((resolve, reject) => {
    const key = randomBytes(16).toString('base64');
    const req = httpRequest(url, {
      headers: {
        Connection: 'Upgrade',
        Upgrade: 'websocket',
        'Sec-WebSocket-Version': '13',
        'Sec-WebSocket-Key': key,
        'Sec-WebSocket-Protocol': protocol,
      },
      timeout: 10_000,
    });
    req.on('timeout', () => req.destroy(new Error(`websocket upgrade to ${url} timed out`)));
    req.on('error', reject);
    req.on('response', (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => reject(new UpgradeFailedError(res.statusCode ?? 0, res.headers, Buffer.concat(chunks).toString())));
    });
    req.on('upgrade', (res, socket: Socket, head: Buffer) => {
      const accept = createHash('sha1').update(key + WS_GUID).digest('base64');
      if (res.headers['sec-websocket-accept'] !== accept) {
        socket.destroy();
        reject(new Error('websocket upgrade: wrong Sec-WebSocket-Accept'));
        return;
      }
      socket.setTimeout(0);
      socket.setNoDelay(true);
      resolve({ ...messageStream(socket, head), protocol: String(res.headers['sec-websocket-protocol'] ?? '') });
    });
    req.end();
  });
}

/**
 * The socket's WebSocket messages as a byte stream. Ending it sends a close frame with 1000,
 * as client-go's tunnel does, and the TCP connection ends once the server answered.
 */
function messageStream(socket: Socket, head: Buffer): { stream: Duplex; closeCode: Promise<number | undefined> } {
  const sender = new Sender(socket);
  const receiver = new Receiver({ isServer: false, maxPayload: 64 * 1024 * 1024 });
  let concluded!: (code: number | undefined) => void;
  const closeCode = new Promise<number | undefined>((resolve) => (concluded = resolve));
  const stream = new Duplex({
    read() {
      socket.resume();
    },
    write(chunk: Buffer, _enc, cb) {
      sender.send(chunk, { binary: true, fin: true, mask: true }, cb);
    },
    final(cb) {
      sender.close(1000, '', true, () => cb());
    },
    destroy(err, cb) {
      socket.destroy();
      cb(err);
    },
  });
  receiver.on('message', (data) => {
    if (!stream.push(data)) socket.pause();
  });
  receiver.on('conclude', (code: number) => {
    // 1005 is "no status code" (ws reports it for an empty close frame).
    concluded(code === 1005 ? undefined : code);
    stream.push(null);
    socket.end();
  });
  receiver.on('error', (err) => stream.destroy(err));
  socket.on('end', () => stream.push(null));
  socket.on('close', () => concluded(undefined));
  socket.on('error', (err) => stream.destroy(err));
  if (head.length > 0) receiver.write(head);
  socket.pipe(receiver);
  return { stream, closeCode };
}
