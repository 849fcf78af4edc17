// Starts a helper process without forking the daemon: glibc's posix_spawn(3) (sys/libc.ts), which
// clones with CLONE_VM|CLONE_VFORK (the child borrows the daemon's memory until it execs). libuv's
// spawn (Node's child_process) forks: each fork copies the daemon's page tables and write-protects
// every page, and the daemon then takes a copy-on-write fault for each page it writes. kubelet's
// exec probes spawn ~25 helpers a second at 250 pods: measured on this project's 2-core machine
// with a 250 MiB process spawning /bin/true 25 times a second for 15 s, forks from a worker thread
// cost 5.1 s of CPU and raised the event loop's p99 delay from 10.5 to 15-20 ms at load 2 (to
// seconds at load 30); posix_spawn cost 0.07 s and left the delay as it was.
//
// The child gets stdin from /dev/null and stdout and stderr on pipes (close-on-exec on the
// daemon's side, so no other child inherits them). The daemon's other descriptors are all
// close-on-exec (Node opens them so), as for child_process. The child is reaped here once its
// pipes have ended (libuv reaps only the children it spawned itself), tried again on each SIGCHLD
// while it has not exited yet.
import { accessSync, closeSync, constants, statSync } from 'node:fs';
import { join } from 'node:path';
import { Socket } from 'node:net';
import type { Readable, Writable } from 'node:stream';
import { envStrings, pipeCloexec, posixSpawn, waitpidNoHang, type ProcessExit, type SpawnFds } from './libc.js';

/** How long to wait, without a SIGCHLD, before trying again to reap a child whose pipes have ended. */
const REAP_RETRY_MS = 20;

export interface SpawnOptions {
  env?: NodeJS.ProcessEnv;
  /** A pipe on stdin (`stdin` below); /dev/null when not asked for. */
  stdinPipe?: boolean;
  /** /dev/null on stdout instead of a pipe (`stdout` is then null). */
  stdoutToNull?: boolean;
  /** A pipe on descriptor 3 (`fd3`): a detached helper's report, which may outlive the process. */
  fd3Pipe?: boolean;
  /** A descriptor of the caller's handed over as descriptor 3 (a socket to hand a file back on,
   * say); it stays the caller's, to close. Not with fd3Pipe. */
  fd3?: number;
  /** In a session of its own (setsid): a helper that detaches and must outlive the daemon. */
  newSession?: boolean;
  /** Its working directory; the daemon's unless given. */
  cwd?: string;
}

export interface SpawnedProcess {
  pid: number;
  /** The write end of its stdin (stdinPipe), or null. */
  stdin: Writable | null;
  /** The read end of its stdout, or null (stdoutToNull). */
  stdout: Readable | null;
  stderr: Readable;
  /** The read end of its descriptor 3 (fd3Pipe): not waited for by `exited`. */
  fd3: Readable | null;
  /** Resolves once the process has exited and been reaped (after its stdout and stderr ended). */
  exited: Promise<ProcessExit>;
  /** Sends it `signal` unless it has been reaped (its pid may be another's by then); whether it was sent. */
  kill(signal: NodeJS.Signals): boolean;
}

/**
 * The daemon's own environment as posix_spawn takes it, converted at the first spawn that
 * inherits it: nothing in crib assigns to process.env, and each read of process.env goes through
 * libc's environ (with the 69 variables `npm run` sets, 0.4 ms per conversion, three of them in a
 * RunPodSandbox).
 */
let inheritedEnv: { strings: string[]; path: string | undefined } | undefined;

const closeQuietly = (fd: number) => {
  try {
    closeSync(fd);
  } catch {
    // Only EBADF: already closed here.
  }
};

/**
 * Runs `file` with `args` (argv[0] is `file`) without forking the daemon: stdin from /dev/null
 * (or a pipe), stdout and stderr on pipes (stdout to /dev/null if asked), optionally a pipe on
 * descriptor 3. Resolves once it runs (posix_spawn on libuv's pool: the event loop never waits
 * for a child's exec). Its stdout and stderr must be read to their end: the process is reaped
 * after both end. Rejects (the file named) when it cannot be started.
 */
