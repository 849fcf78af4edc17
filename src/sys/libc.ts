// libc calls Node does not offer, through crib's own Node-API addon (native/addon/libc-addon.c,
// built into native/build/crib-libc.node by `npm run build`). Only thread-safe calls that leave
// the process's namespaces alone live here (docs/ARCHITECTURE.md: the daemon never enters a
// namespace itself, Node is threaded; the native helpers do that work). The addon returns -errno
// for a failed call; each wrapper here throws a Node-style system error (code "ENOENT", errno,
// syscall, path) so callers can branch on errnoCode() exactly as they do for node:fs errors.
import { createRequire } from 'node:module';
import { constants as osConstants } from 'node:os';
import { dirname } from 'node:path';
import { getSystemErrorName } from 'node:util';
import { nativeAddons } from '../native-paths.js';

/** The addon's functions: a number below zero is -errno. */
interface LibcAddon {
  mknod(path: string, mode: number, major: number, minor: number): number;
  lsetxattr(path: string, name: string, value: Buffer): number;
  lgetxattr(path: string, name: string): Buffer | number;
  llistxattr(path: string): Buffer | number;
  lremovexattr(path: string, name: string): number;
  mountAsync(source: string, target: string, fstype: string | null, flags: number, data: string | null): Promise<number>;
  umount2Async(target: string, flags: number): Promise<number>;
  unmountAllAsync(targets: readonly string[], flags: number): Promise<[index: number, errno: number] | null>;
  openat2(dirfd: number, path: string, flags: number, resolve: number): number;
  openTree(dirfd: number, path: string, flags: number): number;
  mountSetattr(fd: number, attrSet: number, usernsFd: number): number;
  moveMount(target: string, fd: number): number;
  syncfsAsync(fd: number): Promise<number>;
  atomicPrepareAsync(path: string, bytes: Uint8Array, mode: number): Promise<string | number>;
  atomicCommitAsync(path: string, tmp: string, syncDir: boolean): Promise<number>;
  syncDirAsync(dir: string): Promise<number>;
  treeUsageAsync(roots: readonly string[], maxDepth: number): Promise<[number, number, boolean] | number>;
  flock(fd: number, operation: number): number;
  fcntl(fd: number, cmd: number, arg: number): number;
  memfdCreate(name: string, flags: number): number;
  pipe2(flags: number): [number, number] | number;
  socketpair(domain: number, type: number, protocol: number): [number, number] | number;
  receiveFd(sock: number): number | null;
  sealedCopy(path: string, name: string): number;
  setThreadNice(nice: number): number;
  execve(path: string, argv: readonly string[], envp: readonly string[]): number;
  posixSpawnAsync(path: string, argv: readonly string[], envp: readonly string[], fds: readonly number[], newSession: boolean, cwd: string | null): Promise<number>;
  waitpidNoHang(pid: number): number | null;
  mallocTrim(): Promise<boolean>;
  mallopt(param: number, value: number): number;
  shrinkHeap(): void;
  releaseHeap(): void;
  v8WorkersToBatch(): number;
}

let loaded: LibcAddon | undefined;

/** The addon, loaded on first use: modules that import this file without calling it (and their
 * tests) need no native build. */
function addon(): LibcAddon {
  if (loaded) return loaded;
  const path = nativeAddons.libc;
  try {
    loaded = createRequire(import.meta.url)(path) as LibcAddon;
  } catch (err) {
    throw new Error(`cannot load crib's libc addon ${path} (build it with \`npm run build\`, or \`make -C native\`): ${(err as Error).message}`);
  }
  return loaded;
}

export const MNT_DETACH = 2;
/** umount2: do not follow a symlink in the last component of the target. */
export const UMOUNT_NOFOLLOW = 8;
export const S_IFCHR = 0o020000;
export const S_IFBLK = 0o060000;
export const S_IFIFO = 0o010000;
/** Bytes of a path a file call takes, its terminating NUL included; and of one name in it. */
export const PATH_MAX = 4096;
export const NAME_MAX = 255;


export interface SystemError extends Error {
  code: string;
  errno: number;
  syscall: string;
  path?: string;
}

