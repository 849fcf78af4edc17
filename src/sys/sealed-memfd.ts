// Sealed memfd copies of files (Node has no memfd_create). The daemon runs its own native
// binaries from such copies: see src/runtime/sealed-binaries.ts. The copy itself is the one the
// helpers make of themselves (native/common/sealed-exe.c), through the libc addon.
import { fcntl } from './libc.js';

export { sealedMemfdCopy } from './libc.js';

const F_GET_SEALS = 1034;
/** F_SEAL_SEAL | F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_WRITE: what native/common/sealed-exe.c
 * requires of /proc/self/exe before it skips making its own copy. */
export const EXE_SEALS = 0x1 | 0x2 | 0x4 | 0x8;

/** The seals of fd (F_GET_SEALS), or -1 for a file that takes none (EINVAL). */
export function memfdSeals(fd: number): number {
  try {
    return fcntl(fd, F_GET_SEALS, 0, `F_GET_SEALS on fd ${fd}`);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'EINVAL') return -1;
    throw err;
  }
}
