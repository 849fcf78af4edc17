// Binding the gRPC server to its unix socket: a socket left by a crashed daemon is replaced, one
// that a live process still answers on is not (that is another daemon, maybe with another root).
import { chmod, chown, mkdir, unlink } from 'node:fs/promises';
import { createServer, type Server, type Socket } from 'node:net';
import { Duplex } from 'node:stream';
import { AuthorityRewrite, Http2ConnectionError, goAwayFrame } from './authority-rewrite.js';
import { getPackedSettings } from 'node:http2';
import { dirname } from 'node:path';
import { execFileSync } from 'node:child_process';
import { FailedPreconditionError, InvalidArgumentError, errnoCode } from '../errors.js';
import { log } from '../log.js';
import { HTTP2_SERVER_OPTIONS, type GrpcServer } from '../server/grpc-server.js';
import { socketAnswers } from './socket-claim.js';

export interface ListenOptions {
  address: string;
  socketMode: number;
  socketGroup?: string | number;
}

export function unixSocketPath(address: string): string | undefined {
  if (address.startsWith('unix://')) return address.slice('unix://'.length);
  if (address.startsWith('unix:')) return address.slice('unix:'.length);
  return address.startsWith('/') ? address : undefined;
}

/** The gid of grpc.socket_group (a name or a number). */
export function groupId(group: string | number): number {
  if (typeof group === 'number') return group;
  if (/^\d+$/.test(group)) return Number(group);
  const line = execFileSync('getent', ['group', group], { encoding: 'utf8' }).trim();
  const gid = Number(line.split(':')[2]);
  if (!Number.isInteger(gid)) throw new InvalidArgumentError(`grpc.socket_group: no group "${group}"`);
  return gid;
}

export interface GrpcListener {
  address: string;
  /** How its connections were served so far. */
  counts: ConnectionCounts;
  close(): Promise<void>;
}

/** How long a refused client has to read its GOAWAY before the socket is closed regardless. */
const GOAWAY_LINGER_MS = 2000;
/**
 * How long a client that has sent its first request may take to acknowledge the listener's
 * SETTINGS before its connection is served through the filter instead (which takes the
 * acknowledgement out whenever it comes). Clients acknowledge on reading it, well within this.
 */
const SETTINGS_ACK_WAIT_MS = 1000;
/**
 * What the listener holds of a connection before it is decided: its first header block (at most
 * MAX_HEADER_LIST_BYTES, and the filter refuses more) with the frames around it. A client that
 * sends more before its first request is decided for the filter, which holds nothing.
 */
const UNDECIDED_MAX_BYTES = 256 * 1024;

/**
 * The server's connection preface (RFC 9113 §3.4): a SETTINGS frame with the settings the HTTP/2
 * server will announce itself once started, so nothing a client does in between is allowed by
 * the first and refused by the second.
 */
const SERVER_PREFACE = (() => {
  const payload = getPackedSettings(HTTP2_SERVER_OPTIONS.settings ?? {});
  const header = Buffer.alloc(9);
  header.writeUIntBE(payload.length, 0, 3);
  header[3] = 0x4; // SETTINGS
  return Buffer.concat([header, payload]);
})();

/** How the listener's connections were served, since it started. */
export interface ConnectionCounts {
  /** Straight on the socket: the client's first request had a valid :authority. */
  direct: number;
  /** Through the :authority filter (daemon/authority-rewrite.ts). */
  filtered: number;
}

/**
 * Serve one accepted connection. Clients built before Kubernetes 1.31 send the socket path as
 * :authority, which only the filter lets through; the filter costs every call on its connection
 * about half the daemon's time for it (each byte crosses JavaScript streams both ways), so a
 * connection goes through it only when it has to. A client's first request says which kind it is,
 * but grpc-go clients send no request before the server's SETTINGS, and once the HTTP/2 server
 * is started on a connection it cannot be moved. So the listener speaks first: it sends SETTINGS
 * itself, reads the client's stream through the filter (which bounds it, and takes out the
 * acknowledgement of that SETTINGS, which the server never sent) up to its first whole header
 * block, and then:
 *   - :authority valid and the acknowledgement read: the server is started on the bare socket,
 *     with what was read, as the client sent it, handed over in front (Node's HTTP/2 session reads
 *     what is waiting in the socket first). Its own SETTINGS follow the listener's, which RFC 9113
 *     allows; a later request with a bad :authority on that connection is refused by the server.
 *   - otherwise (rewritten, no acknowledgement in time, too much before a request, the client's
 *     end): the server is started behind the filter, for the rest of the connection.
 */
