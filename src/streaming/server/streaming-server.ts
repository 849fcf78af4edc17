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
import { createServer as createHttpServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import type { Duplex } from 'node:stream';
import { InvalidArgumentError, UnavailableError } from '../../errors.js';
import { log } from '../../log.js';
import { https } from '../../sys/lazy-module.js';
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
  /** Routes and upgrades the server's requests; loaded on first use (loadConnections). */
  private connections: Promise<StreamingConnections> | undefined;
  private readonly tokens: TokenStore<StreamRequest>;
  private readonly sockets = new Set<Duplex>();
  private base = '';

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

  /** e.g. http://127.0.0.1:40123, once started. */
  get baseUrl(): string {
    return this.base;
  }

  /**
   * Listens, at the daemon's start: a bad TLS pair or a taken port stops the daemon there, where
   * the operator looks, not at some later kubectl exec. What serves the connections (routing,
   * SPDY and WebSocket upgrades, the protocol stack) is loaded with the first URL handed out or
   * the first connection: most nodes see an Exec, Attach or PortForward rarely (kubelet's exec
   * probes use ExecSync), and that code resident for the daemon's whole life costs every node.
   */
  async start(): Promise<void> {
    const { opts } = this;
    if (Boolean(opts.tlsCert) !== Boolean(opts.tlsKey)) {
      throw new InvalidArgumentError('streaming.tls_cert and streaming.tls_key must be set together');
    }
    const tls = opts.tlsCert ? { cert: await readFile(opts.tlsCert), key: await readFile(opts.tlsKey!) } : undefined;
    const common = { maxHeaderSize: opts.maxHeaderSize ?? 16 * 1024 };
    const server = tls ? https().createServer({ ...common, cert: tls.cert, key: tls.key }) : createHttpServer(common);
    server.on('request', (req: IncomingMessage, res: ServerResponse) => {
      this.loadConnections().then((c) => c.onRequest(req, res), (err: unknown) => {
        log.error({ err }, 'streaming server: loading its connection handling failed');
        res.destroy();
      });
    });
    // Node leaves an upgraded socket paused (readableFlowing null): what the client sends while
    // the module loads waits in the socket.
    server.on('upgrade', (req: IncomingMessage, socket: Duplex, head: Buffer) => {
      this.loadConnections().then((c) => c.onUpgrade(req, socket, head), (err: unknown) => {
        log.error({ err }, 'streaming server: loading its connection handling failed');
        socket.destroy();
      });
    });
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
      server.once('error', (err: Error) => {
        reject(new InvalidArgumentError(`the streaming server could not listen on ${opts.address}:${opts.port} (streaming.address, streaming.port): ${err.message}`));
      });
      server.listen(opts.port, opts.address, () => {
        server.removeAllListeners('error');
        resolve();
      });
    });
    this.server = server;
    const addr = server.address() as AddressInfo;
    const host = addr.family === 'IPv6' || addr.address.includes(':') ? `[${addr.address}]` : addr.address;
    this.base = `${tls ? 'https' : 'http'}://${host}:${addr.port}`;
    log.info({ url: this.base }, 'streaming server listening');
  }

  /** The connection handling, loaded once (a failed load is tried again by the next caller). */
  private loadConnections(): Promise<StreamingConnections> {
    this.connections ??= import('./streaming-connections.js').then(
      ({ StreamingConnections }) => new StreamingConnections(this.opts, this.runtime, this.tokens),
      (err: unknown) => {
        this.connections = undefined;
        throw err;
      },
    );
    return this.connections;
  }

  async stop(): Promise<void> {
    const server = this.server;
    this.server = undefined;
    if (!server) return;
    const closed = new Promise<void>((resolve) => server.close(() => resolve()));
    for (const s of this.sockets) s.destroy();
    this.sockets.clear();
    (await this.connections?.catch(() => undefined))?.close();
    await closed;
  }

  /** Stores a validated request and returns the URL the client must use. */
  async urlFor(request: StreamRequest): Promise<string> {
    if (!this.server) throw new UnavailableError('the streaming server is not running (the daemon is starting or stopping)');
    // Its client connects next: the connection handling loads meanwhile.
    this.loadConnections().catch(() => undefined);
    return `${this.base}/${request.kind}/${this.tokens.insert(request)}`;
  }

  private track(sock: Duplex): void {
    this.sockets.add(sock);
    sock.once('close', () => this.sockets.delete(sock));
  }
}
