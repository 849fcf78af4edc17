// Sealed memfd copies of files, through koffi (Node has no memfd_create). The daemon runs its
// own native binaries from such copies: see src/runtime/sealed-binaries.ts.
import koffi from 'koffi';
import { readFileSync, writeSync } from 'node:fs';
import { getSystemErrorName } from 'node:util';

const libc = koffi.load('libc.so.6');
const cMemfdCreate = libc.func('int memfd_create(const char *name, unsigned int flags)');
const cFcntl = libc.func('int fcntl(int fd, int cmd, ...)');

const MFD_CLOEXEC = 0x1;
const MFD_ALLOW_SEALING = 0x2;
const MFD_EXEC = 0x10; // Linux 6.3; older kernels answer EINVAL and make every memfd executable
const F_ADD_SEALS = 1033;
const F_GET_SEALS = 1034;
/** F_SEAL_SEAL | F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_WRITE: what native/common/sealed-exe.c
 * requires of /proc/self/exe before it skips making its own copy. */
export const EXE_SEALS = 0x1 | 0x2 | 0x4 | 0x8;

function fail(what: string): never {
  const errno = koffi.errno();
  let code = `E${errno}`;
  try {
    code = getSystemErrorName(-errno);
  } catch {
    /* unknown errno: keep the number */
  }
  throw Object.assign(new Error(`${what}: ${code}`), { code, errno });
}

/**
 * An executable memfd (close-on-exec in this process) holding the bytes of `path`, sealed
 * against writing, growing and shrinking. Returns its fd; it stays open for the process's life.
 */
export function sealedMemfdCopy(path: string, name: string): number {
  const bytes = readFileSync(path);
  let fd = cMemfdCreate(name, MFD_CLOEXEC | MFD_ALLOW_SEALING | MFD_EXEC) as number;
  if (fd < 0 && koffi.errno() === 22 /* EINVAL */) fd = cMemfdCreate(name, MFD_CLOEXEC | MFD_ALLOW_SEALING) as number;
  if (fd < 0) fail(`memfd_create ${name} (a copy of ${path})`);
  for (let off = 0; off < bytes.length;) off += writeSync(fd, bytes, off, bytes.length - off);
  if ((cFcntl(fd, F_ADD_SEALS, 'int', EXE_SEALS) as number) < 0) fail(`seal the memfd copy of ${path}`);
  return fd;
}

/** The seals of fd (F_GET_SEALS), or -1 with errno for a file that takes none. */
export function memfdSeals(fd: number): number {
  return cFcntl(fd, F_GET_SEALS) as number;
}
