// overlayfs mounts. mount(2) takes the option string in one page, which a deep image's lowerdir
// list can outgrow; then the same mount is done by the mount(8) CLI from the snapshot root
// with relative paths (the kernel resolves them against the mounting process's cwd, and a
// child's cwd is its own, set by posix_spawn; chdir in the daemon would affect every thread).
import { closeSync, openSync } from 'node:fs';
import { relative } from 'node:path';
import { ResourceExhaustedError, InternalError, errnoCode } from '../errors.js';
import {
  AT_FDCWD, MNT_DETACH, MOUNT_ATTR_IDMAP, MOUNT_ATTR_NODEV, MOUNT_ATTR_NOEXEC, MOUNT_ATTR_NOSUID, MOUNT_ATTR_RDONLY,
  OPEN_TREE_CLOEXEC, OPEN_TREE_CLONE, mountAsync, mountSetattr, moveMount, openTree, umount2Async,
} from '../sys/libc.js';
import { execFileWithoutFork } from '../sys/exec-file.js';

const PAGE_LIMIT = 4095; // one page including the terminating NUL
const MAX_LOWERS = 500; // overlayfs's own limit

export interface OverlayDirs {
  lowerdirs: string[];
  upperdir: string;
  workdir: string;
}

export function overlayOptions(d: OverlayDirs, mountLabel?: string): string {
  return `lowerdir=${d.lowerdirs.join(':')},upperdir=${d.upperdir},workdir=${d.workdir}${contextOption(mountLabel)}`;
}

/**
 * On an SELinux node the whole container rootfs carries the container's mount label, as CRI-O
 * mounts it: `context=` labels every file of the overlay for the kernel, whatever the layers'
 * own xattrs say, so the container's process (of the same MCS level) can use them and another
 * pod's cannot. Quoted: an MCS level holds commas. The label was checked to hold no quote.
 */
function contextOption(mountLabel: string | undefined): string {
  if (!mountLabel) return '';
  if (mountLabel.includes('"')) throw new InternalError(`mount label ${mountLabel} contains a quote`);
  return `,context="${mountLabel}"`;
}

/**
 * Mount an overlay of `d` on `target`; `base` is a directory every path lies under. `mountLabel`:
 * the SELinux context of every file in it (contextOption).
 */
export async function mountOverlay(d: OverlayDirs, target: string, base: string, mountLabel?: string): Promise<void> {
  const options = overlayOptions(d, mountLabel);
  if (options.length <= PAGE_LIMIT) {
    await mountAsync('overlay', target, 'overlay', 0, options);
    return;
  }
  const rel = overlayOptions({
    lowerdirs: d.lowerdirs.map((p) => relative(base, p)),
    upperdir: relative(base, d.upperdir),
    workdir: relative(base, d.workdir),
  }, mountLabel);
  if (rel.length > PAGE_LIMIT) {
    throw new ResourceExhaustedError(
      `image has ${d.lowerdirs.length} layers: its overlay options (${rel.length} bytes) exceed one page even with relative paths`);
  }
  await run('mount', ['-t', 'overlay', 'overlay', '-o', rel, target], base);
}

const MS_RDONLY = 0x1;
const MS_NOSUID = 0x2;
const MS_NODEV = 0x4;
const MS_NOEXEC = 0x8;

/**
 * Mount the read-only overlay of `lowerdirs` (top first, at least two: overlayfs refuses a
 * single lower dir without an upper one) on `target`: no upper dir, so nothing can be written,
 * and nosuid, nodev, noexec (an image volume is data, KEP-4639). `base` as for mountOverlay.
 */
export async function mountReadOnlyOverlay(lowerdirs: string[], target: string, base: string): Promise<void> {
  const options = `lowerdir=${lowerdirs.join(':')}`;
  if (options.length <= PAGE_LIMIT) {
    await mountAsync('overlay', target, 'overlay', MS_RDONLY | MS_NOSUID | MS_NODEV | MS_NOEXEC, options);
    return;
  }
  const rel = `lowerdir=${lowerdirs.map((p) => relative(base, p)).join(':')}`;
  if (rel.length > PAGE_LIMIT) {
    throw new ResourceExhaustedError(
      `image has ${lowerdirs.length} layers: its overlay options (${rel.length} bytes) exceed one page even with relative paths`);
  }
  await run('mount', ['-t', 'overlay', 'overlay', '-o', `ro,nosuid,nodev,noexec,${rel}`, target], base);
}

/**
 * Mount an overlay of `d` on `target` whose lower layers are idmapped with the user namespace
 * pinned at `usernsPath` (a user-namespaced pod's rootfs). The upper and work dirs stay plain:
 * what the container writes lands with its host ids.
 */
export async function mountIdmappedOverlay(d: OverlayDirs, target: string, usernsPath: string, mountLabel?: string): Promise<void> {
  await idmappedOverlay(d.lowerdirs, target, usernsPath, d, mountLabel);
}

/**
 * The read-only form (an image volume in a user-namespaced pod): `lowerdirs` (top first)
 * idmapped with the pod's namespace, an overlay of them (or the one layer itself: overlayfs wants
 * two lowers without an upper), read-only, nosuid, nodev and noexec like mountReadOnlyOverlay's.
 */