function serveConnection(server: GrpcServer, sock: Socket, counts: ConnectionCounts, undecidedSockets: Set<Socket>): void {
  const filter = new AuthorityRewrite({ settingsAcksToDrop: 1 });
  let conn: Duplex | undefined;
  let refused = false;
  /** What the filter passed on while the connection was undecided, in order. */
  const undecided: Buffer[] = [];
  let undecidedBytes = 0;
  let ackTimer: NodeJS.Timeout | undefined;

  const refuse = (err: Http2ConnectionError) => {
    refused = true;
    clearTimeout(ackTimer);
    sock.off('data', onData);
    sock.pause();
    log.warn({ err: err.message, code: err.code }, 'HTTP/2 client refused: connection closed with GOAWAY');
    // The GOAWAY goes out with our end of the stream; the socket is closed when the client
    // closes its end or the linger runs out, not as soon as the GOAWAY reaches the kernel:
    // closed then, a client still writing got EPIPE and dropped the socket before it had read
    // the GOAWAY waiting in its buffer (critest/security/limits.test.ts saw no GOAWAY, now and then).
    const linger = setTimeout(() => sock.destroy(), GOAWAY_LINGER_MS);
    linger.unref();
    sock.once('close', () => clearTimeout(linger));
    sock.end(goAwayFrame(err.lastStreamId, err.code, err.message));
    conn?.destroy();
  };

  const serveDirect = () => {
    clearTimeout(ackTimer);
    undecidedSockets.delete(sock);
    if (sock.destroyed) return;
    counts.direct++;
    sock.off('data', onData);
    sock.off('end', onUndecidedEnd);
    sock.pause();
    sock.unshift(Buffer.concat([...undecided, filter.takeUnparsed()]));
    undecided.length = 0;
    server.injectConnection(sock);
  };

  const serveFiltered = () => {
    clearTimeout(ackTimer);
    undecidedSockets.delete(sock);
    if (sock.destroyed || refused) return;
    counts.filtered++;
    sock.off('end', onUndecidedEnd);
    conn = filteredConnection(sock, () => refused);
    for (const b of undecided) conn.push(b);
    undecided.length = 0;
    sock.on('end', () => conn!.push(null));
    sock.on('close', () => conn!.destroy());
    server.injectConnection(conn);
  };

  const decide = () => {
    if (filter.rewritten > 0 || undecidedBytes > UNDECIDED_MAX_BYTES) return serveFiltered();
    if (filter.headerBlocks === 0) return;
    if (filter.settingsAcksToDrop === 0) return serveDirect();
    ackTimer ??= setTimeout(serveFiltered, SETTINGS_ACK_WAIT_MS);
  };

  // The filter is fed straight from the socket, no stream in between (a piped Transform cost
  // every call its own write and read bookkeeping), and what it passes on reaches nghttp2 as
  // one buffer per read.
  function onData(chunk: Buffer): void {
    let out: Buffer | undefined;
    try {
      out = filter.feed(chunk);
    } catch (err) {
      if (err instanceof Http2ConnectionError) refuse(err);
      else if (conn) conn.destroy(err as Error);
      else sock.destroy(err as Error);
      return;
    }
    if (conn) {
      if (out && !conn.push(out)) sock.pause();
      return;
    }
    if (out) {
      undecided.push(out);
      undecidedBytes += out.length;
    }
    decide();
  }
  // The client ended its side before a decision: the server reads what it sent, then the end.
  const onUndecidedEnd = () => {
    serveFiltered();
    conn?.push(null);
  };

  sock.on('data', onData);
  sock.on('end', onUndecidedEnd);
  sock.on('error', (err) => (conn ? conn.destroy(err) : log.debug({ err }, 'HTTP/2 client connection error')));
  sock.on('close', () => {
    clearTimeout(ackTimer);
    undecidedSockets.delete(sock);
  });
  undecidedSockets.add(sock);
  sock.write(SERVER_PREFACE);
}

