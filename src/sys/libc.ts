// libc calls Node does not offer, through koffi. Only thread-safe calls that leave the process's
// namespaces alone live here (docs/ARCHITECTURE.md: the daemon never enters a namespace itself,
// Node is threaded; the native helpers do that work). Each wrapper throws a
// Node-style system error (code "ENOENT", errno, syscall, path) so callers can branch on
// errnoCode() exactly as they do for node:fs errors.
import koffi from 'koffi';
import { constants as osConstants } from 'node:os';
import { getSystemErrorName } from 'node:util';

const libc = koffi.load('libc.so.6');

const cMknod = libc.func('int mknod(const char *path, uint32_t mode, uint64_t dev)');
const cLsetxattr = libc.func(
  'int lsetxattr(const char *path, const char *name, const void *value, size_t size, int flags)');
const cLgetxattr = libc.func(
  'intptr_t lgetxattr(const char *path, const char *name, void *value, size_t size)');
const cLlistxattr = libc.func('intptr_t llistxattr(const char *path, void *list, size_t size)');
const cLremovexattr = libc.func('int lremovexattr(const char *path, const char *name)');
const cMount = libc.func(
  'int mount(const char *source, const char *target, const char *fstype, unsigned long flags, const char *data)');
const cUmount2 = libc.func('int umount2(const char *target, int flags)');
const cSyncfs = libc.func('int syncfs(int fd)');
const cFlock = libc.func('int flock(int fd, int operation)');
const cMallocTrim = libc.func('int malloc_trim(size_t pad)');
const cGettid = libc.func('int gettid(void)');
const cSetpriority = libc.func('int setpriority(int which, uint32_t who, int prio)');
const cMemfdCreate = libc.func('int memfd_create(const char *name, unsigned int flags)');

export const MNT_DETACH = 2;
/** umount2: do not follow a symlink in the last component of the target. */
export const UMOUNT_NOFOLLOW = 8;
export const S_IFCHR = 0o020000;
export const S_IFBLK = 0o060000;
export const S_IFIFO = 0o010000;


export interface SystemError extends Error {
  code: string;
  errno: number;
  syscall: string;
  path?: string;
}

/** The error of a call that just failed: errno, or `errno` given (posix_spawn's family returns it). */
function sysError(syscall: string, path: string | undefined, what?: string, errno = koffi.errno()): SystemError {
  // Node's own name for the number (EAGAIN, not its alias EWOULDBLOCK), as node:fs reports it.
  let code: string;
  try {
    code = getSystemErrorName(-errno);
  } catch {
    code = `E${errno}`;
  }
  const subject = what ?? path;
  const err = new Error(`${syscall}${subject ? ` ${subject}` : ''}: ${code}`) as SystemError;
  err.code = code;
  err.errno = errno;
  err.syscall = syscall;
  if (path !== undefined) err.path = path;
  return err;
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
  if (cMknod(path, mode >>> 0, makedev(major, minor)) !== 0) throw sysError('mknod', path);
}

/** lsetxattr(2): never follows a symlink at `path`. */
export function lsetxattr(path: string, name: string, value: Buffer | string): void {
  const buf = typeof value === 'string' ? Buffer.from(value) : value;
  if (cLsetxattr(path, name, buf, buf.length, 0) !== 0) {
    throw sysError('lsetxattr', path, `${path} ${name}`);
  }
}

/** lgetxattr(2); undefined when the attribute is absent (ENODATA). */
export function lgetxattr(path: string, name: string): Buffer | undefined {
  // Ask for the size first: xattr values are small, but a fixed buffer would truncate silently.
  for (;;) {
    const size = Number(cLgetxattr(path, name, null, 0));
    if (size < 0) {
      if (koffi.errno() === osConstants.errno.ENODATA) return undefined;
      throw sysError('lgetxattr', path, `${path} ${name}`);
    }
    const buf = Buffer.alloc(size);
    const got = Number(cLgetxattr(path, name, buf, size));
    if (got >= 0) return buf.subarray(0, got);
    // ERANGE: the value grew between the two calls; ask again.
    if (koffi.errno() !== osConstants.errno.ERANGE) throw sysError('lgetxattr', path, `${path} ${name}`);
  }
}

/** llistxattr(2): the attribute names on `path` itself. */
export function llistxattr(path: string): string[] {
  for (;;) {
    const size = Number(cLlistxattr(path, null, 0));
    if (size < 0) throw sysError('llistxattr', path);
    if (size === 0) return [];
    const buf = Buffer.alloc(size);
    const got = Number(cLlistxattr(path, buf, size));
    if (got >= 0) return buf.subarray(0, got).toString('utf8').split('\0').filter((n) => n !== '');
    if (koffi.errno() !== osConstants.errno.ERANGE) throw sysError('llistxattr', path);
  }
}

