// Deletes a directory tree whose size nobody bounds: a container's writable layer, an image's
// layers, the dirs the trash holds. `rm -rf --one-file-system`, a process of its own, not Node's
// fs.rm, for three reasons (issue 14):
// - fs.rm queues every entry of a directory on libuv's pool at once, and the pool's queue is one
//   line for the whole daemon: while it deleted 50,000 files, a small file write waited 615 ms
//   behind them, and every RPC that persists a record writes one.
// - Each file's unlink came back as a callback on the event loop: the daemon's main thread spent
//   its own CPU on the walk, between the RPCs it answered.
// - A tree deeper than PATH_MAX, which any container can make in its writable layer, fails fs.rm
//   with ENAMETOOLONG: the layer could never be deleted. rm walks by descriptors.
// --one-file-system: a directory on another filesystem (a mount left inside) is not walked into;
// rm fails naming it, and the caller's entry stays for its next try. Nothing is deleted through a
// mount.
import { InternalError } from '../errors.js';
import { spawnWithoutFork } from './posix-spawn.js';

/** How much of rm's complaints an error quotes. */
const MAX_MESSAGE = 2048;

/** Deletes `path` and everything below it; a missing path is fine. */
export async function removeTree(path: string): Promise<void> {
  let rm;
  try {
    rm = await spawnWithoutFork('rm', ['-rf', '--one-file-system', '--', path], { stdoutToNull: true });
  } catch (err) {
    throw new InternalError(`remove ${path}: cannot run rm: ${(err as Error).message}`, { cause: err });
  }
  let stderr = '';
  rm.stderr.setEncoding('utf8');
  rm.stderr.on('data', (d: string) => {
    if (stderr.length < MAX_MESSAGE) stderr += d.slice(0, MAX_MESSAGE - stderr.length);
  });
  const exit = await rm.exited;
  if (exit.code === 0) return;
  const how = exit.code === null ? `was killed by signal ${exit.signal}` : `exited with ${exit.code}`;
  throw new InternalError(`remove ${path}: rm ${how}: ${stderr.trim() || 'no message'}`);
}
