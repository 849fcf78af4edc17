// A file that lives in memory for as long as one call needs it: a memfd, named by its
// /proc/<daemon pid>/fd/<n> path, which the helpers the daemon starts open like any file (they
// are started the same way, from /proc/<daemon pid>/fd paths: runtime/sealed-binaries.ts). Used
// where a helper reads an input by path that must not appear on a command line: ExecSync's OCI
// process (its environment may carry secrets). A file in the container's directory cost four
// trips through libuv's thread pool (open, write, close, unlink) on each call's path, and one
// left behind when the daemon was killed in between; a memfd costs a few microseconds on the
// event loop's thread, touches no disk and goes with its last descriptor.
import { closeSync, writeSync } from 'node:fs';
import { memfdCreate } from './libc.js';

/**
 * Runs `use` with the path of an in-memory file holding `contents` (close-on-exec, so only what
 * opens the path reads it); the file is gone once `use` has settled.
 */
export async function withMemoryFile<T>(name: string, contents: string, use: (path: string) => Promise<T>): Promise<T> {
  const fd = memfdCreate(name);
  try {
    const bytes = Buffer.from(contents);
    for (let off = 0; off < bytes.length;) off += writeSync(fd, bytes, off, bytes.length - off);
    return await use(`/proc/${process.pid}/fd/${fd}`);
  } finally {
    closeSync(fd);
  }
}
