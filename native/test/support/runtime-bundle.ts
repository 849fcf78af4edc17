// OCI bundles for the runtime tests: a busybox-static rootfs in a temp dir (/bin/busybox plus a
// symlink per applet) and a config.json built from a default spec plus per-test overrides.
import { execFileSync } from 'node:child_process';
import { chmod, copyFile, mkdir, mkdtemp, rm, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

/** Unique per test process, so parallel test files never share names. */
export const testTag = `crib-rt-${process.pid}`;

let applets: string[] | undefined;
function busyboxApplets(): string[] {
  applets ??= execFileSync('/bin/busybox', ['--list'], { encoding: 'utf8' })
    .split('\n')
    .filter((a) => a && a !== 'busybox');
  return applets;
}

export type Spec = Record<string, any>;

/** A spec close to `runc spec`'s defaults: every namespace but user and network-joined, the
 * standard mounts, masked and read-only paths, and a unique cgroup per container. */
export function defaultSpec(id: string, args: string[]): Spec {
  const caps = ['CAP_AUDIT_WRITE', 'CAP_KILL', 'CAP_NET_BIND_SERVICE'];
  return {
    ociVersion: '1.0.2',
    process: {
      terminal: false,
      user: { uid: 0, gid: 0 },
      args,
      env: ['PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin', 'TERM=xterm'],
      cwd: '/',
      capabilities: { bounding: caps, effective: caps, permitted: caps, inheritable: [], ambient: [] },
      rlimits: [{ type: 'RLIMIT_NOFILE', hard: 1024, soft: 1024 }],
      noNewPrivileges: true,
    },
    root: { path: 'rootfs', readonly: false },
    hostname: 'crib',
    mounts: [
      { destination: '/proc', type: 'proc', source: 'proc' },
      { destination: '/dev', type: 'tmpfs', source: 'tmpfs', options: ['nosuid', 'strictatime', 'mode=755', 'size=65536k'] },
      { destination: '/dev/pts', type: 'devpts', source: 'devpts', options: ['nosuid', 'noexec', 'newinstance', 'ptmxmode=0666', 'mode=0620'] },
      { destination: '/dev/shm', type: 'tmpfs', source: 'shm', options: ['nosuid', 'noexec', 'nodev', 'mode=1777', 'size=65536k'] },
      { destination: '/dev/mqueue', type: 'mqueue', source: 'mqueue', options: ['nosuid', 'noexec', 'nodev'] },
      { destination: '/sys', type: 'sysfs', source: 'sysfs', options: ['nosuid', 'noexec', 'nodev', 'ro'] },
      { destination: '/sys/fs/cgroup', type: 'cgroup', source: 'cgroup', options: ['nosuid', 'noexec', 'nodev', 'relatime', 'ro'] },
    ],
    linux: {
      cgroupsPath: `/${testTag}-${id}`,
      resources: { devices: [{ allow: false, access: 'rwm' }] },
      namespaces: [{ type: 'pid' }, { type: 'network' }, { type: 'ipc' }, { type: 'uts' }, { type: 'mount' }, { type: 'cgroup' }],
      maskedPaths: ['/proc/acpi', '/proc/asound', '/proc/kcore', '/proc/keys', '/proc/latency_stats', '/proc/timer_list',
        '/proc/timer_stats', '/proc/sched_debug', '/sys/firmware', '/proc/scsi'],
      readonlyPaths: ['/proc/bus', '/proc/fs', '/proc/irq', '/proc/sys', '/proc/sysrq-trigger'],
    },
  };
}

export interface Bundle {
  id: string;
  dir: string;
  rootfs: string;
  /** A host dir bind-mounted read-write at /out inside the container. */
  out: string;
  spec: Spec;
  /** Rewrite config.json after changing `spec`. */
  write(): Promise<void>;
  remove(): Promise<void>;
}

let seq = 0;
export function uniqueId(name: string): string {
  return `${name}-${process.pid}-${++seq}`;
}

/** `under`: the directory the bundle is made in (default the system's temp dir). */
export async function makeBundle(name: string, args: string[], patch?: (s: Spec) => void, under = tmpdir()): Promise<Bundle> {
  const id = uniqueId(name);
  const dir = await mkdtemp(join(under, `${testTag}-`));
  const rootfs = join(dir, 'rootfs');
  const out = join(dir, 'out');
  for (const d of ['bin', 'proc', 'sys', 'dev', 'tmp', 'etc', 'out']) await mkdir(join(rootfs, d), { recursive: true });
  await mkdir(out, { recursive: true });
  // mkdtemp makes 0700: a user-namespaced root (an unmapped host uid) must still reach rootfs.
  await chmod(dir, 0o755);
  await chmod(out, 0o777);
  await chmod(join(rootfs, 'tmp'), 0o1777);
  await copyFile('/bin/busybox', join(rootfs, 'bin', 'busybox'));
  await Promise.all(busyboxApplets().map((a) => symlink('busybox', join(rootfs, 'bin', a))));
  await writeFile(join(rootfs, 'etc', 'passwd'), 'root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/:/bin/sh\n');
  await writeFile(join(rootfs, 'etc', 'group'), 'root:x:0:\nnobody:x:65534:\n');
  const spec = defaultSpec(id, args);
  spec.mounts.push({ destination: '/out', type: 'bind', source: out, options: ['rbind', 'rw'] });
  patch?.(spec);
  const b: Bundle = {
    id, dir, rootfs, out, spec,
    write: () => writeFile(join(dir, 'config.json'), JSON.stringify(b.spec, null, 1)),
    remove: () => rm(dir, { recursive: true, force: true }),
  };
  await b.write();
  return b;
}
