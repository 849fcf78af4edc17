// The CRI streaming server: the HTTP(S) endpoint whose URLs Exec, Attach and PortForward
// return. Each URL carries a single-use token for a request the RPC validated; the client
// upgrades the connection to SPDY/3.1 (kubectl, crictl, critest) or WebSocket (browsers,
// client libraries, critest --websocket-*), and the session is handed to a StreamingRuntime.
//
//   GET|POST /exec/<token>        remotecommand v1..v4 (SPDY) / channel protocols (WebSocket)
//   GET|POST /attach/<token>
//   GET|POST /portforward/<token> portforward.k8s.io (SPDY) / channels with ?ports= (WebSocket) /
//                                 SPDY tunneled through WebSocket (SPDY/3.1+portforward.k8s.io)
//
// An unknown, used or expired token is a 404 and no stream, as in kubelet's server.
import { readFile } from 'node:fs/promises';
import { createServer as createHttpServer, type IncomingMessage, type Server } from 'node:http';
import { createServer as createHttpsServer } from 'node:https';
import type { AddressInfo, Socket } from 'node:net';
import type { Duplex } from 'node:stream';
import { InvalidArgumentError, UnavailableError } from '../../errors.js';
import { log } from '../../log.js';
import type { StreamingRuntime } from './container-streams.js';
import type { StreamingConnections } from './streaming-connections.js';
import type { StreamRequest } from './stream-requests.js';
import { TokenStore } from './token-store.js';

export interface StreamingServerOptions {
  address: string;
  /** 0 picks a free port. */
  port: number;
  tlsCert?: string;
  tlsKey?: string;
  /** Token lifetime (kubelet: 1 minute). */
  tokenTtlMs?: number;
  /** How long a client has to open its streams after the upgrade (kubelet: 30 s). */
  streamCreationTimeoutMs?: number;
  /** Close a connection idle this long (kubelet: 4 hours). */
  idleTimeoutMs?: number;
  /** Request header limit; larger headers get 431 (Node's default is 16 KiB). */
  maxHeaderSize?: number;
  /** Largest WebSocket message accepted from a client. */
  maxWsPayload?: number;
  /** Unused URLs outstanding, in all and per container or pod (see token-store.ts). */
  maxTokens?: number;
  maxTokensPerTarget?: number;
}

/** About what a stored request holds: its command line or ports, and a fixed part. */
function streamRequestBytes(r: StreamRequest): number {
  const fixed = 256;
  if (r.kind === 'exec') return r.cmd.reduce((n, a) => n + Buffer.byteLength(a) + 16, fixed);
  if (r.kind === 'portforward') return fixed + r.ports.length * 8;
  return fixed;
}

export class StreamingServer {
  private server: Server | undefined;
  /** Routes and upgrades the server's requests; loaded with the first listen. */
  private connections: StreamingConnections | undefined;
  private readonly tokens: TokenStore<StreamRequest>;
  private readonly sockets = new Set<Duplex>();
  private base = '';
  private tls: { cert: Buffer; key: Buffer } | undefined;
  /** The listening socket being opened, or open (see listening()). */
  private listen: Promise<void> | undefined;
  private stopped = false;

  constructor(
    private readonly opts: StreamingServerOptions,
    private readonly runtime: StreamingRuntime,
  ) {
    this.tokens = new TokenStore<StreamRequest>({
      ttlMs: opts.tokenTtlMs,
      maxTokens: opts.maxTokens,
      maxTokensPerTarget: opts.maxTokensPerTarget,
      targetOf: (r) => (r.kind === 'portforward' ? `pod sandbox ${r.podSandboxId}` : `container ${r.containerId}`),
      sizeOf: streamRequestBytes,
      limitNames: { maxTokens: 'limits.max_stream_tokens', maxTokensPerTarget: 'limits.max_stream_tokens_per_target' },
    });
  }

  /** e.g. http://127.0.0.1:40123, once listening (after the first urlFor). */
  get baseUrl(): string {
    return this.base;
  }

