// Sealed memfd copies of files (Node has no memfd_create). The daemon runs its own native
// binaries from such copies: see src/runtime/sealed-binaries.ts.
import { readFileSync, writeSync } from 'node:fs';
import { constants as osConstants } from 'node:os';
import { fcntl, memfdCreate, MFD_CLOEXEC } from './libc.js';

const MFD_ALLOW_SEALING = 0x2;
const MFD_EXEC = 0x10; // Linux 6.3; older kernels answer EINVAL and make every memfd executable
const F_ADD_SEALS = 1033;
const F_GET_SEALS = 1034;
/** F_SEAL_SEAL | F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_WRITE: what native/common/sealed-exe.c
 * requires of /proc/self/exe before it skips making its own copy. */
export const EXE_SEALS = 0x1 | 0x2 | 0x4 | 0x8;
/** F_SEAL_WRITE answers EBUSY while the kernel still holds a reference to one of the memfd's
 * pages (a per-CPU LRU batch, a migration), as native/common/sealed-exe.c says: a few more tries,
 * this far apart. A refused F_ADD_SEALS adds no seal, so each try starts from the same file. */
const SEAL_TRIES = 5;
const SEAL_RETRY_MS = 20;

const sleepSync = (ms: number) => Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, ms);

/**
 * An executable memfd (close-on-exec in this process) holding the bytes of `path`, sealed
 * against writing, growing and shrinking. Returns its fd; it stays open for the process's life.
 * Runs once per binary at the daemon's start, so its short waits block nothing that runs yet.
 */
export function sealedMemfdCopy(path: string, name: string): number {
  const bytes = readFileSync(path);
  let fd: number;
  try {
    fd = memfdCreate(name, MFD_CLOEXEC | MFD_ALLOW_SEALING | MFD_EXEC);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'EINVAL') throw err;
    fd = memfdCreate(name, MFD_CLOEXEC | MFD_ALLOW_SEALING);
  }
  for (let off = 0; off < bytes.length;) off += writeSync(fd, bytes, off, bytes.length - off);
  for (let attempt = 1; ; attempt++) {
    try {
      fcntl(fd, F_ADD_SEALS, EXE_SEALS, `F_ADD_SEALS on the memfd copy of ${path} (try ${attempt})`);
      return fd;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).errno !== osConstants.errno.EBUSY || attempt === SEAL_TRIES) throw err;
      sleepSync(SEAL_RETRY_MS);
    }
  }
}

/** The seals of fd (F_GET_SEALS), or -1 for a file that takes none (EINVAL). */
export function memfdSeals(fd: number): number {
  try {
    return fcntl(fd, F_GET_SEALS, 0, `F_GET_SEALS on fd ${fd}`);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'EINVAL') return -1;
    throw err;
  }
}