/** The HTTP/2 server's side of a connection served through the filter: `sock` is the client's. */
function filteredConnection(sock: Socket, refused: () => boolean): Duplex {
  return new Duplex({
    // nghttp2 is ready for more: the socket flows again (paused while conn's buffer was full).
    read: () => {
      if (!refused()) sock.resume();
    },
    // HTTP/2 hands over a response as several chunks at once (HEADERS, DATA, trailers): they go
    // out in one writev, as they would on the bare socket. Written one by one, each waiting for
    // the last, a unary call cost the client four packets and the server four syscalls.
    writev: (chunks: { chunk: Buffer }[], cb) => {
      // Once refused, the client gets the GOAWAY and nothing after it.
      if (refused()) return cb();
      sock.cork();
      for (let i = 0; i < chunks.length - 1; i++) sock.write(chunks[i]!.chunk);
      sock.write(chunks[chunks.length - 1]!.chunk, cb);
      sock.uncork();
    },
    final: (cb) => {
      if (!refused()) sock.end();
      cb();
    },
    destroy: (err, cb) => {
      if (!refused()) sock.destroy();
      cb(err);
    },
  });
}

/**
 * A listener serving each connection it accepts. Closing it stops accepting and ends the
 * connections not yet handed to the server (the server's own shutdown ends the others); it is
 * done when every connection has ended.
 */
function connectionListener(server: GrpcServer): { listener: Server; counts: ConnectionCounts; close: () => Promise<void> } {
  const counts: ConnectionCounts = { direct: 0, filtered: 0 };
  const undecided = new Set<Socket>();
  const listener = createServer((sock) => serveConnection(server, sock, counts, undecided));
  const close = () => new Promise<void>((resolve) => {
    listener.close(() => resolve());
    for (const sock of undecided) sock.destroy();
  });
  return { listener, counts, close };
}

/** host:port (a name, an IPv4 address, or [IPv6]), optionally after "dns:", as grpc-go spells TCP targets. */
function tcpAddress(address: string): { host: string; port: number } | undefined {
  const m = /^(?:dns:(?:\/\/\/)?)?(\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9.-]+):(\d{1,5})$/.exec(address);
  if (!m || Number(m[2]) > 65535) return undefined;
  return { host: m[1]!.replace(/^\[|\]$/g, ''), port: Number(m[2]) };
}

function listen(listener: Server, address: string, where: { path: string } | { host: string; port: number }): Promise<void> {
  return new Promise<void>((resolve, reject) => {
    listener.once('error', (err) => reject(new FailedPreconditionError(`cannot listen on ${address}: ${err.message}`)));
    listener.listen(where, () => resolve());
  });
}

export async function bindGrpc(server: GrpcServer, opts: ListenOptions): Promise<GrpcListener> {
  const path = unixSocketPath(opts.address);
  if (path === undefined) {
    const tcp = tcpAddress(opts.address);
    if (!tcp) throw new InvalidArgumentError(`grpc.address: "${opts.address}" is neither unix:///path nor host:port`);
    // Served like the socket, through the same filter and bounds.
    const { listener, counts, close } = connectionListener(server);
    await listen(listener, opts.address, tcp);
    return { address: opts.address, counts, close };
  }
  await mkdir(dirname(path), { recursive: true, mode: 0o711 });
  if (await socketAnswers(path)) {
    throw new FailedPreconditionError(`${path} is in use: another process is serving on it`);
  }
  await unlink(path).catch((err: unknown) => {
    if (errnoCode(err) !== 'ENOENT') throw err;
  });
  const { listener, counts, close } = connectionListener(server);
  await listen(listener, opts.address, { path });
  await chmod(path, opts.socketMode);
  if (opts.socketGroup !== undefined) await chown(path, 0, groupId(opts.socketGroup));
  return {
    address: `unix://${path}`,
    counts,
    close,
  };
}
