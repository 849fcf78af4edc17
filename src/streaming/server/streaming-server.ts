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
import { createServer as createHttpsServer } from 'node:https';
import type { AddressInfo, Socket } from 'node:net';
import type { Duplex } from 'node:stream';
import type { WebSocket, WebSocketServer } from 'ws';
import { lazyModule } from '../../sys/lazy-module.js';
import { InvalidArgumentError, UnavailableError } from '../../errors.js';
import { log } from '../../log.js';
import {
  SUPPORTED_PORT_FORWARD_PROTOCOLS, SUPPORTED_REMOTE_COMMAND_PROTOCOLS, TUNNELED_PORT_FORWARD_PROTOCOLS,
} from '../protocol/constants.js';
import { UpgradeRefusedError, parseProtocolList } from '../protocol/negotiate.js';
import { PortForwardSession } from '../protocol/port-forward-session.js';
import { RemoteCommandSession } from '../protocol/remote-command-session.js';
import { acceptSpdyUpgrade, writeUpgradeRefusal } from '../protocol/spdy-upgrade.js';
import { SpdyConnection } from '../spdy/spdy-connection.js';
import { SUPPORTED_WS_PROTOCOLS, WS_CHANNEL_V1 } from '../protocol/ws-channel.js';
import type { StreamingRuntime } from './container-streams.js';
import { SpdyRemoteIo } from './spdy-remote-io.js';
import type { StreamRequest } from './stream-requests.js';
import { TokenStore } from './token-store.js';
import { PORT_FORWARD_WS_PROTOCOLS, parsePortsQuery, serveWsPortForward } from './ws-port-forward.js';
import { WsRemoteIo } from './ws-remote-io.js';
import { webSocketByteStream } from './ws-byte-stream.js';

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

const KINDS = new Set(['exec', 'attach', 'portforward']);
/** `ws`, loaded on the first WebSocket upgrade (sys/lazy-module.ts). */
const ws = lazyModule<typeof import('ws')>('ws');

/** About what a stored request holds: its command line or ports, and a fixed part. */
function streamRequestBytes(r: StreamRequest): number {
  const fixed = 256;
  if (r.kind === 'exec') return r.cmd.reduce((n, a) => n + Buffer.byteLength(a) + 16, fixed);
  if (r.kind === 'portforward') return fixed + r.ports.length * 8;
  return fixed;
}

export class StreamingServer {
  private server: Server | undefined;
  private wss: WebSocketServer | undefined;
  private readonly tokens: TokenStore<StreamRequest>;
  private readonly sockets = new Set<Duplex>();
  /** The subprotocol chosen for a WebSocket upgrade in flight, for `ws` to echo. */
  private readonly chosenProtocol = new WeakMap<IncomingMessage, string>();
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
    const common = { maxHeaderSize: opts.maxHeaderSize ?? 16 * 1024 };
    const server = tls ? createHttpsServer({ ...common, cert: tls.cert, key: tls.key }) : createHttpServer(common);
    server.on('request', (req, res) => this.onRequest(req, res));
    server.on('upgrade', (req: IncomingMessage, socket: Duplex, head: Buffer) => this.onUpgrade(req, socket, head));
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
    this.wss?.close();
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

  private route(req: IncomingMessage): { request: StreamRequest; query: URLSearchParams } | undefined {
    const url = new URL(req.url ?? '/', 'http://streaming.invalid');
    const m = /^\/([a-z]+)\/([A-Za-z0-9_-]{1,128})\/?$/.exec(url.pathname);
    if (!m || !KINDS.has(m[1]!)) return undefined;
    const request = this.tokens.consume(m[2]!);
    if (!request || request.kind !== m[1]) return undefined;
    return { request, query: url.searchParams };
  }

  private onRequest(req: IncomingMessage, res: ServerResponse): void {
    const routed = this.route(req);
    const status = routed ? 400 : 404;
    const body = routed ? 'unable to upgrade: missing upgrade headers in request\n' : '404 page not found\n';
    res.writeHead(status, { 'Content-Type': 'text/plain; charset=utf-8', 'X-Content-Type-Options': 'nosniff' });
    res.end(body);
  }

  private onUpgrade(req: IncomingMessage, socket: Duplex, head: Buffer): void {
    socket.on('error', (err) => log.debug({ err: err.message }, 'streaming connection error'));
    const routed = this.route(req);
    if (!routed) {
      socket.end('HTTP/1.1 404 Not Found\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Length: 19\r\nConnection: close\r\n\r\n404 page not found\n');
      return;
    }
    const isWebSocket = String(req.headers.upgrade ?? '').toLowerCase() === 'websocket';
    try {
      if (isWebSocket) this.upgradeWebSocket(req, socket, head, routed.request, routed.query);
      else this.upgradeSpdy(req, socket, head, routed.request);
    } catch (err) {
      log.info({ err: (err as Error).message, kind: routed.request.kind }, 'streaming upgrade refused');
      if (err instanceof UpgradeRefusedError) return; // the refusal was written
      if (!socket.destroyed) {
        const body = `${(err as Error).message}\n`;
        socket.end(`HTTP/1.1 400 Bad Request\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Length: ${Buffer.byteLength(body)}\r\nConnection: close\r\n\r\n${body}`);
      }
    }
  }

