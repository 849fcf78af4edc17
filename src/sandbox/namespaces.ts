// Pod namespaces held by bind-mounted nsfs files (no pause process): created by the native
// crib-pinns, because unshare/setns in the multithreaded daemon would only move one thread.
// Removing them is the daemon's own work: umount2 and unlink change no namespace of the calling
// thread, and a helper process cost a pod removal most of its time (a spawn, ~14 ms under load,
// against ~0.05 ms for the unmounts).
// When the pod shares one PID namespace, crib-pinns also starts a tiny detached init whose
// /proc/<pid>/ns/pid the containers join.
import { mkdir, readFile, rmdir, unlink } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { AlreadyExistsError, InternalError, InvalidArgumentError, errnoCode } from '../errors.js';
import { nativeBinaries } from '../native-paths.js';
import { CommandError, runCommand } from '../sys/command.js';
import { MNT_DETACH, UMOUNT_NOFOLLOW, unmountAll } from '../sys/libc.js';
import { pinnsMapArg, type PodUserNamespace } from './user-namespace.js';
import { killPodInits } from './pod-init-finder.js';

export interface PinOptions {
  /** Directory that receives the pinned files `net`, `ipc`, `uts`, `user` (created if missing). */
  dir: string;
  net?: boolean;
  ipc?: boolean;
  uts?: boolean;
  /** Needs uts. */
  hostname?: string;
  /** Namespaced sysctls only: net.* (needs net), kernel.shm*|msg*|sem*, fs.mqueue.* (need ipc). */
  sysctls?: Record<string, string>;
  /**
   * A user namespace with these maps (checked by user-namespace.ts), made first so that it owns
   * the pod's other namespaces.
   */
  user?: PodUserNamespace;
  /**
   * With net: crib-pinns options attaching the new network namespace to the pod network in the
   * same process (the built-in network's PreparedAttach.pinnsArgs).
   */
  network?: readonly string[];
}

/** Paths of the pinned namespace files, for the OCI spec's linux.namespaces[].path. */
export interface PinnedNamespaces {
  dir: string;
  net?: string;
  ipc?: string;
  uts?: string;
  user?: string;
}

export type NamespaceKind = 'net' | 'ipc' | 'uts';

/**
 * What the sandbox service asks of crib-pinns: pinning needs root (unshare, bind mounts), so the
 * service takes this as a constructor parameter and unit tests hand it a fake
 * (test-support/fake-pinns.ts). `cribPinns` below is the real one.
 */
export interface PodNamespacePinner {
  pin(opts: PinOptions): Promise<PinnedNamespaces>;
  /** Idempotent. */
  unpin(dir: string): Promise<void>;
  /**
   * Unmounts the pinned namespaces in `dir` and leaves their files (unpin deletes them later):
   * no process, one trip to the thread pool. Idempotent.
   */
  unmount(dir: string): Promise<void>;
  /** Returns the pid of the pod's PID-namespace init. */
  startPodInit(dir: string): Promise<number>;
  /** Idempotent; leaves a recycled pid alone. */
  stopPodInit(pid: number): Promise<void>;
  /**
   * Stops a pod's init: the recorded one if it still is that process (pid and start time), and
   * with `search`, any other pod init in the namespaces pinned in `nsDir` (one a crash kept from
   * being recorded). Returns the pids stopped.
   */
  stopPodInits(pod: { podInitPid?: number; podInitStartTime?: string }, nsDir: string, search: boolean): Promise<number[]>;
}

/** Which namespace a sysctl key belongs to; throws InvalidArgumentError for host-wide keys. */
export function sysctlNamespace(key: string): NamespaceKind {
  if (!/^[A-Za-z0-9_@:][A-Za-z0-9_.\-/@:]*$/.test(key) || key.includes('..') || key.includes('//'))
    throw new InvalidArgumentError(`sysctl "${key}" is not a valid sysctl name`);
  const path = key.includes('/') ? key : key.replaceAll('.', '/');
  if (path.startsWith('net/')) return 'net';
  if (/^kernel\/(shm|msg|sem)/.test(path) || path.startsWith('fs/mqueue/')) return 'ipc';
  if (path === 'kernel/hostname' || path === 'kernel/domainname') return 'uts';
  throw new InvalidArgumentError(
    `sysctl "${key}" is not namespaced (allowed: net.*, kernel.shm*, kernel.msg*, kernel.sem*, ` +
      'fs.mqueue.*): setting it would change the whole node',
  );
}

