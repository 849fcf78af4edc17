// An flock(2)ed file held for the daemon's lifetime. The kernel releases it when the process dies,
// so a crashed daemon never leaves a lock that blocks its restart (a pid file would).
import { closeSync, openSync } from 'node:fs';
import { errnoCode } from '../errors.js';
import { tryLockExclusive } from '../sys/libc.js';

export class LockFile {
  private constructor(private fd: number | undefined, readonly path: string) {}

  /** Take the lock, creating the file (0600) if needed; undefined while another process holds it. */
  static tryAcquire(path: string): LockFile | undefined {
    const fd = openSync(path, 'a', 0o600);
    try {
      if (!tryLockExclusive(fd, path)) {
        closeSync(fd);
        return undefined;
      }
    } catch (err) {
      closeSync(fd);
      throw err;
    }
    return new LockFile(fd, path);
  }

  /**
   * Whether another process holds the lock, found without creating anything: a missing file is
   * not held. (Taking the lock for a moment to find out is harmless: it is released at once.)
   */
  static isHeld(path: string): boolean {
    let fd: number;
    try {
      fd = openSync(path, 'r');
    } catch (err) {
      if (errnoCode(err) === 'ENOENT' || errnoCode(err) === 'ENOTDIR') return false;
      throw err;
    }
    try {
      return !tryLockExclusive(fd, path);
    } finally {
      closeSync(fd);
    }
  }

  release(): void {
    if (this.fd !== undefined) closeSync(this.fd);
    this.fd = undefined;
  }
}
