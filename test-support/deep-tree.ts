// A directory tree deeper than PATH_MAX, made by descriptor as any container can make one in its
// writable layer: no path to its bottom fits in one system call.
import { closeSync, constants, mkdirSync, openSync, writeFileSync } from 'node:fs';

/**
 * Makes `dir` with `levels` nested dirs of 40-byte names (150: 6,000 bytes) and a file at the
 * bottom. `beside(at, level)`: called at each level before the walk down, `at` naming that
 * level's directory (through a descriptor: /proc/self/fd/N), to make entries beside the next one.
 */
export function makeDeepTree(dir: string, levels = 150, beside?: (at: string, level: number) => void): void {
  mkdirSync(dir, { recursive: true });
  const name = 'd'.repeat(40);
  let fd = openSync(dir, constants.O_RDONLY | constants.O_DIRECTORY);
  try {
    for (let i = 0; i < levels; i++) {
      beside?.(`/proc/self/fd/${fd}`, i);
      mkdirSync(`/proc/self/fd/${fd}/${name}`);
      const next = openSync(`/proc/self/fd/${fd}/${name}`, constants.O_RDONLY | constants.O_DIRECTORY);
      closeSync(fd);
      fd = next;
    }
    writeFileSync(`/proc/self/fd/${fd}/bottom`, 'x');
  } finally {
    closeSync(fd);
  }
}
