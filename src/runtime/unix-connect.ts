// Connecting to a monitor's unix stream sockets (attach, control) whatever the length of their
// path: sun_path holds 107 bytes and container dirs can be deeper, so the connection goes through
// /proc/self/fd/<dir fd>/<name>, as the monitor binds them. Fails with an error whose `code` is
// the errno name (ENOENT: no socket; ECONNREFUSED: nobody listens on it any more).
import { closeSync, constants as fsConstants, openSync } from 'node:fs';
import { connect, type Socket } from 'node:net';
import { basename, dirname } from 'node:path';
import { UnavailableError, errnoCode } from '../errors.js';

export class UnixConnectError extends UnavailableError {
  constructor(readonly code: string, message: string) {
    super(message);
  }
}

export function connectUnix(path: string, what = 'socket'): Promise<Socket> {
  let dirFd: number;
  try {
    dirFd = openSync(dirname(path), fsConstants.O_RDONLY | fsConstants.O_DIRECTORY);
  } catch (err) {
    const code = errnoCode(err) ?? 'EIO';
    return Promise.reject(new UnixConnectError(code, `${what} ${path} is unreachable (${code})`));
  }
  return new Promise<Socket>((resolve, reject) => {
    const sock = connect({ path: `/proc/self/fd/${dirFd}/${basename(path)}`, allowHalfOpen: true });
    const done = (): void => {
      try {
        closeSync(dirFd);
      } catch {
        // already closed: nothing holds it any more
      }
    };
    const onError = (err: Error): void => {
      done();
      const code = errnoCode(err) ?? 'EIO';
      reject(new UnixConnectError(code, `cannot connect to ${what} ${path}: ${code}`));
    };
    sock.once('connect', () => {
      done();
      sock.off('error', onError);
      resolve(sock);
    });
    sock.once('error', onError);
  });
}
