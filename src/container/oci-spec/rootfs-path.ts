// Reads files of a container rootfs as the container would see them, from the layers the rootfs
// is mounted from (top first; a plain rootfs directory is its one layer), so that CreateContainer
// can look its user up before (and while) anything is mounted. The overlay's rules are
// snapshot/overlay-lookup.ts's. A symlink inside an image (e.g. /etc/passwd ->
// /usr/share/base/passwd) is relative to the container root, not to the node's root: following
// it with the host's path walk would read — or leak — node files. Every component is resolved by
// hand against the layers, absolute targets restart at the root and ".." stops at it, as
// openat2(RESOLVE_IN_ROOT) would.
import { constants, readlinkSync } from 'node:fs';
import { open } from 'node:fs/promises';
import { InvalidArgumentError, errnoCode } from '../../errors.js';
import { lookupIn } from '../../snapshot/overlay-lookup.js';

// Linux gives up after 40 links (MAXSYMLINKS); so do we, to stop loops.
const MAX_SYMLINKS = 40;
// /etc/passwd and /etc/group are small; a huge one is a broken or hostile image.
const MAX_FILE_BYTES = 16 * 1024 * 1024;

/**
 * The host path, in the layer that decides, of what `path` (absolute, inside the container) names
 * in the overlay of `layers` (top first), with every symlink resolved inside it. Undefined if a
 * component does not exist. Synchronous: a few lstats of one path, no file read.
 */
export function resolveInLayers(layers: readonly string[], path: string): string | undefined {
  const pending = path.split('/').filter((p) => p !== '' && p !== '.');
  // The merged directories walked so far: stack[i] is the i-th one's directory in each layer.
  const stack: (readonly string[])[] = [layers];
  let links = 0;
  while (pending.length > 0) {
    const part = pending.shift()!;
    if (part === '..') {
      if (stack.length > 1) stack.pop();
      continue;
    }
    const entry = lookupIn(stack[stack.length - 1]!, part);
    if (!entry) return undefined;
    if (entry.stats.isDirectory()) {
      stack.push(entry.dirs);
      continue;
    }
    if (!entry.stats.isSymbolicLink()) {
      if (pending.length > 0) return undefined; // a file named as a directory
      return entry.path;
    }
    if (++links > MAX_SYMLINKS) {
      throw new InvalidArgumentError(`${path} in the container rootfs: too many levels of symbolic links`);
    }
    const target = readlinkSync(entry.path);
    if (target.startsWith('/')) stack.length = 1;
    pending.unshift(...target.split('/').filter((p) => p !== '' && p !== '.'));
  }
  // A directory (or the root itself): its top layer's.
  return stack[stack.length - 1]![0];
}

/** Contents of a rootfs file (symlinks resolved inside the overlay of `layers`), or undefined if absent. */
export async function readRootfsFile(layers: readonly string[], path: string): Promise<string | undefined> {
  const host = resolveInLayers(layers, path);
  if (host === undefined) return undefined;
  // O_NOFOLLOW: the last component was checked to be no symlink; refuse one swapped in since.
  // O_NONBLOCK: a FIFO planted at /etc/passwd must not hang container creation.
  let file;
  try {
    file = await open(host, constants.O_RDONLY | constants.O_NOFOLLOW | constants.O_NONBLOCK);
  } catch (err) {
    if (errnoCode(err) === 'ENOENT' || errnoCode(err) === 'ELOOP') return undefined;
    throw err;
  }
  try {
    const st = await file.stat();
    if (!st.isFile()) return undefined;
    if (st.size > MAX_FILE_BYTES) {
      throw new InvalidArgumentError(`${path} in the container rootfs is ${st.size} bytes, larger than ${MAX_FILE_BYTES}`);
    }
    return await file.readFile('utf8');
  } finally {
    await file.close();
  }
}
