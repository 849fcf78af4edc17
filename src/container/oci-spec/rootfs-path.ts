// Reads files of a container rootfs as the container would see them. A symlink inside an image
// (e.g. /etc/passwd -> /usr/share/base/passwd) is relative to the container root, not to the
// node's root: following it with the host's path walk would read — or leak — node files.
// Every component is resolved by hand against the rootfs, absolute targets restart at the
// rootfs and ".." stops at it, as openat2(RESOLVE_IN_ROOT) would.
import { constants } from 'node:fs';
import { lstat, open, readlink } from 'node:fs/promises';
import { join } from 'node:path';
import { InvalidArgumentError, errnoCode } from '../../errors.js';

// Linux gives up after 40 links (MAXSYMLINKS); so do we, to stop loops.
const MAX_SYMLINKS = 40;
// /etc/passwd and /etc/group are small; a huge one is a broken or hostile image.
const MAX_FILE_BYTES = 16 * 1024 * 1024;

/**
 * The host path that `path` (absolute, inside the container) names within `rootfs`, with
 * every symlink resolved inside the rootfs. Returns undefined if a component does not exist.
 */
export async function resolveInRootfs(rootfs: string, path: string): Promise<string | undefined> {
  const pending = path.split('/').filter((p) => p !== '' && p !== '.');
  const done: string[] = [];
  let links = 0;
  while (pending.length > 0) {
    const part = pending.shift()!;
    if (part === '..') {
      done.pop();
      continue;
    }
    const candidate = join(rootfs, ...done, part);
    let isLink: boolean;
    try {
      isLink = (await lstat(candidate)).isSymbolicLink();
    } catch (err) {
      if (errnoCode(err) === 'ENOENT' || errnoCode(err) === 'ENOTDIR') return undefined;
      throw err;
    }
    if (!isLink) {
      done.push(part);
      continue;
    }
    if (++links > MAX_SYMLINKS) {
      throw new InvalidArgumentError(`${path} in the container rootfs: too many levels of symbolic links`);
    }
    const target = await readlink(candidate);
    if (target.startsWith('/')) done.length = 0;
    pending.unshift(...target.split('/').filter((p) => p !== '' && p !== '.'));
  }
  return join(rootfs, ...done);
}

/** Contents of a rootfs file (symlinks resolved inside the rootfs), or undefined if absent. */
export async function readRootfsFile(rootfs: string, path: string): Promise<string | undefined> {
  const host = await resolveInRootfs(rootfs, path);
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