  private upgradeSpdy(req: IncomingMessage, socket: Duplex, head: Buffer, request: StreamRequest): void {
    if (request.kind === 'portforward') {
      const { connection } = acceptSpdyUpgrade(req, socket, head, SUPPORTED_PORT_FORWARD_PROTOCOLS, this.spdyOptions());
      this.servePortForward(connection, request);
      return;
    }
    const { connection, protocol } = acceptSpdyUpgrade(req, socket, head, SUPPORTED_REMOTE_COMMAND_PROTOCOLS, this.spdyOptions());
    RemoteCommandSession.accept(connection, protocol, request, { streamCreationTimeoutMs: this.opts.streamCreationTimeoutMs })
      .then((session) => {
        const io = new SpdyRemoteIo(session);
        return request.kind === 'exec' ? this.runtime.exec(request, io) : this.runtime.attach(request, io);
      })
      .catch((err: unknown) => {
        log.info({ err: (err as Error).message, kind: request.kind }, 'streaming session failed');
        void connection.close();
      });
  }

  private spdyOptions(): { idleTimeoutMs: number } {
    return { idleTimeoutMs: this.opts.idleTimeoutMs ?? 4 * 60 * 60 * 1000 };
  }

  /** kubelet's SPDY port-forward: every data/error stream pair is one forwarded connection. */
  private servePortForward(connection: SpdyConnection, request: StreamRequest & { kind: 'portforward' }): void {
    const session = new PortForwardSession(connection, {
      podSandboxId: request.podSandboxId,
      streamCreationTimeoutMs: this.opts.streamCreationTimeoutMs,
    });
    session.on('forward', (port, data, _error, fwd) => {
      this.runtime.forward(request.podSandboxId, port, data).then(
        (err) => fwd.finish(err),
        (err: unknown) => fwd.finish(err as Error),
      );
    });
  }

  /** The WebSocket server, made on the first WebSocket upgrade (most clients speak SPDY). */
  private webSockets(): WebSocketServer {
    this.wss ??= new (ws().WebSocketServer)({
      noServer: true,
      perMessageDeflate: false,
      maxPayload: this.opts.maxWsPayload ?? 16 * 1024 * 1024,
      // Chosen before handleUpgrade; this only echoes that choice.
      handleProtocols: (offered, req) => this.chosenProtocol.get(req) ?? [...offered][0] ?? false,
    });
    return this.wss;
  }

  private upgradeWebSocket(req: IncomingMessage, socket: Duplex, head: Buffer, request: StreamRequest, query: URLSearchParams): void {
    const supported = request.kind === 'portforward'
      ? [...TUNNELED_PORT_FORWARD_PROTOCOLS, ...PORT_FORWARD_WS_PROTOCOLS] : SUPPORTED_WS_PROTOCOLS;
    const offered = parseProtocolList(req.headers['sec-websocket-protocol']);
    let protocol: string;
    if (offered.length === 0) {
      // kubelet's "" protocol: binary channels with v1 (plain-text) error reporting.
      protocol = request.kind === 'portforward' ? 'portforward.k8s.io' : WS_CHANNEL_V1;
    } else {
      const chosen = offered.find((p) => supported.includes(p));
      if (chosen === undefined) {
        const err = new UpgradeRefusedError(
          `unable to upgrade: unable to negotiate protocol: client supports [${offered.join(' ')}], server accepts [${supported.join(' ')}]`,
          403, supported);
        writeUpgradeRefusal(socket, err);
        throw err;
      }
      protocol = chosen;
    }
    const tunnel = TUNNELED_PORT_FORWARD_PROTOCOLS.includes(protocol);
    let ports: number[] = [];
    if (request.kind === 'portforward' && !tunnel) {
      ports = parsePortsQuery(query.getAll('ports'));
      if (ports.length === 0) ports = request.ports;
      if (ports.length === 0) throw new InvalidArgumentError('query parameter "ports" is required');
    }
    if (offered.length > 0) {
      // `ws` insists on RFC 6455 tokens, and the tunnel's "SPDY/3.1+..." has a '/': it sees a
      // token stand-in, and handleProtocols answers with the real name.
      req.headers['sec-websocket-protocol'] = 'chosen';
      this.chosenProtocol.set(req, protocol);
    }
    this.webSockets().handleUpgrade(req, socket, head, (ws: WebSocket) => {
      if (request.kind === 'portforward' && tunnel) {
        // Binary messages carry the SPDY byte stream, both ways: the same server as over SPDY.
        this.servePortForward(new SpdyConnection(webSocketByteStream(ws), { ...this.spdyOptions(), server: true }), request);
        return;
      }
      if (request.kind === 'portforward') {
        void serveWsPortForward(ws, protocol, ports, (port, data) => this.runtime.forward(request.podSandboxId, port, data))
          .catch((err: unknown) => log.warn({ err: (err as Error).message }, 'websocket port-forward failed'));
        return;
      }
      // The token already names the streams; kubelet's query parameters (command=, stdin=1,
      // ...) are accepted and ignored, so a client cannot widen what the RPC allowed.
      const io = new WsRemoteIo(ws, protocol, request);
      const run = request.kind === 'exec' ? this.runtime.exec(request, io) : this.runtime.attach(request, io);
      run.catch((err: unknown) => {
        log.warn({ err: (err as Error).message, kind: request.kind }, 'websocket session failed');
        ws.terminate();
      });
    });
  }
}
