// Binding the gRPC server to its unix socket: a socket left by a crashed daemon is replaced, one
// that a live process still answers on is not (that is another daemon, maybe with another root).
import { chmod, chown, mkdir, unlink } from 'node:fs/promises';
import { createServer, type Server } from 'node:net';
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
  /** Connections served at once, at most (MAX_GRPC_CONNECTIONS; a test passes a few). */
  maxConnections?: number;
}

/**
 * Connections served at once, at most. Each holds a descriptor and its buffers, and kubelet,
 * crictl and crib's CLI use one or two each. A client that opens connections and never closes
 * them (a leaking tool, or anything in grpc.socket_group) meets this bound rather than the
 * daemon's descriptor limit, which every container start and pull needs too: a connection over it
 * is closed as soon as it is accepted, and the refusals are logged (at most once a minute).
 */
export const MAX_GRPC_CONNECTIONS = 1024;
const DROP_LOG_INTERVAL_MS = 60_000;

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

/**
 * A listener handing each connection it accepts to the server. Half-open connections are kept: a
 * client that ends its side after sending its calls still gets their answers. Closing it stops
 * accepting; the server's own shutdown ends the open connections.
 */
function connectionListener(server: GrpcServer, maxConnections: number): { listener: Server; close: () => Promise<void> } {
  const listener = createServer({ allowHalfOpen: true }, (sock) => server.serveConnection(sock));
  listener.maxConnections = maxConnections;
  let dropped = 0;
  let loggedAt = -Infinity;
  listener.on('drop', () => {
    dropped += 1;
    if (Date.now() - loggedAt < DROP_LOG_INTERVAL_MS) return;
    loggedAt = Date.now();
    log.warn({ maxConnections, refusedSinceLastWarning: dropped }, 'gRPC connections refused: as many as the daemon serves at once are open (a client that never closes its connections?)');
    dropped = 0;
  });
  const close = () => new Promise<void>((resolve) => listener.close(() => resolve()));
  return { listener, close };
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
    // Served like the socket, with the same bounds.
    const { listener, close } = connectionListener(server, opts.maxConnections ?? MAX_GRPC_CONNECTIONS);
    await listen(listener, opts.address, tcp);
    return { address: opts.address, close };
  }
  await mkdir(dirname(path), { recursive: true, mode: 0o711 });
  if (await socketAnswers(path)) {
    throw new FailedPreconditionError(`${path} is in use: another process is serving on it`);
  }
  await unlink(path).catch((err: unknown) => {
    if (errnoCode(err) !== 'ENOENT') throw err;
  });
  const { listener, close } = connectionListener(server, opts.maxConnections ?? MAX_GRPC_CONNECTIONS);
  await listen(listener, opts.address, { path });
  await chmod(path, opts.socketMode);
  if (opts.socketGroup !== undefined) await chown(path, 0, groupId(opts.socketGroup));
  return { address: `unix://${path}`, close };
}
