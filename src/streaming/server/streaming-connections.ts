// The streaming server's connections (streaming-server.ts): routes a request by its token and
// upgrades it to SPDY/3.1 or WebSocket, handing the session to the StreamingRuntime. Loaded when
// the server first listens: the protocol stack is resident memory an idle node need not carry.
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Duplex } from 'node:stream';
import type { WebSocket, WebSocketServer } from 'ws';
import { lazyModule } from '../../sys/lazy-module.js';
import { InvalidArgumentError } from '../../errors.js';
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
import type { TokenStore } from './token-store.js';
import { PORT_FORWARD_WS_PROTOCOLS, parsePortsQuery, serveWsPortForward } from './ws-port-forward.js';
import { WsRemoteIo } from './ws-remote-io.js';
import { webSocketByteStream } from './ws-byte-stream.js';

/** The server's options these connections use (StreamingServerOptions' fields of the same names). */
export interface ConnectionOptions {
  streamCreationTimeoutMs?: number;
  idleTimeoutMs?: number;
  maxWsPayload?: number;
}

const KINDS = new Set(['exec', 'attach', 'portforward']);
/** `ws`, loaded on the first WebSocket upgrade (sys/lazy-module.ts). */
const ws = lazyModule<typeof import('ws')>('ws');

export class StreamingConnections {
  private wss: WebSocketServer | undefined;
  /** The subprotocol chosen for a WebSocket upgrade in flight, for `ws` to echo. */
  private readonly chosenProtocol = new WeakMap<IncomingMessage, string>();

  constructor(
    private readonly opts: ConnectionOptions,
    private readonly runtime: StreamingRuntime,
    private readonly tokens: TokenStore<StreamRequest>,
  ) {}

  /** Ends the WebSocket server, if one was made (the sockets themselves are the server's to destroy). */
  close(): void {
    this.wss?.close();
  }

  private route(req: IncomingMessage): { request: StreamRequest; query: URLSearchParams } | undefined {
    const url = new URL(req.url ?? '/', 'http://streaming.invalid');
    const m = /^\/([a-z]+)\/([A-Za-z0-9_-]{1,128})\/?$/.exec(url.pathname);
    if (!m || !KINDS.has(m[1]!)) return undefined;
    const request = this.tokens.consume(m[2]!);
    if (!request || request.kind !== m[1]) return undefined;
    return { request, query: url.searchParams };
  }

  onRequest(req: IncomingMessage, res: ServerResponse): void {
    const routed = this.route(req);
    const status = routed ? 400 : 404;
    const body = routed ? 'unable to upgrade: missing upgrade headers in request\n' : '404 page not found\n';
    res.writeHead(status, { 'Content-Type': 'text/plain; charset=utf-8', 'X-Content-Type-Options': 'nosniff' });
    res.end(body);
  }

  onUpgrade(req: IncomingMessage, socket: Duplex, head: Buffer): void {
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