let errnoByNumber: Map<number, string> | undefined;
/** The kernel's errno names by number (the first of aliases), from os.constants. */
function errnoNames(): Map<number, string> {
  if (!errnoByNumber) {
    errnoByNumber = new Map();
    for (const [name, n] of Object.entries(osConstants.errno)) if (!errnoByNumber.has(n)) errnoByNumber.set(n, name);
  }
  return errnoByNumber;
}

/** The error of a call that failed with `errno`. */
export function sysError(syscall: string, path: string | undefined, what: string | undefined, errno: number): SystemError {
  // Node's own name for the number (EAGAIN, not its alias EWOULDBLOCK), as node:fs reports it;
  // else the kernel's (libuv names no ENOEXEC, and Node then answers "Unknown system error").
  let code: string;
  try {
    code = getSystemErrorName(-errno);
  } catch {
    code = '';
  }
  if (!/^E[A-Z0-9]+$/.test(code)) code = errnoNames().get(errno) ?? `E${errno}`;
  const subject = what ?? path;
  const err = new Error(`${syscall}${subject ? ` ${subject}` : ''}: ${code}`) as SystemError;
  err.code = code;
  err.errno = errno;
  err.syscall = syscall;
  if (path !== undefined) err.path = path;
  return err;
}

/** The addon's answer `r`, or the system error it stands for when it is -errno. */
function check<T>(r: T | number, syscall: string, path: string | undefined, what?: string): T {
  if (typeof r === 'number' && r < 0) throw sysError(syscall, path, what, -r);
  return r as T;
}

/** Linux makedev(3): the 64-bit dev_t glibc uses. */
export function makedev(major: number, minor: number): bigint {
  const ma = BigInt(major >>> 0);
  const mi = BigInt(minor >>> 0);
  return ((ma & 0xfffff000n) << 32n) | ((ma & 0xfffn) << 8n) | ((mi & 0xffffff00n) << 12n) | (mi & 0xffn);
}

/** Split a dev_t as reported by fs.Stats.rdev (a number, exact up to 2^53). */
export function devMajor(dev: number): number {
  const d = BigInt(dev);
  return Number(((d >> 32n) & 0xfffff000n) | ((d >> 8n) & 0xfffn));
}
export function devMinor(dev: number): number {
  const d = BigInt(dev);
  return Number(((d >> 12n) & 0xffffff00n) | (d & 0xffn));
}

/** mknod(2); `mode` includes the file type bits (S_IFCHR, S_IFBLK, S_IFIFO). */
export function mknod(path: string, mode: number, major = 0, minor = 0): void {
  check(addon().mknod(path, mode | 0, major | 0, minor | 0), 'mknod', path);
}

/** lsetxattr(2): never follows a symlink at `path`. */
export function lsetxattr(path: string, name: string, value: Buffer | string): void {
  const buf = typeof value === 'string' ? Buffer.from(value) : value;
  check(addon().lsetxattr(path, name, buf), 'lsetxattr', path, `${path} ${name}`);
}

/** lgetxattr(2); undefined when the attribute is absent (ENODATA). The addon asks for the size
 * first, and again if the value grew in between: a fixed buffer would truncate silently. */
export function lgetxattr(path: string, name: string): Buffer | undefined {
  const r = addon().lgetxattr(path, name);
  if (r === -osConstants.errno.ENODATA) return undefined;
  return check(r, 'lgetxattr', path, `${path} ${name}`);
}

/** llistxattr(2): the attribute names on `path` itself. */
export function llistxattr(path: string): string[] {
  const list = check(addon().llistxattr(path), 'llistxattr', path);
  return list.toString('utf8').split('\0').filter((n) => n !== '');
}

export function lremovexattr(path: string, name: string): void {
  check(addon().lremovexattr(path, name), 'lremovexattr', path, `${path} ${name}`);
}

// mount(2) and umount2(2) run on libuv's pool, never on the event loop: their cost is the
// node's, not the call's. An overlay's mount looks through every mount on each layer's
// filesystem (clone_private_mount: as many as the node has pods, kubelet's volumes and crib's own
// rootfs and pins), a lazy unmount waits for an RCU grace period, and the last unmount of a
// writable overlay syncs its upper directory's whole filesystem. (The new mount API's calls below,
// which a user-namespaced pod's layers take, still run in place: a detached clone of one
// directory each, no sync and no grace period.)