export async function spawnWithoutFork(file: string, args: readonly string[], opts: SpawnOptions = {}): Promise<SpawnedProcess> {
  if (opts.fd3Pipe && opts.fd3 !== undefined) throw new Error(`posix_spawn ${file}: descriptor 3 asked as a pipe and as ${opts.fd3}`);
  // Each pipe: the end the daemon keeps, and the end the child gets (closed here once it has it).
  const pipes: { ours: number; theirs: number }[] = [];
  const pipe = (ourEnd: 'read' | 'write') => {
    const [read, write] = pipeCloexec();
    const p = ourEnd === 'read' ? { ours: read, theirs: write } : { ours: write, theirs: read };
    pipes.push(p);
    return p;
  };
  let pid: number | undefined;
  let stdinPipe, stdoutPipe, stderrPipe, fd3Pipe;
  try {
    stdinPipe = opts.stdinPipe ? pipe('write') : undefined;
    stdoutPipe = opts.stdoutToNull ? undefined : pipe('read');
    stderrPipe = pipe('read');
    fd3Pipe = opts.fd3Pipe ? pipe('read') : undefined;
    const fds: SpawnFds = { stdin: stdinPipe?.theirs, stdout: stdoutPipe?.theirs, stderr: stderrPipe.theirs, fd3: fd3Pipe?.theirs ?? opts.fd3 };
    const env = opts.env ? { strings: envStrings(opts.env), path: opts.env.PATH } : (inheritedEnv ??= { strings: envStrings(process.env), path: process.env.PATH });
    pid = await posixSpawn(executablePath(file, env.path), [file, ...args], env.strings, fds, opts.newSession, opts.cwd);
  } finally {
    // The child holds its own copies of its ends; ours are kept only if it runs.
    for (const p of pipes) {
      closeQuietly(p.theirs);
      if (pid === undefined) closeQuietly(p.ours);
    }
  }
  // posix_spawn returned (it throws otherwise): the child runs.
  const child = pid!;
  const reader = (fd: number | undefined) => {
    if (fd === undefined) return null;
    const s = new Socket({ fd, readable: true, writable: false });
    // A read error ends the stream ('close' follows); the caller sees what was read before it.
    s.on('error', () => undefined);
    return s;
  };
  const stdout = reader(stdoutPipe?.ours);
  const stderr = reader(stderrPipe.ours)!;
  const fd3 = reader(fd3Pipe?.ours);
  const stdin = stdinPipe === undefined ? null : new Socket({ fd: stdinPipe.ours, readable: false, writable: true });
  // A child that exits without reading its input: the write fails with EPIPE, which its exit
  // status and output explain; an 'error' with no listener would take the daemon down.
  stdin?.on('error', () => undefined);
  let reaped = false;
  const closed = (s: Socket | null) => (s === null ? undefined : new Promise<void>((resolve) => s.once('close', () => resolve())));
  const exited = Promise.all([closed(stdout), closed(stderr)]).then(() => reap(child)).then((exit) => {
    reaped = true;
    return exit;
  });
  const kill = (signal: NodeJS.Signals): boolean => {
    if (reaped) return false;
    try {
      process.kill(child, signal);
      return true;
    } catch {
      return false;
    }
  };
  return { pid: child, stdin, stdout, stderr, fd3, exited, kill };
}

/**
 * `file` itself when it names a path; else the first executable file of that name in the
 * directories of the environment's PATH, as execvp and child_process search (posix_spawn does not).
 */
function executablePath(file: string, pathVariable: string | undefined): string {
  if (file.includes('/')) return file;
  const dirs = (pathVariable ?? '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin').split(':');
  for (const dir of dirs) {
    const candidate = join(dir || '.', file);
    // Most directories of PATH do not have it: asked without an exception, whose stack trace
    // cost more than the lookup.
    try {
      if (!statSync(candidate, { throwIfNoEntry: false })?.isFile()) continue;
      accessSync(candidate, constants.X_OK);
      return candidate;
    } catch {
      // Not ours to search or run (EACCES): the next directory.
    }
  }
  throw Object.assign(new Error(`posix_spawn ${file}: ENOENT (not found in PATH ${dirs.join(':')})`), { code: 'ENOENT' });
}

/** Children whose pipes have ended but which had not exited when last tried, by pid. */
const waiting = new Map<number, (exit: ProcessExit) => void>();
let retryTimer: NodeJS.Timeout | undefined;

/** Tries every waiting child once; the SIGCHLD listener and the retry timer run it. */
function reapWaiting(): void {
  for (const [pid, done] of waiting) {
    const exit = waitpidNoHang(pid);
    if (!exit) continue;
    waiting.delete(pid);
    done(exit);
  }
  clearTimeout(retryTimer);
  retryTimer = undefined;
  if (waiting.size === 0) {
    process.off('SIGCHLD', reapWaiting);
    return;
  }
  // A SIGCHLD that came between a child's first try and the listener is not seen again: a
  // slow retry catches that child.
  retryTimer = setTimeout(reapWaiting, REAP_RETRY_MS);
}

/**
 * Waits for `pid` to exit without blocking: waitpid(WNOHANG) now, and again on each SIGCHLD (a
 * child's pipes end as it exits, a moment before it can be reaped) or after REAP_RETRY_MS.
 */
function reap(pid: number): Promise<ProcessExit> {
  const exit = waitpidNoHang(pid);
  if (exit) return Promise.resolve(exit);
  return new Promise((resolve) => {
    if (waiting.size === 0) process.on('SIGCHLD', reapWaiting);
    waiting.set(pid, resolve);
    if (!retryTimer) {
      retryTimer = setTimeout(reapWaiting, REAP_RETRY_MS);
    }
  });
}