export function lremovexattr(path: string, name: string): void {
  if (cLremovexattr(path, name) !== 0) throw sysError('lremovexattr', path, `${path} ${name}`);
}

/** mount(2). Relative paths in `data` resolve against the daemon's cwd: pass absolute ones. */
export function mount(source: string, target: string, fstype: string | null, flags: number,
  data: string | null): void {
  if (cMount(source, target, fstype, flags, data) !== 0) {
    throw sysError('mount', target, `${fstype ?? ''} ${source} on ${target}`);
  }
}

/** umount2(2): true once unmounted, false when `target` is no mount point or does not exist. */
export function umount2(target: string, flags = 0): boolean {
  if (cUmount2(target, flags) === 0) return true;
  // Not a mount point (any more), or no such path: what every caller, undoing its own mounts
  // idempotently, expects often (a pod's removal meets four). Told without an Error, whose
  // stack trace cost more than the call.
  const errno = koffi.errno();
  if (errno === osConstants.errno.EINVAL || errno === osConstants.errno.ENOENT) return false;
  throw sysError('umount2', target, undefined, errno);
}

/** syncfs(2): flush the whole filesystem holding `fd` (cheaper than fsync per file). */
export function syncfs(fd: number): void {
  if (cSyncfs(fd) !== 0) throw sysError('syncfs', undefined, `fd ${fd}`);
}

const PRIO_PROCESS = 0;

/**
 * setpriority(PRIO_PROCESS, gettid(), nice): the nice value of the calling thread alone (Linux
 * keeps one per thread), for a worker thread whose work must yield the CPU to the event loop.
 */
export function setThreadNice(nice: number): void {
  const tid = cGettid() as number;
  if (cSetpriority(PRIO_PROCESS, tid, nice) !== 0) throw sysError('setpriority', undefined, `thread ${tid}`);
}

/**
 * glibc's malloc_trim(0), on a thread of libuv's pool: hand the free pages of every malloc arena
 * back to the kernel. glibc returns memory on its own only from the top of the main arena; what
 * Node's buffers and threads freed elsewhere stays resident until this is called. It can take
 * tens of ms after a pull (an madvise per free range), so never on the event loop. True when
 * some memory was released.
 */
export function mallocTrim(): Promise<boolean> {
  return new Promise((resolve, reject) => {
    cMallocTrim.async(0, (err: unknown, released: number) => (err ? reject(err) : resolve(released === 1)));
  });
}

const LOCK_EX = 2;
const LOCK_NB = 4;

/**
 * flock(fd, LOCK_EX | LOCK_NB): true once taken, false while another open file description
 * holds it. The kernel drops the lock with the last descriptor, so a dead holder never blocks.
 */
export function tryLockExclusive(fd: number, path: string): boolean {
  if (cFlock(fd, LOCK_EX | LOCK_NB) === 0) return true;
  const err = sysError('flock', path);
  if (err.code === 'EAGAIN' || err.code === 'EWOULDBLOCK') return false;
  throw err;
}

const cSocketpair = libc.func('int socketpair(int domain, int type, int protocol, _Out_ int *sv)');
const cRecvmsg = libc.func('intptr_t recvmsg(int sockfd, void *msg, int flags)');

const AF_UNIX = 1;
const SOCK_SEQPACKET = 5;
const SOCK_CLOEXEC = 0o2000000;
const SOL_SOCKET = 1;
const SCM_RIGHTS = 1;
const MSG_DONTWAIT = 0x40;
const MSG_CTRUNC = 0x8;
const MSG_CMSG_CLOEXEC = 0x40000000;

/**
 * A connected pair of close-on-exec unix sockets for handing a file descriptor from a child
 * (which gets one end as an inherited stdio fd) to the daemon (which keeps the other). SEQPACKET
 * keeps each handoff one message, so a stray byte can never be mistaken for one.
 */
export function fdHandoffPair(): [ours: number, theirs: number] {
  const sv = new Int32Array(2);
  if (cSocketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv) !== 0) throw sysError('socketpair', undefined, 'AF_UNIX SOCK_SEQPACKET');
  return [sv[0]!, sv[1]!];
}

