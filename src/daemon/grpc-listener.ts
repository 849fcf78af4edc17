// Binding the gRPC server to its unix socket: a socket left by a crashed daemon is replaced, one
// that a live process still answers on is not (that is another daemon, maybe with another root).
import { chmod, chown, mkdir, unlink } from 'node:fs/promises';
import { createServer, type Server } from 'node:net';
import { dirname } from 'node:path';
import { execFileSync } from 'node:child_process';
import { FailedPreconditionError, InvalidArgumentError, errnoCode } from '../errors.js';
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

/**
 * A listener handing each connection it accepts to the server. Half-open connections are kept: a
 * client that ends its side after sending its calls still gets their answers. Closing it stops
 * accepting; the server's own shutdown ends the open connections.
 */
function connectionListener(server: GrpcServer): { listener: Server; close: () => Promise<void> } {
  const listener = createServer({ allowHalfOpen: true }, (sock) => server.serveConnection(sock));
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
    const { listener, close } = connectionListener(server);
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
  const { listener, close } = connectionListener(server);
  await listen(listener, opts.address, { path });
  await chmod(path, opts.socketMode);
  if (opts.socketGroup !== undefined) await chown(path, 0, groupId(opts.socketGroup));
  return { address: `unix://${path}`, close };
}