/** mount(2). Relative paths in `data` resolve against the daemon's cwd: pass absolute ones. */
export async function mountAsync(source: string, target: string, fstype: string | null, flags: number,
  data: string | null): Promise<void> {
  check(await addon().mountAsync(source, target, fstype, flags, data), 'mount', target, `${fstype ?? ''} ${source} on ${target}`);
}

/** umount2(2): true once unmounted, false when `target` is no mount point or does not exist. */
export async function umount2Async(target: string, flags = 0): Promise<boolean> {
  return unmounted(await addon().umount2Async(target, flags), target);
}

/** What treeUsage found: allocated bytes and inodes, each inode once; tooDeep as tree-usage.h. */
export interface TreeUsage {
  bytes: number;
  inodes: number;
  tooDeep: boolean;
}

/**
 * Not one libc call: the disk usage of the trees at `roots`, walked by the addon
 * (native/addon/tree-usage.c) on a thread of libuv's pool, entering directories down to
 * `maxDepth` levels (a deeper one is counted, not entered: tooDeep). A missing root counts as
 * empty. Throws the error of the call that failed.
 */
export async function treeUsage(roots: readonly string[], maxDepth: number): Promise<TreeUsage> {
  const [bytes, inodes, tooDeep] = check(await addon().treeUsageAsync(roots, maxDepth), 'walk', roots[0], roots.join(' '));
  return { bytes, inodes, tooDeep };
}

/**
 * Unmounts every mount stacked on each of `targets`, in order, with umount2(2) `flags`, in one
 * trip to libuv's pool; a target that is no mount point (any more) or does not exist is fine.
 * Throws naming the first target that would not unmount (EBUSY: still mounted after 64).
 */
export async function unmountAll(targets: readonly string[], flags: number): Promise<void> {
  const failed = await addon().unmountAllAsync(targets, flags);
  if (failed) throw sysError('umount2', targets[failed[0]], undefined, failed[1]);
}

function unmounted(r: number, target: string): boolean {
  if (r === 0) return true;
  // Not a mount point (any more), or no such path: what every caller, undoing its own mounts
  // idempotently, expects often (a pod's removal meets four). Told without an Error, whose
  // stack trace cost more than the call.
  if (r === -osConstants.errno.EINVAL || r === -osConstants.errno.ENOENT) return false;
  throw sysError('umount2', target, undefined, -r);
}

/**
 * syncfs(2) through `fd`, an open descriptor on the filesystem (`path` names it in errors): one
 * flush of the whole filesystem, cheaper than an fsync per file, on a thread of libuv's pool: a
 * flush takes from a tenth of a second to seconds, and on the event loop it would stall every RPC
 * that long. Linux reports a writeback error to each descriptor's syncfs once, counting from
 * when the descriptor was opened: open it before the writes whose errors you must hear of.
 */
export async function syncFilesystem(fd: number, path: string): Promise<void> {
  check(await addon().syncfsAsync(fd), 'syncfs', path);
}

// What a directory's sync that failed once its rename was made adds to its errno (libc-addon.c).
const SYNC_DIR_FAILED = 4096;

/**
 * Not one libc call: the first half of an atomic write, made by the native helpers' one writer
 * (native/common/atomic-file.c) in one trip to libuv's pool. A temp file beside `path` (named
 * ".tmp-<its name>-<12 hex>", made O_EXCL and never through a symlink) holding `bytes`, with
 * exactly `mode`, synced; `path` is untouched. Resolves with the temp file's name; when a step
 * fails, no temp file is left and the step's error is thrown.
 */
export async function atomicPrepare(path: string, bytes: Uint8Array, mode: number): Promise<string> {
  return check(await addon().atomicPrepareAsync(path, bytes, mode), 'write', path);
}

/**
 * The second half: the temp file named `tmp` (atomicPrepare's) renamed over `path`, then, with
 * `syncDir`, their directory synced so that the rename outlives a power cut; one trip to libuv's
 * pool. A failed rename removes the temp file and throws the rename's error; a failed sync (the
 * new content in place) throws fsync's, naming the directory.
 */
