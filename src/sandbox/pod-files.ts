// The files every container of a pod shares: /etc/hosts, /etc/resolv.conf, /etc/hostname and
// the /dev/shm tmpfs. Written once per pod; containers bind-mount them.
import { chmod, copyFile, mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { DNSConfig__Output } from '../gen/runtime/v1/DNSConfig.js';
import { InvalidArgumentError, errnoCode } from '../errors.js';
import { MNT_DETACH, mountAsync, unmountAll } from '../sys/libc.js';

const MS_NOSUID = 2;
const MS_NODEV = 4;
const MS_NOEXEC = 8;
const SHM_SIZE = '64m';

/**
 * Mounting the pod's /dev/shm tmpfs needs root, so the sandbox service takes this as a parameter
 * (unit tests hand it test-support/fake-shm-mounts.ts); `tmpfsShm` below is the real one.
 */
export interface ShmMounts {
  /** Mount a private tmpfs on the existing directory `path`. */
  mount(path: string): Promise<void>;
  /** Unmount it; idempotent (not mounted, or gone, is fine). */
  release(path: string): Promise<void>;
}

export const tmpfsShm: ShmMounts = {
  async mount(path) {
    await mountAsync('shm', path, 'tmpfs', MS_NOSUID | MS_NODEV | MS_NOEXEC, `mode=1777,size=${SHM_SIZE}`);
  },
  async release(path) {
    await unmountAll([path], MNT_DETACH);
  },
};

export interface PodFiles {
  hostsPath: string;
  resolvPath: string;
  hostnamePath: string;
  shmPath: string;
}

function hostsFile(hostname: string, ip: string | undefined): string {
  const lines = [
    '127.0.0.1\tlocalhost',
    '::1\tlocalhost ip6-localhost ip6-loopback',
    'fe00::0\tip6-localnet',
    'fe00::0\tip6-mcastprefix',
    'fe00::1\tip6-allnodes',
    'fe00::2\tip6-allrouters',
  ];
  if (ip) lines.push(`${ip}\t${hostname}`);
  return `${lines.join('\n')}\n`;
}

function resolvConf(dns: DNSConfig__Output): string {
  for (const v of [...dns.servers, ...dns.searches, ...dns.options]) {
    if (/[\s#;]/.test(v) && !/^[\w.:-]+$/.test(v)) throw new InvalidArgumentError(`dnsConfig: "${v}" is not a valid resolv.conf value`);
  }
  const lines = [
    ...dns.servers.map((s) => `nameserver ${s}`),
    ...(dns.searches.length ? [`search ${dns.searches.join(' ')}`] : []),
    ...(dns.options.length ? [`options ${dns.options.join(' ')}`] : []),
  ];
  return `${lines.join('\n')}\n`;
}

/** Copy a node file for the pod: the copy is 0644 whatever the node's file (copyFile keeps its
 * mode, and a node's resolv.conf may well be 0755 or group-writable). */
async function copyHostFile(from: string, to: string): Promise<void> {
  await copyFile(from, to);
  await chmod(to, 0o644);
}

/** Where the files of a pod are, `dir` being its files' directory (/dev/shm itself for a pod
 * sharing the node's IPC namespace). */
export function podFilePaths(dir: string, hostIpc: boolean): PodFiles {
  return {
    hostsPath: join(dir, 'hosts'),
    resolvPath: join(dir, 'resolv.conf'),
    hostnamePath: join(dir, 'hostname'),
    shmPath: hostIpc ? '/dev/shm' : join(dir, 'shm'),
  };
}

/**
 * Writes the pod's files in `dir` (made here) and mounts its /dev/shm. Each file takes a few
 * trips through the thread pool, so they are made side by side; every one has settled before a
 * failure is thrown, so that a rollback never races with a write or the mount.
 */
export async function writePodFiles(
  dir: string,
  opts: { hostname: string; ip?: string; dns?: DNSConfig__Output | null; hostNetwork: boolean; hostIpc: boolean },
  shm: ShmMounts,
): Promise<PodFiles> {
  // Private: shm/ is a 1777 tmpfs the pod's containers share; a host user must not reach it.
  await mkdir(dir, { recursive: true, mode: 0o700 });
  const files = podFilePaths(dir, opts.hostIpc);
  const dns = opts.dns;
  const made = await Promise.allSettled([
    // Host-network pods see the node's names, as with containerd.
    opts.hostNetwork ? copyHostFile('/etc/hosts', files.hostsPath)
      : writeFile(files.hostsPath, hostsFile(opts.hostname, opts.ip), { mode: 0o644 }),
    (async () => {
      if (dns && (dns.servers.length || dns.searches.length || dns.options.length)) {
        await writeFile(files.resolvPath, resolvConf(dns), { mode: 0o644 });
        return;
      }
      await copyHostFile('/etc/resolv.conf', files.resolvPath).catch(async (err: unknown) => {
        if (errnoCode(err) !== 'ENOENT') throw err;
        await writeFile(files.resolvPath, '', { mode: 0o644 });
      });
    })(),
    writeFile(files.hostnamePath, `${opts.hostname}\n`, { mode: 0o644 }),
    opts.hostIpc ? undefined : (async () => {
      await mkdir(files.shmPath, { recursive: true, mode: 0o1777 });
      await shm.mount(files.shmPath);
    })(),
  ]);
  const failed = made.find((r) => r.status === 'rejected');
  if (failed) throw failed.reason;
  return files;
}

/** Unmount the pod's /dev/shm; idempotent. */
export async function releasePodShm(files: Pick<PodFiles, 'shmPath'>, shm: ShmMounts): Promise<void> {
  if (files.shmPath === '/dev/shm') return;
  await shm.release(files.shmPath);
}
