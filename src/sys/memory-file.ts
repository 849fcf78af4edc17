// Files that live in memory (memfds; Node has no memfd_create): the daemon's config across its
// re-exec (daemon/config-handoff.ts), and inputs a helper the daemon starts reads by path but
// that must not appear on a command line, such as ExecSync's OCI process (its environment may
// carry secrets). Such a file is named by its /proc/<daemon pid>/fd/<n> path, which the helper
// opens like any file (the daemon starts the helpers from such paths too:
// runtime/sealed-binaries.ts), and lives as long as the call that needs it. A file in the
// container's directory cost four trips through libuv's thread pool (open, write, close,
// unlink) on each ExecSync's path, and was left behind when the daemon was killed in between; a
// memfd costs a few microseconds on the event loop's thread, touches no disk and goes with its
// last descriptor.
import { closeSync, writeSync } from 'node:fs';
import { daemonFdPath } from './daemon-fd-path.js';
import { memfdCreate } from './libc.js';

/** A new in-memory file (close-on-exec) holding `contents`; returns its fd, which the caller closes. */
export function memoryFile(name: string, contents: string): number {
  const fd = memfdCreate(name);
  try {
    const bytes = Buffer.from(contents);
    for (let off = 0; off < bytes.length;) off += writeSync(fd, bytes, off, bytes.length - off);
    return fd;
  } catch (err) {
    closeSync(fd);
    throw err;
  }
}

/**
 * Runs `use` with the path of an in-memory file holding `contents` (close-on-exec, so only what
 * opens the path reads it); the file is gone once `use` has settled.
 */
export async function withMemoryFile<T>(name: string, contents: string, use: (path: string) => Promise<T>): Promise<T> {
  const fd = memoryFile(name, contents);
  try {
    return await use(daemonFdPath(fd));
  } finally {
    closeSync(fd);
  }
}