// RFC 1123 label rules as kubelet enforces them for pod hostnames, at most 64 bytes (uts limit).
const HOSTNAME_RE = /^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?(\.[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?)*$/i;

function pinnsError(err: unknown, what: string): never {
  if (err instanceof CommandError) {
    const text = err.stderr.trim();
    if (text.includes('File exists'))
      throw new AlreadyExistsError(`${what}: ${text} (namespaces are already pinned there)`, { cause: err });
    throw new InternalError(`${what}: ${text || err.message}`, { cause: err });
  }
  throw err;
}

export async function pinPodNamespaces(opts: PinOptions): Promise<PinnedNamespaces> {
  const want: Record<NamespaceKind, boolean> = {
    net: opts.net === true,
    ipc: opts.ipc === true,
    uts: opts.uts === true,
  };
  if (!want.net && !want.ipc && !want.uts)
    throw new InvalidArgumentError('pinPodNamespaces: ask for at least one of net, ipc, uts');
  if (opts.hostname !== undefined) {
    if (!want.uts) throw new InvalidArgumentError(`hostname "${opts.hostname}" needs a uts namespace`);
    if (opts.hostname.length > 64 || !HOSTNAME_RE.test(opts.hostname))
      throw new InvalidArgumentError(`hostname "${opts.hostname}" is not a valid DNS name of at most 64 characters`);
  }
  const args = ['--dir', opts.dir];
  for (const kind of ['net', 'ipc', 'uts'] as const) if (want[kind]) args.push(`--${kind}`);
  if (opts.hostname !== undefined) args.push('--hostname', opts.hostname);
  for (const [key, value] of Object.entries(opts.sysctls ?? {})) {
    const kind = sysctlNamespace(key);
    if (!want[kind])
      throw new InvalidArgumentError(`sysctl "${key}" needs the pod's own ${kind} namespace, which it does not have`);
    if (/[\n\0]/.test(value)) throw new InvalidArgumentError(`sysctl "${key}": value must be one line`);
    args.push('--sysctl', `${key}=${value}`);
  }
  if (opts.network) {
    if (!want.net) throw new InvalidArgumentError('pinPodNamespaces: a pod network needs the pod\'s own network namespace');
    args.push(...opts.network);
  }
  if (opts.user) {
    args.push('--user');
    for (const m of opts.user.uids) args.push('--uid-map', pinnsMapArg(m));
    for (const m of opts.user.gids) args.push('--gid-map', pinnsMapArg(m));
  }
  await mkdir(dirname(opts.dir), { recursive: true });
  try {
    await runCommand(nativeBinaries.pinns, args);
  } catch (err) {
    pinnsError(err, `pinning namespaces in ${opts.dir}`);
  }
  const out: PinnedNamespaces = { dir: opts.dir };
  for (const kind of ['net', 'ipc', 'uts'] as const) if (want[kind]) out[kind] = join(opts.dir, kind);
  if (opts.user) out.user = join(opts.dir, 'user');
  return out;
}

/** The files a pin may leave in its dir, user last: it owns the others. */
const PINNED_FILES = ['net', 'ipc', 'uts', 'user'] as const;

/**
 * Unmount the pinned files in `dir`, leaving the files. Idempotent. A failure throws and leaves
 * the rest mounted: the caller keeps the pod's record, or leaves the dir to a later unpin.
 */
export async function unmountPodNamespaces(dir: string): Promise<void> {
  // Every mount stacked on each file (a pin interrupted and retried may have left two). A lazy
  // unmount: a container still joining the namespace keeps it alive, not the file busy.
  // NOFOLLOW: only the file itself, never where a symlink put in its place would lead.
  try {
    await unmountAll(PINNED_FILES.map((name) => join(dir, name)), MNT_DETACH | UMOUNT_NOFOLLOW);
  } catch (err) {
    throw new InternalError(`unpinning namespaces in ${dir}: ${(err as Error).message}`, { cause: err });
  }
}

/**
 * Unmount and remove the pinned files (and the dir when it is then empty). Idempotent. A failure
 * throws and leaves the rest in place: the caller keeps the pod's record, and the next removal
 * (kubelet's retry, or start-up finishing it) runs this again.
 */
export async function unpinPodNamespaces(dir: string): Promise<void> {
  await unmountPodNamespaces(dir);
  for (const name of PINNED_FILES) {
    const path = join(dir, name);
    await unlink(path).catch((err: unknown) => {
      if (errnoCode(err) !== 'ENOENT') throw new InternalError(`unpinning namespaces in ${dir}: unlink ${path}: ${errnoCode(err)}`, { cause: err });
    });
  }
  // The dir may hold other pod files (hosts, resolv.conf): only an empty one goes.
  await rmdir(dir).catch((err: unknown) => {
    const code = errnoCode(err);
    if (code !== 'ENOENT' && code !== 'ENOTEMPTY' && code !== 'EEXIST') throw new InternalError(`unpinning namespaces in ${dir}: rmdir: ${code}`, { cause: err });
  });
}

/** Start the pod's PID-namespace init, joined to the namespaces pinned in dir; returns its pid. */
export async function startPodInit(dir: string): Promise<number> {
  let out = '';
  try {
    out = await runCommand(nativeBinaries.pinns, ['pod-init', '--dir', dir]);
  } catch (err) {
    pinnsError(err, `starting the pod init for ${dir}`);
  }
  const pid = Number.parseInt(out.trim(), 10);
  if (!Number.isInteger(pid) || pid <= 1) throw new InternalError(`crib-pinns pod-init printed "${out.trim()}", not a pid`);
  return pid;
}

/** The file containers join for the pod's shared PID namespace. */
export function podInitPidNamespace(pid: number): string {
  return `/proc/${pid}/ns/pid`;
}

/** Whether pid is (still) a crib pod init: guards against signalling a recycled pid. */
export async function isPodInit(pid: number): Promise<boolean> {
  try {
    return (await readFile(`/proc/${pid}/comm`, 'utf8')).trim() === 'crib-pod-init';
  } catch (err) {
    if (errnoCode(err) === 'ENOENT' || errnoCode(err) === 'ESRCH') return false;
    throw err;
  }
}

/**
 * Kill the pod init (and with it, by the kernel's rule, every process left in its PID namespace).
 * Idempotent: a pid that is gone or now belongs to something else is left alone.
 */
export async function stopPodInit(pid: number): Promise<void> {
  if (!(await isPodInit(pid))) return;
  try {
    process.kill(pid, 'SIGKILL');
  } catch (err) {
    if (errnoCode(err) !== 'ESRCH') throw err;
  }
}

/** The real pinner: runs crib-pinns. */
export const cribPinns: PodNamespacePinner = {
  pin: pinPodNamespaces,
  unpin: unpinPodNamespaces,
  unmount: unmountPodNamespaces,
  startPodInit,
  stopPodInit,
  stopPodInits: (pod, nsDir, search) => killPodInits(pod, nsDir, search),
};