// recvmsg's buffers, laid out by hand in one native block (LP64 Linux: every 64-bit target Node
// runs on): struct msghdr at 0 (56 bytes), its single struct iovec at 56, the one payload byte at
// 72, and the control buffer for one SCM_RIGHTS fd, CMSG_SPACE(sizeof(int)) = 24 bytes, at 80.
// The daemon is single-threaded JavaScript and the call is synchronous, so one block serves all.
const MSG = 0, IOV = 56, PAYLOAD = 72, CONTROL = 80, CONTROL_SPACE = 24, BLOCK = 104;
let recvBlock: { mem: unknown; view: DataView; addr: bigint } | undefined;

/**
 * Receives one file descriptor sent with SCM_RIGHTS on `sock` without blocking (callers wait
 * for the sender to finish first). Returns the new close-on-exec fd, or undefined when the peer
 * closed without sending one.
 */
export function receiveFd(sock: number): number | undefined {
  if (koffi.sizeof('void *') !== 8) throw new Error('receiveFd: only 64-bit Linux layouts are supported');
  if (!recvBlock) {
    const mem = koffi.alloc('uint8_t', BLOCK);
    recvBlock = { mem, view: new DataView(koffi.view(mem, BLOCK)), addr: BigInt(koffi.address(mem)) };
  }
  const { mem, view, addr } = recvBlock;
  for (let i = 0; i < BLOCK; i++) view.setUint8(i, 0);
  view.setBigUint64(IOV, addr + BigInt(PAYLOAD), true); // iov_base
  view.setBigUint64(IOV + 8, 1n, true); // iov_len
  view.setBigUint64(MSG + 16, addr + BigInt(IOV), true); // msg_iov
  view.setBigUint64(MSG + 24, 1n, true); // msg_iovlen
  view.setBigUint64(MSG + 32, addr + BigInt(CONTROL), true); // msg_control
  view.setBigUint64(MSG + 40, BigInt(CONTROL_SPACE), true); // msg_controllen
  const n = Number(cRecvmsg(sock, mem, MSG_DONTWAIT | MSG_CMSG_CLOEXEC));
  if (n < 0) throw sysError('recvmsg', undefined, `fd ${sock}`);
  if (n === 0) return undefined;
  if (view.getInt32(MSG + 48, true) & MSG_CTRUNC) throw new Error(`recvmsg fd ${sock}: the passed descriptors were truncated`);
  const controlLen = Number(view.getBigUint64(MSG + 40, true));
  if (controlLen < 20 || view.getInt32(CONTROL + 8, true) !== SOL_SOCKET || view.getInt32(CONTROL + 12, true) !== SCM_RIGHTS) {
    throw new Error(`recvmsg fd ${sock}: a message arrived without a file descriptor`);
  }
  return view.getInt32(CONTROL + 16, true);
}

// openat2(2) has no glibc wrapper on Debian 12: it is called through syscall(2). 437 is its
// number on every architecture (the new syscall table is shared).
const cSyscall = libc.func('long syscall(long number, ...)');
const SYS_OPENAT2 = 437;
export const AT_FDCWD = -100;
export const O_PATH = 0o10000000;
export const O_DIRECTORY = 0o200000;
export const O_CLOEXEC = 0o2000000;
const O_RDONLY = 0;
const O_WRONLY = 1;
export const RESOLVE_NO_XDEV = 0x01;
export const RESOLVE_NO_MAGICLINKS = 0x02;
export const RESOLVE_BENEATH = 0x08;

/**
 * openat2(2): opens `path` relative to `dirfd` under the `resolve` restrictions (RESOLVE_*), so
 * the kernel, not a check before the open, decides where a lookup may go. Returns the new fd.
 */
export function openat2(dirfd: number, path: string, flags: number, resolve: number): number {
  const how = Buffer.alloc(24); // struct open_how { u64 flags; u64 mode; u64 resolve; }
  how.writeBigUInt64LE(BigInt(flags), 0);
  how.writeBigUInt64LE(BigInt(resolve), 16);
  const fd = Number(cSyscall(SYS_OPENAT2, 'int', dirfd, 'const char *', path, 'void *', how, 'size_t', how.length));
  if (fd < 0) throw sysError('openat2', path);
  return fd;
}

// The new mount API (Linux 5.12 for mount_setattr): the same syscall numbers on every
// architecture Node runs on here (x86_64, arm64: the generic table).
const SYS_OPEN_TREE = 428;
const SYS_MOUNT_SETATTR = 442;
const SYS_MOVE_MOUNT = 429;
const MOVE_MOUNT_F_EMPTY_PATH = 0x4;
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
  const fd = Number(cSyscall(SYS_OPEN_TREE, 'int', dirfd, 'const char *', path, 'unsigned int', flags));
  if (fd < 0) throw sysError('open_tree', path);
  return fd;
}

