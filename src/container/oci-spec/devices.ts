// Device nodes and the devices cgroup: deny everything, allow the nodes every container needs
// (the ones runtimes create themselves), then the CRI devices — each stat'ed on the host for its
// type and numbers, a directory meaning every device under it — with exactly the access asked
// for, which also bounds the node's mode: a device asked for "r" has no write bit, so only the
// cgroup can be what refuses container root (who passes any mode check) and the mode refuses
// everyone else. Nothing else is allowed: not tun/tap (c 10:200), which containerd, Docker and
// runc 1.2.0 dropped from their defaults. Privileged containers get all host devices and an
// allow-all rule, as containerd gives them.
import { readdir, realpath, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { InvalidArgumentError, errnoCode } from '../../errors.js';
import type { Device__Output } from '../../gen/runtime/v1/Device.js';
import { checkCleanPath } from './clean-path.js';
import type { OciDevice, OciDeviceCgroup } from './oci-types.js';

/** The standard nodes: null, random, full, tty, zero, urandom, console, pts/*, ptmx (containerd's
 * WithDefaultUnixDevices list, which no longer has tun/tap). */
export const DEFAULT_DEVICE_RULES: OciDeviceCgroup[] = [
  { allow: false, access: 'rwm' },
  { allow: true, type: 'c', major: 1, minor: 3, access: 'rwm' },
  { allow: true, type: 'c', major: 1, minor: 8, access: 'rwm' },
  { allow: true, type: 'c', major: 1, minor: 7, access: 'rwm' },
  { allow: true, type: 'c', major: 5, minor: 0, access: 'rwm' },
  { allow: true, type: 'c', major: 1, minor: 5, access: 'rwm' },
  { allow: true, type: 'c', major: 1, minor: 9, access: 'rwm' },
  { allow: true, type: 'c', major: 5, minor: 1, access: 'rwm' },
  { allow: true, type: 'c', major: 136, access: 'rwm' },
  { allow: true, type: 'c', major: 5, minor: 2, access: 'rwm' },
];

// Under a device directory these are not devices a container should be handed (runtimes
// create their own pts, shm and mqueue; the rest are container-manager internals).
const SKIP_DIRS = new Set(['pts', 'shm', 'fd', 'mqueue', '.lxc', '.lxd-mounts', '.udev']);

// Linux dev_t encoding (glibc's gnu_dev_major/minor).
export const major = (rdev: bigint): number => Number(((rdev >> 8n) & 0xfffn) | ((rdev >> 32n) & ~0xfffn));
export const minor = (rdev: bigint): number => Number((rdev & 0xffn) | ((rdev >> 12n) & ~0xffn));

/** The device at hostPath (symlinks followed), or undefined if it is no device node. */
async function deviceAt(hostPath: string, containerPath: string): Promise<OciDevice | undefined> {
  const st = await stat(hostPath, { bigint: true });
  const type = st.isCharacterDevice() ? 'c' : st.isBlockDevice() ? 'b' : st.isFIFO() ? 'p' : undefined;
  if (type === undefined) return undefined;
  return {
    type,
    path: containerPath,
    major: major(st.rdev),
    minor: minor(st.rdev),
    fileMode: Number(st.mode & 0o777n),
    uid: Number(st.uid),
    gid: Number(st.gid),
  };
}

async function devicesUnder(dir: string, containerDir: string): Promise<OciDevice[]> {
  const out: OciDevice[] = [];
  for (const entry of await readdir(dir, { withFileTypes: true })) {
    const host = join(dir, entry.name);
    if (entry.isDirectory()) {
      if (!SKIP_DIRS.has(entry.name)) out.push(...(await devicesUnder(host, join(containerDir, entry.name))));
    } else if (entry.isCharacterDevice() || entry.isBlockDevice()) {
      const dev = await deviceAt(host, join(containerDir, entry.name));
      if (dev) out.push(dev);
    }
  }
  return out;
}

function checkPermissions(perms: string, field: string): string {
  if (perms === '') return 'rwm';
  if (!/^[rwm]{1,3}$/.test(perms) || new Set(perms).size !== perms.length) {
    throw new InvalidArgumentError(`${field} "${perms}" must be a combination of r, w and m`);
  }
  return perms;
}

/** The node's host mode less the read/write bits the access does not grant. */
export function modeFor(hostMode: number, access: string): number {
  let mode = hostMode;
  if (!access.includes('r')) mode &= ~0o444;
  if (!access.includes('w')) mode &= ~0o222;
  return mode;
}

export interface DeviceResult {
  devices: OciDevice[];
  rules: OciDeviceCgroup[];
}

export async function containerDevices(criDevices: Device__Output[], privileged: boolean): Promise<DeviceResult> {
  const devices: OciDevice[] = [];
  const rules: OciDeviceCgroup[] = privileged ? [{ allow: true, access: 'rwm' }] : DEFAULT_DEVICE_RULES.map((r) => ({ ...r }));
  if (privileged) devices.push(...(await devicesUnder('/dev', '/dev')));

  for (const [i, d] of criDevices.entries()) {
    const field = `devices[${i}]`;
    checkCleanPath(d.hostPath, `${field}.hostPath`);
    checkCleanPath(d.containerPath, `${field}.containerPath`);
    const access = checkPermissions(d.permissions, `${field}.permissions`);
    let host: string;
    try {
      host = await realpath(d.hostPath);
    } catch (err) {
      throw new InvalidArgumentError(`${field}.hostPath ${d.hostPath}: ${errnoCode(err) === 'ENOENT' ? 'no such device' : errnoCode(err) ?? err}`, { cause: err });
    }
    const st = await stat(host);
    const found = st.isDirectory() ? await devicesUnder(host, d.containerPath) : [await deviceAt(host, d.containerPath)];
    if (!st.isDirectory() && found[0] === undefined) {
      throw new InvalidArgumentError(`${field}.hostPath ${d.hostPath} is not a device node`);
    }
    for (const dev of found) {
      if (!dev) continue;
      // A CRI device replaces a host device of the same container path (privileged case).
      const at = devices.findIndex((x) => x.path === dev.path);
      if (at >= 0) devices.splice(at, 1);
      if (dev.fileMode !== undefined) dev.fileMode = modeFor(dev.fileMode, access);
      devices.push(dev);
      if (!privileged && (dev.type === 'c' || dev.type === 'b')) rules.push({ allow: true, type: dev.type, major: dev.major, minor: dev.minor, access });
    }
  }
  return { devices, rules };
}
