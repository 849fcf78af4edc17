// A SPDY streaming client that behaves like kubectl/crictl (client-go's SPDY executor and port
// forwarder): HTTP upgrade with X-Stream-Protocol-Version offers, then streams opened one by
// one, each waiting for its SYN_REPLY. Used by the streaming tests against our server.
import { request as httpRequest, type IncomingHttpHeaders } from 'node:http';
import type { Socket } from 'node:net';
import type { Readable } from 'node:stream';
import { SpdyConnection, type SpdyConnectionOptions } from '../src/streaming/spdy/spdy-connection.js';
import type { SpdyStream } from '../src/streaming/spdy/spdy-stream.js';
import {
  HEADER_PROTOCOL_VERSION,
  PORT_FORWARD_PROTOCOL_V1,
  PORT_FORWARD_REQUEST_ID_HEADER,
  PORT_HEADER,
  REMOTE_COMMAND_V3,
  REMOTE_COMMAND_V4,
  STREAM_TYPE_HEADER,
  StreamType,
} from '../src/streaming/protocol/constants.js';

export class UpgradeFailedError extends Error {
  constructor(
    readonly statusCode: number,
    readonly headers: IncomingHttpHeaders,
    readonly body: string,
  ) {
    super(`upgrade refused with HTTP ${statusCode}: ${body.trim()}`);
  }
}

export interface SpdyClientSession {
  connection: SpdyConnection;
  /** The protocol the server chose (its X-Stream-Protocol-Version answer). */
  protocol: string;
  socket: Socket;
}

/** Performs the upgrade (POST like kubectl exec) and wraps the socket in a client SpdyConnection. */
export function spdyUpgrade(
  url: string,
  protocols: readonly string[],
  opts: { method?: string; timeoutMs?: number; connection?: Omit<SpdyConnectionOptions, 'server' | 'initialData'> } = {},
): Promise<SpdyClientSession> {
  return new Promise((resolve, reject) => {
    const headers: Record<string, string | string[]> = {
      Connection: 'Upgrade',
      Upgrade: 'SPDY/3.1',
    };
    if (protocols.length > 0) headers[HEADER_PROTOCOL_VERSION] = [...protocols];
    const req = httpRequest(url, { method: opts.method ?? 'POST', headers, timeout: opts.timeoutMs ?? 10_000 });
    req.on('timeout', () => req.destroy(new Error(`upgrade to ${url} timed out`)));
    req.on('error', reject);
    req.on('response', (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => reject(new UpgradeFailedError(res.statusCode ?? 0, res.headers, Buffer.concat(chunks).toString())));
      res.on('error', reject);
    });
    req.on('upgrade', (res, socket: Socket, head: Buffer) => {
      const protocol = String(res.headers[HEADER_PROTOCOL_VERSION.toLowerCase()] ?? '');
      socket.setTimeout(0);
      const connection = new SpdyConnection(socket, { ...opts.connection, server: false, initialData: head });
      resolve({ connection, protocol, socket });
    });
    req.end();
  });
}

export interface ClientRemoteCommandStreams {
  error: SpdyStream;
  stdin?: SpdyStream;
  stdout?: SpdyStream;
  stderr?: SpdyStream;
  resize?: SpdyStream;
}

/** Opens the streams client-go opens for exec/attach, in its order, each awaiting its reply. */
export async function openRemoteCommandStreams(
  connection: SpdyConnection,
  protocol: string,
  want: { stdin: boolean; stdout: boolean; stderr: boolean; tty: boolean },
  replyTimeoutMs = 10_000,
): Promise<ClientRemoteCommandStreams> {
  const open = async (type: string): Promise<SpdyStream> => {
    const s = connection.openStream({ [STREAM_TYPE_HEADER]: type });
    await s.waitForReply(replyTimeoutMs);
    return s;
  };
  const streams: ClientRemoteCommandStreams = { error: await open(StreamType.error) };
  // client-go closes its write side of the error stream at once: only the server writes there.
  streams.error.end();
  if (want.stdin) streams.stdin = await open(StreamType.stdin);
  if (want.stdout) streams.stdout = await open(StreamType.stdout);
  if (want.stderr && !want.tty) streams.stderr = await open(StreamType.stderr);
  if (want.tty && (protocol === REMOTE_COMMAND_V3 || protocol === REMOTE_COMMAND_V4)) {
    streams.resize = await open(StreamType.resize);
  }
  return streams;
}

export interface ClientPortForwardStreams {
  error: SpdyStream;
  data: SpdyStream;
}

/** Opens one forwarded connection's pair like client-go: error first (write side closed), then data. */
export async function openPortForwardStreams(
  connection: SpdyConnection,
  port: number,
  requestId: string,
  replyTimeoutMs = 10_000,
): Promise<ClientPortForwardStreams> {
  const headers = { [PORT_HEADER]: String(port), [PORT_FORWARD_REQUEST_ID_HEADER]: requestId };
  const error = connection.openStream({ ...headers, [STREAM_TYPE_HEADER]: StreamType.error });
  await error.waitForReply(replyTimeoutMs);
  error.end();
  const data = connection.openStream({ ...headers, [STREAM_TYPE_HEADER]: StreamType.data });
  await data.waitForReply(replyTimeoutMs);
  return { error, data };
}

export { PORT_FORWARD_PROTOCOL_V1 };

/** Collects a readable to its end. */
export function readAll(stream: Readable): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    stream.on('data', (c: Buffer) => chunks.push(c));
    stream.once('end', () => resolve(Buffer.concat(chunks)));
    stream.once('error', reject);
    stream.once('close', () => reject(new Error('stream closed before its end')));
  });
}
