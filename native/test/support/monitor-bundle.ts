// A tiny OCI bundle for monitor tests: a busybox-static rootfs (applets as symlinks) and a
// config.json shaped like `runc spec`'s default, edited for each test. The cgroup path is unique
// per bundle so tests running in parallel never share a cgroup.
import { copyFile, mkdir, symlink, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';

const APPLETS = ['sh', 'cat', 'echo', 'sleep', 'stty', 'head', 'dd', 'yes', 'ls', 'tr', 'printf',
  'test', '[', 'seq', 'true', 'false', 'kill', 'tty'];

export interface BundleOptions {
  args: string[];
  terminal?: boolean;
  /** linux.resources.memory.limit (and swap, so the limit is not dodged by swapping). */
  memoryLimitBytes?: number;
  env?: string[];
}

export interface Bundle {
  /** Directory holding config.json and rootfs/. */
  dir: string;
  /** Absolute cgroups path in every v1 hierarchy (runc removes it on delete). */
  cgroupsPath: string;
}

export async function makeBundle(parent: string, name: string, opts: BundleOptions): Promise<Bundle> {
  const dir = join(parent, name);
  const rootfs = join(dir, 'rootfs');
  await mkdir(join(rootfs, 'bin'), { recursive: true });
  for (const d of ['proc', 'dev', 'sys', 'tmp']) await mkdir(join(rootfs, d), { recursive: true });
  await copyFile('/bin/busybox', join(rootfs, 'bin', 'busybox'));
  for (const a of APPLETS) await symlink('busybox', join(rootfs, 'bin', a));
  const cgroupsPath = `/crib-mon-test-${process.pid}-${randomBytes(4).toString('hex')}`;
  const resources: Record<string, unknown> = {
    devices: [{ allow: false, access: 'rwm' }],
  };
  if (opts.memoryLimitBytes !== undefined) {
    resources.memory = { limit: opts.memoryLimitBytes, swap: opts.memoryLimitBytes };
  }
  const caps = ['CAP_AUDIT_WRITE', 'CAP_KILL', 'CAP_NET_BIND_SERVICE'];
  const config = {
    ociVersion: '1.0.2-dev',
    process: {
      terminal: opts.terminal ?? false,
      user: { uid: 0, gid: 0 },
      args: opts.args,
      env: ['PATH=/bin', 'TERM=xterm', ...(opts.env ?? [])],
      cwd: '/',
      capabilities: { bounding: caps, effective: caps, permitted: caps, ambient: caps },
      rlimits: [{ type: 'RLIMIT_NOFILE', hard: 1024, soft: 1024 }],
      noNewPrivileges: true,
    },
    root: { path: 'rootfs', readonly: true },
    hostname: 'monitor-test',
    mounts: [
      { destination: '/proc', type: 'proc', source: 'proc' },
      { destination: '/dev', type: 'tmpfs', source: 'tmpfs', options: ['nosuid', 'strictatime', 'mode=755', 'size=65536k'] },
      { destination: '/dev/pts', type: 'devpts', source: 'devpts', options: ['nosuid', 'noexec', 'newinstance', 'ptmxmode=0666', 'mode=0620', 'gid=5'] },
      { destination: '/dev/shm', type: 'tmpfs', source: 'shm', options: ['nosuid', 'noexec', 'nodev', 'mode=1777', 'size=65536k'] },
      { destination: '/sys', type: 'sysfs', source: 'sysfs', options: ['nosuid', 'noexec', 'nodev', 'ro'] },
      { destination: '/tmp', type: 'tmpfs', source: 'tmpfs', options: ['nosuid', 'nodev', 'mode=1777'] },
    ],
    linux: {
      cgroupsPath,
      resources,
      // No network namespace: the tests need none, and there is nothing to clean up.
      namespaces: [{ type: 'pid' }, { type: 'ipc' }, { type: 'uts' }, { type: 'mount' }],
      maskedPaths: ['/proc/acpi', '/proc/kcore', '/proc/keys', '/proc/timer_list', '/sys/firmware'],
      readonlyPaths: ['/proc/bus', '/proc/fs', '/proc/irq', '/proc/sys', '/proc/sysrq-trigger'],
    },
  };
  await writeFile(join(dir, 'config.json'), JSON.stringify(config, null, 1));
  return { dir, cgroupsPath };
}
