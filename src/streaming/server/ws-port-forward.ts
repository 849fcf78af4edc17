// Port-forward over WebSocket, as kubelet's portforward/websocket.go serves it: the ports come
// from the `ports` query parameter; port i gets channel 2i for data (read/write) and 2i+1 for
// errors (write only); the server opens every channel by sending the port as a little-endian
// uint16; one connection per port; the WebSocket closes when every forward has ended.
import { Duplex } from 'node:stream';
import type { WebSocket } from 'ws';
import { InvalidArgumentError } from '../../errors.js';
import { log } from '../../log.js';
import { decodeChannelMessage, encodeChannelMessage, encodePortPrefix } from '../protocol/ws-channel.js';
import { WS_NORMAL, WS_POLICY_VIOLATION, truncateReason } from './ws-remote-io.js';

/** Subprotocols kubelet accepts for port-forward ("" = none offered: binary channels). */
export const PORT_FORWARD_WS_PROTOCOLS: readonly string[] = [
  'v4.channel.k8s.io', 'v4.base64.channel.k8s.io', 'portforward.k8s.io', 'channel.k8s.io', 'base64.channel.k8s.io',
];

/** The channel codec for a negotiated port-forward subprotocol. */
export function portForwardCodec(protocol: string): string {
  return protocol.includes('base64') ? 'v4.base64.channel.k8s.io' : 'v4.channel.k8s.io';
}

/** kubelet's parsing of ?ports=80,8080 (also repeated ports=): each in 1..65535. */
export function parsePortsQuery(values: string[]): number[] {
  const ports: number[] = [];
  for (const v of values) {
    for (const part of v.split(',')) {
      const text = part.trim();
      if (!/^\d+$/.test(text) || Number(text) > 65535) throw new InvalidArgumentError(`unable to parse "${text}" as a port: must be in 1..65535`);
      if (Number(text) < 1) throw new InvalidArgumentError(`port "${text}" must be > 0`);
      ports.push(Number(text));
    }
  }
  return ports;
}

export type Forwarder = (port: number, data: Duplex) => Promise<string | undefined>;

/** The data channel of one port as a Duplex: client messages in, pod bytes out as messages. */
class ChannelDuplex extends Duplex {
  constructor(
    private readonly ws: WebSocket,
    private readonly codec: string,
    private readonly channel: number,
  ) {
    super({ allowHalfOpen: true, highWaterMark: 64 * 1024 });
  }

  override _read(): void {
    // WebSocket has no per-channel flow control: a channel whose pod side stops reading pauses
    // the whole WebSocket (see the message handler), and reading again resumes it, so a client
    // cannot make the daemon hold more than about one buffer and one message per port.
    if (this.ws.isPaused) this.ws.resume();
  }

  override _write(chunk: Buffer, _enc: BufferEncoding, cb: (err?: Error | null) => void): void {
    if (this.ws.readyState !== this.ws.OPEN) {
      cb();
      return;
    }
    const msg = encodeChannelMessage(this.codec, this.channel, chunk);
    this.ws.send(msg.data, { binary: msg.binary }, (err) => cb(err ?? null));
  }
}

export function serveWsPortForward(ws: WebSocket, protocol: string, ports: number[], forward: Forwarder): Promise<void> {
  const codec = portForwardCodec(protocol);
  const send = (channel: number, data: Buffer): void => {
    if (ws.readyState !== ws.OPEN) return;
    const msg = encodeChannelMessage(codec, channel, data);
    ws.send(msg.data, { binary: msg.binary });
  };
  const data = ports.map((_, i) => new ChannelDuplex(ws, codec, 2 * i));
  const finished = new Set<number>();
  ports.forEach((port, i) => {
    send(2 * i, encodePortPrefix(port));
    send(2 * i + 1, encodePortPrefix(port));
  });
  ws.on('message', (raw: Buffer, isBinary: boolean) => {
    try {
      const msg = decodeChannelMessage(codec, raw, isBinary);
      if (msg.kind !== 'data') return;
      const index = msg.channel / 2;
      const channel = msg.channel % 2 === 0 && !finished.has(index) ? data[index] : undefined;
      // What the client still sends to a port whose forward is over is dropped.
      if (channel && !channel.destroyed && !channel.push(msg.data)) ws.pause();
    } catch (err) {
      log.info({ err: (err as Error).message }, 'websocket port-forward: malformed message; closing');
      ws.close(WS_POLICY_VIOLATION, truncateReason((err as Error).message));
    }
  });
  ws.on('error', (err) => log.debug({ err: err.message }, 'websocket port-forward error'));
  const closed = new Promise<void>((resolve) => ws.once('close', () => resolve()));
  // The client closing the WebSocket is the end of its input on every port.
  void closed.then(() => {
    for (const d of data) {
      d.push(null);
      d.destroy();
    }
  });
  return Promise.all(
    ports.map(async (port, i) => {
      const err = await forward(port, data[i]!);
      // Nothing reads this port's input any more: stop buffering it, and let the other ports go on.
      finished.add(i);
      if (ws.isPaused) ws.resume();
      if (err) send(2 * i + 1, Buffer.from(`error forwarding port ${port} to pod: ${err}`));
    }),
  ).then(async () => {
    if (ws.readyState === ws.OPEN) ws.close(WS_NORMAL);
    await Promise.race([closed, new Promise((r) => setTimeout(r, 5000).unref())]);
    if (ws.readyState !== ws.CLOSED) ws.terminate();
  });
}
