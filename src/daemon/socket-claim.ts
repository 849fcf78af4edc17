// Whether this daemon may serve on its CRI socket, decided before it creates anything.
//
// A second daemon pointed at a socket another one serves on must be refused before it makes
// its root, state dir, bridge or nftables table: refused at bind time, it would leave them all
// behind. So the claim comes first in start-up, and is held until the socket is unlinked at stop:
//   - <socket>.lock, flocked: another crib daemon holds it from before its start-up until its
//     socket is gone. Two daemons starting at once cannot both pass; a dead one holds nothing.
//   - a connect() probe: any other process (or a crib daemon too old to take the lock)
//     answering on the path.
// The lock file stays after stop (unlinking it would let a third daemon lock a different file).
import { connect } from 'node:net';
import { dirname } from 'node:path';
import { FailedPreconditionError } from '../errors.js';
import { LockFile } from './lock-file.js';

/** True when a process accepts connections on the unix socket at `path`. */
export function socketAnswers(path: string): Promise<boolean> {
  return new Promise((resolve) => {
    const sock = connect(path);
    sock.once('connect', () => {
      sock.destroy();
      resolve(true);
    });
    sock.once('error', () => resolve(false));
  });
}

export class SocketClaim {
  private constructor(private readonly lock: LockFile) {}

  /**
   * Claim the unix socket at `path`, or fail naming who holds it. Both checks come before
   * anything is created; then `makeDir` makes the socket's directory (mkdir -p: nobody can be
   * serving in a directory that does not exist yet) and the lock is taken for real, which still
   * refuses a daemon that won a race to it.
   */
  static async take(path: string, makeDir: (dir: string) => Promise<void>): Promise<SocketClaim> {
    const lockPath = `${path}.lock`;
    const held = () => new FailedPreconditionError(`${path} is in use: another crib daemon is serving on it (it holds ${lockPath})`);
    if (LockFile.isHeld(lockPath)) throw held();
    if (await socketAnswers(path)) throw new FailedPreconditionError(`${path} is in use: another process is serving on it`);
    await makeDir(dirname(path));
    const lock = LockFile.tryAcquire(lockPath);
    if (!lock) throw held();
    return new SocketClaim(lock);
  }

  release(): void {
    this.lock.release();
  }
}
