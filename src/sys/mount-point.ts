// Whether a path is a mount point, asked of the kernel for that one path: reading the mount
// table (/proc/self/mountinfo) costs a line per mount on the node, five per pod or more, and at
// 250 pods was milliseconds of CPU for each question.
import { closeSync } from 'node:fs';
import { basename, dirname } from 'node:path';
import { AT_FDCWD, O_CLOEXEC, O_DIRECTORY, O_PATH, RESOLVE_NO_XDEV, openat2 } from './libc.js';
import { errnoCode } from '../errors.js';

/**
 * Whether something is mounted on `path` in this process's mount namespace (a bind mount of the
 * same file system included). Its last component is looked up from its parent without crossing
 * a mount: that fails with EXDEV exactly when a mount sits on it. A missing path is no mount point.
 */
export function isMountPoint(path: string): boolean {
  let parent: number;
  try {
    parent = openat2(AT_FDCWD, dirname(path), O_PATH | O_DIRECTORY | O_CLOEXEC, 0);
  } catch (err) {
    if (errnoCode(err) === 'ENOENT') return false;
    throw err;
  }
  try {
    closeSync(openat2(parent, basename(path), O_PATH | O_CLOEXEC, RESOLVE_NO_XDEV));
    return false;
  } catch (err) {
    const code = errnoCode(err);
    if (code === 'EXDEV') return true;
    if (code === 'ENOENT') return false;
    throw err;
  } finally {
    closeSync(parent);
  }
}
