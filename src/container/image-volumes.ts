// Image volumes (CRI Mount.image and image_sub_path, KEP-4639): an image already pulled, mounted
// read-only at a container path. Each volume is a read-only view snapshot of the image's layer
// chain (snapshot/snapshotter.ts), mounted as an overlay without an upper dir, nosuid, nodev and
// noexec (as CRI-O does and the KEP describes: a volume is data), under the container's dir:
//
//   <container dir>/image-volumes/<mount index>/root   the image's overlay
//   <container dir>/image-volumes/<mount index>/sub    image_sub_path, bound from an fd
//
// In a user-namespaced pod the overlay is built on idmapped mounts of the layers
// (snapshot/overlay-mount.ts, as for the pod's rootfs): the image's uid 1234 is the pod's 1234, its root the
// pod's root, and the layers on disk are untouched.
//
// The OCI spec then binds root (or sub) into the container like any other volume. The view
// keeps the layers from gc, and the container holds the image against RemoveImage, until the
// container is removed; both are recorded in the container record, so they survive a restart.
import { closeSync } from 'node:fs';
import { mkdir, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { InvalidArgumentError, NotFoundError, errnoCode } from '../errors.js';
import type { Mount__Output } from '../gen/runtime/v1/Mount.js';
import {
  AT_FDCWD, O_CLOEXEC, O_DIRECTORY, O_PATH, RESOLVE_BENEATH, RESOLVE_NO_MAGICLINKS, RESOLVE_NO_XDEV,
  mountAsync, openat2,
} from '../sys/libc.js';

/** One image volume of a container, as its record keeps it. */
export interface ImageVolumeRecord {
  /** Its index in config.mounts. */
  index: number;
  /** The image as the mount named it, and its id (config digest): ContainerStatus reports both. */
  image: string;
  imageId: string;
  /** The read-only view snapshot holding the image's layers. */
  key: string;
  /** Where the image's overlay is mounted on the host. */
  root: string;
  /** The cleaned image_sub_path and where it is bound on the host, when one is asked for. */
  subPath?: string;
  sub?: string;
}

/** What image volumes need of the images. */
export interface VolumeImages {
  find(ref: string): Promise<{ id: string; chainId?: string } | undefined>;
  volumeReferences: { hold(imageId: string, containerId: string): void; release(containerId: string): void };
}

/** What image volumes need of the snapshotter. */
export interface ImageViews {
  prepareView(key: string, chainId: string | undefined): Promise<void>;
  mountView(key: string, target: string, idmap?: { usernsPath: string }): Promise<void>;
  unmount(target: string): Promise<void>;
  remove(key: string): Promise<void>;
}

const MS_RDONLY = 0x1;
const MS_NOSUID = 0x2;
const MS_NODEV = 0x4;
const MS_NOEXEC = 0x8;
const MS_REMOUNT = 0x20;
const MS_BIND = 0x1000;

/** Whether a CRI mount asks for an image volume rather than a host path. */
export function isImageVolume(m: Mount__Output): boolean {
  return (m.image?.image ?? '') !== '';
}

/**
 * image_sub_path cleaned: relative, without ".." (a sub path names a place inside the image, and
 * ".." can only mean leaving it), "." and empty parts dropped. '' means the image's root.
 */
export function cleanImageSubPath(sub: string, field: string): string {
  if (sub.includes('\0')) throw new InvalidArgumentError(`${field} ${JSON.stringify(sub)} contains a NUL byte`);
  if (sub.startsWith('/')) {
    throw new InvalidArgumentError(`${field} ${JSON.stringify(sub)} must be relative to the image's root, not an absolute path`);
  }
  const parts = sub.split('/').filter((p) => p !== '' && p !== '.');
  if (parts.includes('..')) {
    throw new InvalidArgumentError(`${field} ${JSON.stringify(sub)} must not contain "..": it must stay inside the image`);
  }
  return parts.join('/');
}

export class ImageVolumes {
  constructor(private readonly images: VolumeImages, private readonly views: ImageViews) {}

  /**
   * The image volumes of a container's mounts, checked and their images found; nothing is
   * touched yet, so a bad mount or a missing image leaves nothing behind.
   */
  async plan(containerId: string, dir: string, mounts: Mount__Output[]): Promise<Array<ImageVolumeRecord & { chainId?: string }>> {
    const out: Array<ImageVolumeRecord & { chainId?: string }> = [];
    for (const [index, m] of mounts.entries()) {
      const field = `mounts[${index}]`;
      if (!isImageVolume(m)) {
        if (m.imageSubPath !== '') throw new InvalidArgumentError(`${field}.imageSubPath is set but ${field}.image is not: a sub path needs an image`);
        continue;
      }
      const ref = m.image!.image;
      if (m.hostPath !== '') {
        throw new InvalidArgumentError(`${field}: hostPath ${JSON.stringify(m.hostPath)} and image ${JSON.stringify(ref)} are mutually exclusive`);
      }
      const subPath = cleanImageSubPath(m.imageSubPath, `${field}.imageSubPath`);
      const image = await this.images.find(ref);
      if (!image) throw new NotFoundError(`${field}.image: image "${ref}" is not present; pull it first`);
      const root = join(dir, 'image-volumes', String(index));
      out.push({
        index, image: ref, imageId: image.id, key: `${containerId}-iv${index}`, root: join(root, 'root'),
        ...(subPath !== '' ? { subPath, sub: join(root, 'sub') } : {}),
        ...(image.chainId !== undefined ? { chainId: image.chainId } : {}),
      });
    }
    return out;
  }

  /** The container holds its volumes' images against RemoveImage (at create and at start-up). */
  hold(containerId: string, volumes: ImageVolumeRecord[]): void {
    for (const v of volumes) this.images.volumeReferences.hold(v.imageId, containerId);
  }

  /**
   * Mount every planned volume; `idmap` (a user-namespaced pod's pinned namespace) has the
   * image's files seen through the pod's mapping, so the mapped users read them with the
   * ownership the image gives them. On failure what was mounted stays for release() to undo (the
   * caller registers it before calling this).
   */
  async mount(volumes: Array<ImageVolumeRecord & { chainId?: string }>, idmap?: { usernsPath: string }): Promise<void> {
    for (const v of volumes) {
      await this.views.prepareView(v.key, v.chainId);
      await mkdir(v.root, { recursive: true, mode: 0o755 });
      await this.views.mountView(v.key, v.root, idmap);
      if (v.sub !== undefined) await bindSubPath(v, `mounts[${v.index}].imageSubPath`);
    }
  }

  /** Where the OCI spec binds each volume from, by mount index. */
  static sources(volumes: ImageVolumeRecord[]): Map<number, string> {
    return new Map(volumes.map((v) => [v.index, v.sub ?? v.root]));
  }

  /**
   * Unmount and remove the volumes and release the container's hold on their images; each step
   * is idempotent, so a rollback, a removal and a removal a crash interrupted all end clean.
   */
  async release(containerId: string, volumes: ImageVolumeRecord[]): Promise<void> {
    for (const v of volumes) {
      if (v.sub !== undefined) await this.views.unmount(v.sub);
      await this.views.unmount(v.root);
      await this.views.remove(v.key);
      // rmdir-like: the mount points are empty once unmounted; a leftover mount makes this fail
      // (EBUSY/EROFS) rather than reach into the image.
      await rm(join(v.root, '..'), { recursive: true, force: true });
    }
    if (volumes.length > 0) await rm(join(volumes[0]!.root, '..', '..'), { recursive: true, force: true });
    this.images.volumeReferences.release(containerId);
  }
}

/**
 * Bind image_sub_path of the mounted volume onto v.sub. The path is resolved by the kernel on
 * a descriptor of the image's root with RESOLVE_BENEATH: a ".." or a symlink (absolute, or
 * relative climbing too far) that would leave the image fails the lookup instead of being
 * followed. The bind is made from the opened descriptor, so what is mounted is exactly what was
 * checked, whatever happens to the path afterwards.
 */
async function bindSubPath(v: ImageVolumeRecord, field: string): Promise<void> {
  const sub = v.subPath!;
  const rootFd = openat2(AT_FDCWD, v.root, O_PATH | O_DIRECTORY | O_CLOEXEC, 0);
  try {
    let fd: number;
    try {
      fd = openat2(rootFd, sub, O_PATH | O_DIRECTORY | O_CLOEXEC, RESOLVE_BENEATH | RESOLVE_NO_MAGICLINKS | RESOLVE_NO_XDEV);
    } catch (err) {
      const what = `${field} ${JSON.stringify(sub)} of image "${v.image}"`;
      switch (errnoCode(err)) {
        case 'ENOENT': throw new NotFoundError(`${what} does not exist in the image`, { cause: err });
        case 'ENOTDIR': throw new InvalidArgumentError(`${what} is not a directory (only directories can be mounted)`, { cause: err });
        case 'EXDEV': throw new InvalidArgumentError(`${what} leads outside the image through a symlink (absolute, or climbing above the image's root)`, { cause: err });
        case 'ELOOP': throw new InvalidArgumentError(`${what} has too many levels of symlinks`, { cause: err });
        default: throw err;
      }
    }
    try {
      await mkdir(v.sub!, { mode: 0o755 });
      await mountAsync(`/proc/self/fd/${fd}`, v.sub!, null, MS_BIND, null);
      await mountAsync('', v.sub!, null, MS_BIND | MS_REMOUNT | MS_RDONLY | MS_NOSUID | MS_NODEV | MS_NOEXEC, null);
    } finally {
      closeSync(fd);
    }
  } finally {
    closeSync(rootFd);
  }
}