/**
 * mount_setattr(2) on the mount `fd` names (AT_EMPTY_PATH): set `attrSet`, and with
 * MOUNT_ATTR_IDMAP the id mapping of the user namespace `usernsFd`. `what` names it in errors.
 */
export function mountSetattr(fd: number, attrSet: number, usernsFd: number, what: string): void {
  const attr = Buffer.alloc(32); // struct mount_attr { u64 attr_set, attr_clr, propagation, userns_fd; }
  attr.writeBigUInt64LE(BigInt(attrSet), 0);
  if (attrSet & MOUNT_ATTR_IDMAP) attr.writeBigUInt64LE(BigInt(usernsFd), 24);
  const r = Number(cSyscall(SYS_MOUNT_SETATTR, 'int', fd, 'const char *', '', 'unsigned int', AT_EMPTY_PATH, 'void *', attr, 'size_t', attr.length));
  if (r < 0) throw sysError('mount_setattr', undefined, what);
}

/** move_mount(2): attach the detached mount `fd` on `target`. */
export function moveMount(fd: number, target: string): void {
  const r = Number(cSyscall(SYS_MOVE_MOUNT, 'int', fd, 'const char *', '', 'int', AT_FDCWD, 'const char *', target, 'unsigned int', MOVE_MOUNT_F_EMPTY_PATH));
  if (r < 0) throw sysError('move_mount', target);
}

const cFcntl = libc.func('int fcntl(int fd, int cmd, ...)');
const cExecve = libc.func('int execve(const char *path, const char **argv, const char **envp)');
const F_SETFD = 2;

/**
 * execve(2): replace this process (same pid, same open stdio) with `argv` run from `path`, in
 * `env`. Node opens stdin, stdout and stderr close-on-exec, so they are made inheritable first,
 * with `inherit`'s fds; without that the new program would start with /dev/null there. Returns
 * only by throwing.
 */
export function execve(path: string, argv: string[], env: NodeJS.ProcessEnv, inherit: readonly number[] = []): never {
  for (const fd of [0, 1, 2, ...inherit]) {
    if (Number(cFcntl(fd, F_SETFD, 'int', 0)) < 0) throw sysError('fcntl', undefined, `F_SETFD 0 on fd ${fd}`);
  }
  cExecve(path, [...argv, null], [...envStrings(env), null]);
  throw sysError('execve', path);
}

/** An environment as execve and posix_spawn take it: NAME=value strings. */
export const envStrings = (env: NodeJS.ProcessEnv): string[] =>
  Object.entries(env).filter(([, v]) => v !== undefined).map(([k, v]) => `${k}=${v}`);

const cPipe2 = libc.func('int pipe2(_Out_ int *fds, int flags)');
const cPosixSpawn = libc.func('int posix_spawn(_Out_ int *pid, const char *path, void *actions, void *attr, const char **argv, const char **envp)');
const cActionsInit = libc.func('int posix_spawn_file_actions_init(void *actions)');
const cActionsDestroy = libc.func('int posix_spawn_file_actions_destroy(void *actions)');
const cActionsDup2 = libc.func('int posix_spawn_file_actions_adddup2(void *actions, int fd, int newfd)');
const cActionsOpen = libc.func('int posix_spawn_file_actions_addopen(void *actions, int fd, const char *path, int oflag, uint32_t mode)');
const cAttrInit = libc.func('int posix_spawnattr_init(void *attr)');
const cAttrDestroy = libc.func('int posix_spawnattr_destroy(void *attr)');
const cAttrSetFlags = libc.func('int posix_spawnattr_setflags(void *attr, short flags)');
const cAttrSetSigMask = libc.func('int posix_spawnattr_setsigmask(void *attr, void *mask)');
const cAttrSetSigDefault = libc.func('int posix_spawnattr_setsigdefault(void *attr, void *set)');
const cSigEmptySet = libc.func('int sigemptyset(void *set)');
const cSigFillSet = libc.func('int sigfillset(void *set)');
const cWaitpid = libc.func('int waitpid(int pid, _Out_ int *status, int options)');

const WNOHANG = 1;
const EINTR = 4;
const POSIX_SPAWN_SETSIGDEF = 0x04;
const POSIX_SPAWN_SETSIGMASK = 0x08;
const POSIX_SPAWN_SETSID = 0x80;
// glibc's x86-64 and aarch64 sizes, with room to spare: posix_spawn_file_actions_t 80 bytes,
// posix_spawnattr_t 336, sigset_t 128.
const SPAWN_ACTIONS_BYTES = 256;
const SPAWN_ATTR_BYTES = 512;
const SIGSET_BYTES = 256;

