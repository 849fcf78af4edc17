// One daemon per root dir. An flock(2) on <root>/crib.lock is released by the kernel when the
// process dies, so a crashed daemon never leaves a lock that blocks its restart (a pid file
// would). Node has no flock, hence the one koffi call.
import { closeSync, openSync } from 'node:fs';
import { join } from 'node:path';
import koffi from 'koffi';
import { FailedPreconditionError } from '../errors.js';

const LOCK_EX = 2;
const LOCK_NB = 4;
const EWOULDBLOCK = 11;

const libc = koffi.load('libc.so.6');
const flock = libc.func('int flock(int fd, int operation)');
const errnoLocation = libc.func('int *__errno_location(void)');

function lastErrno(): number {
  return koffi.decode(errnoLocation(), 'int') as number;
}

export class RootLock {
  private constructor(private fd: number | undefined, readonly path: string) {}

  /** Take the lock or fail naming the root another daemon holds. */
  static acquire(root: string): RootLock {
    const path = join(root, 'crib.lock');
    const fd = openSync(path, 'a', 0o600);
    if (flock(fd, LOCK_EX | LOCK_NB) !== 0) {
      const errno = lastErrno();
      closeSync(fd);
      if (errno === EWOULDBLOCK) {
        throw new FailedPreconditionError(
          `another crib daemon is already running with root ${root} (it holds ${path})`,
        );
      }
      throw new FailedPreconditionError(`cannot lock ${path}: errno ${errno}`);
    }
    return new RootLock(fd, path);
  }

  release(): void {
    if (this.fd !== undefined) closeSync(this.fd);
    this.fd = undefined;
  }
}
