// One daemon per root dir: <root>/crib.lock is held (flock) for the daemon's lifetime.
import { join } from 'node:path';
import { FailedPreconditionError } from '../errors.js';
import { LockFile } from './lock-file.js';

const lockPath = (root: string): string => join(root, 'crib.lock');

const heldError = (root: string, path: string): FailedPreconditionError =>
  new FailedPreconditionError(`another crib daemon is already running with root ${root} (it holds ${path})`);

export class RootLock {
  private constructor(private readonly file: LockFile) {}

  /** Take the lock or fail naming the root another daemon holds. */
  static acquire(root: string): RootLock {
    const path = lockPath(root);
    const file = LockFile.tryAcquire(path);
    if (!file) throw heldError(root, path);
    return new RootLock(file);
  }

  /** Fail as acquire() would, without creating anything (the root may not exist yet). */
  static assertFree(root: string): void {
    const path = lockPath(root);
    if (LockFile.isHeld(path)) throw heldError(root, path);
  }

  release(): void {
    this.file.release();
  }
}
