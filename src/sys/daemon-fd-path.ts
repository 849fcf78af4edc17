// How a process the daemon starts reaches one of the daemon's descriptors: by path, through the
// daemon's own /proc entry (the helper's /proc/self would name the helper). The daemon serves
// its sealed helper binaries this way (runtime/sealed-binaries.ts), ExecSync's process file
// (sys/memory-file.ts) and a target container's PID namespace (container/target-pidns.ts).
// Opening it takes the right to inspect the daemon (root's), which no container process has.

/** The path under which the processes the daemon starts open its descriptor `fd`. */
export function daemonFdPath(fd: number): string {
  return `/proc/${process.pid}/fd/${fd}`;
}