export async function atomicCommit(path: string, tmp: string, syncDir: boolean): Promise<void> {
  const r = await addon().atomicCommitAsync(path, tmp, syncDir);
  if (r <= -SYNC_DIR_FAILED) throw sysError('fsync', dirname(path), undefined, -r - SYNC_DIR_FAILED);
  check(r, 'rename', path);
}

/** fsync(2) of directory `dir` (opened and closed around it), one trip to libuv's pool. */
export async function syncDirectory(dir: string): Promise<void> {
  check(await addon().syncDirAsync(dir), 'fsync', dir);
}

/**
 * setpriority(PRIO_PROCESS, gettid(), nice): the nice value of the calling thread alone (Linux
 * keeps one per thread), for a worker thread whose work must yield the CPU to the event loop.
 */
export function setThreadNice(nice: number): void {
  check(addon().setThreadNice(nice), 'setpriority', undefined, 'this thread');
}

/**
 * glibc's malloc_trim(0), on a thread of libuv's pool: hand the free pages inside every malloc
 * arena back to the kernel, and the main arena's top (a thread arena's top shrinks only as it
 * frees: setMallocMmapThreshold). glibc returns memory on its own only from the tops; what Node's
 * buffers and threads freed below them stays resident until this is called. It can take
 * tens of ms after a pull (an madvise per free range), so never on the event loop. True when
 * some memory was released.
 */
export function mallocTrim(): Promise<boolean> {
  return addon().mallocTrim();
}

/**
 * Not libc, but one of the addon's three calls into V8 (native/addon/v8-heap.cc): begin V8's
 * incremental collection for memory, which compacts the heap and hands the pages it empties back
 * to the kernel (MemoryPressureNotification, moderate). It returns at once; the marking runs in
 * V8's tasks, and its garbage's malloc memory is freed as it ends.
 */
export function shrinkHeap(): void {
  addon().shrinkHeap();
}

/**
 * V8's collections for low memory (LowMemoryNotification): full, non-incremental collections,
 * done when this returns, until nothing more is freed; then V8 shrinks its young generation and
 * hands back the free pages it keeps for reuse, which the incremental one (shrinkHeap) leaves.
 * The event loop waits for all of it.
 */
export function releaseHeap(): void {
  addon().releaseHeap();
}

/**
 * Not libc either (native/addon/v8-workers.cc): switches V8's worker threads, which run its
 * garbage collection helpers and optimising compiles, to SCHED_BATCH, so that they never preempt
 * the thread running on a CPU when they wake; they keep their share of the CPU. Once per
 * process; waits a few milliseconds for the workers. Returns how many were switched.
 */
export function v8WorkersToBatch(): number {
  return check(addon().v8WorkersToBatch(), 'sched_setscheduler', undefined, "V8's worker threads");
}

/**
 * Whether the environment sets a malloc parameter either way glibc reads it: its own variable
 * (MALLOC_ARENA_MAX, MALLOC_MMAP_THRESHOLD_) or its tunable in GLIBC_TUNABLES. An operator's own
 * setting wins over the daemon's.
 */
export function mallocSettingGiven(env: NodeJS.ProcessEnv, variable: string, tunable: string): boolean {
  return env[variable] !== undefined || (env.GLIBC_TUNABLES ?? '').includes(tunable);
}

/** glibc's M_MMAP_THRESHOLD (malloc.h). */
const M_MMAP_THRESHOLD = -3;

/**
 * glibc's mallopt(M_MMAP_THRESHOLD, bytes): blocks larger than `bytes` get mappings of their own,
 * unmapped when freed, and the threshold no longer follows the largest block freed (mallopt(3)).
 * Nor does the trim threshold, which stays where it was: a thread's arena then gives back the
 * top of its heap as it frees, which malloc_trim never does for a thread's arena.
 */
export function setMallocMmapThreshold(bytes: number): void {
  check(addon().mallopt(M_MMAP_THRESHOLD, bytes), 'mallopt', undefined, `M_MMAP_THRESHOLD ${bytes}`);
}

const LOCK_EX = 2;
const LOCK_NB = 4;

