// A container's file changes as a tar (checkpointctl's rootfs-diff.tar) and back. The changes
// are exactly its overlay upper dir: every file and directory there was written or made by the
// container. Deleted files are overlay whiteouts there (a 0:0 character device); they go into
// the tar as OCI whiteouts (".wh.<name>"; an opaque directory as ".wh..wh..opq") so that the tar
// applies as one image layer does, and are also listed in deleted.files as checkpointctl reads
// it. Restoring unpacks the tar into the new container's empty upper dir with the image layer
// unpacker (src/image/unpack), which checks every path and turns whiteouts into overlay ones.
import { createReadStream, createWriteStream } from 'node:fs';
import { lstat, readdir, readlink } from 'node:fs/promises';
import { join } from 'node:path';
import { pipeline } from 'node:stream/promises';
import type TarStream from 'tar-stream';
import { lazyModule } from '../../sys/lazy-module.js';
import { FailedPreconditionError } from '../../errors.js';
import { PATH_MAX, devMajor, devMinor, lgetxattr } from '../../sys/libc.js';
import { unpackLayer } from '../../image/unpack/unpack-layer.js';

const tarStream = lazyModule<typeof TarStream>('tar-stream');

const OPAQUE_XATTR = 'trusted.overlay.opaque';

export interface RootfsDiff {
  /** Paths (relative to the container's "/") the container deleted. */
  deleted: string[];
  entries: number;
}

/** Writes the upper dir's content to tarPath (created new); resolves with what was deleted. */
export async function writeRootfsDiff(upperdir: string, tarPath: string, signal?: AbortSignal): Promise<RootfsDiff> {
  const pack = tarStream().pack();
  const out = createWriteStream(tarPath, { flags: 'wx', mode: 0o600 });
  const written = pipeline(pack, out);
  const diff: RootfsDiff = { deleted: [], entries: 0 };
  const add = (header: Partial<TarStream.Header> & { name: string }) => new Promise<void>((resolve, reject) =>
    pack.entry(header as TarStream.Header, Buffer.alloc(0), (err) => (err ? reject(err) : resolve())));
  const walk = async (rel: string): Promise<void> => {
    for (const name of (await readdir(join(upperdir, rel))).sort()) {
      signal?.throwIfAborted();
      const path = rel ? `${rel}/${name}` : name;
      const full = join(upperdir, path);
      // A container can nest directories past PATH_MAX (mkdir and cd -P): no file call reaches
      // them by path, and no restore could make them again. Refused by name, not failed as
      // ENAMETOOLONG naming the host's path.
      if (Buffer.byteLength(full) >= PATH_MAX) {
        throw new FailedPreconditionError(`the container's writable layer holds a path too long to archive (over ${PATH_MAX - 1 - Buffer.byteLength(upperdir)} bytes: /${path.slice(0, 64)}...): a checkpoint cannot hold it`);
      }
      const st = await lstat(full);
      const base = { name: path, mode: st.mode & 0o7777, uid: st.uid, gid: st.gid, mtime: st.mtime };
      diff.entries++;
      if (st.isCharacterDevice() && st.rdev === 0) {
        // An overlay whiteout: the file below was deleted.
        diff.deleted.push(`/${path}`);
        await add({ ...base, name: rel ? `${rel}/.wh.${name}` : `.wh.${name}`, type: 'file', size: 0, mode: 0o600 });
      } else if (st.isDirectory()) {
        await add({ ...base, type: 'directory' });
        if (lgetxattr(full, OPAQUE_XATTR)?.toString() === 'y') {
          // Removed and made again: the image's directory is gone as a whole, and what is in it
          // now is all the container's. deleted.files names it, as podman's diff reports such a
          // directory deleted ("D /home"), so a reader that only applies deleted.files hides it.
          diff.deleted.push(`/${path}`);
          await add({ name: `${path}/.wh..wh..opq`, type: 'file', size: 0, mode: 0o600 });
        }
        await walk(path);
      } else if (st.isFile()) {
        const entry = pack.entry({ ...base, type: 'file', size: st.size });
        await pipeline(createReadStream(full), entry);
      } else if (st.isSymbolicLink()) {
        await add({ ...base, type: 'symlink', linkname: await readlink(full) });
      } else if (st.isCharacterDevice() || st.isBlockDevice()) {
        await add({
          ...base, type: st.isCharacterDevice() ? 'character-device' : 'block-device',
          devmajor: devMajor(st.rdev), devminor: devMinor(st.rdev),
        });
      } else if (st.isFIFO()) {
        await add({ ...base, type: 'fifo' });
      }
      // A socket cannot be archived (nor restored: its listener is in the CRIU images).
    }
  };
  try {
    await walk('');
    pack.finalize();
    await written;
  } catch (err) {
    pack.destroy();
    await written.catch(() => undefined);
    throw err;
  }
  return diff;
}

/** Bounds on a rootfs diff taken from a checkpoint archive (it may come from another node). */
export interface DiffLimits {
  maxBytes: number;
  maxEntries: number;
}

/** Applies a rootfs-diff.tar onto an empty upper dir (before it is mounted). */
export async function applyRootfsDiff(tarPath: string, upperdir: string, limits: DiffLimits, signal?: AbortSignal): Promise<void> {
  await unpackLayer(tarPath, upperdir, {
    signal, what: 'rootfs-diff.tar of the checkpoint', maxBytes: limits.maxBytes, maxEntries: limits.maxEntries,
  });
}