export async function mountIdmappedLayers(lowerdirs: string[], target: string, usernsPath: string): Promise<void> {
  await idmappedOverlay(lowerdirs, target, usernsPath, undefined);
}

/**
 * Each layer is cloned detached (open_tree), given the pod's mapping (mount_setattr
 * MOUNT_ATTR_IDMAP: host root over the layers' filesystem may, the pod's root could not) and
 * named to overlayfs as /proc/self/fd/<n>; overlayfs takes its own references, so the clones are
 * closed once it is mounted. All of it in the daemon, no helper process: these are a few
 * fd-based syscalls, where a fork+exec per container was what user-namespaced pods paid extra at
 * start (bench/pods.ts). Overlayfs takes idmapped lower layers from Linux 5.19; an overlay
 * cannot itself be idmapped (MOUNT_ATTR_IDMAP on it: EINVAL), hence the layers.
 */
async function idmappedOverlay(
  lowerdirs: string[], target: string, usernsPath: string, upper: Omit<OverlayDirs, 'lowerdirs'> | undefined, mountLabel?: string,
): Promise<void> {
  const what = upper ? 'idmapped rootfs' : 'idmapped image volume';
  if (lowerdirs.length === 0) throw new InternalError(`${what} on ${target}: no layers`);
  if (lowerdirs.length > MAX_LOWERS) {
    throw new ResourceExhaustedError(`${what} on ${target}: ${lowerdirs.length} layers, overlayfs takes at most ${MAX_LOWERS}`);
  }
  const fds: number[] = [];
  let userns = -1;
  try {
    userns = openSync(usernsPath, 'r');
    for (const layer of lowerdirs) {
      let fd: number;
      try {
        fd = openTree(AT_FDCWD, layer, OPEN_TREE_CLONE | OPEN_TREE_CLOEXEC);
      } catch (err) {
        throw new InternalError(`${what} on ${target}: open_tree layer \`${layer}\`: ${errnoCode(err)}`, { cause: err });
      }
      fds.push(fd);
      try {
        mountSetattr(fd, MOUNT_ATTR_IDMAP, userns, `layer ${layer}`);
      } catch (err) {
        throw new InternalError(`${what} on ${target}: mount_setattr MOUNT_ATTR_IDMAP on layer \`${layer}\`: ${errnoCode(err)} ` +
          '(does its filesystem support idmapped mounts?)', { cause: err });
      }
    }
    const readOnly = MOUNT_ATTR_RDONLY | MOUNT_ATTR_NOSUID | MOUNT_ATTR_NODEV | MOUNT_ATTR_NOEXEC;
    if (!upper && fds.length === 1) {
      mountSetattr(fds[0]!, readOnly, -1, `layer ${lowerdirs[0]}`);
      moveMount(fds[0]!, target);
      return;
    }
    let options = `lowerdir=${fds.map((fd) => `/proc/self/fd/${fd}`).join(':')}`;
    if (upper) options += `,upperdir=${upper.upperdir},workdir=${upper.workdir}`;
    options += contextOption(mountLabel);
    if (options.length > PAGE_LIMIT) {
      throw new ResourceExhaustedError(`${what} on ${target}: the overlay options for ${lowerdirs.length} layers (${options.length} bytes) exceed one page`);
    }
    await mountAsync('overlay', target, 'overlay', upper ? 0 : MS_RDONLY | MS_NOSUID | MS_NODEV | MS_NOEXEC, options);
  } finally {
    for (const fd of fds) closeSync(fd);
    if (userns >= 0) closeSync(userns);
  }
}

/**
 * The unmounts begun so far, one after another. The last unmount of a writable overlay syncs the
 * whole filesystem its upper dir is on (overlayfs's sync_fs), everything any process left dirty
 * on it: 155 ms on this project's machine with 300 MiB written elsewhere on the root disk, which
 * on the event loop stalled every RPC that long. They run on libuv's pool, whose four threads
 * every file operation of the daemon shares, so never more than one at a time: a second sync
 * finds the first one's work done, and the other threads stay free for the calls.
 */
let unmounts: Promise<unknown> = Promise.resolve();

/** Unmount `target`; not mounted or missing is fine, busy falls back to a lazy detach. */
export function unmountOverlay(target: string): Promise<void> {
  const done = unmounts.then(async () => {
    try {
      await umount2Async(target, 0);
    } catch (err) {
      if (errnoCode(err) !== 'EBUSY') throw err;
      await umount2Async(target, MNT_DETACH);
    }
  });
  unmounts = done.catch(() => undefined);
  return done;
}

/** What of mount(8)'s output a failure quotes. */
const MOUNT_OUTPUT_MAX = 64 << 10;
/** mount(8) is killed after this long: an overlay mounts in milliseconds. */
const MOUNT_TIMEOUT_MS = 60_000;

/** mount(8) with `args`, from directory `cwd` (posix_spawn, as every helper: no fork of the daemon). */
async function run(cmd: string, args: string[], cwd: string): Promise<void> {
  const r = await execFileWithoutFork(cmd, args, { cwd, timeoutMs: MOUNT_TIMEOUT_MS, maxBuffer: MOUNT_OUTPUT_MAX });
  if (r.error) throw new InternalError(`${cmd} ${args.slice(0, 3).join(' ')} ... failed (${r.error.message}): ${r.stderr.trim()}`);
}