/**
 * flock(fd, LOCK_EX | LOCK_NB): true once taken, false while another open file description
 * holds it. The kernel drops the lock with the last descriptor, so a dead holder never blocks.
 */
export function tryLockExclusive(fd: number, path: string): boolean {
  const r = addon().flock(fd, LOCK_EX | LOCK_NB);
  if (r === 0) return true;
  if (r === -osConstants.errno.EAGAIN || r === -osConstants.errno.EWOULDBLOCK) return false;
  throw sysError('flock', path, undefined, -r);
}

const AF_UNIX = 1;
const SOCK_SEQPACKET = 5;
const SOCK_CLOEXEC = 0o2000000;

/**
 * A connected pair of close-on-exec unix sockets for handing a file descriptor from a child
 * (which gets one end as an inherited stdio fd) to the daemon (which keeps the other). SEQPACKET
 * keeps each handoff one message, so a stray byte can never be mistaken for one.
 */
export function fdHandoffPair(): [ours: number, theirs: number] {
  return check(addon().socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0), 'socketpair', undefined, 'AF_UNIX SOCK_SEQPACKET');
}

/**
 * Receives one file descriptor sent with SCM_RIGHTS on `sock` without blocking (callers wait
 * for the sender to finish first). Returns the new close-on-exec fd, or undefined when the peer
 * closed without sending one; throws when a message came without one.
 */
export function receiveFd(sock: number): number | undefined {
  return check(addon().receiveFd(sock), 'recvmsg', undefined, `fd ${sock}`) ?? undefined;
}

export const AT_FDCWD = -100;
export const O_PATH = 0o10000000;
export const O_DIRECTORY = 0o200000;
export const O_CLOEXEC = 0o2000000;
export const RESOLVE_NO_XDEV = 0x01;
export const RESOLVE_NO_MAGICLINKS = 0x02;
export const RESOLVE_BENEATH = 0x08;

/**
 * openat2(2): opens `path` relative to `dirfd` under the `resolve` restrictions (RESOLVE_*), so
 * the kernel, not a check before the open, decides where a lookup may go. Returns the new fd.
 */
export function openat2(dirfd: number, path: string, flags: number, resolve: number): number {
  return check(addon().openat2(dirfd, path, flags, resolve), 'openat2', path);
}

// The new mount API (Linux 5.12 for mount_setattr).
export const OPEN_TREE_CLONE = 0x1;
export const OPEN_TREE_CLOEXEC = O_CLOEXEC;
export const AT_EMPTY_PATH = 0x1000;
export const MOUNT_ATTR_RDONLY = 0x1;
export const MOUNT_ATTR_NOSUID = 0x2;
export const MOUNT_ATTR_NODEV = 0x4;
export const MOUNT_ATTR_NOEXEC = 0x8;
export const MOUNT_ATTR_IDMAP = 0x100000;

/** open_tree(2): with OPEN_TREE_CLONE, a detached copy of the mount at `path`, held by the fd. */
export function openTree(dirfd: number, path: string, flags: number): number {
  return check(addon().openTree(dirfd, path, flags), 'open_tree', path);
}

/**
 * mount_setattr(2) on the mount `fd` names (AT_EMPTY_PATH): set `attrSet`, and with
 * MOUNT_ATTR_IDMAP the id mapping of the user namespace `usernsFd`. `what` names it in errors.
 */
export function mountSetattr(fd: number, attrSet: number, usernsFd: number, what: string): void {
  check(addon().mountSetattr(fd, attrSet, usernsFd), 'mount_setattr', undefined, what);
}

/** move_mount(2): attach the detached mount `fd` on `target`. */
export function moveMount(fd: number, target: string): void {
  check(addon().moveMount(target, fd), 'move_mount', target);
}

const F_SETFD = 2;

/** fcntl(2) with an int argument (F_SETFD, F_ADD_SEALS, F_GET_SEALS); returns its result. */
export function fcntl(fd: number, cmd: number, arg: number, what: string): number {
  return check(addon().fcntl(fd, cmd, arg), 'fcntl', undefined, what);
}

/**
 * execve(2): replace this process (same pid, same open stdio) with `argv` run from `path`, in
 * `env`. Node opens stdin, stdout and stderr close-on-exec, so they are made inheritable first,
 * with `inherit`'s fds; without that the new program would start with /dev/null there. Returns
 * only by throwing.
 */
