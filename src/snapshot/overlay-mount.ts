// overlayfs mounts. mount(2) takes the option string in one page, which a deep image's lowerdir
// list can outgrow; then the same mount is done by the mount(8) CLI from the snapshot root
// with relative paths (the kernel resolves them against the mounting process's cwd, and a
// child's cwd is its own — chdir in the daemon would affect every thread).
import { spawn } from 'node:child_process';
import { relative } from 'node:path';
import { ResourceExhaustedError, InternalError, errnoCode } from '../errors.js';
import { nativeBinaries } from '../native-paths.js';
import { CommandError, runCommand } from '../sys/command.js';
import { MNT_DETACH, mount, umount2 } from '../sys/libc.js';

const PAGE_LIMIT = 4095; // one page including the terminating NUL

export interface OverlayDirs {
  lowerdirs: string[];
  upperdir: string;
  workdir: string;
}

export function overlayOptions(d: OverlayDirs): string {
  return `lowerdir=${d.lowerdirs.join(':')},upperdir=${d.upperdir},workdir=${d.workdir}`;
}

/** Mount an overlay of `d` on `target`; `base` is a directory every path lies under. */
export async function mountOverlay(d: OverlayDirs, target: string, base: string): Promise<void> {
  const options = overlayOptions(d);
  if (options.length <= PAGE_LIMIT) {
    mount('overlay', target, 'overlay', 0, options);
    return;
  }
  const rel = overlayOptions({
    lowerdirs: d.lowerdirs.map((p) => relative(base, p)),
    upperdir: relative(base, d.upperdir),
    workdir: relative(base, d.workdir),
  });
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
    mount('overlay', target, 'overlay', MS_RDONLY | MS_NOSUID | MS_NODEV | MS_NOEXEC, options);
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
 * pinned at `usernsPath` (a user-namespaced pod's rootfs; see native/pinns/idmap-overlay.c).
 * crib-pinns does it: the idmapped layer mounts are detached mounts named by fd, which only a
 * process of our own can hold while it mounts.
 */
export async function mountIdmappedOverlay(d: OverlayDirs, target: string, usernsPath: string): Promise<void> {
  await pinnsMountOverlay(d.lowerdirs, target, usernsPath, ['--upper', d.upperdir, '--work', d.workdir]);
}

/**
 * The read-only form (an image volume in a user-namespaced pod): `lowerdirs` (top first)
 * idmapped with the pod's namespace, an overlay of them (or the one layer itself), read-only,
 * nosuid, nodev and noexec like mountReadOnlyOverlay's.
 */
export async function mountIdmappedLayers(lowerdirs: string[], target: string, usernsPath: string): Promise<void> {
  await pinnsMountOverlay(lowerdirs, target, usernsPath, []);
}

async function pinnsMountOverlay(lowerdirs: string[], target: string, usernsPath: string, upper: string[]): Promise<void> {
  const args = ['mount-overlay', '--userns', usernsPath, ...upper];
  for (const lower of lowerdirs) args.push('--lower', lower);
  args.push(target);
  try {
    await runCommand(nativeBinaries.pinns, args);
  } catch (err) {
    if (err instanceof CommandError) {
      const what = upper.length > 0 ? 'idmapped rootfs' : 'idmapped image volume';
      throw new InternalError(`${what} on ${target}: ${err.stderr.trim() || err.message}`, { cause: err });
    }
    throw err;
  }
}

/** Unmount `target`; not mounted or missing is fine, busy falls back to a lazy detach. */
export function unmountOverlay(target: string): void {
  try {
    umount2(target, 0);
  } catch (err) {
    const code = errnoCode(err);
    if (code === 'EINVAL' || code === 'ENOENT') return;
    if (code !== 'EBUSY') throw err;
    umount2(target, MNT_DETACH);
  }
}

function run(cmd: string, args: string[], cwd: string): Promise<void> {
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, args, { cwd, stdio: ['ignore', 'ignore', 'pipe'] });
    let stderr = '';
    child.stderr.setEncoding('utf8');
    child.stderr.on('data', (d: string) => {
      stderr += d;
    });
    child.on('error', reject);
    child.on('close', (code) => {
      if (code === 0) resolve();
      else reject(new InternalError(`${cmd} ${args.slice(0, 3).join(' ')} ... failed (exit ${code}): ${stderr.trim()}`));
    });
  });
}
