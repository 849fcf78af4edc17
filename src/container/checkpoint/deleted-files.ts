// deleted.files of a checkpoint archive, applied to the restored container's upper dir before it
// is mounted. crib's own rootfs-diff.tar already carries its deletions as whiteouts, but an
// archive written by CRI-O or podman does not: their tar holds only the files that are there, and
// deleted.files alone says what is gone (a whole directory as one entry, "/home", also when the
// container made it again). So each listed path is deleted here as overlayfs itself deletes:
//   - a directory the upper dir has (made again by the container, from the tar) becomes opaque,
//     hiding the image's directory beneath it;
//   - a path the upper dir lacks but the image has gets a whiteout (a 0:0 character device);
//     the directories above it are "copied up" first, with the image's mode and owner;
//   - a whiteout already there (crib's own archives), or a non-directory that replaced it, or a
//     path the image does not have either, needs nothing.
// Nothing is ever followed: a symlink on the way means the path does not name what the image
// has, and the entry is left alone.
import { chownSync, mkdirSync, type Stats } from 'node:fs';
import { readFile, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { InvalidArgumentError } from '../../errors.js';
import { cleanEntryPath } from '../../image/unpack/safe-path.js';
import { lsetxattr, mknod, S_IFCHR } from '../../sys/libc.js';
import { OPAQUE_XATTR, isOpaque, lstatOrUndefined, visibleEntry } from '../../snapshot/overlay-lookup.js';

/** The most deleted.files may be (a million paths of PATH_MAX would be more than any diff). */
export const MAX_DELETED_FILES_BYTES = 64 * 1024 * 1024;

export interface OverlayLayers {
  /** The image's layers, top first. */
  lowerdirs: string[];
  /** The new container's upper dir, not mounted yet. */
  upperdir: string;
}

/** What the image (its layers, top first) has at rel, as overlayfs shows it without the upper dir. */
const inImage = (lowerdirs: string[], rel: string): Stats | undefined => visibleEntry(lowerdirs, rel)?.stats;

/** Deletes one path (relative, cleaned) in the upper dir, as described above. */
function deleteOne(layers: OverlayLayers, rel: string): void {
  const parts = rel.split('/');
  // Whether the upper dir hides the image below this point (an opaque directory).
  let hidden = false;
  for (let i = 0; i < parts.length - 1; i++) {
    const cur = parts.slice(0, i + 1).join('/');
    const path = join(layers.upperdir, cur);
    const st = lstatOrUndefined(path);
    if (st) {
      if (!st.isDirectory()) return; // a file, symlink or whiteout: nothing of the image below
      if (isOpaque(path)) hidden = true;
      continue;
    }
    if (hidden) return; // made by the container only: the image has nothing there
    const image = inImage(layers.lowerdirs, cur);
    if (!image?.isDirectory()) return;
    // Copied up as overlayfs copies a directory up: the image's mode and owner.
    mkdirSync(path, image.mode & 0o7777);
    chownSync(path, image.uid, image.gid);
  }
  const path = join(layers.upperdir, rel);
  const st = lstatOrUndefined(path);
  if (st) {
    if (st.isDirectory()) lsetxattr(path, OPAQUE_XATTR, 'y');
    return; // a whiteout already, or a file or link that replaced what was there
  }
  if (hidden || !inImage(layers.lowerdirs, rel)) return;
  mknod(path, S_IFCHR, 0, 0);
}

/** The paths of a deleted.files, checked: a JSON array of absolute paths inside the rootfs. */
export function parseDeletedFiles(text: string, what: string, maxEntries: number): string[] {
  let list: unknown;
  try {
    list = JSON.parse(text);
  } catch (err) {
    throw new InvalidArgumentError(`${what} does not parse: ${(err as Error).message}`);
  }
  if (!Array.isArray(list) || list.some((p) => typeof p !== 'string')) {
    throw new InvalidArgumentError(`${what} must be a JSON array of paths`);
  }
  if (list.length > maxEntries) throw new InvalidArgumentError(`${what} lists ${list.length} paths, more than ${maxEntries}`);
  return (list as string[]).map((p) => {
    if (!p.startsWith('/')) throw new InvalidArgumentError(`${what}: ${JSON.stringify(p)} is not an absolute path`);
    const rel = cleanEntryPath(p.slice(1), `${what} path`);
    if (rel === '') throw new InvalidArgumentError(`${what}: ${JSON.stringify(p)} names the root`);
    return rel;
  });
}

/** Applies the deleted.files at `path` (if the archive has one) to the upper dir. */
export async function applyDeletedFiles(path: string, layers: OverlayLayers, maxEntries: number): Promise<number> {
  const st = await stat(path).catch(() => undefined);
  if (!st) return 0;
  if (!st.isFile()) throw new InvalidArgumentError(`${path} is not a regular file`);
  if (st.size > MAX_DELETED_FILES_BYTES) throw new InvalidArgumentError(`${path} is ${st.size} bytes, more than ${MAX_DELETED_FILES_BYTES}`);
  const rels = parseDeletedFiles(await readFile(path, 'utf8'), 'deleted.files of the checkpoint', maxEntries);
  for (const rel of rels) deleteOne(layers, rel);
  return rels.length;
}
