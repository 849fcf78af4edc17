// What an overlay of layers shows, found in the layers themselves without mounting them: so that
// CreateContainer can read the image's /etc/passwd while its rootfs is not mounted yet, and a
// checkpoint's deleted.files can ask what the image has under the container's upper dir. The
// rules are overlayfs's: at each level the first layer (top first) that has the name decides,
// a whiteout there (a 0:0 character device) meaning nothing; below a directory, the layers from
// that one down merge, up to the first where it is opaque or is no directory. Each layer is
// looked at component by component, never through a symlink (the caller resolves symlinks in
// the merged view).
import { lstatSync, type Stats } from 'node:fs';
import { join } from 'node:path';
import { errnoCode } from '../errors.js';
import { lgetxattr } from '../sys/libc.js';

/** The xattr that makes an upper directory hide the lower ones (as unpacks write it). */
export const OPAQUE_XATTR = 'trusted.overlay.opaque';

/** What an overlay shows at a name: its host path in the layer that decides, and its lstat. */
export interface VisibleEntry {
  path: string;
  stats: Stats;
  /**
   * For a directory: the same directory in every layer that merges into it, top first (the
   * overlay's view of the directory; `lookupIn` looks below it).
   */
  dirs: string[];
}

/** lstat of `path`, or undefined when it (or a directory on its way) is missing. */
export function lstatOrUndefined(path: string): Stats | undefined {
  try {
    return lstatSync(path);
  } catch (err) {
    if (errnoCode(err) === 'ENOENT' || errnoCode(err) === 'ENOTDIR') return undefined;
    throw err;
  }
}

export const isWhiteout = (st: Stats): boolean => st.isCharacterDevice() && st.rdev === 0;
export const isOpaque = (path: string): boolean => lgetxattr(path, OPAQUE_XATTR)?.toString() === 'y';

/**
 * What the overlay of `dirs` (one directory of it in each layer that merges there, top first)
 * shows at `name`, or undefined when nothing (or a whiteout) is there.
 */
export function lookupIn(dirs: readonly string[], name: string): VisibleEntry | undefined {
  for (let k = 0; k < dirs.length; k++) {
    const path = join(dirs[k]!, name);
    const stats = lstatOrUndefined(path);
    if (!stats) continue;
    if (isWhiteout(stats)) return undefined;
    if (!stats.isDirectory()) return { path, stats, dirs: [] };
    const merged = [path];
    if (!isOpaque(path)) {
      for (let j = k + 1; j < dirs.length; j++) {
        const below = join(dirs[j]!, name);
        const st = lstatOrUndefined(below);
        if (!st) continue;
        if (!st.isDirectory()) break;
        merged.push(below);
        if (isOpaque(below)) break;
      }
    }
    return { path, stats, dirs: merged };
  }
  return undefined;
}

/** What the overlay of `layers` (top first) shows at `rel` (relative, clean, no symlink followed). */
export function visibleEntry(layers: readonly string[], rel: string): VisibleEntry | undefined {
  let dirs: readonly string[] = layers;
  let entry: VisibleEntry | undefined;
  for (const part of rel.split('/')) {
    if (entry && !entry.stats.isDirectory()) return undefined;
    entry = lookupIn(dirs, part);
    if (!entry) return undefined;
    dirs = entry.dirs;
  }
  return entry;
}
