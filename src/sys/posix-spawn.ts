// Starts a helper process without forking the daemon: glibc's posix_spawn(3), which clones with
// CLONE_VM|CLONE_VFORK (the child borrows the daemon's memory until it execs), called through
// koffi. libuv's spawn (Node's child_process) forks: each fork copies the daemon's page tables and
// write-protects every page, and the daemon then takes a copy-on-write fault for each page it
// writes. kubelet's exec probes spawn ~25 helpers a second at 250 pods: measured on this project's
// 2-core machine with a 250 MiB process spawning /bin/true 25 times a second for 15 s, forks from a
// worker thread cost 5.1 s of CPU and doubled the event loop's p99 delay (10.5 -> 15-20 ms, at
// load 2; seconds at load 30); posix_spawn cost 0.07 s and left the delay as it was.
//
// The child gets stdin from /dev/null and stdout and stderr on pipes (O_CLOEXEC on the daemon's
// side, so no other child inherits them); every signal back at its default action and none
// blocked (the daemon ignores SIGPIPE; a helper must not inherit that). The daemon's other
// descriptors are all O_CLOEXEC (Node opens them so), as for child_process. The child is reaped
// here with waitpid(pid, WNOHANG) once its pipes have ended (libuv reaps only the children it
// spawned itself), tried again after a short wait while it has not exited yet.
import koffi from 'koffi';
import { closeSync } from 'node:fs';
import { Socket } from 'node:net';
import type { Readable } from 'node:stream';
import { getSystemErrorName } from 'node:util';

const libc = koffi.load('libc.so.6');
const cPipe2 = libc.func('int pipe2(_Out_ int *fds, int flags)');
const cSpawn = libc.func('int posix_spawn(_Out_ int *pid, const char *path, void *actions, void *attr, const char **argv, const char **envp)');
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

const O_CLOEXEC = 0o2000000;
const O_RDONLY = 0;
const WNOHANG = 1;
const POSIX_SPAWN_SETSIGDEF = 0x04;
const POSIX_SPAWN_SETSIGMASK = 0x08;
// glibc x86-64/aarch64 sizes, with room to spare: posix_spawn_file_actions_t is 80 bytes,
// posix_spawnattr_t 336, sigset_t 128.
const ACTIONS_BYTES = 256;
const ATTR_BYTES = 512;
const SIGSET_BYTES = 256;
/** How long to wait between tries to reap a child whose pipes have ended before it exited. */
const REAP_RETRY_MS = [1, 2, 5, 10, 20, 50];

/** How a spawned process ended: its exit code, or the signal that killed it. */
export interface SpawnExit {
  code: number | null;
  signal: number | null;
}

export interface SpawnedProcess {
  pid: number;
  stdout: Readable;
  stderr: Readable;
  /** Resolves once the process has exited and been reaped (after its stdout and stderr ended). */
  exited: Promise<SpawnExit>;
}

/** A libc call's error number (posix_spawn's family returns it rather than setting errno). */
function check(call: string, rc: number, subject: string): void {
  if (rc === 0) return;
  let code: string;
  try {
    code = getSystemErrorName(-rc);
  } catch {
    code = `E${rc}`;
  }
  throw Object.assign(new Error(`${call} ${subject}: ${code}`), { code, errno: rc, syscall: call, path: subject });
}

function pipe(subject: string): [number, number] {
  const fds = [0, 0];
  if (cPipe2(fds, O_CLOEXEC) !== 0) check('pipe2', koffi.errno(), subject);
  return [fds[0]!, fds[1]!];
}

const closeQuietly = (fd: number) => {
  try {
    closeSync(fd);
  } catch {
    // Only EBADF: never opened or already closed here.
  }
};

/**
 * Runs `file` with `args` (argv[0] is `file`) and the daemon's environment, without forking the
 * daemon. Its stdout and stderr must be read to their end: the process is reaped after both end.
 */
export function spawnWithoutFork(file: string, args: readonly string[], env: NodeJS.ProcessEnv = process.env): SpawnedProcess {
  const out = pipe(file);
  let err: [number, number];
  try {
    err = pipe(file);
  } catch (e) {
    out.forEach(closeQuietly);
    throw e;
  }
  const actions = koffi.alloc('uint8_t', ACTIONS_BYTES);
  const attr = koffi.alloc('uint8_t', ATTR_BYTES);
  const mask = koffi.alloc('uint8_t', SIGSET_BYTES);
  const defaults = koffi.alloc('uint8_t', SIGSET_BYTES);
  let pid: number;
  try {
    check('posix_spawn_file_actions_init', cActionsInit(actions), file);
    try {
      check('posix_spawnattr_init', cAttrInit(attr), file);
      try {
        check('posix_spawn_file_actions_addopen', cActionsOpen(actions, 0, '/dev/null', O_RDONLY, 0), file);
        check('posix_spawn_file_actions_adddup2', cActionsDup2(actions, out[1], 1), file);
        check('posix_spawn_file_actions_adddup2', cActionsDup2(actions, err[1], 2), file);
        check('sigemptyset', cSigEmptySet(mask), file);
        check('sigfillset', cSigFillSet(defaults), file);
        check('posix_spawnattr_setsigmask', cAttrSetSigMask(attr, mask), file);
        check('posix_spawnattr_setsigdefault', cAttrSetSigDefault(attr, defaults), file);
        check('posix_spawnattr_setflags', cAttrSetFlags(attr, POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF), file);
        const envp = Object.entries(env).filter(([, v]) => v !== undefined).map(([k, v]) => `${k}=${v}`);
        const pidOut = [0];
        check('posix_spawn', cSpawn(pidOut, file, actions, attr, [file, ...args, null], [...envp, null]), file);
        pid = pidOut[0]!;
      } finally {
        cAttrDestroy(attr);
      }
    } finally {
      cActionsDestroy(actions);
    }
  } catch (e) {
    [...out, ...err].forEach(closeQuietly);
    throw e;
  } finally {
    koffi.free(actions);
    koffi.free(attr);
    koffi.free(mask);
    koffi.free(defaults);
  }
  // The child holds its own copies of the write ends now.
  closeQuietly(out[1]);
  closeQuietly(err[1]);
  const stdout = new Socket({ fd: out[0], readable: true, writable: false });
  const stderr = new Socket({ fd: err[0], readable: true, writable: false });
  const ended = (s: Socket) => new Promise<void>((resolve) => {
    s.once('close', () => resolve());
  });
  const exited = Promise.all([ended(stdout), ended(stderr)]).then(() => reap(pid));
  return { pid, stdout, stderr, exited };
}

/** Waits for `pid` to exit, without blocking: waitpid(WNOHANG), tried again after short waits. */
async function reap(pid: number): Promise<SpawnExit> {
  for (let attempt = 0; ; attempt++) {
    const status = [0];
    const r = cWaitpid(pid, status, WNOHANG);
    if (r === pid) {
      const s = status[0]!;
      const signal = s & 0x7f;
      return signal === 0 ? { code: (s >> 8) & 0xff, signal: null } : { code: null, signal };
    }
    if (r < 0) {
      const errno = koffi.errno();
      if (errno === 4) continue; // EINTR
      check('waitpid', errno, String(pid));
    }
    await new Promise((resolve) => setTimeout(resolve, REAP_RETRY_MS[Math.min(attempt, REAP_RETRY_MS.length - 1)]));
  }
}
