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
// pipes have ended (libuv reaps only the children it spawned itself), tried again after short
// waits while it has not exited yet.
import { closeSync } from 'node:fs';
import { Socket } from 'node:net';
import type { Readable } from 'node:stream';
import { pipeCloexec, posixSpawn, waitpidNoHang, type ProcessExit } from './libc.js';

/** How long to wait between tries to reap a child whose pipes have ended before it exited. */
const REAP_RETRY_MS = [1, 2, 5, 10, 20, 50];

export interface SpawnedProcess {
  pid: number;
  stdout: Readable;
  stderr: Readable;
  /** Resolves once the process has exited and been reaped (after its stdout and stderr ended). */
  exited: Promise<ProcessExit>;
}

const closeQuietly = (fd: number) => {
  try {
    closeSync(fd);
  } catch {
    // Only EBADF: already closed here.
  }
};

/**
 * Runs `file` with `args` (argv[0] is `file`) and the daemon's environment, without forking the
 * daemon. Its stdout and stderr must be read to their end: the process is reaped after both end.
 */
export function spawnWithoutFork(file: string, args: readonly string[], env: NodeJS.ProcessEnv = process.env): SpawnedProcess {
  // [stdout read, stdout write, stderr read, stderr write]
  const fds: number[] = [];
  let pid: number | undefined;
  try {
    fds.push(...pipeCloexec(), ...pipeCloexec());
    pid = posixSpawn(file, [file, ...args], env, fds[1]!, fds[3]!);
  } finally {
    // The child holds its own copies of the write ends; the read ends are kept only if it runs.
    fds.forEach((fd, i) => (i % 2 === 1 || pid === undefined) && closeQuietly(fd));
  }
  const child = pid;
  const stdout = new Socket({ fd: fds[0], readable: true, writable: false });
  const stderr = new Socket({ fd: fds[2], readable: true, writable: false });
  const closed = (s: Socket) => new Promise<void>((resolve) => s.once('close', () => resolve()));
  const exited = Promise.all([closed(stdout), closed(stderr)]).then(() => reap(child));
  return { pid: child, stdout, stderr, exited };
}

/** Waits for `pid` to exit without blocking: waitpid(WNOHANG), tried again after short waits. */
async function reap(pid: number): Promise<ProcessExit> {
  for (let attempt = 0; ; attempt++) {
    const exit = waitpidNoHang(pid);
    if (exit) return exit;
    await new Promise((resolve) => setTimeout(resolve, REAP_RETRY_MS[Math.min(attempt, REAP_RETRY_MS.length - 1)]));
  }
}