export function execve(path: string, argv: string[], env: NodeJS.ProcessEnv, inherit: readonly number[] = []): never {
  for (const fd of [0, 1, 2, ...inherit]) fcntl(fd, F_SETFD, 0, `F_SETFD 0 on fd ${fd}`);
  throw sysError('execve', path, undefined, -addon().execve(path, argv, envStrings(env)));
}

/** An environment as execve and posix_spawn take it: NAME=value strings. */
export const envStrings = (env: NodeJS.ProcessEnv): string[] =>
  Object.entries(env).filter(([, v]) => v !== undefined).map(([k, v]) => `${k}=${v}`);

/** pipe2(2) with O_CLOEXEC: [read end, write end]. */
export function pipeCloexec(): [read: number, write: number] {
  return check(addon().pipe2(O_CLOEXEC), 'pipe2', undefined);
}

/**
 * Where a spawned child's descriptors 0-3 come from: a descriptor of ours (dup'd onto it), or
 * /dev/null (stdin read-only, the others write-only). Descriptor 3 is left closed unless given.
 */
export interface SpawnFds {
  stdin?: number;
  stdout?: number;
  stderr?: number;
  fd3?: number;
}

/**
 * posix_spawn(3): runs `path` with `argv` and `env`, its descriptors 0-3 as `fds` says, no
 * signal blocked and every signal at its default action (but for glibc's two internal ones,
 * which its spawn leaves ignored), in a session of its own when `newSession` (setsid, as
 * child_process's `detached`), in directory `cwd` when given. glibc clones with
 * CLONE_VM|CLONE_VFORK: the calling thread waits until the child has exec'd, and this process's
 * memory is neither copied nor write-protected. That thread is one of libuv's pool, never the
 * event loop. The descriptors must stay open until this settles. Resolves with the child's pid.
 */
export async function posixSpawn(path: string, argv: readonly string[], envp: readonly string[], fds: SpawnFds, newSession = false, cwd?: string): Promise<number> {
  const given = [fds.stdin, fds.stdout, fds.stderr, fds.fd3].filter((fd): fd is number => fd !== undefined);
  // A source among 0-3 could be overwritten by an earlier dup2 before it is read.
  if (given.some((fd) => fd < 4)) throw new Error(`posix_spawn ${path}: descriptors ${given.join(', ')} must all be above 3`);
  const slots = [fds.stdin, fds.stdout, fds.stderr, fds.fd3].map((fd) => fd ?? -1);
  return check(await addon().posixSpawnAsync(path, argv, envp, slots, newSession, cwd ?? null), 'posix_spawn', path, cwd === undefined ? path : `${path} in ${cwd}`);
}

/** How a process ended: its exit code, or the signal that killed it. */
export interface ProcessExit {
  code: number | null;
  signal: number | null;
}

/** waitpid(2) with WNOHANG: how child `pid` ended (it is reaped), or undefined while it runs. */
export function waitpidNoHang(pid: number): ProcessExit | undefined {
  const status = check(addon().waitpidNoHang(pid), 'waitpid', undefined, String(pid));
  if (status === null) return undefined;
  const signal = status & 0x7f;
  return signal === 0 ? { code: (status >> 8) & 0xff, signal: null } : { code: null, signal };
}

export const MFD_CLOEXEC = 0x1;

/** memfd_create(2): an anonymous file in memory with `flags` (MFD_*); returns its fd. */
export function memfdCreate(name: string, flags = MFD_CLOEXEC): number {
  return check(addon().memfdCreate(name, flags), 'memfd_create', undefined, name);
}

/**
 * crib_sealed_copy (native/common/sealed-exe.c, the copy crib's helpers make of themselves) of
 * the file at `path`: a close-on-exec, executable memfd named `name` holding its bytes, sealed
 * against writing, growing and shrinking (a seal refused with EBUSY is tried again, 20 ms apart).
 * Returns its fd; throws the native code's message, with `code` and `errno` when a call failed.
 */
export function sealedMemfdCopy(path: string, name: string): number {
  return addon().sealedCopy(path, name);
}
