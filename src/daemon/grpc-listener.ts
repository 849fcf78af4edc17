// Binding the gRPC server to its unix socket: a socket left by a crashed daemon is replaced, one
// that a live process still answers on is not (that is another daemon, maybe with another root).
import { chmod, chown, mkdir, unlink } from 'node:fs/promises';
import { connect } from 'node:net';
import { dirname } from 'node:path';
import { execFileSync } from 'node:child_process';
import * as grpc from '@grpc/grpc-js';
import { FailedPreconditionError, InvalidArgumentError, errnoCode } from '../errors.js';

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

function answers(path: string): Promise<boolean> {
  return new Promise((resolve) => {
    const sock = connect(path);
    sock.once('connect', () => {
      sock.destroy();
      resolve(true);
    });
    sock.once('error', () => resolve(false));
  });
}

function groupId(group: string | number): number {
  if (typeof group === 'number') return group;
  if (/^\d+$/.test(group)) return Number(group);
  const line = execFileSync('getent', ['group', group], { encoding: 'utf8' }).trim();
  const gid = Number(line.split(':')[2]);
  if (!Number.isInteger(gid)) throw new InvalidArgumentError(`grpc.socket_group: no group "${group}"`);
  return gid;
}

export async function bindGrpc(server: grpc.Server, opts: ListenOptions): Promise<string> {
  const path = unixSocketPath(opts.address);
  if (path !== undefined) {
    await mkdir(dirname(path), { recursive: true, mode: 0o711 });
    if (await answers(path)) {
      throw new FailedPreconditionError(`${path} is in use: another process is serving on it`);
    }
    await unlink(path).catch((err: unknown) => {
      if (errnoCode(err) !== 'ENOENT') throw err;
    });
  }
  const target = path !== undefined ? `unix://${path}` : opts.address;
  await new Promise<number>((resolve, reject) =>
    server.bindAsync(target, grpc.ServerCredentials.createInsecure(), (err, port) =>
      err ? reject(new FailedPreconditionError(`cannot listen on ${opts.address}: ${err.message}`)) : resolve(port),
    ),
  );
  if (path !== undefined) {
    await chmod(path, opts.socketMode);
    if (opts.socketGroup !== undefined) await chown(path, 0, groupId(opts.socketGroup));
  }
  return target;
}