/** pipe2(2) with O_CLOEXEC: [read end, write end]. */
export function pipeCloexec(): [read: number, write: number] {
  const fds = [0, 0];
  if (cPipe2(fds, O_CLOEXEC) !== 0) throw sysError('pipe2', undefined);
  return [fds[0]!, fds[1]!];
}

/** posix_spawn's calls return their error number; 0 is success. */
function spawnCheck(call: string, rc: number, path: string): void {
  if (rc !== 0) throw sysError(call, path, undefined, rc);
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
 * child_process's `detached`). glibc clones with CLONE_VM|CLONE_VFORK: the calling thread waits
 * only until the child has exec'd, and this process's memory is neither copied nor
 * write-protected. Returns the child's pid.
 */
export function posixSpawn(path: string, argv: readonly string[], envp: readonly string[], fds: SpawnFds, newSession = false): number {
  const given = [fds.stdin, fds.stdout, fds.stderr, fds.fd3].filter((fd): fd is number => fd !== undefined);
  // A source among 0-3 could be overwritten by an earlier dup2 before it is read.
  if (given.some((fd) => fd < 4)) throw new Error(`posix_spawn ${path}: descriptors ${given.join(', ')} must all be above 3`);
  const actions = koffi.alloc('uint8_t', SPAWN_ACTIONS_BYTES);
  const attr = koffi.alloc('uint8_t', SPAWN_ATTR_BYTES);
  const mask = koffi.alloc('uint8_t', SIGSET_BYTES);
  const defaults = koffi.alloc('uint8_t', SIGSET_BYTES);
  try {
    spawnCheck('posix_spawn_file_actions_init', cActionsInit(actions), path);
    try {
      spawnCheck('posix_spawnattr_init', cAttrInit(attr), path);
      try {
        const targets: [number | undefined, number][] = [[fds.stdin, 0], [fds.stdout, 1], [fds.stderr, 2], [fds.fd3, 3]];
        for (const [from, to] of targets) {
          if (from !== undefined) spawnCheck('posix_spawn_file_actions_adddup2', cActionsDup2(actions, from, to), path);
          else if (to < 3) spawnCheck('posix_spawn_file_actions_addopen', cActionsOpen(actions, to, '/dev/null', to === 0 ? O_RDONLY : O_WRONLY, 0), path);
        }
        if (cSigEmptySet(mask) !== 0) throw sysError('sigemptyset', path);
        if (cSigFillSet(defaults) !== 0) throw sysError('sigfillset', path);
        spawnCheck('posix_spawnattr_setsigmask', cAttrSetSigMask(attr, mask), path);
        spawnCheck('posix_spawnattr_setsigdefault', cAttrSetSigDefault(attr, defaults), path);
        const flags = POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF | (newSession ? POSIX_SPAWN_SETSID : 0);
        spawnCheck('posix_spawnattr_setflags', cAttrSetFlags(attr, flags), path);
        const pid = [0];
        spawnCheck('posix_spawn', cPosixSpawn(pid, path, actions, attr, [...argv, null], [...envp, null]), path);
        return pid[0]!;
      } finally {
        cAttrDestroy(attr);
      }
    } finally {
      cActionsDestroy(actions);
    }
  } finally {
    koffi.free(actions);
    koffi.free(attr);
    koffi.free(mask);
    koffi.free(defaults);
  }
}

/** How a process ended: its exit code, or the signal that killed it. */
export interface ProcessExit {
  code: number | null;
  signal: number | null;
}

/** waitpid(2) with WNOHANG: how child `pid` ended (it is reaped), or undefined while it runs. */
export function waitpidNoHang(pid: number): ProcessExit | undefined {
  for (;;) {
    const status = [0];
    const r = cWaitpid(pid, status, WNOHANG);
    if (r === 0) return undefined;
    if (r === pid) {
      const s = status[0]!;
      const signal = s & 0x7f;
      return signal === 0 ? { code: (s >> 8) & 0xff, signal: null } : { code: null, signal };
    }
    if (koffi.errno() !== EINTR) throw sysError('waitpid', undefined, String(pid));
  }
}

const MFD_CLOEXEC = 0x1;

/** memfd_create(2): an anonymous, close-on-exec file in memory; returns its fd. */
export function memfdCreate(name: string): number {
  const fd = Number(cMemfdCreate(name, MFD_CLOEXEC));
  if (fd < 0) throw sysError('memfd_create', undefined, name);
  return fd;
}
