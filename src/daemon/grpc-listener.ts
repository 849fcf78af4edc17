// Binding the gRPC server to its unix socket: a socket left by a crashed daemon is replaced, one
// that a live process still answers on is not (that is another daemon, maybe with another root).
import { chmod, chown, mkdir, unlink } from 'node:fs/promises';
import { createServer, type Server, type Socket } from 'node:net';
import { Duplex } from 'node:stream';
import { AuthorityRewrite, Http2ConnectionError, goAwayFrame } from './authority-rewrite.js';
import { dirname } from 'node:path';
import { execFileSync } from 'node:child_process';
import { FailedPreconditionError, InvalidArgumentError, errnoCode } from '../errors.js';
import { log } from '../log.js';
import type { GrpcServer } from '../server/grpc-server.js';
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
  close(): Promise<void>;
}

/** How long a refused client has to read its GOAWAY before the socket is closed regardless. */
const GOAWAY_LINGER_MS = 2000;

/**
 * Hand each accepted connection to the gRPC server through the :authority rewrite. When the
 * filter refuses the client (a limit or a protocol rule), the server's side of the connection
 * is dropped at once, the client gets a GOAWAY naming the reason, and nothing more it sends is
 * read.
 */
function serveThroughRewrite(server: GrpcServer, sock: Socket): void {
  const filter = new AuthorityRewrite();
  let refused = false;
  const conn = new Duplex({
    // nghttp2 is ready for more: the socket flows again (paused while conn's buffer was full).
    read: () => {
      if (!refused) sock.resume();
    },
    // HTTP/2 hands over a response as several chunks at once (HEADERS, DATA, trailers): they go
    // out in one writev, as they would on the bare socket. Written one by one, each waiting for
    // the last, a unary call cost the client four packets and the server four syscalls.
    writev: (chunks: { chunk: Buffer }[], cb) => {
      // Once refused, the client gets the GOAWAY and nothing after it.
      if (refused) return cb();
      sock.cork();
      for (let i = 0; i < chunks.length - 1; i++) sock.write(chunks[i]!.chunk);
      sock.write(chunks[chunks.length - 1]!.chunk, cb);
      sock.uncork();
    },
    final: (cb) => {
      if (!refused) sock.end();
      cb();
    },
    destroy: (err, cb) => {
      if (!refused) sock.destroy();
      cb(err);
    },
  });
  const refuse = (err: Http2ConnectionError) => {
    refused = true;
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
    conn.destroy();
  };
  // The filter is fed straight from the socket, no stream in between (a piped Transform cost
  // every call its own write and read bookkeeping), and what it passes on reaches nghttp2 as
  // one buffer per read.
  const onData = (chunk: Buffer): void => {
    let out: Buffer | undefined;
    try {
      out = filter.feed(chunk);
    } catch (err) {
      if (err instanceof Http2ConnectionError) refuse(err);
      else conn.destroy(err as Error);
      return;
    }
    if (out && !conn.push(out)) sock.pause();
  };
  sock.on('data', onData);
  sock.on('end', () => conn.push(null));
  sock.on('error', (err) => conn.destroy(err));
  sock.on('close', () => conn.destroy());
  server.injectConnection(conn);
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
    const listener = createServer((sock) => serveThroughRewrite(server, sock));
    await listen(listener, opts.address, tcp);
    return { address: opts.address, close: () => new Promise<void>((resolve) => listener.close(() => resolve())) };
  }
  await mkdir(dirname(path), { recursive: true, mode: 0o711 });
  if (await socketAnswers(path)) {
    throw new FailedPreconditionError(`${path} is in use: another process is serving on it`);
  }
  await unlink(path).catch((err: unknown) => {
    if (errnoCode(err) !== 'ENOENT') throw err;
  });
  const listener = createServer((sock) => serveThroughRewrite(server, sock));
  await listen(listener, opts.address, { path });
  await chmod(path, opts.socketMode);
  if (opts.socketGroup !== undefined) await chown(path, 0, groupId(opts.socketGroup));
  return {
    address: `unix://${path}`,
    close: () => new Promise<void>((resolve) => listener.close(() => resolve())),
  };
}