  /**
   * Checks the options and reads the TLS pair, so that a bad configuration stops the daemon at
   * start-up. The socket itself is opened by the first urlFor: most nodes see an Exec, Attach or
   * PortForward rarely (kubelet's exec probes use ExecSync), and an idle listening server with
   * its request handling costs every node resident memory for the daemon's whole life.
   */
  async prepare(): Promise<void> {
    const { opts } = this;
    if (Boolean(opts.tlsCert) !== Boolean(opts.tlsKey)) {
      throw new InvalidArgumentError('streaming.tls_cert and streaming.tls_key must be set together');
    }
    if (opts.tlsCert) this.tls = { cert: await readFile(opts.tlsCert), key: await readFile(opts.tlsKey!) };
  }

  /** Opens the listening socket once; a failure is reported to the call that asked, and the next call tries again. */
  private listening(): Promise<void> {
    if (this.stopped) return Promise.reject(new UnavailableError('the streaming server is stopped (the daemon is shutting down)'));
    this.listen ??= this.openListener().catch((err: unknown) => {
      this.listen = undefined;
      const where = `${this.opts.address}:${this.opts.port}`;
      throw new UnavailableError(`the streaming server could not listen on ${where} (streaming.address, streaming.port): ${err instanceof Error ? err.message : String(err)}`);
    });
    return this.listen;
  }

  private async openListener(): Promise<void> {
    const { opts, tls } = this;
    const { StreamingConnections } = await import('./streaming-connections.js');
    const connections = new StreamingConnections(opts, this.runtime, this.tokens);
    const common = { maxHeaderSize: opts.maxHeaderSize ?? 16 * 1024 };
    const server = tls ? createHttpsServer({ ...common, cert: tls.cert, key: tls.key }) : createHttpServer(common);
    server.on('request', (req, res) => connections.onRequest(req, res));
    server.on('upgrade', (req: IncomingMessage, socket: Duplex, head: Buffer) => connections.onUpgrade(req, socket, head));
    server.on('clientError', (err: Error & { code?: string }, socket: Duplex) => {
      // Malformed requests and oversized headers: answer like Node would, keep serving others.
      log.debug({ err: err.message, code: err.code }, 'streaming server: bad request');
      if (!socket.writable) {
        socket.destroy();
        return;
      }
      const status = err.code === 'HPE_HEADER_OVERFLOW' ? '431 Request Header Fields Too Large' : '400 Bad Request';
      socket.end(`HTTP/1.1 ${status}\r\nConnection: close\r\nContent-Length: 0\r\n\r\n`);
    });
    server.on('connection', (sock: Socket) => this.track(sock));
    server.on('secureConnection', (sock: Socket) => this.track(sock));
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(opts.port, opts.address, () => {
        server.off('error', reject);
        resolve();
      });
    });
    if (this.stopped) {
      // stop() ran while the socket was being opened: it must not outlive the daemon.
      server.close();
      throw new Error('stopped while opening');
    }
    this.server = server;
    this.connections = connections;
    const addr = server.address() as AddressInfo;
    const host = addr.family === 'IPv6' || addr.address.includes(':') ? `[${addr.address}]` : addr.address;
    this.base = `${tls ? 'https' : 'http'}://${host}:${addr.port}`;
    log.info({ url: this.base }, 'streaming server listening');
  }

  async stop(): Promise<void> {
    this.stopped = true;
    await this.listen?.catch(() => undefined);
    const server = this.server;
    this.server = undefined;
    if (!server) return;
    const closed = new Promise<void>((resolve) => server.close(() => resolve()));
    for (const s of this.sockets) s.destroy();
    this.sockets.clear();
    this.connections?.close();
    await closed;
  }

  /** Stores a validated request and returns the URL the client must use (listening first, on the first call). */
  async urlFor(request: StreamRequest): Promise<string> {
    await this.listening();
    return `${this.base}/${request.kind}/${this.tokens.insert(request)}`;
  }

  private track(sock: Duplex): void {
    this.sockets.add(sock);
    sock.once('close', () => this.sockets.delete(sock));
  }
}
